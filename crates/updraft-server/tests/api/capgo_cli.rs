//! Drives the real `@capgo/cli` (installed by `tests/tools/install.sh`) to make bundle fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::{APP_ID, workspace_root};

/// The Capgo CLI's `node_modules`, from `UPDRAFT_TEST_NODE_MODULES` or `tests/tools/node_modules`.
pub fn node_modules() -> PathBuf {
    let path = std::env::var_os("UPDRAFT_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/tools/node_modules"));
    assert!(
        path.join(".bin/capgo").exists(),
        "the Capgo CLI is not installed at {}; run `tests/tools/install.sh` (or the README's test command)",
        path.display()
    );
    path
}

/// A Capacitor project folder with a web build, ready for `capgo bundle zip`.
pub struct CapacitorProject {
    pub dir: tempfile::TempDir,
}

impl CapacitorProject {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("capacitor.config.json"),
            format!(r#"{{ "appId": "{APP_ID}", "appName": "Example", "webDir": "dist" }}"#),
        )
        .unwrap();
        std::fs::write(
            root.join("package.json"),
            r#"{ "name": "example-app", "version": "1.0.0", "private": true,
                 "dependencies": { "@capgo/capacitor-updater": "10.0.0" } }"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(node_modules(), root.join("node_modules")).unwrap();
        for (name, content) in files {
            let path = root.join("dist").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Self { dir }
    }

    /// A typical web build: index.html, a script that calls notifyAppReady, a stylesheet with non-ASCII text.
    pub fn typical(marker: &str) -> Self {
        Self::new(&[
            (
                "index.html",
                &format!("<!doctype html><html><body>{marker}<script src=\"app.js\"></script></body></html>"),
            ),
            (
                "app.js",
                "import { CapacitorUpdater } from '@capgo/capacitor-updater'; CapacitorUpdater.notifyAppReady();",
            ),
            ("assets/style.css", "body { content: \"héllo wörld ✓\"; }"),
        ])
    }

    pub fn dist(&self) -> PathBuf {
        self.dir.path().join("dist")
    }

    /// Runs `capgo <args>` in the project and returns its stdout.
    pub fn capgo(&self, args: &[&str]) -> String {
        run_capgo(self.dir.path(), args)
    }

    /// `capgo bundle zip --json`: returns the zip's path and the checksum the CLI printed.
    pub fn bundle_zip(&self, version: &str) -> (PathBuf, String) {
        let out = self.capgo(&["bundle", "zip", APP_ID, "--path", "./dist", "--bundle", version, "--json"]);
        let printed = json_in(&out);
        let filename = printed["filename"].as_str().expect("capgo printed a filename");
        let checksum = printed["checksum"].as_str().expect("capgo printed a checksum").to_owned();
        (self.dir.path().join(filename), checksum)
    }
}

impl CapacitorProject {
    /// `capgo key create`: returns the public key PEM (PKCS#1) it wrote to `.capgo_key_v2.pub`.
    pub fn key_create(&self) -> String {
        self.capgo(&["key", "create"]);
        std::fs::read_to_string(self.dir.path().join(".capgo_key_v2.pub")).unwrap()
    }

    /// `capgo bundle encrypt --json`: returns the encrypted file, the encrypted checksum and the ivSessionKey.
    pub fn bundle_encrypt(&self, zip: &Path, sha256: &str) -> (PathBuf, String, String) {
        let out = self.capgo(&["bundle", "encrypt", zip.to_str().unwrap(), sha256, "--json"]);
        let printed = json_in(&out);
        let filename = printed["filename"].as_str().expect("capgo printed a filename");
        (
            self.dir.path().join(filename),
            printed["checksum"].as_str().unwrap().to_owned(),
            printed["ivSessionKey"].as_str().unwrap().to_owned(),
        )
    }

    /// `capgo bundle decrypt`: decrypts `encrypted` with a session key and checks the encrypted checksum; returns
    /// the decrypted zip's path and the CLI's output.
    pub fn bundle_decrypt(&self, encrypted: &Path, session_key: &str, checksum: &str) -> (PathBuf, String) {
        let out = self.capgo(&["bundle", "decrypt", encrypted.to_str().unwrap(), session_key, "--checksum", checksum]);
        (PathBuf::from(format!("{}_decrypted.zip", encrypted.display())), out)
    }
}

fn run_capgo(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(node_modules().join(".bin/capgo"))
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env("DO_NOT_TRACK", "1")
        .output()
        .expect("capgo runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "capgo {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The JSON object in a tool's stdout (which may carry warnings before it).
pub fn json_in(out: &str) -> Value {
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in output: {out}"));
    let end = out.rfind('}').unwrap();
    serde_json::from_str(&out[start..=end]).unwrap_or_else(|e| panic!("bad JSON in output ({e}): {out}"))
}
