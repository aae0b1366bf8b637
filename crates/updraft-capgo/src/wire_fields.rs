//! Reading typed fields out of a JSON object with errors that name the field, shared by every Capgo body parser.
//! Devices and older plugins are inconsistent about types (a bool may arrive as `"true"` from a query string, a
//! version code as a number), so readers accept those spellings and refuse everything else.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// A field's value as the readers above see it, borrowed from the body when it has no escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Loose<'a> {
    /// `null`.
    Null,
    /// A string.
    Text(Cow<'a, str>),
    /// A number, as the decimal text [`string`] turns it into.
    Number(String),
    /// A boolean.
    Bool(bool),
    /// An array or object (refused by every reader).
    Other,
}

impl<'a> Loose<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::String(text) => Self::Text(Cow::Borrowed(text)),
            Value::Number(number) => Self::Number(number.to_string()),
            Value::Bool(flag) => Self::Bool(*flag),
            Value::Array(_) | Value::Object(_) => Self::Other,
        }
    }
}

/// The fields named in `names` of one JSON object, read straight from the body: no map is built and strings
/// without escapes are not copied (the update check's body is read this way on every check). Other fields are
/// skipped; a repeated field keeps its last value, as when the object is read into a map. The readers apply the
/// same rules as [`string`] and [`boolean`].
pub(crate) struct KnownFields<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<Loose<'a>>; N],
}

impl<'a, const N: usize> KnownFields<'a, N> {
    /// Reads a JSON object body; the errors are [`object`]'s.
    pub(crate) fn from_json(body: &'a [u8], names: &'static [&'static str; N]) -> Result<Self, &'static str> {
        // serde_json skips the strings of unread fields without checking them, so the body is checked here: a
        // map reader refuses a body with invalid UTF-8 anywhere.
        let text = std::str::from_utf8(body).map_err(|_| "the body is not valid JSON")?;
        if let Some(values) = scan_flat_object(text, names) {
            return Ok(Self { names, values });
        }
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let read = serde::Deserializer::deserialize_map(&mut deserializer, FieldsVisitor { names, body: PhantomData })
            .and_then(|values| deserializer.end().map(|()| values));
        match read {
            Ok(values) => Ok(Self { names, values }),
            // Rare: tell "not JSON" from "JSON, but not an object" as `object` does.
            Err(_) => Err(object(body).err().unwrap_or("the body is not valid JSON")),
        }
    }

    /// The same fields of an object already read into a map.
    pub(crate) fn from_map(map: &'a Map<String, Value>, names: &'static [&'static str; N]) -> Self {
        Self { names, values: names.map(|name| map.get(name).map(Loose::of)) }
    }

    fn get(&self, field: &'static str) -> Option<&Loose<'a>> {
        // The field is usually the very literal of `names` (identical literals share an address).
        let index = match self.names.iter().position(|name| std::ptr::eq(*name, field)) {
            Some(index) => index,
            None => position_by_text(self.names, field)?,
        };
        self.values[index].as_ref()
    }

    /// A string field, as [`string`] reads it, without copying.
    pub(crate) fn string(&self, field: &'static str) -> Result<Option<&str>, FieldError> {
        match self.get(field) {
            None | Some(Loose::Null) => Ok(None),
            Some(Loose::Text(text)) if text.is_empty() => Ok(None),
            Some(Loose::Text(text)) => Ok(Some(text)),
            Some(Loose::Number(number)) => Ok(Some(number)),
            Some(_) => Err((field, "a string")),
        }
    }

    /// A boolean field, as [`boolean`] reads it.
    pub(crate) fn boolean(&self, field: &'static str) -> Result<Option<bool>, FieldError> {
        match self.get(field) {
            None | Some(Loose::Null) => Ok(None),
            Some(Loose::Bool(flag)) => Ok(Some(*flag)),
            Some(Loose::Text(text)) if text == "true" => Ok(Some(true)),
            Some(Loose::Text(text)) if text == "false" => Ok(Some(false)),
            Some(_) => Err((field, "a boolean (true or false)")),
        }
    }
}

/// The fields of a body that is a flat object of strings, booleans and nulls without escapes (what the plugin
/// sends), in one pass over the bytes; `None` for anything else (numbers, escapes, nesting, invalid JSON), which
/// serde_json then reads. Only valid JSON is accepted, and values are exactly what serde_json would give.
fn scan_flat_object<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str; N],
) -> Option<[Option<Loose<'a>>; N]> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let skip_ws = |at: &mut usize| {
        while bytes.get(*at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            *at += 1;
        }
    };
    // A string without escapes or control characters; `at` is on its opening quote.
    let string = |at: &mut usize| -> Option<&'a str> {
        let start = *at + 1;
        let len = first_special(&bytes[start..])?;
        if bytes[start + len] != b'"' {
            return None;
        }
        *at = start + len + 1;
        // Quotes are ASCII, so both ends are character boundaries.
        Some(&text[start..start + len])
    };
    let mut values = std::array::from_fn(|_| None);
    let mut guess = 0;
    skip_ws(&mut at);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    skip_ws(&mut at);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if bytes.get(at) != Some(&b'"') {
                return None;
            }
            let key = string(&mut at)?;
            skip_ws(&mut at);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
            skip_ws(&mut at);
            let value = match bytes.get(at)? {
                b'"' => Loose::Text(Cow::Borrowed(string(&mut at)?)),
                b't' if bytes[at..].starts_with(b"true") => {
                    at += 4;
                    Loose::Bool(true)
                }
                b'f' if bytes[at..].starts_with(b"false") => {
                    at += 5;
                    Loose::Bool(false)
                }
                b'n' if bytes[at..].starts_with(b"null") => {
                    at += 4;
                    Loose::Null
                }
                _ => return None,
            };
            if let Some(index) = position_from(names, guess, key) {
                values[index] = Some(value);
                guess = index + 1;
            }
            skip_ws(&mut at);
            match bytes.get(at)? {
                b',' => {
                    at += 1;
                    skip_ws(&mut at);
                }
                b'}' => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    skip_ws(&mut at);
    (at == bytes.len()).then_some(values)
}

/// The index of the first `"`, `\\` or control character (below 0x20) in `bytes`, eight bytes at a time.
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero in `v` (and of some bytes above it, never below: the lowest hit is
    // exact, which is all that is used).
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| offset + i)
}

