//! Property tests over the Expo parsers that take outside input: manifest request headers, RFC 8941 dictionaries
//! (`expo-extra-params`, `expo-expect-signature`), export `metadata.json`; and the multipart writer, whose output an
//! independent splitter must read back.

use proptest::prelude::*;
use updraft_expo::multipart::{BOUNDARY, Part, write};
use updraft_expo::structured_fields::{Item, parse_dictionary, serialize_string_dictionary};

const HEADERS: [&str; 9] = [
    "expo-protocol-version",
    "expo-platform",
    "expo-runtime-version",
    "expo-channel-name",
    "expo-current-update-id",
    "expo-embedded-update-id",
    "expo-expect-signature",
    "expo-extra-params",
    "accept",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn manifest_headers_never_panic(values in prop::collection::vec(prop::collection::vec(".{0,80}", 0..3), HEADERS.len())) {
        let _ = updraft_expo::request::parse_manifest_request(|name: &'static str| {
            let index = HEADERS.iter().position(|h| *h == name);
            index.map(|i| values[i].iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default().into_iter()
        });
    }

    #[test]
    fn manifest_headers_with_plausible_values_never_panic(
        platform in prop_oneof![Just("ios"), Just("android"), Just("web"), Just("")],
        protocol in prop_oneof![Just("0"), Just("1"), Just("2"), Just("-1"), Just("99999999999999999999")],
        runtime in "[ -~]{0,300}",
        extra in "[ -~]{0,200}",
    ) {
        let headers = [protocol, platform, runtime.as_str(), "production", "", "", "sig, keyid=\"main\"", extra.as_str(), "multipart/mixed"];
        let _ = updraft_expo::request::parse_manifest_request(|name: &'static str| {
            let index = HEADERS.iter().position(|h| *h == name);
            index.map(|i| headers[i]).into_iter().collect::<Vec<_>>().into_iter()
        });
    }

    #[test]
    fn dictionaries_never_panic(text in ".{0,200}") {
        let _ = parse_dictionary(&text);
    }

    #[test]
    fn string_dictionaries_survive_serialize_then_parse(
        members in prop::collection::btree_map("[a-z*][a-z0-9_.*-]{0,10}", "[ -~]{0,40}", 0..6),
    ) {
        let pairs: Vec<(&str, &str)> = members.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let text = serialize_string_dictionary(&pairs);
        let parsed = parse_dictionary(&text).expect("a serialized dictionary parses");
        prop_assert_eq!(parsed.len(), members.len());
        for (key, value) in &members {
            prop_assert_eq!(parsed.get(key), Some(&Item::String(value.as_str().into())), "{}", text);
        }
    }

    #[test]
    fn export_metadata_never_panics(text in ".{0,400}", json in prop_oneof![
        Just(r#"{"version":0,"bundler":"metro","fileMetadata":{"ios":{"bundle":"_expo/static/js/ios/a.hbc","assets":[{"path":"assets/x","ext":"png"}]}}}"#.to_owned()),
        "[ -~]{0,200}".prop_map(|s| format!(r#"{{"version":0,"fileMetadata":{{"ios":{{"bundle":"{s}","assets":[{{"path":"{s}","ext":"{s}"}}]}}}}}}"#)),
    ]) {
        let all = [updraft_core::Platform::Ios, updraft_core::Platform::Android];
        let _ = updraft_expo::export_ingest::parse_metadata(&text, &all);
        if let Ok(exports) = updraft_expo::export_ingest::parse_metadata(&json, &all) {
            // Whatever is accepted has safe extensions.
            for export in exports {
                for (_, ext) in export.assets {
                    prop_assert!(updraft_core::check_asset_extension(&ext).is_ok(), "{:?}", ext);
                }
            }
        }
    }

    #[test]
    fn multipart_output_splits_back_into_its_parts(
        parts in prop::collection::vec(("[a-z]{1,12}", "[ -~]{0,200}", prop::option::of("[A-Za-z0-9+/=]{0,40}")), 1..4),
    ) {
        let owned: Vec<Part<'_>> = parts
            .iter()
            .map(|(name, body, signature)| Part { name, body: body.as_bytes(), signature: signature.as_deref() })
            .collect();
        let bytes = String::from_utf8(write(&owned)).unwrap();
        let closing = format!("--{BOUNDARY}--\r\n");
        prop_assert!(bytes.ends_with(&closing));
        let inner = bytes.strip_suffix(&closing).unwrap();
        let chunks: Vec<&str> = inner.split(&format!("--{BOUNDARY}\r\n")).skip(1).collect();
        prop_assert_eq!(chunks.len(), parts.len());
        for (chunk, (name, body, signature)) in chunks.iter().zip(&parts) {
            let (head, rest) = chunk.split_once("\r\n\r\n").unwrap();
            prop_assert_eq!(rest.strip_suffix("\r\n"), Some(body.as_str()));
            let disposition = format!("content-disposition: inline; name=\"{name}\"");
            prop_assert!(head.lines().any(|l| l == disposition));
            let signed = head.lines().find_map(|l| l.strip_prefix("expo-signature: "));
            prop_assert_eq!(signed, signature.as_deref());
            prop_assert!(head.lines().all(|l| l == l.to_ascii_lowercase() || l.starts_with("expo-signature: ")));
        }
    }
}
