//! `POST /updates`: parsing the plugin's info object into an [`UpdateCheck`], and the reply shapes.
//!
//! Parsing follows Capgo's normalisation: `device_id` is lowercased, `""` counts as absent, `version_build` is
//! coerced to semver (`1` → `1.0.0`). Body problems are HTTP 400 with Capgo's codes; missing device facts are the
//! 200 refusal `missing_info`, as in Capgo.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use updraft_core::{
    AppId, Bundle, DeviceId, DeviceReportRef, ManifestEntry, PackedReport, Platform, PluginVersion, Refusal,
    UpdateCheck, coerce_version_build,
};
use updraft_core::{DeltaBrotli, DeltaFileForm, delta_brotli, delta_file_forms};

use crate::encryption::ChecksumForm;
use crate::error_codes;
use crate::wire_fields::{FieldError, KnownFields};

/// A parsed update check, with the device report to write behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    /// The app asked about.
    pub app_id: AppId,
    /// What the selection rules need.
    pub check: UpdateCheck,
    /// What the device said about itself, packed for the write-behind queue.
    pub report: PackedReport,
}

/// Why a body is not an update check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestProblem {
    /// HTTP 400 with this code and message.
    BadRequest {
        /// Wire code.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// HTTP 200 refusal (Capgo answers these device facts with a 200).
    Refusal(Refusal),
}

fn bad(code: &'static str, message: impl Into<String>) -> RequestProblem {
    RequestProblem::BadRequest { code, message: message.into() }
}

fn wrong_type((field, expected): FieldError) -> RequestProblem {
    bad(error_codes::INVALID_JSON_BODY, format!("field `{field}` must be {expected}"))
}

/// Parses the info object a device POSTs to `updateUrl` (and, with `channel`, to `channelUrl`).
///
/// # Errors
/// [`RequestProblem`] as described in the module documentation.
pub fn parse_update_request(body: &[u8], now: DateTime<Utc>) -> Result<UpdateRequest, RequestProblem> {
    // Every device sends this on every launch: its fields are read straight from the body, without a JSON map.
    let fields = KnownFields::from_json(body, &INFO_FIELDS)
        .map_err(|message| bad(error_codes::INVALID_JSON_PARSE_BODY, message))?;
    parse_fields(&fields, now)
}

/// Parses an info object already read as a JSON map (a body, or a query string turned into a map).
///
/// # Errors
/// [`RequestProblem`] as described in the module documentation.
pub fn parse_info_object(map: &Map<String, Value>, now: DateTime<Utc>) -> Result<UpdateRequest, RequestProblem> {
    parse_fields(&KnownFields::from_map(map, &INFO_FIELDS), now)
}

/// The fields of the info object that an update check reads, in the order of an 8.51 Android body (the body
/// reader looks for the name after the last one it found first, so a body in this order is read without searching).
const INFO_FIELDS: [&str; 14] = [
    "platform",
    "device_id",
    "app_id",
    "custom_id",
    "version_build",
    "version_code",
    "version_os",
    "version_name",
    "plugin_version",
    "is_emulator",
    "is_prod",
    "install_source",
    "defaultChannel",
    "key_id",
];

