//! Option and result types of [`crate::ObjectStore`] operations. Options are structs so that a new capability is a
//! new field, not a new method.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// A stream of object bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// What `put` does when the key is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PutMode {
    /// Replace the object.
    #[default]
    Overwrite,
    /// Fail with `AlreadyExists` (content-addressed uploads use this to dedupe).
    Create,
}

/// Options of `put`.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Overwrite or create-only.
    pub mode: PutMode,
    /// `Content-Type` to store with the object, where the backend keeps one.
    pub content_type: Option<String>,
    /// `Cache-Control` to store with the object, where the backend keeps one.
    pub cache_control: Option<String>,
}

/// Result of `put`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// Bytes stored.
    pub size: u64,
    /// The backend's entity tag, when it has one.
    pub etag: Option<String>,
}

/// A byte range of an object, as in an HTTP `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `start` (inclusive) to the end.
    From(u64),
    /// From `start` to `end`, both inclusive.
    Bounded(u64, u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open byte span of this range in an object of `size` bytes; `None` when it cannot be satisfied
    /// (starts at or past the end, or is empty).
    pub fn resolve(&self, size: u64) -> Option<std::ops::Range<u64>> {
        match *self {
            Self::From(start) if start < size => Some(start..size),
            // An end past the object (up to `u64::MAX`) is clamped, as RFC 9110 §14.1.2 says; never overflowed.
            Self::Bounded(start, end) if start < size && start <= end => Some(start..end.saturating_add(1).min(size)),
            Self::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// Options of `get`.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Read only this range.
    pub range: Option<ByteRange>,
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// Entity tag, when the backend has one.
    pub etag: Option<String>,
    /// Stored content type, when the backend keeps one.
    pub content_type: Option<String>,
}

/// Result of `get`.
pub struct GetResult {
    /// The whole object's metadata.
    pub meta: ObjectMeta,
    /// The byte span the body covers.
    pub range: std::ops::Range<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult").field("meta", &self.meta).field("range", &self.range).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_resolution() {
        assert_eq!(ByteRange::From(0).resolve(10), Some(0..10));
        assert_eq!(ByteRange::From(9).resolve(10), Some(9..10));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Bounded(2, 4).resolve(10), Some(2..5));
        assert_eq!(ByteRange::Bounded(2, 400).resolve(10), Some(2..10));
        assert_eq!(ByteRange::Bounded(5, 4).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some(7..10));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some(0..10));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
        assert_eq!(ByteRange::Bounded(1, u64::MAX).resolve(10), Some(1..10));
        assert_eq!(ByteRange::Bounded(u64::MAX, u64::MAX).resolve(10), None);
        assert_eq!(ByteRange::Suffix(u64::MAX).resolve(10), Some(0..10));
    }

    proptest::proptest! {
        /// A resolved range always lies inside the object and is never empty, whatever the request says.
        #[test]
        fn resolved_ranges_stay_inside_the_object(start: u64, end: u64, size in 0u64..1_000_000, kind in 0u8..3) {
            let range = match kind {
                0 => ByteRange::From(start),
                1 => ByteRange::Bounded(start, end),
                _ => ByteRange::Suffix(end),
            };
            if let Some(span) = range.resolve(size) {
                proptest::prop_assert!(span.start < span.end && span.end <= size, "{range:?} of {size}: {span:?}");
            }
        }
    }
}
