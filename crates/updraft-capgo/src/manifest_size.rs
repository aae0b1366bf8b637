//! `POST <updateUrl>/manifest_size`: how many bytes a delta download will take. Plugins from 8.47 send it from
//! `getBundleDownloadSize()` and `getLatest({includeBundleSize: true})` with the info object, the `version` they
//! were offered and that reply's `manifest` (`CapgoUpdater.java` `getBundleDownloadSize`). The reply is Capgo's
//! `{totalSize, knownFiles, unknownFiles, files}` (`plugin_runtime/utils/manifest_size.ts`), where each file has
//! its `size`, or `error: "size_unknown"`.

use serde_json::{Map, Value, json};
use updraft_core::AppId;

use crate::updates::{RequestProblem, parse_info_object};
use crate::wire_fields;

/// One file the device asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeQuery {
    /// `file_name` as sent.
    pub file_name: Option<String>,
    /// `file_hash` as sent (entries without one are left out, as Capgo does).
    pub file_hash: String,
    /// `download_url` as sent.
    pub download_url: Option<String>,
}

/// A parsed `manifest_size` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSizeRequest {
    /// The app.
    pub app_id: AppId,
    /// The files, without repeats.
    pub files: Vec<SizeQuery>,
}

/// Parses the body: the info object as for `/updates`, plus `manifest` (or Capgo's alias `files`).
///
/// # Errors
/// The problem `/updates` would report for the same info object (answered here as a 400, which makes the device
/// report `response_error` itself).
pub fn parse_manifest_size(body: &[u8]) -> Result<ManifestSizeRequest, RequestProblem> {
    let map = wire_fields::object(body).map_err(|message| RequestProblem::BadRequest {
        code: crate::error_codes::INVALID_JSON_PARSE_BODY,
        message: message.to_owned(),
    })?;
    let request = parse_info_object(&map, chrono::Utc::now())?;
    let entries = match map.get("manifest").or_else(|| map.get("files")) {
        Some(Value::Array(entries)) => entries.as_slice(),
        _ => &[],
    };
    let mut files: Vec<SizeQuery> = Vec::with_capacity(entries.len());
    for entry in entries.iter().filter_map(Value::as_object) {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
        let Some(file_hash) = text("file_hash").filter(|h| !h.is_empty()) else { continue };
        let query = SizeQuery { file_name: text("file_name"), file_hash, download_url: text("download_url") };
        if !files.contains(&query) {
            files.push(query);
        }
    }
    Ok(ManifestSizeRequest { app_id: request.app_id, files })
}

/// The reply, given each file's size (`None` when unknown), in the order asked.
pub fn manifest_size_body(files: &[SizeQuery], sizes: impl Fn(&SizeQuery) -> Option<u64>) -> Value {
    let (mut total, mut known) = (0u64, 0u64);
    let listed: Vec<Value> = files
        .iter()
        .map(|file| {
            let mut entry = Map::new();
            entry.insert("file_name".into(), file.file_name.clone().map_or(Value::Null, Value::String));
            entry.insert("file_hash".into(), Value::String(file.file_hash.clone()));
            entry.insert("download_url".into(), file.download_url.clone().map_or(Value::Null, Value::String));
            match sizes(file).filter(|size| *size > 0) {
                Some(size) => {
                    total += size;
                    known += 1;
                    entry.insert("size".into(), json!(size));
                }
                None => {
                    entry.insert("error".into(), Value::String(crate::error_codes::SIZE_UNKNOWN.into()));
                }
            }
            Value::Object(entry)
        })
        .collect();
    json!({
        "totalSize": total,
        "knownFiles": known,
        "unknownFiles": files.len() as u64 - known,
        "files": listed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#""platform":"android","device_id":"0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21",
        "app_id":"com.example.app","version_build":"1.0.0","version_name":"1.0.0","plugin_version":"8.51.14""#;

    #[test]
    fn reads_the_offered_manifest_without_repeats() {
        let body = format!(
            r#"{{{INFO},"version":"1.0.1","manifest":[
                {{"file_name":"index.html","file_hash":"aa","download_url":"https://x/aa"}},
                {{"file_name":"index.html","file_hash":"aa","download_url":"https://x/aa"}},
                {{"file_name":"no-hash.js","download_url":"https://x/none"}},
                {{"file_name":"app.js","file_hash":"bb"}}, 7]}}"#
        );
        let request = parse_manifest_size(body.as_bytes()).unwrap();
        assert_eq!(request.app_id.as_str(), "com.example.app");
        let hashes: Vec<&str> = request.files.iter().map(|f| f.file_hash.as_str()).collect();
        assert_eq!(hashes, ["aa", "bb"]);
        let reply = manifest_size_body(&request.files, |f| (f.file_hash == "aa").then_some(120));
        assert_eq!(
            reply,
            json!({"totalSize": 120, "knownFiles": 1, "unknownFiles": 1, "files": [
                {"file_name": "index.html", "file_hash": "aa", "download_url": "https://x/aa", "size": 120},
                {"file_name": "app.js", "file_hash": "bb", "download_url": null, "error": "size_unknown"},
            ]})
        );
    }

    #[test]
    fn an_empty_manifest_and_a_bad_info_object() {
        let request = parse_manifest_size(format!("{{{INFO}}}").as_bytes()).unwrap();
        assert_eq!(
            manifest_size_body(&request.files, |_| Some(1)),
            json!({"totalSize": 0, "knownFiles": 0, "unknownFiles": 0, "files": []})
        );
        assert!(matches!(parse_manifest_size(b"[]"), Err(RequestProblem::BadRequest { .. })));
        assert!(matches!(
            parse_manifest_size(br#"{"app_id":"com.example.app"}"#),
            Err(RequestProblem::BadRequest { code: "missing_device_id", .. })
        ));
    }
}
