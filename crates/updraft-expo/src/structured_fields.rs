//! The small part of RFC 8941 structured fields the protocol needs: parsing a dictionary (`expo-expect-signature`,
//! `expo-extra-params`) and serializing a dictionary of strings (`expo-signature`).

use std::collections::BTreeMap;

/// A member value of a parsed dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `key` alone, or `key=?1`.
    True,
    /// `key=?0`.
    False,
    /// `key="…"`.
    String(String),
    /// `key=token`.
    Token(String),
    /// `key=123`.
    Integer(i64),
}

/// Parses a dictionary, ignoring member parameters. Returns `None` when the text is not a valid dictionary.
pub fn parse_dictionary(text: &str) -> Option<BTreeMap<String, Item>> {
    let mut members = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c)))
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_lowercase() || c == '*') {
            return None;
        }
        rest = &rest[key_end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            let (value, remaining) = parse_bare_item(after)?;
            rest = remaining;
            value
        } else {
            Item::True
        };
        // Skip parameters (`;a=b`).
        while let Some(after) = rest.strip_prefix(';') {
            let end = after.find([',', ';']).unwrap_or(after.len());
            rest = &after[end..];
        }
        members.insert(key.to_owned(), value);
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => {
                rest = after.trim_start();
                if rest.is_empty() {
                    return None;
                }
            }
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(members)
}

fn parse_bare_item(text: &str) -> Option<(Item, &str)> {
    if let Some(after) = text.strip_prefix('"') {
        // Most strings have no escape: one copy of the slice.
        if let Some(end) = after.bytes().position(|b| b == b'"' || b == b'\\' || !(b' '..=b'~').contains(&b))
            && after.as_bytes()[end] == b'"'
        {
            return Some((Item::String(after[..end].to_owned()), &after[end + 1..]));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '"' => return Some((Item::String(value), &after[index + 1..])),
                c if (' '..='~').contains(&c) => value.push(c),
                _ => return None,
            }
        }
        return None;
    }
    if let Some(after) = text.strip_prefix('?') {
        return match after.as_bytes().first() {
            Some(b'1') => Some((Item::True, &after[1..])),
            Some(b'0') => Some((Item::False, &after[1..])),
            _ => None,
        };
    }
    let end = text.find([',', ';', ' ']).unwrap_or(text.len());
    let (raw, rest) = text.split_at(end);
    if raw.is_empty() {
        return None;
    }
    if let Ok(number) = raw.parse::<i64>() {
        return Some((Item::Integer(number), rest));
    }
    raw.starts_with(|c: char| c.is_ascii_alphabetic() || c == '*').then(|| (Item::Token(raw.to_owned()), rest))
}

/// Serializes a dictionary whose values are all strings, in the given order: `a="x", b="y"`.
pub fn serialize_string_dictionary(members: &[(&str, &str)]) -> String {
    members
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_expect_signature_header() {
        let parsed = parse_dictionary(r#"sig, keyid="main", alg="rsa-v1_5-sha256""#).unwrap();
        assert_eq!(parsed["sig"], Item::True);
        assert_eq!(parsed["keyid"], Item::String("main".into()));
        assert_eq!(parsed["alg"], Item::String("rsa-v1_5-sha256".into()));
        let parsed = parse_dictionary(r#"abtest="b", n=42, flag=?0, t=tok;p=1"#).unwrap();
        assert_eq!(parsed["n"], Item::Integer(42));
        assert_eq!(parsed["flag"], Item::False);
        assert_eq!(parsed["t"], Item::Token("tok".into()));
    }

    #[test]
    fn rejects_invalid_dictionaries() {
        for bad in ["Sig", "keyid=\"unterminated", "a=\"x\",", "a b", "=x", "branchName=\"main\""] {
            assert_eq!(parse_dictionary(bad), None, "{bad}");
        }
    }

    #[test]
    fn string_dictionaries_round_trip() {
        let text = serialize_string_dictionary(&[("sig", "ab+/=="), ("keyid", "ma\"in")]);
        assert_eq!(text, r#"sig="ab+/==", keyid="ma\"in""#);
        let parsed = parse_dictionary(&text).unwrap();
        assert_eq!(parsed["keyid"], Item::String("ma\"in".into()));
    }
}
