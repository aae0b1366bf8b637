//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`), driven over WebDriver with
//! `fantoccini`, against the real binary: sign in, the seeded apps, channels and releases with the figures the API
//! reports, a rollout halted and resumed from the console and the API agreeing, sign-out; a wrong key, a forged
//! CSRF token and a `read` key's forged actions refused. Screenshots go to `target/test-artifacts/console/`.
//!
//! Without chromedriver the tests fail, saying how to install it (`UPDRAFT_CHROMEDRIVER` and `UPDRAFT_CHROMIUM`
//! name other binaries).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{APP_ID, TestApp, device, sha256_hex, small_zip, workspace_root};
use crate::management::create_key;

/// A chromedriver child and a WebDriver session on it; both end on drop (the session by `finish`).
struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_binary(variable: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for name in candidates {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn artifacts() -> PathBuf {
    let dir = workspace_root().join("target/test-artifacts/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(width: u32, height: u32) -> Browser {
    let chromedriver = find_binary("UPDRAFT_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "chromedriver is missing: the console's browser tests need it. Install it with `apt-get install -y chromium chromium-driver` (tests/run.sh and .ci/run do), or set UPDRAFT_CHROMEDRIVER"
        )
    });
    let chromium =
        find_binary("UPDRAFT_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]).unwrap_or_else(|| {
            panic!("chromium is missing: install it with `apt-get install -y chromium chromium-driver`")
        });
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver at {}: {e}; install it with `apt-get install -y chromium chromium-driver` or set UPDRAFT_CHROMEDRIVER",
                chromedriver.display()
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--hide-scrollbars", "--force-device-scale-factor=1"],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                assert!(Instant::now() < deadline, "chromedriver at {url} did not start a session: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    client.set_window_size(width, height).await.unwrap();
    Browser { client, driver }
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client.wait().for_element(Locator::Css(css)).await.unwrap().text().await.unwrap().trim().to_owned()
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Clicks the submit button of the action form `action` (inside `scope`), accepts the confirmation, and waits
    /// for the page the action leads to.
    async fn act(&self, scope: &str, action: &str, fill: &[(&str, &str)]) {
        let form = self.client.find(Locator::Css(&format!("{scope} form[data-action=\"{action}\"]"))).await.unwrap();
        for (name, value) in fill {
            let input = form.find(Locator::Css(&format!("[name=\"{name}\"]"))).await.unwrap();
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        }
        form.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.client.accept_alert().await.is_err() {
            assert!(Instant::now() < deadline, "no confirmation was asked for {action}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Done when the page the action redirects to (which names it) has loaded, or an error page shows.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.as_str().contains(&format!("done={action}")) && self.count("#flash").await == 1 {
                return;
            }
            if self.count("#error").await > 0 {
                panic!("{action} was refused: {}", self.text("#error").await);
            }
            assert!(Instant::now() < deadline, "{action} did not finish; at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A screenshot of the whole page: the window grows to the page's height for it, then shrinks back.
    async fn full_screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.client.get_window_size().await.unwrap();
        let page_height = self.client.execute("return document.documentElement.scrollHeight", vec![]).await.unwrap();
        let page_height = page_height.as_u64().unwrap().clamp(height, 6000);
        self.client.set_window_size(width as u32, page_height as u32 + 120).await.unwrap();
        let path = self.screenshot(name).await;
        self.client.set_window_size(width as u32, height as u32).await.unwrap();
        path
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = artifacts().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn sign_in(&self, base: &str, key: &str) {
        self.goto(&format!("{base}/console")).await;
        self.client.wait().for_element(Locator::Css("#key")).await.unwrap().send_keys(key).await.unwrap();
        self.client.find(Locator::Css("#signin")).await.unwrap().click().await.unwrap();
    }

    async fn finish(self) {
        let Browser { client, .. } = &self;
        let _ = client.clone().close().await;
    }
}

/// An app with two bundles, a public `production` channel on 1.0.0 and a private `beta` one on 1.1.0, installs and
/// failures reported over the last days, an Expo publish, and a rollout of 1.1.0 to 25 % of production.
async fn seed(app: &TestApp) {
    app.upload_ok("1.0.0", small_zip("one"), &[]).await;
    app.upload_ok("1.1.0", small_zip("two"), &[]).await;
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "production", "version": "1.0.0", "public": true}),
    )
    .await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta", "version": "1.1.0", "public": false}))
        .await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    let mut events = Vec::new();
    for n in 0..36 {
        let (version, action) = match n % 9 {
            0..=5 => ("1.0.0", "set"),
            6 | 7 => ("1.1.0", "set"),
            _ => ("1.1.0", "update_fail"),
        };
        let mut event = device(json!({
            "device_id": format!("device-{n:02}"), "version_name": version, "action": action,
            "old_version_name": "", "timestamp": now - (n % 6) * day - 60_000,
        }));
        event.as_object_mut().unwrap().remove("defaultChannel");
        events.push(event);
    }
    let response = app.client.post(app.url("/stats")).json(&Value::Array(events)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    crate::helpers::eventually("the stats to be written", || async {
        let (_, stats) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), Value::Null).await;
        let total: u64 = stats["bundles"].as_array()?.iter().filter_map(|b| b["installs"].as_u64()).sum();
        (total == 32).then_some(())
    })
    .await;
    // A device that checked in (what the device lookup shows it runs).
    app.check(device(json!({"device_id": "device-06", "version_name": "1.1.0"}))).await;
    crate::helpers::eventually("the check-in to be written", || async {
        let (status, _) = app.admin("GET", &format!("/device?app_id={APP_ID}&device_id=device-06"), Value::Null).await;
        (status == 200).then_some(())
    })
    .await;
    // An Expo publish on production: one launch asset, uploaded first.
    let launch = b"console.log('expo')".to_vec();
    let digest = sha256_hex(&launch);
    let response = app
        .client
        .put(app.url(&format!("/expo/{APP_ID}/assets/{digest}")))
        .header("authorization", crate::helpers::ADMIN_KEY)
        .body(launch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let publish = json!({
        "channel": "production", "runtime_version": "1.0.0", "message": "First Expo update", "expo_client": {"name": "Example"},
        "platforms": [{"platform": "ios", "launch_asset": {"sha256": digest, "ext": "hbc"}}, {"platform": "android", "launch_asset": {"sha256": digest, "ext": "hbc"}}],
    });
    app.admin_ok("POST", &format!("/expo/{APP_ID}/releases"), publish).await;
    app.admin_ok(
        "POST",
        "/rollout",
        json!({"app_id": APP_ID, "channel": "production", "version": "1.1.0", "percent": 25}),
    )
    .await;
}

