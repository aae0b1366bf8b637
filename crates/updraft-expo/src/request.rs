//! Reading an `expo-updates` manifest request from its headers, with errors that name the header.

use updraft_core::Platform;

use crate::structured_fields::{Item, parse_dictionary};

/// What kind of answer the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedForm {
    /// `multipart/mixed` (every current client, and the default when `accept` is absent or `*/*`).
    Multipart,
    /// Only `application/expo+json` or `application/json`: a bare manifest, no directives.
    JsonOnly,
}

/// A parsed manifest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRequest {
    /// `expo-protocol-version` (0 when absent).
    pub protocol: u8,
    /// `expo-platform`.
    pub platform: Platform,
    /// `expo-runtime-version`.
    pub runtime_version: String,
    /// `expo-channel-name`, when sent.
    pub channel: Option<String>,
    /// `expo-current-update-id`, lowercased.
    pub current_update_id: Option<String>,
    /// `expo-embedded-update-id`, lowercased.
    pub embedded_update_id: Option<String>,
    /// The `keyid` of `expo-expect-signature` (default `root`), when a signature is expected.
    pub expected_key_id: Option<String>,
    /// What the client accepts.
    pub accepted: AcceptedForm,
}

/// A request header problem: HTTP 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

/// Reads the request. `header(name)` gives every value of a header (names are given lowercase; compare them
/// case-insensitively). Values are borrowed: a manifest check copies only what the answer needs.
///
/// # Errors
/// [`HeaderError`] naming the header that is missing or invalid.
pub fn parse_manifest_request<'a, Values: Iterator<Item = &'a str>>(
    header: impl Fn(&'static str) -> Values,
) -> Result<ManifestRequest, HeaderError> {
    let single = |name: &'static str| -> Result<Option<&'a str>, HeaderError> {
        let mut values = header(name);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => Ok(Some(one.trim()).filter(|v| !v.is_empty())),
            (Some(_), Some(_)) => Err(HeaderError(format!("header {name} was sent more than once; send it once"))),
        }
    };
    let protocol = match single("expo-protocol-version")? {
        None => 0,
        Some("0") => 0,
        Some("1") => 1,
        Some(other) => {
            return Err(HeaderError(format!("header expo-protocol-version must be 0 or 1, got {other:?}")));
        }
    };
    let platform_raw = single("expo-platform")?
        .ok_or_else(|| HeaderError("header expo-platform is required (ios or android)".into()))?;
    let platform = match Platform::parse(platform_raw) {
        Ok(platform @ (Platform::Ios | Platform::Android)) => platform,
        _ => return Err(HeaderError(format!("header expo-platform must be ios or android, got {platform_raw:?}"))),
    };
    let runtime_version = single("expo-runtime-version")?
        .ok_or_else(|| HeaderError("header expo-runtime-version is required (the app's runtimeVersion)".into()))?
        .to_owned();
    let expected_key_id = match single("expo-expect-signature")? {
        None => None,
        Some(raw) => {
            let members = parse_dictionary(raw).ok_or_else(|| {
                HeaderError(format!(
                    "header expo-expect-signature is not a structured-field dictionary such as sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\"; got {raw:?}"
                ))
            })?;
            if let Some(Item::String(alg)) = members.get("alg")
                && alg != "rsa-v1_5-sha256"
            {
                return Err(HeaderError(format!(
                    "header expo-expect-signature asks for alg {alg:?}; only rsa-v1_5-sha256 is supported"
                )));
            }
            match members.get("keyid") {
                Some(Item::String(keyid)) => Some(keyid.to_string()),
                _ => Some("root".to_owned()),
            }
        }
    };
    let (mut any_accept, mut multipart, mut json) = (false, false, false);
    for value in header("accept") {
        any_accept |= !value.is_empty();
        multipart |= contains_ignoring_case(value, "multipart/") || contains_ignoring_case(value, "*/*");
        json |=
            contains_ignoring_case(value, "application/expo+json") || contains_ignoring_case(value, "application/json");
    }
    let accepted = if !any_accept || multipart || !json { AcceptedForm::Multipart } else { AcceptedForm::JsonOnly };
    Ok(ManifestRequest {
        protocol,
        platform,
        runtime_version,
        channel: single("expo-channel-name")?.map(str::to_owned),
        current_update_id: single("expo-current-update-id")?.map(str::to_ascii_lowercase),
        embedded_update_id: single("expo-embedded-update-id")?.map(str::to_ascii_lowercase),
        expected_key_id,
        accepted,
    })
}

/// Whether `haystack` contains `needle` (lowercase ASCII), ignoring ASCII case.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(headers: &[(&str, &str)]) -> Result<ManifestRequest, HeaderError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in headers {
            map.entry(k.to_ascii_lowercase()).or_default().push((*v).to_owned());
        }
        parse_manifest_request(|name| map.get(name).into_iter().flatten().map(String::as_str))
    }

    const BASE: [(&str, &str); 4] = [
        ("expo-protocol-version", "1"),
        ("expo-platform", "ios"),
        ("expo-runtime-version", "1.0.0"),
        ("accept", "multipart/mixed,application/expo+json,application/json"),
    ];

    #[test]
    fn reads_a_real_client_request() {
        let mut headers = BASE.to_vec();
        headers.extend([
            ("expo-channel-name", "production"),
            ("expo-current-update-id", "0B9D3B1E-6F1C-4F77-9A3C-1F2E3D4C5B6A"),
            ("expo-expect-signature", r#"sig, keyid="main", alg="rsa-v1_5-sha256""#),
        ]);
        let request = parse(&headers).unwrap();
        assert_eq!(request.protocol, 1);
        assert_eq!(request.channel.as_deref(), Some("production"));
        assert_eq!(request.current_update_id.as_deref(), Some("0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a"));
        assert_eq!(request.expected_key_id.as_deref(), Some("main"));
        assert_eq!(request.accepted, AcceptedForm::Multipart);
    }

    #[test]
    fn keyid_defaults_to_root_and_json_only_accept() {
        let mut headers = BASE.to_vec();
        headers[3] = ("accept", "application/expo+json");
        headers.push(("expo-expect-signature", "sig"));
        let request = parse(&headers).unwrap();
        assert_eq!(request.expected_key_id.as_deref(), Some("root"));
        assert_eq!(request.accepted, AcceptedForm::JsonOnly);
    }

    #[test]
    fn errors_name_the_header() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("expo-runtime-version", "1")], "expo-platform"),
            (vec![("expo-platform", "web"), ("expo-runtime-version", "1")], "expo-platform"),
            (vec![("expo-platform", "ios")], "expo-runtime-version"),
            (
                vec![("expo-platform", "ios"), ("expo-runtime-version", "1"), ("expo-protocol-version", "2")],
                "expo-protocol-version",
            ),
            (
                vec![
                    ("expo-platform", "ios"),
                    ("expo-runtime-version", "1"),
                    ("expo-protocol-version", "1"),
                    ("expo-protocol-version", "1"),
                ],
                "expo-protocol-version",
            ),
            (
                vec![("expo-platform", "ios"), ("expo-runtime-version", "1"), ("expo-expect-signature", "Sig")],
                "expo-expect-signature",
            ),
        ];
        for (headers, named) in cases {
            let error = parse(&headers).unwrap_err();
            assert!(error.0.contains(named), "{headers:?}: {error}");
        }
        assert_eq!(parse(&[("expo-platform", "android"), ("expo-runtime-version", "1")]).unwrap().protocol, 0);
    }
}
