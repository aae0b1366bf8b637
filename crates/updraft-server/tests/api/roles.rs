//! Roles and scopes over every management route: the test reads the access table (`src/routes/access.rs`, one
//! `row(pattern, method, access)` per line), and sends each route's request with no key and with keys of every role
//! (`read`, `publish`, `admin`) and scope (none, this app, another app, this app's channel `beta`), against the real
//! binary. Each answer must be 401 (no key), 403 (role or scope short) or anything else (allowed), as the rule
//! written out here independently of the server's says.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::helpers::{APP_ID, TestApp, sha256_hex};
use crate::management::create_key;

const OTHER_APP: &str = "com.example.other";

/// What a request changes, for a key scoped to channel `beta`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Touch {
    /// Nothing that belongs to one channel (a read, or a bundle or asset upload that moves no channel).
    NoChannel,
    /// This channel of the app.
    Channel(&'static str),
    /// The app as a whole (deleting bundles, unpinning a device): a channel-scoped key may not.
    WholeApp,
}

/// The access rows of the server's table, as (pattern, method, access).
fn access_rows() -> Vec<(String, String, String)> {
    let source = include_str!("../../src/routes/access.rs");
    let rows: Vec<(String, String, String)> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("row(\"")?.strip_suffix("),").map(str::to_owned))
        .map(|row| {
            let parts: Vec<&str> = row.split(", ").collect();
            assert_eq!(parts.len(), 3, "an access row is row(\"pattern\", \"METHOD\", Access): {row}");
            let pattern = parts[0].trim_end_matches('"').to_owned();
            (pattern, parts[1].trim_matches('"').to_owned(), parts[2].to_owned())
        })
        .collect();
    assert!(rows.len() > 30, "the access table moved or changed form: {} rows", rows.len());
    rows
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

