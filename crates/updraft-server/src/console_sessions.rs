//! The console's sessions: a signed-in API key becomes a random session token (the cookie) with its own CSRF token
//! and an expiry, held in memory, so the key itself is sent once, at sign-in, and never again. Failed sign-ins are
//! counted per client address and refused for a while past a limit.
//!
//! What a session may do is its key's [`Caller`]; the pages and actions are `routes::console`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::auth::Caller;

/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Failed sign-ins one address may make per window before it has to wait.
pub(crate) const MAX_FAILED_SIGN_INS: u32 = 5;
/// The window failed sign-ins are counted in.
pub(crate) const FAILED_SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
/// Sessions kept at most (the oldest go first), so a flood of sign-ins cannot grow memory without bound.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who signed in, and what their key may do.
    pub(crate) caller: Caller,
    /// The token every action must carry (a form field), compared in constant time.
    pub(crate) csrf: String,
    /// When the session ends.
    pub(crate) expires: Instant,
}

/// Every session, and the failed sign-ins per address.
#[derive(Default)]
pub(crate) struct ConsoleSessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl ConsoleSessions {
    /// Starts a session for `caller`; returns its token (the cookie's value).
    pub(crate) fn sign_in(&self, caller: Caller) -> String {
        let token = random_token();
        let session = Session { caller, csrf: random_token(), expires: Instant::now() + SESSION_TTL };
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(t, _)| t.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), session);
        token
    }

    /// The live session of a token.
    pub(crate) fn session(&self, token: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match sessions.get(token) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub(crate) fn sign_out(&self, token: &str) {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(token);
    }

    /// How long `address` must wait before trying again, if it failed too often.
    pub(crate) fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, count) = failures.get(&address)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILED_SIGN_INS && elapsed < FAILED_SIGN_IN_WINDOW).then(|| FAILED_SIGN_IN_WINDOW - elapsed)
    }

    /// Counts a failed sign-in of `address`.
    pub(crate) fn note_failure(&self, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        failures.retain(|_, (since, _)| now.duration_since(*since) < FAILED_SIGN_IN_WINDOW);
        let entry = failures.entry(address).or_insert((now, 0));
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use updraft_core::Grant;

    use super::*;

    #[test]
    fn sessions_start_and_end() {
        let sessions = ConsoleSessions::default();
        let token = sessions.sign_in(Caller::new("ops", Grant::everything()));
        let session = sessions.session(&token).unwrap();
        assert_eq!(session.caller.key_name(), "ops");
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, token);
        assert!(sessions.session("forged").is_none());
        sessions.sign_out(&token);
        assert!(sessions.session(&token).is_none());
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address() {
        let sessions = ConsoleSessions::default();
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILED_SIGN_INS - 1 {
            sessions.note_failure(address);
            assert!(sessions.blocked_for(address).is_none());
        }
        sessions.note_failure(address);
        assert!(sessions.blocked_for(address).is_some_and(|wait| wait <= FAILED_SIGN_IN_WINDOW));
        assert!(sessions.blocked_for("10.0.0.1".parse().unwrap()).is_none());
    }
}
