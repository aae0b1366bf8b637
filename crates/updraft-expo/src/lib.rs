//! The Expo Updates protocol, as the `expo-updates` client speaks it: request headers, manifest JSON, directives,
//! the `multipart/mixed` envelope, structured-field headers, RSA-SHA256 code signing, reading the folder that
//! `npx expo export` writes, and the public app config published with it.
//!
//! This crate translates wire ⇄ domain; which release a device gets is `updraft_core::select_expo_release`.
#![warn(missing_docs)]

pub mod app_config;
pub mod directive;
pub mod export_ingest;
pub mod failure;
pub mod health_headers;
pub mod manifest;
pub mod multipart;
pub mod request;
pub mod signing;
pub mod structured_fields;
