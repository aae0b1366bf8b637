//! The error bodies of the Expo device endpoints, and how a neutral [`Failure`] looks on the gateway's Expo management API (`/expo/{app}/releases`, `/assets`):
//! `{"error":"<neutral code>","message":"<what to fix>"}`, plus `request_id` on a 500. Unlike the Capgo-compatible
//! API, there is no `status` key and no Capgo spelling: the codes are [`updraft_core::codes`] and the use cases'
//! own.

use serde_json::{Value, json};
use updraft_core::{Failure, FailureKind};

/// The body of an error of the device endpoints (manifest and asset requests): `{"error":"<what is wrong>"}`.
pub fn device_error_body(message: &str) -> Value {
    json!({ "error": message })
}

/// The JSON body of a failure; `request_id` names the log line of a 500.
pub fn failure_body(failure: &Failure, request_id: Option<&str>) -> Value {
    match (failure.kind, request_id) {
        (FailureKind::Internal, Some(request_id)) => {
            json!({ "error": failure.code, "message": failure.message, "request_id": request_id })
        }
        _ => json!({ "error": failure.code, "message": failure.message }),
    }
}

#[cfg(test)]
mod tests {
    use updraft_core::codes;

    use super::*;

    #[test]
    fn bodies_use_the_neutral_codes() {
        let forbidden = Failure::new(FailureKind::Forbidden, codes::FORBIDDEN, "use a key for this app");
        assert_eq!(failure_body(&forbidden, None), json!({"error": "forbidden", "message": "use a key for this app"}));
        let internal = Failure::new(FailureKind::Internal, codes::INTERNAL, "internal error, see server log");
        assert_eq!(failure_body(&internal, Some("r1"))["request_id"], "r1");
    }
}
