//! Integration tests: the real `updraft` binary on a random loopback port with a fresh data directory, spoken to
//! over HTTP, with bundles made by the real `@capgo/cli`.
#![expect(unreachable_pub, reason = "helper modules share items within this one test binary")]

mod api_keys;
mod audit;
mod bytes;
mod capgo_cli;
mod capgo_surface;
mod channel_self;
mod cli_publish;
mod console;
mod corpus;
mod database_password;
mod delta;
mod delta_brotli;
mod device_ageing;
mod downloads;
mod encryption;
mod expo;
mod expo_keys;
mod expo_tools;
mod helpers;
mod hostile;
mod lifecycle;
mod management;
mod patches;
mod postgres;
mod release_health;
mod roles;
mod rollouts;
mod s3_storage;
mod stats;
mod updates;
mod uploads;
mod webhooks;
