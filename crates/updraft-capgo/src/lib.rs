//! The Capgo protocol, as `@capgo/capacitor-updater` and `@capgo/cli` speak it: request parsing and reply shapes
//! for `POST /updates`, the wire codes of every refusal, the Capgo-compatible management bodies, and bundle zips.
//!
//! This crate translates wire ⇄ domain and nothing else: which bundle a device gets is decided by
//! `updraft_core::select_update`; HTTP plumbing is the server's.
#![warn(missing_docs)]

pub mod bundle_zip;
pub mod channel_self;
pub mod encryption;
pub mod error_codes;
pub mod failure;
pub mod management;
pub mod manifest_size;
mod refusal;
pub mod stats;
pub mod updates;
mod wire_fields;
pub mod zip_entries;

pub use failure::device_error_body;
pub use refusal::{RefusalKind, refusal_body};
