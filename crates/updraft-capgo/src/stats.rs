//! `POST /stats`: one event object (older plugins, Android's download worker) or a JSON array batch (8.42+ and the
//! x.50.1 LTS lines) in the same route. Unknown actions are accepted: a 4xx makes the device drop the whole batch.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use updraft_core::{AppId, DeviceId, StatsEvent, bound_metadata, event_time, strip_file_suffix};

use crate::error_codes;
use crate::wire_fields;

/// A parsed stats request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRequest {
    /// The events that could be read.
    pub events: Vec<StatsEvent>,
    /// `None` for a single object; per-item outcome for a batch (`Err((code, message))` for unreadable items).
    pub batch: Option<Vec<Result<(), (&'static str, String)>>>,
}

/// Why a stats body cannot be read at all: `(code, message)`, answered with 400.
pub type StatsBodyError = (&'static str, String);

/// Parses a stats body.
///
/// # Errors
/// A body that is not JSON, or a single object missing what identifies it (the batch form reports bad items per
/// index instead, so one bad event never drops the others).
pub fn parse_stats(body: &[u8], now: DateTime<Utc>) -> Result<StatsRequest, StatsBodyError> {
    let not_json = || (error_codes::INVALID_JSON_PARSE_BODY, "the body is not valid JSON".to_owned());
    // A batch is counted while it is read, so a body of many tiny items is refused before it is held in memory
    // (and before an answer of one result per item is built).
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let items = match serde_json::from_slice::<BoundedBatch>(body) {
            Ok(BoundedBatch(items)) => items,
            Err(error) if error.to_string().starts_with(TOO_MANY_EVENTS) => {
                return Err((
                    error_codes::BODY_TOO_LARGE,
                    format!(
                        "a stats batch holds at most {MAX_BATCH_EVENTS} events (the plugin queues at most 200); send fewer events per request"
                    ),
                ));
            }
            Err(_) => return Err(not_json()),
        };
        let mut events = Vec::with_capacity(items.len());
        let outcomes = items
            .iter()
            .map(|item| match item {
                Value::Object(map) => parse_event(map, now).map(|event| events.push(event)),
                _ => Err((error_codes::INVALID_JSON_BODY, "each event must be a JSON object".to_owned())),
            })
            .collect();
        return Ok(StatsRequest { events, batch: Some(outcomes) });
    }
    match serde_json::from_slice::<Value>(body).map_err(|_| not_json())? {
        Value::Object(map) => Ok(StatsRequest { events: vec![parse_event(&map, now)?], batch: None }),
        _ => Err((error_codes::INVALID_JSON_PARSE_BODY, "the body must be an event object or an array of them".into())),
    }
}

/// The most events one stats batch may hold: the plugin keeps at most 200 queued, so five times that is never
/// reached by a device, and it bounds both the work and the size of the per-item answer.
pub const MAX_BATCH_EVENTS: usize = 1000;

const TOO_MANY_EVENTS: &str = "too many events";

/// A JSON array of at most [`MAX_BATCH_EVENTS`] items; reading stops at the first item past it.
struct BoundedBatch(Vec<Value>);

impl<'de> serde::Deserialize<'de> for BoundedBatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = BoundedBatch;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an array of events")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<BoundedBatch, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    if items.len() == MAX_BATCH_EVENTS {
                        return Err(serde::de::Error::custom(TOO_MANY_EVENTS));
                    }
                    items.push(item);
                }
                Ok(BoundedBatch(items))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

fn parse_event(map: &Map<String, Value>, now: DateTime<Utc>) -> Result<StatsEvent, StatsBodyError> {
    let text = |field: &'static str| {
        wire_fields::string(map, field).map_err(|(field, expected)| {
            (error_codes::INVALID_JSON_BODY, format!("field `{field}` must be {expected}"))
        })
    };
    let app_id = text("app_id")?.ok_or((error_codes::MISSING_APP_ID, "field `app_id` is required".to_owned()))?;
    let app_id = AppId::parse(&app_id).map_err(|e| (error_codes::INVALID_APP_ID, e.to_string()))?;
    let device_id =
        text("device_id")?.ok_or((error_codes::MISSING_DEVICE_ID, "field `device_id` is required".to_owned()))?;
    let device_id = DeviceId::parse(&device_id).map_err(|e| (error_codes::INVALID_JSON_BODY, e.to_string()))?;
    let action = text("action")?.ok_or((error_codes::INVALID_JSON_BODY, "field `action` is required".to_owned()))?;
    let version_name = text("version_name")?.unwrap_or_default();
    let old_version_name = text("old_version_name")?.unwrap_or_default();
    // Neither field may cost the event: a 4xx would make the device drop its whole batch.
    let device_millis = match map.get("timestamp") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        _ => None,
    };
    let metadata = match map.get("metadata") {
        Some(Value::Object(entries)) => bound_metadata(
            entries.iter().filter_map(|(key, value)| value.as_str().map(|value| (key.clone(), value.to_owned()))),
        ),
        _ => Vec::new(),
    };
    Ok(StatsEvent {
        app_id,
        device_id,
        action: action.chars().take(64).collect(),
        version_name: strip_file_suffix(&version_name).chars().take(128).collect(),
        old_version_name: strip_file_suffix(&old_version_name).chars().take(128).collect(),
        platform: text("platform")?.unwrap_or_default().chars().take(16).collect(),
        plugin_version: text("plugin_version")?.unwrap_or_default().chars().take(32).collect(),
        received_at: now,
        occurred_at: event_time(device_millis, now),
        metadata,
    })
}