/// Where `key` is among `names` (compared by length and first byte before the bytes: this runs for every field of
/// every body).
fn position(names: &[&str], key: &str) -> Option<usize> {
    let (len, first) = (key.len(), key.as_bytes().first());
    names.iter().position(|name| name.len() == len && name.as_bytes().first() == first && *name == key)
}

/// Where `key` is among `names`, trying `names[guess]` first: a body whose fields come in the order of `names`
/// finds each one at the first try.
fn position_from(names: &[&str], guess: usize, key: &str) -> Option<usize> {
    match names.get(guess) {
        Some(name) if *name == key => Some(guess),
        _ => position(names, key),
    }
}

/// [`position`] for a field name that is not the literal of `names` (out of line: readers pass the literal).
#[cold]
#[inline(never)]
fn position_by_text(names: &[&str], field: &str) -> Option<usize> {
    let index = position(names, field);
    debug_assert!(index.is_some(), "field `{field}` is not among the names read");
    index
}

struct FieldsVisitor<'a, const N: usize> {
    names: &'static [&'static str; N],
    body: PhantomData<&'a [u8]>,
}

impl<'de, const N: usize> Visitor<'de> for FieldsVisitor<'de, N> {
    type Value = [Option<Loose<'de>>; N];

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = std::array::from_fn(|_| None);
        while let Some(Key(key)) = map.next_key()? {
            match position(self.names, &key) {
                Some(index) => values[index] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

/// An object key, borrowed when it has no escapes (serde's own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(flag))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
                Ok(Loose::Number(serde_json::Number::from(number).to_string()))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
                Ok(Loose::Number(serde_json::Number::from(number).to_string()))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
                Ok(serde_json::Number::from_f64(number).map_or(Loose::Other, |n| Loose::Number(n.to_string())))
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 4] = ["s", "n", "b", "x"];

    /// Whatever the body, the borrowed reader and the map reader agree (value or error, field by field).
    #[test]
    fn known_fields_read_like_a_map() {
        for body in [
            r#"{"s":"text","n":12,"b":true,"x":[1,{"a":2}]}"#,
            r#"{"s":"","n":-3.5,"b":"false","x":{"deep":[]},"other":"skipped"}"#,
            r#"{"s":"esc\"aped\u00e9","n":1.5e300,"b":null,"x":null}"#,
            r#"{"s":"first","s":"last","n":18446744073709551616,"b":"yes","x":"1"}"#,
            r#"{"s\u0073":"escaped key","n":"7","b":1}"#,
            // Flat (read in one pass), out of the order of the names, a field repeated.
            r#"{"b":true,"x":"1","s":"one","n":"2","s":"two","b":false}"#,
            r#"{}"#,
        ] {
            let map = object(body.as_bytes()).unwrap();
            let by_map = KnownFields::from_map(&map, &NAMES);
            let borrowed = KnownFields::from_json(body.as_bytes(), &NAMES).unwrap();
            for field in NAMES {
                assert_eq!(borrowed.string(field), by_map.string(field), "{body} {field}");
                assert_eq!(borrowed.boolean(field), by_map.boolean(field), "{body} {field}");
                assert_eq!(by_map.string(field), string(&map, field).as_ref().map(|s| s.as_deref()).map_err(|e| *e));
                assert_eq!(by_map.boolean(field), boolean(&map, field));
            }
        }
    }

    /// The one-pass reader of flat bodies and serde_json agree on every body, including mangled ones: same fields,
    /// same errors. Bodies are real plugin bodies with random bytes replaced, inserted or removed.
    #[test]
    fn the_flat_body_scanner_agrees_with_serde_json() {
        const BODIES: [&str; 4] = [
            r#"{"platform":"android","device_id":"0F6B3E1C","app_id":"com.example.app","custom_id":"","version_build":"1.4","is_emulator":false,"is_prod":true,"defaultChannel":null}"#,
            "{ \"s\" : \"a b\" ,\n\t\"b\":true\r}  ",
            r#"{"s":"été","n":12,"x":[1,{"a":"b"}],"b":null}"#,
            r#"{"x":"1","n":"2","s":"\u00e9t\u00e9 \"q\" ü","b":"false"}"#,
        ];
        let alphabet = b"{}[]:,\"\\ \t\n0123456789.-+eEtrufalsn\x01\xc3\xa9x";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        type Read = Result<Vec<(Result<Option<String>, FieldError>, Result<Option<bool>, FieldError>)>, &'static str>;
        let values = |fields: &KnownFields<'_, 4>| {
            NAMES.iter().map(|f| (fields.string(f).map(|v| v.map(str::to_owned)), fields.boolean(f))).collect()
        };
        let read = |body: &[u8]| -> Read { Ok(values(&KnownFields::from_json(body, &NAMES)?)) };
        let by_serde = |body: &[u8]| -> Read { Ok(values(&KnownFields::from_map(&object(body)?, &NAMES))) };
        let mut scanned = 0;
        for round in 0..20_000 {
            let mut body = BODIES[round % BODIES.len()].as_bytes().to_vec();
            for _ in 0..=next(3) {
                let at = next(body.len() + 1);
                match next(3) {
                    0 if at < body.len() => body[at] = alphabet[next(alphabet.len())],
                    1 => body.insert(at, alphabet[next(alphabet.len())]),
                    _ if at < body.len() => {
                        body.remove(at);
                    }
                    _ => {}
                }
            }
            if std::str::from_utf8(&body).is_ok_and(|text| scan_flat_object(text, &NAMES).is_some()) {
                scanned += 1;
            }
            assert_eq!(read(&body), by_serde(&body), "{}", String::from_utf8_lossy(&body));
        }
        assert!(scanned > 1000, "the fast path was taken for {scanned} bodies only");
    }

    #[test]
    fn first_special_finds_the_first_quote_backslash_or_control_character() {
        let slow = |bytes: &[u8]| bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..40 {
            for _ in 0..500 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly ordinary text, with every special and high byte likely somewhere.
                        [b'a', b'Z', b'0', b' ', b'"', b'\\', 0x01, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xc3, 0xff]
                            [(seed % 14) as usize]
                    })
                    .collect();
                assert_eq!(first_special(&bytes), slow(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn known_fields_refuse_what_object_refuses() {
        for body in ["not json", "[1,2]", "\"text\"", "{\"a\":1} trailing", "{\"a\":", ""] {
            let refused = KnownFields::from_json(body.as_bytes(), &NAMES).err();
            assert_eq!(refused, object(body.as_bytes()).err(), "{body}");
            assert!(refused.is_some(), "{body}");
        }
    }
}
