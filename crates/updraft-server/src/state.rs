//! The shared state every handler gets. It is defined in `crate::ops`, the use-case layer, so that its metadata
//! store and object store stay private to the use cases.

pub(crate) use crate::ops::AppState;
