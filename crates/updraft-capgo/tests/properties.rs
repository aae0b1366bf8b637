//! Property tests over every Capgo parser that takes outside input: `/updates` and `/updates/manifest_size` bodies,
//! stats bodies, channel_self info objects, management bodies, and zip inspection. None may panic on any input, and
//! what they promise (bounded stored fields, one result per batch item, no unsafe name accepted) holds.

use std::io::Cursor;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use updraft_capgo::bundle_zip::inspect_bundle_zip;
use updraft_capgo::updates::{REPORT_FIELD_CHARS, REPORT_VERSION_CHARS, parse_update_request};
use updraft_capgo::zip_entries::read_raw_entries;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_755_600_000, 0).unwrap()
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A device info object with each field present, absent, or replaced by any JSON value.
fn info_object() -> impl Strategy<Value = Map<String, Value>> {
    let fields = [
        ("platform", json!("android")),
        ("device_id", json!("0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21")),
        ("app_id", json!("com.example.app")),
        ("custom_id", json!("")),
        ("version_build", json!("1.0.0")),
        ("version_code", json!("100")),
        ("version_os", json!("14")),
        ("version_name", json!("1.0.0")),
        ("plugin_version", json!("8.51.14")),
        ("is_emulator", json!(false)),
        ("is_prod", json!(true)),
        ("defaultChannel", json!("")),
        ("channel", json!("beta")),
        ("key_id", json!("abc")),
        ("install_source", json!("google_play")),
    ];
    let choices: Vec<_> = fields
        .into_iter()
        .map(|(name, good)| {
            prop_oneof![3 => Just(Some(good)), 1 => Just(None), 2 => json_value().prop_map(Some), 1 => ".{0,300}".prop_map(|s| Some(Value::String(s)))]
                .prop_map(move |value| (name, value))
        })
        .collect();
    choices.prop_map(|pairs| {
        pairs.into_iter().filter_map(|(name, value)| value.map(|value| (name.to_owned(), value))).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn update_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_update_request(&bytes, now());
        let _ = updraft_capgo::manifest_size::parse_manifest_size(&bytes);
        let _ = updraft_capgo::stats::parse_stats(&bytes, now());
        let _ = updraft_capgo::management::object_body(&bytes);
    }

    #[test]
    fn update_requests_store_bounded_fields(info in info_object(), long in "[a-z0-9.]{0,5000}") {
        let mut info = info;
        for field in ["version_os", "version_code", "custom_id", "key_id"] {
            if info.contains_key(field) {
                info.insert(field.to_owned(), Value::String(long.clone()));
            }
        }
        let body = Value::Object(info).to_string();
        if let Ok(request) = parse_update_request(body.as_bytes(), now()) {
            let report = request.report.unpack();
            prop_assert!(report.version_os.chars().count() <= REPORT_FIELD_CHARS);
            prop_assert!(report.version_code.chars().count() <= REPORT_FIELD_CHARS);
            prop_assert!(report.custom_id.chars().count() <= 36);
            prop_assert!(report.version_name.chars().count() <= REPORT_VERSION_CHARS);
            prop_assert!(report.version_build.chars().count() <= REPORT_VERSION_CHARS);
            prop_assert!(report.key_id.chars().count() <= REPORT_FIELD_CHARS);
        }
    }

    #[test]
    fn stats_batches_answer_each_item(items in prop::collection::vec(prop_oneof![info_object().prop_map(Value::Object), json_value()], 0..40)) {
        let body = Value::Array(items.clone()).to_string();
        let parsed = updraft_capgo::stats::parse_stats(body.as_bytes(), now()).unwrap();
        let outcomes = parsed.batch.as_ref().unwrap();
        prop_assert_eq!(outcomes.len(), items.len());
        prop_assert_eq!(parsed.events.len(), outcomes.iter().filter(|o| o.is_ok()).count());
        let reply = updraft_capgo::stats::stats_reply(&parsed);
        prop_assert_eq!(reply["results"].as_array().unwrap().len(), items.len());
        for event in &parsed.events {
            prop_assert!(event.action.chars().count() <= 64);
            prop_assert!(event.version_name.chars().count() <= 128);
            prop_assert!(event.occurred_at <= now() + updraft_core::EVENT_TIME_FUTURE);
            prop_assert!(event.occurred_at >= now() - updraft_core::EVENT_TIME_PAST);
        }
    }

    #[test]
    fn channel_self_and_management_objects_never_panic(info in info_object()) {
        let _ = updraft_capgo::channel_self::parse_channel_self(&info);
        let _ = updraft_capgo::management::parse_channel_set(&info);
        let _ = updraft_capgo::management::parse_device_link(&info);
        let _ = updraft_capgo::management::parse_app_create(&info);
        let _ = updraft_capgo::management::page_field(&info);
    }

    #[test]
    fn zip_inspection_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = inspect_bundle_zip(Cursor::new(bytes.clone()), 1 << 20);
        let _ = read_raw_entries(Cursor::new(bytes), 1000);
    }

    #[test]
    fn zip_inspection_never_panics_on_a_damaged_zip(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = honest_zip(&["index.html", "assets/app.js"]);
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let _ = inspect_bundle_zip(Cursor::new(bytes.clone()), 1 << 20);
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = inspect_bundle_zip(Cursor::new(bytes), 1 << 20);
    }

    #[test]
    fn no_accepted_zip_holds_an_unsafe_name(segments in prop::collection::vec(prop_oneof!["[a-z]{1,6}", Just("..".to_owned()), Just(".".to_owned()), Just(String::new()), Just("\\\\".to_owned()), Just("C:".to_owned())], 1..5), absolute in any::<bool>()) {
        let mut name = segments.join("/");
        if absolute {
            name.insert(0, '/');
        }
        let bytes = honest_zip(&["index.html", &name]);
        if inspect_bundle_zip(Cursor::new(bytes), 1 << 20).is_ok() {
            // A colon is an ordinary character on the devices; only a leading drive prefix (`C:`) is absolute.
            prop_assert!(!name.starts_with('/') && !name.contains('\\') && name.as_bytes().get(1) != Some(&b':'), "{name:?}");
            let trimmed = name.strip_suffix('/').unwrap_or(&name);
            prop_assert!(trimmed.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{name:?}");
        }
    }
}

fn honest_zip(names: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut buffer = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    for name in names {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"<html>notifyAppReady</html>").unwrap();
    }
    zip.finish().unwrap();
    buffer.into_inner()
}
