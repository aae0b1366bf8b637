//! `ObjectKey`: a checked relative path, so that no key can escape a filesystem root or confuse a bucket.

use std::fmt;

use crate::error::Error;

/// A checked object key such as `bundles/com.example.app/3f…a1.zip`.
///
/// Invariants: non-empty, at most 1024 bytes, `/`-separated segments that are non-empty and neither `.` nor `..`,
/// no leading `/`, no backslash and no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Parses a key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when it breaks an invariant.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= 1024
            && !raw.contains('\\')
            && !raw.chars().any(char::is_control)
            && raw.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
        if ok { Ok(Self(raw.to_owned())) } else { Err(Error::InvalidKey(raw.to_owned())) }
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_paths() {
        for ok in ["a", "bundles/com.example.app/x.zip", "a/b/c.d", "..a/b"] {
            assert_eq!(ObjectKey::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_escapes() {
        for bad in ["", "/a", "a/", "a//b", "../a", "a/../b", "./a", "a\\b", "a\nb", "a/./b"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