fn unique() -> u32 {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// The requests that exercise one (pattern, method): path, body and what it changes. `None`: no case written,
/// which fails the test for a management route.
fn cases(pattern: &str, method: &str) -> Option<Vec<(String, Value, Touch)>> {
    let expo = |rest: &str| format!("/expo/{APP_ID}{rest}");
    let read = |path: String| vec![(path, json!({ "app_id": APP_ID }), Touch::NoChannel)];
    let channels = |make: &dyn Fn(&'static str) -> (String, Value)| {
        ["production", "beta"]
            .into_iter()
            .map(|channel| {
                let (path, body) = make(channel);
                (path, body, Touch::Channel(channel))
            })
            .collect::<Vec<_>>()
    };
    Some(match (pattern, method) {
        ("/stats", "GET")
        | ("/release_health", "GET")
        | ("/channel", "GET")
        | ("/device", "GET")
        | ("/bundle", "GET")
        | ("/audit", "GET") => read(pattern.to_owned()),
        ("/expo/{app_id}/releases", "GET") => read(expo("/releases")),
        ("/app", "POST") => {
            vec![(
                "/app".into(),
                json!({ "app_id": format!("com.example.new{}", unique()), "name": "N" }),
                Touch::WholeApp,
            )]
        }
        ("/app", "PUT") => {
            vec![("/app".into(), json!({ "app_id": APP_ID, "default_channel": "production" }), Touch::WholeApp)]
        }
        ("/apikey", "POST") => vec![("/apikey".into(), json!({ "name": format!("k{}", unique()) }), Touch::WholeApp)],
        ("/apikey", "GET") => vec![("/apikey".into(), Value::Null, Touch::WholeApp)],
        ("/apikey", "DELETE") => vec![("/apikey".into(), json!({ "name": "nobody" }), Touch::WholeApp)],
        ("/channel", "POST") => {
            channels(&|channel| ("/channel".into(), json!({ "app_id": APP_ID, "channel": channel })))
        }
        // Deleting a channel that does not exist: allowed means 404, and a `beta` key may not touch it.
        ("/channel", "DELETE") => vec![(
            "/channel".into(),
            json!({ "app_id": APP_ID, "channel": "nonexistent" }),
            Touch::Channel("nonexistent"),
        )],
        ("/device", "POST") => {
            let mut cases = channels(&|channel| {
                ("/device".into(), json!({ "app_id": APP_ID, "device_id": "d1", "channel": channel }))
            });
            cases.push((
                "/device".into(),
                json!({ "app_id": APP_ID, "device_id": "d1", "version_id": "builtin" }),
                Touch::WholeApp,
            ));
            cases
        }
        ("/device", "DELETE") => {
            vec![("/device".into(), json!({ "app_id": APP_ID, "device_id": "d1" }), Touch::WholeApp)]
        }
        ("/bundle", "POST") => {
            let external = |channel: Option<&str>| {
                let mut body = json!({
                    "app_id": APP_ID,
                    "version": format!("2.0.{}", unique()),
                    "external_url": "https://cdn.example.com/b.zip",
                    "checksum": sha256_hex(b"bundle"),
                });
                if let Some(channel) = channel {
                    body["channel"] = json!(channel);
                }
                ("/bundle".to_owned(), body)
            };
            let mut cases = channels(&|channel| external(Some(channel)));
            let (path, body) = external(None);
            cases.push((path, body, Touch::NoChannel));
            cases
        }
        ("/bundle", "DELETE") => {
            vec![("/bundle".into(), json!({ "app_id": APP_ID, "version": "9.9.9" }), Touch::WholeApp)]
        }
        ("/expo/{app_id}/assets/missing", "POST") => {
            vec![(expo("/assets/missing"), json!({ "sha256": [] }), Touch::NoChannel)]
        }
        // The body of `call` is JSON text; the digest in the path is that text's.
        ("/expo/{app_id}/assets/{file}", "PUT") => {
            vec![(expo(&format!("/assets/{}", sha256_hex(b"\"asset\""))), json!("asset"), Touch::NoChannel)]
        }
        ("/expo/{app_id}/releases", "POST") => {
            channels(&|channel| (expo("/releases"), json!({ "channel": channel, "expo_client": {}, "platforms": [] })))
        }
        ("/expo/{app_id}/releases/rollback", "POST") => {
            channels(&|channel| (expo("/releases/rollback"), json!({ "channel": channel, "to": "nonexistent" })))
        }
        ("/expo/{app_id}/releases/promote", "POST") => {
            channels(&|channel| (expo("/releases/promote"), json!({ "release": "nonexistent", "to_channel": channel })))
        }
        ("/rollout", "GET") => {
            vec![("/rollout".into(), json!({ "app_id": APP_ID, "channel": "production" }), Touch::NoChannel)]
        }
        // No rollout runs: allowed means 404 rollout_not_found.
        ("/rollout", "POST") => {
            channels(&|channel| ("/rollout".into(), json!({ "app_id": APP_ID, "channel": channel, "percent": 10 })))
        }
        ("/rollout/halt", "POST") | ("/rollout/resume", "POST") | ("/rollout/complete", "POST") => {
            channels(&|channel| (pattern.to_owned(), json!({ "app_id": APP_ID, "channel": channel })))
        }
        ("/expo/{app_id}/keys", "GET") => vec![(expo("/keys"), Value::Null, Touch::WholeApp)],
        ("/expo/{app_id}/keys", "POST") => vec![(expo("/keys"), json!({ "key_id": "a b" }), Touch::WholeApp)],
        _ => return None,
    })
}

/// A key of the test: its role and scope.
#[derive(Clone, Copy, Debug)]
struct KeySpec {
    role: &'static str,
    app: Option<&'static str>,
    channel: Option<&'static str>,
}

/// The rule, written from the issue: roles are ordered read < publish < admin; `installation` needs an admin scoped
/// to no app; a key scoped to another app is refused; a key scoped to channel `beta` sees the whole app but changes
/// only `beta` (and uploads that move no channel).
fn expected_allowed(key: KeySpec, access: &str, touch: Touch) -> bool {
    let rank = |role: &str| ["read", "publish", "admin"].iter().position(|r| *r == role).unwrap();
    let needed = match access {
        "Read" => "read",
        "Publish" => "publish",
        "Admin" | "Installation" => "admin",
        other => panic!("unknown access {other}"),
    };
    if rank(key.role) < rank(needed) {
        return false;
    }
    if access == "Installation" {
        return key.app.is_none();
    }
    if key.app.is_some_and(|app| app != APP_ID) {
        return false;
    }
    match (key.channel, access, touch) {
        (None, ..) | (Some(_), "Read", _) => true,
        (Some(_), _, Touch::NoChannel) => true,
        (Some(scoped), _, Touch::Channel(channel)) => scoped == channel,
        (Some(_), _, Touch::WholeApp) => false,
    }
}

#[tokio::test]
async fn every_management_route_by_role_and_scope() {
    let app = TestApp::with_app().await;
    app.create_app(OTHER_APP).await;
    for channel in ["production", "beta"] {
        app.admin_ok("POST", "/channel", json!({ "app_id": APP_ID, "channel": channel, "public": false })).await;
    }
    let mut keys = Vec::new();
    for role in ["read", "publish", "admin"] {
        for (app_scope, channel) in
            [(None, None), (Some(APP_ID), None), (Some(OTHER_APP), None), (Some(APP_ID), Some("beta"))]
        {
            let spec = KeySpec { role, app: app_scope, channel };
            let name = format!("{role}-{}-{}", app_scope.unwrap_or("all"), channel.unwrap_or("all"));
            let mut args = vec!["--name", name.as_str(), "--role", role];
            if let Some(app_id) = app_scope {
                args.extend(["--app", app_id]);
            }
            if let Some(channel) = channel {
                args.extend(["--channel", channel]);
            }
            keys.push((spec, create_key(&app, &args)));
        }
    }

    let mut checked = 0;
    let mut table = Vec::new();
    for (pattern, method, access) in access_rows() {
        if access == "Open" {
            continue;
        }
        let cases = cases(&pattern, &method)
            .unwrap_or_else(|| panic!("{method} {pattern} needs {access}: add its requests to roles.rs `cases`"));
        for (path, body, touch) in cases {
            let (status, answer) = app.call(&method, &path, None, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} without a key: {answer}");
            for (spec, key) in &keys {
                let (status, answer) = app.call(&method, &path, Some(key), body.clone()).await;
                let allowed = expected_allowed(*spec, &access, touch);
                if allowed {
                    assert!(![401, 403].contains(&status), "{method} {path} {touch:?} by {spec:?}: {status} {answer}");
                } else {
                    assert_eq!(status, 403, "{method} {path} {touch:?} by {spec:?}: {answer}");
                    let message = answer["message"].as_str().unwrap_or_default();
                    assert!(!message.is_empty(), "a refusal says why: {answer}");
                }
                table.push(format!(
                    "{method} {pattern} {touch:?} {spec:?} -> {}",
                    if allowed { "allowed" } else { "403" }
                ));
                checked += 1;
            }
        }
    }
    // 3 roles x 4 scopes over every management route and its channel variants.
    assert!(checked > 300, "only {checked} checks");
    let artifacts = crate::helpers::workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("roles-table.txt"), table.join("\n")).unwrap();
}

