//! How a neutral [`Failure`] looks on the Capgo-compatible API: 4xx `{"status":"KO","error":"<code>","message":
//! "<what to fix>"}` (the `status` key satisfies readers of Capgo's documentation, `error`/`message` readers of
//! Capgo's code), with Capgo's spelling of the codes its clients and scripts know (`invalid_apikey`,
//! `cannot_access_app`, `invalid_json_parse_body`, ...). Every other neutral code is answered as it is.

use serde_json::{Value, json};
use updraft_core::{Failure, FailureKind, codes};

use crate::error_codes;
use crate::management::error_body;

/// Capgo's rendering of a failure.
pub trait CapgoFailure {
    /// The wire code.
    fn capgo_code(&self) -> &'static str;
    /// The JSON body; `request_id` names the log line of a 500.
    fn capgo_body(&self, request_id: Option<&str>) -> Value;
}

impl CapgoFailure for Failure {
    fn capgo_code(&self) -> &'static str {
        capgo_code(self.code)
    }

    fn capgo_body(&self, request_id: Option<&str>) -> Value {
        match (self.kind, request_id) {
            (FailureKind::Internal, Some(request_id)) => json!({
                "status": "KO",
                "error": error_codes::INTERNAL,
                "message": self.message,
                "request_id": request_id,
            }),
            _ => error_body(self.capgo_code(), &self.message),
        }
    }
}

/// The body of a device endpoint's error (`/updates`, `/stats`, `/channel_self`): `{"error","message"}`, as the
/// plugin reads it (a 400, or a 200 refusal on `/channel_self`), without the management envelope's `status`.
pub fn device_error_body(code: &str, message: &str) -> Value {
    json!({ "error": code, "message": message })
}

/// Capgo's spelling of a neutral code.
pub fn capgo_code(code: &'static str) -> &'static str {
    match code {
        codes::MISSING_API_KEY => error_codes::NO_KEY_PROVIDED,
        codes::INVALID_API_KEY => error_codes::INVALID_APIKEY,
        codes::FORBIDDEN => error_codes::CANNOT_ACCESS_APP,
        codes::MALFORMED_JSON => error_codes::INVALID_JSON_PARSE_BODY,
        codes::INVALID_FIELD => error_codes::INVALID_JSON_BODY,
        codes::BUNDLE_VERSION_NOT_FOUND => error_codes::CANNOT_FIND_VERSION,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capgo_spells_the_codes_its_clients_know() {
        for (neutral, capgo) in [
            (codes::MISSING_API_KEY, "no_key_provided"),
            (codes::INVALID_API_KEY, "invalid_apikey"),
            (codes::FORBIDDEN, "cannot_access_app"),
            (codes::MALFORMED_JSON, "invalid_json_parse_body"),
            (codes::INVALID_FIELD, "invalid_json_body"),
            (codes::BUNDLE_VERSION_NOT_FOUND, "cannot_find_version"),
            (codes::APP_NOT_FOUND, "app_not_found"),
            (codes::MISSING_FIELD, "missing_field"),
        ] {
            assert_eq!(capgo_code(neutral), capgo, "{neutral}");
        }
    }

    #[test]
    fn bodies_carry_the_envelope() {
        let failure = Failure::new(FailureKind::Forbidden, codes::FORBIDDEN, "no");
        assert_eq!(failure.capgo_body(None), json!({"status": "KO", "error": "cannot_access_app", "message": "no"}));
        let internal = Failure::new(FailureKind::Internal, codes::INTERNAL, "internal error, see server log");
        assert_eq!(internal.capgo_body(Some("r1"))["request_id"], "r1");
    }
}
