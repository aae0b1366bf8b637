//! The gateway's own management contract: the request and response bodies that the operator CLI
//! (`crate::commands`) sends and the routes read, declared once so that a renamed field stops compiling instead of
//! drifting. (The Capgo-compatible bodies are Capgo's, parsed by `updraft_capgo::management`.)

pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod expo;
pub(crate) mod expo_keys;
pub(crate) mod release_health;
pub(crate) mod rollouts;
