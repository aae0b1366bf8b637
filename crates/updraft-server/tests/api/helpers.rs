//! `TestApp`: a running `updraft serve` child process with its own data directory, and request helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const APP_ID: &str = "com.example.app";
/// Set in `spawn_with`'s env to write the gateway's stderr (its log) to that file.
pub const LOG_FILE_VAR: &str = "UPDRAFT_TEST_LOG_FILE";

pub struct TestApp {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    /// Where the gateway's stderr goes (unless the test names a file), read when it stops before listening.
    _log_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    child: Option<Child>,
}

impl TestApp {
    /// Starts a gateway with the default settings plus `env`.
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let log_dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_updraft"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("UPDRAFT_LISTEN", "127.0.0.1:0")
            .env("UPDRAFT_DATA_DIR", data_dir.path())
            .env("UPDRAFT_ADMIN_API_KEY", ADMIN_KEY)
            .env("UPDRAFT_LOG", if std::env::var("TEST_LOG").is_ok() { "debug" } else { "warn" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        // The gateway's stderr goes to a file, so a gateway that stops before it listens says why in the panic. A
        // test that reads the gateway's log names the file itself (hostile.rs greps it for secrets), and gets it even
        // with TEST_LOG (which otherwise shows the log on the terminal).
        let named_log = env.iter().find(|(key, _)| *key == LOG_FILE_VAR).map(|(_, path)| PathBuf::from(path));
        let log_path = named_log.clone().unwrap_or_else(|| log_dir.path().join("stderr.log"));
        if named_log.is_some() || std::env::var("TEST_LOG").is_err() {
            command.stderr(std::fs::File::create(&log_path).unwrap());
        }
        let mut child = command.spawn().expect("the updraft binary starts");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            line
        })
        .await
        .unwrap();
        let base = line
            .trim()
            .strip_prefix("updraft listening on ")
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String =
                    log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                panic!("unexpected first line from updraft serve: {line:?}; its stderr ends with:\n{tail}")
            })
            .to_owned();
        let client = test_client(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()));
        Self { base, data_dir, _log_dir: log_dir, client, child: Some(child) }
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A gateway with `com.example.app` created.
    pub async fn with_app() -> Self {
        let app = Self::spawn().await;
        app.create_app(APP_ID).await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create_app(&self, app_id: &str) {
        let (status, body) = self.admin("POST", "/app", json!({ "app_id": app_id, "name": "Example" })).await;
        assert_eq!(status, 200, "{body}");
    }

    /// A management call with the admin key.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(ADMIN_KEY), body).await
    }

    /// A management write with the admin key that must succeed.
    pub async fn admin_ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.admin(method, path, body.clone()).await;
        assert_eq!(status, 200, "{method} {path} {body}: {answer}");
        answer
    }

    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path)).json(&body);
        if let Some(key) = key {
            request = request.header("authorization", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer {status}: {text:?}")))
    }

    /// `POST /updates` with a raw body; asserts nothing.
    pub async fn updates_raw(&self, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/updates"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer {status}: {text:?}")))
    }

    /// `POST /updates`, which must answer 200.
    pub async fn check(&self, body: Value) -> Value {
        let (status, answer) = self.updates_raw(&body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Uploads a zip that must be accepted.
    pub async fn upload_ok(&self, version: &str, zip: Vec<u8>, extra: &[(&str, &str)]) -> Value {
        let (status, answer) = self.upload(version, zip, extra).await;
        assert_eq!(status, 200, "upload {version}: {answer}");
        answer
    }

    /// Uploads a zip through `POST /bundle`.
    pub async fn upload(&self, version: &str, zip: Vec<u8>, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new().text("app_id", APP_ID).text("version", version.to_owned());
        for (name, value) in extra {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        form = form.part("file", reqwest::multipart::Part::bytes(zip).file_name("bundle.zip"));
        let response = self
            .client
            .post(self.url("/bundle"))
            .header("authorization", ADMIN_KEY)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("still running");
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "updraft did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("still running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still running").id()
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body an 8.51 Android device on its embedded 1.0.0 bundle sends.
pub fn device(overrides: Value) -> Value {
    let mut body = json!({
        "platform": "android",
        "device_id": "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21",
        "app_id": APP_ID,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "100",
        "version_os": "14",
        "version_name": "1.0.0",
        "plugin_version": "8.51.14",
        "is_emulator": false,
        "is_prod": true,
        "install_source": "google_play",
        "defaultChannel": "",
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut body, overrides) {
        base.extend(extra);
    }
    body
}

/// A small valid bundle zip made in-process (for tests that are not about the zip itself).
/// A client that never reuses a connection idle for longer than a second. The gateway closes idle connections after
/// 5 s; a test that blocks its runtime (running `npx`, sleeping) past that would otherwise send its next request on
/// a connection the gateway has already closed, and get "broken pipe" or "incomplete message" for it.
pub fn test_client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder.pool_idle_timeout(Duration::from_secs(1)).build().unwrap()
}

pub fn small_zip(marker: &str) -> Vec<u8> {
    use std::io::Write;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("index.html", options).unwrap();
    zip.write_all(format!("<html><body>{marker}</body></html>").as_bytes()).unwrap();
    zip.start_file("app.js", options).unwrap();
    zip.write_all(b"CapacitorUpdater.notifyAppReady()").unwrap();
    zip.finish().unwrap();
    buffer.into_inner()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The workspace root (for the test tools folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// Polls `probe` until it returns `Some`, for effects that are written behind.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
