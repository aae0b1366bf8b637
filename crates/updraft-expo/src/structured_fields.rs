//! The small part of RFC 8941 structured fields the protocol needs: parsing a dictionary (`expo-expect-signature`,
//! `expo-extra-params`) and serializing a dictionary of strings (`expo-signature`).

use std::borrow::Cow;

/// A member value of a parsed dictionary; text borrows from the parsed header unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// `key` alone, or `key=?1`.
    True,
    /// `key=?0`.
    False,
    /// `key="…"`.
    String(Cow<'a, str>),
    /// `key=token`.
    Token(Cow<'a, str>),
    /// `key=123`.
    Integer(i64),
}

/// A parsed dictionary: its members in order of first appearance, a repeated key keeping its last value (RFC 8941
/// 4.2.2). Borrowed from the header and kept in a vector: a manifest check parses one on every request, and the
/// dictionaries the protocol sends have two or three members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dictionary<'a> {
    members: Vec<(&'a str, Item<'a>)>,
}

impl<'a> Dictionary<'a> {
    /// The value of member `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Item<'a>> {
        self.members.iter().find(|(name, _)| *name == key).map(|(_, item)| item)
    }

    /// How many members it has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn insert(&mut self, key: &'a str, item: Item<'a>) {
        match self.members.iter_mut().find(|(name, _)| *name == key) {
            Some(member) => member.1 = item,
            None => self.members.push((key, item)),
        }
    }
}

impl<'a> std::ops::Index<&str> for Dictionary<'a> {
    type Output = Item<'a>;

    fn index(&self, key: &str) -> &Item<'a> {
        self.get(key).unwrap_or_else(|| panic!("no member {key:?} in the dictionary"))
    }
}

/// Parses a dictionary, ignoring member parameters. Returns `None` when the text is not a valid dictionary.
pub fn parse_dictionary(text: &str) -> Option<Dictionary<'_>> {
    let mut members = Dictionary { members: Vec::with_capacity(4) };
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
        members.insert(key, value);
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

fn parse_bare_item(text: &str) -> Option<(Item<'_>, &str)> {
    if let Some(after) = text.strip_prefix('"') {
        // Most strings have no escape: borrowed from the header.
        if let Some(end) = after.bytes().position(|b| b == b'"' || b == b'\\' || !(b' '..=b'~').contains(&b))
            && after.as_bytes()[end] == b'"'
        {
            return Some((Item::String(Cow::Borrowed(&after[..end])), &after[end + 1..]));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '"' => return Some((Item::String(Cow::Owned(value)), &after[index + 1..])),
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
    raw.starts_with(|c: char| c.is_ascii_alphabetic() || c == '*').then_some((Item::Token(Cow::Borrowed(raw)), rest))
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
        // A repeated key keeps its last value, in the place it first appeared.
        let parsed = parse_dictionary(r#"keyid="a", alg="x", keyid="b""#).unwrap();
        assert_eq!(parsed.get("keyid"), Some(&Item::String("b".into())));
        assert_eq!(parsed.members.iter().map(|(key, _)| *key).collect::<Vec<_>>(), ["keyid", "alg"]);
        assert_eq!(parsed.get("sig"), None);
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