fn parse_fields(fields: &KnownFields<'_, 14>, now: DateTime<Utc>) -> Result<UpdateRequest, RequestProblem> {
    let text = |field| fields.string(field).map_err(wrong_type);
    let flag = |field| fields.boolean(field).map_err(wrong_type);

    let device_id = text("device_id")?
        .ok_or_else(|| bad(error_codes::MISSING_DEVICE_ID, "field `device_id` is required (the device's UUID)"))?;
    let device_id = DeviceId::parse(device_id).map_err(|e| bad(error_codes::INVALID_JSON_BODY, e.to_string()))?;
    let app_id = text("app_id")?
        .ok_or_else(|| bad(error_codes::MISSING_APP_ID, "field `app_id` is required (such as com.example.app)"))?;
    let app_id = AppId::parse(app_id).map_err(|e| bad(error_codes::INVALID_APP_ID, e.to_string()))?;
    let plugin_version_raw = text("plugin_version")?.ok_or_else(|| {
        bad(error_codes::INVALID_JSON_BODY, "field `plugin_version` is required (the @capgo/capacitor-updater version)")
    })?;
    let plugin_version = PluginVersion::parse(plugin_version_raw).ok_or_else(|| {
        bad(
            error_codes::INVALID_JSON_BODY,
            format!("field `plugin_version` must be a version such as 8.51.14, got {plugin_version_raw:?}"),
        )
    })?;
    let platform = match text("platform")? {
        None => return Err(RequestProblem::Refusal(Refusal::MissingInfo("platform"))),
        Some(raw) => Platform::parse(raw).map_err(|e| bad(error_codes::INVALID_JSON_BODY, e.to_string()))?,
    };
    let version_build_raw =
        text("version_build")?.ok_or(RequestProblem::Refusal(Refusal::MissingInfo("version_build")))?;
    if version_build_raw == "unknown" {
        return Err(RequestProblem::Refusal(Refusal::UnknownVersionBuild));
    }
    let version_build = coerce_version_build(version_build_raw).ok_or_else(|| {
        bad(
            error_codes::SEMVER_ERROR,
            format!("field `version_build` must be a version such as 1.4.0 (1 and 1.4 are accepted), got {version_build_raw:?}"),
        )
    })?;
    let version_name = text("version_name")?.ok_or(RequestProblem::Refusal(Refusal::MissingInfo("version_name")))?;
    let is_emulator = flag("is_emulator")?.unwrap_or(false);
    let is_prod = flag("is_prod")?.unwrap_or(true);
    let default_channel = text("defaultChannel")?;
    let key_id = text("key_id")?;
    let report = PackedReport::new(&DeviceReportRef {
        app_id: &app_id,
        device_id: &device_id,
        platform,
        // Stored fields are cut to what a real device sends (docs/api.md, "Limits"), so an unauthenticated caller
        // cannot store a field of any size.
        version_name: char_prefix(version_name, REPORT_VERSION_CHARS),
        version_build: char_prefix(version_build_raw, REPORT_VERSION_CHARS),
        version_code: char_prefix(text("version_code")?.unwrap_or_default(), REPORT_FIELD_CHARS),
        version_os: char_prefix(text("version_os")?.unwrap_or_default(), REPORT_FIELD_CHARS),
        plugin_version: char_prefix(plugin_version_raw, REPORT_FIELD_CHARS),
        custom_id: char_prefix(text("custom_id")?.unwrap_or_default(), 36),
        is_prod,
        is_emulator,
        install_source: &lowercase_prefix(text("install_source")?.unwrap_or_default(), 64),
        default_channel: char_prefix(default_channel.unwrap_or_default(), REPORT_VERSION_CHARS),
        key_id: char_prefix(key_id.unwrap_or_default(), REPORT_FIELD_CHARS),
        seen_at: now,
    });
    let check = UpdateCheck {
        device_id,
        platform,
        version_build,
        version_build_raw: version_build_raw.to_owned(),
        version_name: version_name.to_owned(),
        plugin_version,
        is_emulator,
        is_prod,
        default_channel: default_channel.map(str::to_owned),
        key_id: key_id.map(str::to_owned),
    };
    Ok(UpdateRequest { app_id, check, report })
}

/// The most characters of a version or channel name kept in a stored device report (as for stats events).
pub const REPORT_VERSION_CHARS: usize = 128;
/// The most characters of the other stored device report fields (`version_code`, `version_os`, `plugin_version`,
/// `key_id`); `custom_id` keeps 36 and `install_source` 64, as Capgo does.
pub const REPORT_FIELD_CHARS: usize = 64;

/// The first `n` characters of `text`.
fn char_prefix(text: &str, n: usize) -> &str {
    // No more bytes than `n` is no more characters than `n` (what devices send), without walking the characters.
    if text.len() <= n {
        return text;
    }
    text.char_indices().nth(n).map_or(text, |(end, _)| &text[..end])
}