async fn rollout_status(app: &TestApp) -> Value {
    let (status, answer) = app.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn console_shows_the_api_figures_and_halts_and_resumes_a_rollout() {
    let app = TestApp::with_app().await;
    seed(&app).await;
    let key = create_key(&app, &["--name", "release-manager", "--role", "publish"]);
    let browser = browser(1366, 900).await;
    browser.sign_in(&app.base, &key).await;
    browser.client.wait().for_element(Locator::Css(&format!("a[data-app=\"{APP_ID}\"]"))).await.unwrap();
    assert!(browser.client.current_url().await.unwrap().as_str().ends_with("/console/apps"));
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(&key), "the key never appears in a page");
    assert!(!browser.client.current_url().await.unwrap().as_str().contains(&key));

    // The overview shows what the API reports: channels, releases with installs and failures, the rollout.
    browser.goto(&format!("{}/console/apps/{APP_ID}", app.base)).await;
    let (_, channels) = app.admin("GET", &format!("/channel?app_id={APP_ID}"), Value::Null).await;
    for channel in channels.as_array().unwrap() {
        let name = channel["name"].as_str().unwrap();
        let serves = channel["version"]["name"].as_str().unwrap_or("builtin");
        assert_eq!(browser.text(&format!("tr[data-channel=\"{name}\"] [data-serves]")).await, serves, "{name}");
    }
    let (_, stats) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), Value::Null).await;
    let per_bundle = stats["bundles"].as_array().unwrap();
    assert_eq!(per_bundle.len(), 2, "{stats}");
    for bundle in per_bundle {
        let version = bundle["version_name"].as_str().unwrap();
        let row = format!("tr[data-release=\"{version}\"]");
        for field in ["devices", "installs", "failures"] {
            let shown = browser.text(&format!("{row} [data-{field}]")).await;
            assert_eq!(shown, bundle[field].as_u64().unwrap().to_string(), "{version} {field}");
        }
    }
    assert_eq!(browser.text("tr[data-release=\"1.1.0\"] [data-rate]").await, "33.3 %", "4 failed of 12 attempts");
    assert_eq!(browser.count("svg[data-chart=adoption] text[data-version]").await, 2, "one labelled line per release");
    assert_eq!(browser.count("svg[data-chart=failure-rate] text[data-version]").await, 2);
    assert_eq!(browser.count("tr[data-expo-channel=production]").await, 2, "the Expo publish, per platform");
    assert_eq!(browser.text("[data-rollout=production] [data-percent]").await, "25");
    assert_eq!(browser.text("[data-rollout=production] .pill").await, "active");
    browser.full_screenshot("overview-laptop.png").await;

    // Halt from the console: the API agrees, with the reason and the key's name.
    browser.act("[data-rollout=production]", "rollout-halt", &[("reason", "crash spike on 1.1.0")]).await;
    assert_eq!(browser.text("#flash").await, "Rollout halted. It is in the audit log.");
    assert_eq!(browser.text("[data-rollout=production] .pill").await, "halted");
    assert!(browser.text("[data-halt-reason]").await.contains("crash spike on 1.1.0"));
    let status = rollout_status(&app).await;
    assert_eq!((status["state"].as_str(), status["reason"].as_str()), (Some("halted"), Some("crash spike on 1.1.0")));
    browser.full_screenshot("overview-halted.png").await;

    // Resume: active again, at the same percentage.
    browser.act("[data-rollout=production]", "rollout-resume", &[]).await;
    assert_eq!(browser.text("[data-rollout=production] .pill").await, "active");
    let status = rollout_status(&app).await;
    assert_eq!((status["state"].as_str(), status["percent"].as_f64()), (Some("active"), Some(25.0)), "{status}");

    // Both actions are in the audit log, under the key's name, on the page and in the API.
    browser.goto(&format!("{}/console/apps/{APP_ID}/audit", app.base)).await;
    assert_eq!(browser.count("tr[data-audit=\"rollout.halt\"]").await, 1);
    assert_eq!(browser.count("tr[data-audit=\"rollout.resume\"]").await, 1);
    let (_, log) = app.admin("GET", &format!("/audit?app_id={APP_ID}&limit=2"), Value::Null).await;
    let recent: Vec<(&str, &str)> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["key_name"].as_str().unwrap()))
        .collect();
    assert_eq!(recent, [("rollout.resume", "release-manager"), ("rollout.halt", "release-manager")]);

    // Device lookup: what a device runs and what the rollout offers it.
    browser.goto(&format!("{}/console/apps/{APP_ID}/devices?id=device-06", app.base)).await;
    assert_eq!(browser.text("[data-runs]").await, "1.1.0");
    assert_eq!(browser.count("[data-offer]").await, 1);
    browser.screenshot("device-laptop.png").await;

    // A phone-width window: the same page, laid out for it.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.goto(&format!("{}/console/apps/{APP_ID}", app.base)).await;
    browser.text("[data-rollout=production]").await;
    let (width, _) = browser.client.get_window_size().await.unwrap();
    let scroll_width = browser.client.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
    assert!(scroll_width.as_u64().unwrap() <= width, "no sideways scrolling at phone width: {scroll_width} > {width}");
    browser.full_screenshot("overview-phone.png").await;
    browser.screenshot("phone-top.png").await;
    browser.client.execute("document.getElementById('capgo-channels').scrollIntoView()", vec![]).await.unwrap();
    browser.screenshot("phone-channels.png").await;

    // Sign out: the session is gone.
    browser.client.set_window_size(1366, 900).await.unwrap();
    browser.client.find(Locator::Css(".who button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.client.wait().for_element(Locator::Css("#key")).await.unwrap();
    browser.goto(&format!("{}/console/apps/{APP_ID}", app.base)).await;
    browser.client.wait().for_element(Locator::Css("#key")).await.unwrap();
    browser.finish().await;
}

/// The session cookie and the CSRF token of a console page, signed in over plain HTTP.
async fn http_session(
    app: &TestApp,
    key: &str,
    forwarded_https: bool,
) -> (reqwest::StatusCode, Option<String>, String) {
    let mut request = app.client.post(app.url("/console/signin")).form(&[("key", key)]);
    if forwarded_https {
        request = request.header("x-forwarded-proto", "https");
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (status, cookie, response.text().await.unwrap())
}

fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[start..start + 64].to_owned()
}

async fn page_with(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = app.client.get(app.url(path)).header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_action(app: &TestApp, cookie: Option<&str>, action: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut request = app.client.post(app.url(&format!("/console/apps/{APP_ID}/actions/{action}"))).form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn console_refuses_wrong_keys_forged_tokens_and_read_only_actions() {
    let app = TestApp::with_app().await;
    seed(&app).await;
    let reader = create_key(&app, &["--name", "viewer", "--role", "read"]);
    let publisher = create_key(&app, &["--name", "publisher", "--role", "publish"]);

    // A wrong key in the browser: refused, still on the sign-in page. A read key sees no action buttons.
    let browser = browser(1366, 900).await;
    browser.sign_in(&app.base, "upd_000000000000_wrong").await;
    assert_eq!(browser.text("#signin-error").await, "That API key is not valid.");
    browser.sign_in(&app.base, &reader).await;
    browser.client.wait().for_element(Locator::Css(&format!("a[data-app=\"{APP_ID}\"]"))).await.unwrap();
    browser.goto(&format!("{}/console/apps/{APP_ID}", app.base)).await;
    assert_eq!(browser.text("[data-rollout=production] .pill").await, "active");
    let role = browser.client.find(Locator::Css(".role")).await.unwrap().attr("data-role").await.unwrap();
    assert_eq!(role.as_deref(), Some("read"));
    assert_eq!(browser.count("form[data-action]").await, 0, "a read key sees no action buttons");
    browser.screenshot("overview-read-key.png").await;
    browser.finish().await;

    // The cookie: HttpOnly, SameSite=Strict, an expiry; Secure once the browser came over https.
    let (status, cookie, _) = http_session(&app, &reader, false).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=28800", "Path=/console"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!cookie.contains(&reader));
    let (_, https_cookie, _) = http_session(&app, &reader, true).await;
    assert!(https_cookie.unwrap().contains("; Secure"));
    let reader_cookie = cookie.split(';').next().unwrap().to_owned();

    // A read key's forged action, with its own valid CSRF token: 403, and nothing changed.
    let (status, page) = page_with(&app, &reader_cookie, &format!("/console/apps/{APP_ID}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains(&reader), "the key never appears in a page");
    let reader_csrf = csrf_of(&page);
    for (action, form) in [
        ("rollout-halt", vec![("channel", "production")]),
        ("rollout-complete", vec![("channel", "production")]),
        ("channel-rollback", vec![("channel", "production"), ("version", "1.1.0")]),
        ("device-pin", vec![("device_id", "device-01"), ("version", "1.0.0")]),
    ] {
        let mut form = form;
        form.push(("csrf", &reader_csrf));
        let (status, page) = post_action(&app, Some(&reader_cookie), action, &form).await;
        assert_eq!(status, 403, "{action}: {page}");
        assert!(page.contains("read role"), "{action}: {page}");
    }
    assert_eq!(rollout_status(&app).await["state"], "active");

    // A publish key with a forged (or missing) CSRF token: 403. Without a session: back to sign-in.
    let (_, cookie, _) = http_session(&app, &publisher, false).await;
    let publisher_cookie = cookie.unwrap().split(';').next().unwrap().to_owned();
    let forged = "0".repeat(64);
    for form in [vec![("channel", "production"), ("csrf", forged.as_str())], vec![("channel", "production")]] {
        let (status, page) = post_action(&app, Some(&publisher_cookie), "rollout-halt", &form).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("CSRF"), "{page}");
    }
    let (status, _) = post_action(&app, None, "rollout-halt", &[("channel", "production")]).await;
    assert_eq!(status, 303);
    assert_eq!(rollout_status(&app).await["state"], "active");
    // The real token works.
    let (_, page) = page_with(&app, &publisher_cookie, &format!("/console/apps/{APP_ID}")).await;
    let csrf = csrf_of(&page);
    let (status, _) =
        post_action(&app, Some(&publisher_cookie), "rollout-halt", &[("channel", "production"), ("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(rollout_status(&app).await["state"], "halted");

    // A revoked key's session ends at its next request.
    app.admin_ok("DELETE", "/apikey", json!({"name": "viewer"})).await;
    let (status, _) = page_with(&app, &reader_cookie, &format!("/console/apps/{APP_ID}")).await;
    assert_eq!(status, 303);

    // Failed sign-ins are limited: after 5 in a minute (the browser's wrong key was the first), the address waits.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(http_session(&app, "upd_000000000000_wrong", false).await.0.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    assert_eq!(http_session(&app, &publisher, false).await.0, 429, "even a right key waits");
}

/// The console's assets are in the binary and the pages name no other host.
#[tokio::test]
async fn console_assets_are_embedded() {
    let app = TestApp::spawn().await;
    for (path, kind) in [("/console/assets/console.css", "text/css"), ("/console/assets/console.js", "text/javascript")]
    {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind));
    }
    let response = app.client.get(app.url("/console")).send().await.unwrap();
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "no external asset: {page}");
    assert_eq!(app.client.get(app.url("/console/assets/nope")).send().await.unwrap().status(), 404);
}