/// The 429 body when the gateway cannot queue a batch: the plugin keeps the events and resends them after
/// `retry_after_seconds` (the code is not Capgo's `too_many_requests`, which would also make the device queue a
/// `rate_limit_reached` event).
pub fn queue_full_body(retry_after_seconds: u64) -> Value {
    serde_json::json!({
        "error": crate::error_codes::STATS_QUEUE_FULL,
        "message": "the stats queue is full (the database is slow or unavailable); send the events again later",
        "moreInfo": { "retryAfterSeconds": retry_after_seconds },
    })
}

/// The reply: `{"status":"ok"}` for one event, plus per-item `results` for a batch. Never empty (iOS re-sends a
/// batch answered with an empty 200).
pub fn stats_reply(request: &StatsRequest) -> Value {
    match &request.batch {
        None => json!({ "status": "ok" }),
        Some(outcomes) => {
            let results: Vec<Value> = outcomes
                .iter()
                .enumerate()
                .map(|(index, outcome)| match outcome {
                    Ok(()) => json!({ "status": "ok", "index": index }),
                    Err((code, message)) => {
                        json!({ "status": "error", "index": index, "error": code, "message": message })
                    }
                })
                .collect();
            json!({ "status": "ok", "results": results })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_batch_forms() {
        let single = br#"{"app_id":"com.example.app","device_id":"D","action":"set","version_name":"1.0.1"}"#;
        let parsed = parse_stats(single, Utc::now()).unwrap();
        assert_eq!(parsed.events[0].device_id.as_str(), "d");
        assert_eq!(stats_reply(&parsed), json!({"status":"ok"}));
        let batch = br#"[{"app_id":"com.example.app","device_id":"d","action":"download_manifest_file_fail",
            "version_name":"1.0.1:assets/a.js"},{"device_id":"d"},{"app_id":"com.example.app","device_id":"d",
            "action":"a_new_action"}]"#;
        let parsed = parse_stats(batch, Utc::now()).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].version_name, "1.0.1");
        let reply = stats_reply(&parsed);
        assert_eq!(reply["results"][0], json!({"status":"ok","index":0}));
        assert_eq!(reply["results"][1]["error"], "missing_app_id");
        assert_eq!(reply["results"][2]["status"], "ok");
    }

    #[test]
    fn timestamp_and_metadata_are_kept_within_bounds() {
        let now = DateTime::from_timestamp_millis(1_755_600_000_000).unwrap();
        let parse_one = |extra: &str| {
            let body = format!(r#"{{"app_id":"com.example.app","device_id":"d","action":"app_crash"{extra}}}"#);
            parse_stats(body.as_bytes(), now).unwrap().events.remove(0)
        };
        let event = parse_one(
            r#","timestamp":1755599000000,"metadata":{"exit_reason":"crash","pss_kb":"1024","bad":7,"nested":{}}"#,
        );
        assert_eq!(event.occurred_at.timestamp_millis(), 1_755_599_000_000);
        assert_eq!(event.received_at, now);
        assert_eq!(
            event.metadata,
            [("exit_reason".to_owned(), "crash".to_owned()), ("pss_kb".to_owned(), "1024".to_owned())]
        );
        // A clock years behind, a string timestamp, garbage: never refused, always bounded.
        assert_eq!(parse_one(r#","timestamp":0"#).occurred_at, now - updraft_core::EVENT_TIME_PAST);
        assert_eq!(parse_one(r#","timestamp":"1755599999000""#).occurred_at.timestamp_millis(), 1_755_599_999_000);
        assert_eq!(parse_one(r#","timestamp":"soon","metadata":"x""#).occurred_at, now);
        assert_eq!(parse_one(r#","timestamp":1.7556e12"#).occurred_at.timestamp_millis(), 1_755_600_000_000);
        assert!(parse_one(r#","metadata":["a"]"#).metadata.is_empty());
        let huge = format!(
            r#","metadata":{{"a":"{}","b":"{}","c":"{}"}}"#,
            "x".repeat(2000),
            "y".repeat(2000),
            "z".repeat(2000)
        );
        assert_eq!(parse_one(&huge).metadata.len(), 2);
    }

    #[test]
    fn batches_are_capped_while_read() {
        let item = r#"{"app_id":"com.example.app","device_id":"d","action":"set"}"#;
        let batch = |n: usize| format!("[{}]", vec![item; n].join(","));
        assert_eq!(parse_stats(batch(MAX_BATCH_EVENTS).as_bytes(), Utc::now()).unwrap().events.len(), MAX_BATCH_EVENTS);
        assert_eq!(parse_stats(batch(MAX_BATCH_EVENTS + 1).as_bytes(), Utc::now()).unwrap_err().0, "body_too_large");
        let tiny = format!("[{}]", vec!["0"; 524_000].join(","));
        assert_eq!(parse_stats(tiny.as_bytes(), Utc::now()).unwrap_err().0, "body_too_large");
        assert_eq!(parse_stats(b" [1,", Utc::now()).unwrap_err().0, "invalid_json_parse_body");
    }

    #[test]
    fn unreadable_bodies() {
        assert_eq!(parse_stats(b"nope", Utc::now()).unwrap_err().0, "invalid_json_parse_body");
        assert_eq!(parse_stats(b"7", Utc::now()).unwrap_err().0, "invalid_json_parse_body");
        assert_eq!(
            parse_stats(br#"{"app_id":"com.example.app","action":"set"}"#, Utc::now()).unwrap_err().0,
            "missing_device_id"
        );
    }
}