/// The first `n` characters of `text` lowercased, copied only when lowercasing changes something.
fn lowercase_prefix(text: &str, n: usize) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(char_prefix(text, n));
    }
    Cow::Owned(text.to_lowercase().chars().take(n).collect())
}

/// The checksum a device of this plugin version compares: SHA-256 hex for current plugins and CRC32 for plugins
/// older than 5.10.0 / 6.25.0 / 7.0.30; for encrypted bundles the stored encrypted checksum, when it is in the form
/// (V3 hex or V2 base64) the plugin reads. `None` when an encrypted bundle has no checksum in that form.
pub fn checksum_for(bundle: &Bundle, check: &UpdateCheck) -> Option<String> {
    if bundle.encryption.is_some() {
        let wanted =
            if check.plugin_version.uses_v3_encrypted_checksum() { ChecksumForm::V3 } else { ChecksumForm::V2 };
        return (ChecksumForm::of(&bundle.checksum) == wanted).then(|| bundle.checksum.clone());
    }
    if check.plugin_version.uses_sha256_checksum() {
        return Some(bundle.checksum.clone());
    }
    Some(bundle.crc32.clone().unwrap_or_else(|| bundle.checksum.clone()))
}

/// The reply offering `bundle`: exactly `version`, `url`, `checksum`, `session_key` (`""` when plain), for
/// plugins that understand it and bundles uploaded for delta updates the complete `manifest`, and for plugins from
/// 5.35.0 / 6.35.0 / 7.35.0 / 8.35.0 the bundle's `link` and `comment` when it has them (Capgo's `resToVersion`;
/// Capgo also wants the app's `expose_metadata`, here setting them at upload is the opt-in). Never `error`, `kind`
/// or `message`, which the plugin would read as a refusal. `file_url` gives a manifest file's download URL, of the
/// stored file or of its brotli copy.
///
/// Manifest files go brotli-encoded where the plugin decodes them (`updraft_core::delta_file_forms`): plugins
/// from 5.50.1 / 6.14.28 / 7.0.38 and 8.x get a file's brotli copy as `<file_name>.br` when it saves bytes (they
/// decode it and check `file_hash`, the SHA-256 of the original, on the decoded bytes); 7.0.35–7.0.37 decode every
/// file, so they get every file's brotli copy under its own name, or no manifest (the zip) when a file has none.
pub fn update_body(
    bundle: &Bundle,
    check: &UpdateCheck,
    url: &str,
    file_url: impl Fn(&ManifestEntry, DeltaFileForm) -> String,
) -> Value {
    let Some(checksum) = checksum_for(bundle, check) else {
        return json!({
            "error": "checksum_form_unavailable",
            "message": format!(
                "bundle {} was encrypted with a checksum form this plugin version cannot read; re-encrypt it with `npx @capgo/cli bundle encrypt` for this plugin version",
                bundle.version
            ),
            "kind": "failed",
        });
    };
    let mut body = json!({
        "version": bundle.version.as_str(),
        "url": url,
        "checksum": checksum,
        "session_key": bundle.encryption.as_ref().map_or("", |e| e.session_key.as_str()),
    });
    let send_manifest =
        check.plugin_version.understands_manifest() && bundle.encryption.is_none() && !bundle.manifest.is_empty();
    let reader = delta_brotli(&check.plugin_version);
    let forms = send_manifest.then(|| delta_file_forms(reader, &bundle.manifest)).flatten();
    if let Some(forms) = forms
        && let Value::Object(map) = &mut body
    {
        let entries = bundle
            .manifest
            .iter()
            .zip(forms)
            .map(|(entry, form)| {
                let suffixed = form == DeltaFileForm::Brotli && reader == DeltaBrotli::SuffixedFiles;
                let file_name = if suffixed { format!("{}.br", entry.file_name) } else { entry.file_name.clone() };
                json!({ "file_name": file_name, "file_hash": entry.file_hash, "download_url": file_url(entry, form) })
            })
            .collect();
        map.insert("manifest".into(), Value::Array(entries));
    }
    if check.plugin_version.receives_bundle_metadata()
        && let Value::Object(map) = &mut body
    {
        let metadata = &bundle.metadata;
        for (key, value) in [("link", &metadata.link), ("comment", &metadata.comment)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                map.insert(key.into(), Value::String(value.to_owned()));
            }
        }
    }
    body
}

