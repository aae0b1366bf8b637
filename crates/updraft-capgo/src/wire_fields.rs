//! Reading typed fields out of a JSON object with errors that name the field, shared by every Capgo body parser.
//! Devices and older plugins are inconsistent about types (a bool may arrive as `"true"` from a query string, a
//! version code as a number), so readers accept those spellings and refuse everything else.

use serde_json::{Map, Value};

/// A field that is present but unusable: `(field, expected)`.
pub(crate) type FieldError = (&'static str, &'static str);

/// A string field; `""` and `null` count as absent. Numbers are accepted and turned into their decimal text.
pub(crate) fn string(body: &Map<String, Value>, field: &'static str) -> Result<Option<String>, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err((field, "a string")),
    }
}

/// A boolean field; `"true"`/`"false"` strings are accepted (query strings carry bools that way).
pub(crate) fn boolean(body: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) if text == "true" => Ok(Some(true)),
        Some(Value::String(text)) if text == "false" => Ok(Some(false)),
        Some(_) => Err((field, "a boolean (true or false)")),
    }
}

/// A JSON object body, or why it is not one.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object"),
        Err(_) => Err("the body is not valid JSON"),
    }
}