/// The role names the server's refusal gives are the ones `--role` takes, and a publish key scoped to `beta` cannot
/// move `production` through any of the ways a channel is moved.
#[tokio::test]
async fn a_beta_publish_key_cannot_move_production() {
    let app = TestApp::with_app().await;
    for channel in ["production", "beta"] {
        app.admin_ok("POST", "/channel", json!({ "app_id": APP_ID, "channel": channel })).await;
    }
    let beta = create_key(&app, &["--name", "beta-ci", "--role", "publish", "--app", APP_ID, "--channel", "beta"]);
    let reader = create_key(&app, &["--name", "viewer", "--role", "read"]);
    let (status, answer) =
        app.call("POST", "/channel", Some(&beta), json!({ "app_id": APP_ID, "channel": "production" })).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("cannot_access_app")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("beta"), "{answer}");
    assert_eq!(app.call("POST", "/channel", Some(&beta), json!({ "app_id": APP_ID, "channel": "beta" })).await.0, 200);
    let (status, answer) =
        app.call("POST", "/channel", Some(&reader), json!({ "app_id": APP_ID, "channel": "beta" })).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("--role publish"), "{answer}");
    // A channel scope without an app, or an unknown role, is a readable 400.
    let (status, answer) = app.admin("POST", "/apikey", json!({ "name": "x", "channel": "beta" })).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = app.admin("POST", "/apikey", json!({ "name": "x", "role": "owner" })).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("read, publish, admin"), "{answer}");
    // The listing shows role and channel.
    let (_, listed) = app.admin("GET", "/apikey", Value::Null).await;
    let summary: Vec<(&str, &str, Option<&str>)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["role"].as_str().unwrap(), k["channel"].as_str()))
        .collect();
    assert_eq!(summary, [("beta-ci", "publish", Some("beta")), ("viewer", "read", None)]);
}