/// What, besides the bundle, an update reply depends on: the checksum form, whether a manifest is sent and whether
/// `link`/`comment` are. Two checks with the same bundle and variant get byte-identical replies, so servers may
/// cache them by this key.
pub fn answer_variant(bundle: &Bundle, check: &UpdateCheck) -> u8 {
    let plugin = &check.plugin_version;
    let checksum_form =
        match (bundle.encryption.is_some(), plugin.uses_v3_encrypted_checksum(), plugin.uses_sha256_checksum()) {
            (true, true, _) => 0,
            (true, false, _) => 1,
            (false, _, true) => 2,
            (false, _, false) => 3,
        };
    let every_file_brotli = delta_brotli(plugin) == DeltaBrotli::EveryFile;
    checksum_form
        | (u8::from(plugin.understands_manifest()) << 2)
        | (u8::from(plugin.receives_bundle_metadata()) << 3)
        | (u8::from(every_file_brotli) << 4)
}

/// The success reply that sends the device back to its embedded bundle (plugins 6.2.0 and later).
pub fn revert_to_builtin_body() -> Value {
    json!({ "version": "builtin" })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANDROID_8_51: &str = r#"{"platform":"android","device_id":"0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21",
        "app_id":"com.example.app","custom_id":"","version_build":"1.4","version_code":"140","version_os":"14",
        "version_name":"1.4.0","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,
        "install_source":"Google_Play","defaultChannel":"","key_id":"MIIBCgKCAQEAx8Q3rT2b"}"#;

    fn parse(body: &str) -> Result<UpdateRequest, RequestProblem> {
        parse_update_request(body.as_bytes(), Utc::now())
    }

    fn code_of(result: Result<UpdateRequest, RequestProblem>) -> String {
        match result {
            Err(RequestProblem::BadRequest { code, .. }) => code.to_owned(),
            Err(RequestProblem::Refusal(refusal)) => {
                crate::refusal_body(&refusal)["error"].as_str().unwrap().to_owned()
            }
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn parses_a_real_android_body_with_capgo_normalisation() {
        let request = parse(ANDROID_8_51).unwrap();
        assert_eq!(request.check.device_id.as_str(), "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21");
        assert_eq!(request.check.version_build, semver::Version::new(1, 4, 0));
        assert_eq!(request.check.default_channel, None);
        assert_eq!(request.check.key_id.as_deref(), Some("MIIBCgKCAQEAx8Q3rT2b"));
        let report = request.report.unpack();
        assert_eq!(report.install_source, "google_play");
        assert_eq!(report.version_code, "140");
    }

    #[test]
    fn minimal_old_plugin_body_gets_defaults() {
        let body = r#"{"platform":"ios","device_id":"d1","app_id":"com.example.app","version_build":"1",
            "version_name":"builtin","plugin_version":"5.0.0"}"#;
        let request = parse(body).unwrap();
        assert!(request.check.is_prod && !request.check.is_emulator);
        assert!(request.check.is_on_builtin());
        assert_eq!(request.check.current_version(), "1");
    }

    #[test]
    fn body_problems_have_capgo_codes() {
        assert_eq!(code_of(parse("not json")), "invalid_json_parse_body");
        assert_eq!(code_of(parse("[1,2]")), "invalid_json_parse_body");
        assert_eq!(code_of(parse(r#"{"app_id":"com.example.app"}"#)), "missing_device_id");
        assert_eq!(code_of(parse(r#"{"device_id":"d"}"#)), "missing_app_id");
        assert_eq!(code_of(parse(r#"{"device_id":"d","app_id":"nope"}"#)), "invalid_app_id");
        let base =
            |extra: &str| format!(r#"{{"device_id":"d","app_id":"com.example.app","plugin_version":"8.0.0",{extra}}}"#);
        assert_eq!(
            code_of(parse(&base(r#""platform":"ios","version_build":"1.0.0","version_name":"1.0.0","is_prod":"yes""#))),
            "invalid_json_body"
        );
        assert_eq!(
            code_of(parse(&base(r#""platform":7,"version_build":"1.0.0","version_name":"1.0.0""#))),
            "invalid_json_body"
        );
        assert_eq!(
            code_of(parse(&base(r#""platform":"windows","version_build":"1.0.0","version_name":"1.0.0""#))),
            "invalid_json_body"
        );
        assert_eq!(
            code_of(parse(&base(r#""platform":"ios","version_build":"abc","version_name":"1.0.0""#))),
            "semver_error"
        );
        assert_eq!(
            code_of(parse(&base(r#""platform":"ios","version_build":"unknown","version_name":"1.0.0""#))),
            "unknown_version_build"
        );
        assert_eq!(code_of(parse(&base(r#""version_build":"1.0.0","version_name":"1.0.0""#))), "missing_info");
        assert_eq!(code_of(parse(&base(r#""platform":"ios","version_name":"1.0.0""#))), "missing_info");
        assert_eq!(
            code_of(parse(&base(r#""platform":"ios","version_build":"1.0.0","version_name":"""#))),
            "missing_info"
        );
        let no_plugin = r#"{"device_id":"d","app_id":"com.example.app","platform":"ios"}"#;
        assert_eq!(code_of(parse(no_plugin)), "invalid_json_body");
    }

    fn bundle_with_notes(link: Option<&str>, comment: Option<&str>) -> Bundle {
        Bundle {
            id: 1,
            app_id: AppId::parse("com.example.app").unwrap(),
            version: updraft_core::BundleVersion::parse("1.0.1").unwrap(),
            checksum: "ab".repeat(32),
            crc32: None,
            encryption: None,
            min_update_version: None,
            source: updraft_core::BundleSource::External { url: "https://cdn.example.com/b.zip".into() },
            manifest: vec![],
            metadata: updraft_core::BundleMetadata {
                link: link.map(str::to_owned),
                comment: comment.map(str::to_owned),
            },
            created_at: Utc::now(),
        }
    }

    #[test]
    fn link_and_comment_go_to_plugins_that_read_them() {
        let bundle = bundle_with_notes(Some("https://example.com/notes"), Some("Fixes login"));
        let reply = |plugin: &str| {
            let mut request = parse(ANDROID_8_51).unwrap();
            request.check.plugin_version = PluginVersion::parse(plugin).unwrap();
            request.check.key_id = None;
            update_body(&bundle, &request.check, "https://cdn.example.com/b.zip", |_, _| String::new())
        };
        let with_notes = reply("8.35.0");
        assert_eq!(
            (&with_notes["link"], &with_notes["comment"]),
            (&json!("https://example.com/notes"), &json!("Fixes login"))
        );
        assert_eq!(reply("7.35.0")["link"], "https://example.com/notes");
        for old in ["8.34.9", "7.34.0", "6.34.0", "5.34.0"] {
            let body = reply(old);
            assert!(body.get("link").is_none() && body.get("comment").is_none(), "{old}: {body}");
        }
        // Only what is set is sent.
        let only_comment = bundle_with_notes(None, Some("Fixes login"));
        let request = parse(ANDROID_8_51).unwrap();
        let body = update_body(&only_comment, &request.check, "https://x/b.zip", |_, _| String::new());
        assert!(body.get("link").is_none() && body["comment"] == "Fixes login", "{body}");
        // The cached reply is keyed by whether notes are sent.
        let mut old = request.check.clone();
        old.plugin_version = PluginVersion::parse("8.34.0").unwrap();
        assert_ne!(answer_variant(&bundle, &request.check), answer_variant(&bundle, &old));
    }

    #[test]
    fn string_bools_are_accepted() {
        let body = r#"{"platform":"ios","device_id":"d1","app_id":"com.example.app","version_build":"1.0.0",
            "version_name":"1.0.0","plugin_version":"8.0.0","is_prod":"false","is_emulator":"true"}"#;
        let request = parse(body).unwrap();
        assert!(!request.check.is_prod && request.check.is_emulator);
    }
}
