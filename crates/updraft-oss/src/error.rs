//! The one error type of object storage. Backends convert their own failures into it.

/// An object-storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object under that key.
    #[error("object {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// `PutMode::Create` and the key is taken.
    #[error("object {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The requested range starts past the end of the object.
    #[error("range not satisfiable for object {key} of {size} bytes")]
    RangeNotSatisfiable {
        /// The key.
        key: String,
        /// The object's size.
        size: u64,
    },
    /// A key that is not a safe relative path.
    #[error(
        "invalid object key {0:?}: use a relative path of non-empty segments without '.', '..' or control characters"
    )]
    InvalidKey(String),
    /// The backend cannot do this.
    #[error("{operation} is not supported by the {backend} backend")]
    NotSupported {
        /// The operation.
        operation: &'static str,
        /// The backend.
        backend: &'static str,
    },
    /// The backend failed (I/O, network, credentials).
    #[error("{backend} storage error: {source}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result of an object-storage operation.
pub type Result<T> = std::result::Result<T, Error>;
