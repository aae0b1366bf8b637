//! What an API key may do: its role (`read` < `publish` < `admin`), optionally narrowed to one app and one channel,
//! checked against what a route needs ([`Access`]) and against the app and channel a write touches.
//!
//! The table of which route needs which [`Access`] is the server's (`routes/access.rs`); this module owns the rules
//! that table is judged by, so they are written once and table-tested here.

use crate::ids::{AppId, ChannelName};

/// The role of an API key. Roles are ordered: each one may do everything the one before may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees everything in its scope, changes nothing.
    Read,
    /// Publishes and moves releases: bundles, channels, device overrides, Expo releases, rollouts.
    Publish,
    /// Everything, including app settings; unscoped, also apps, API keys and signing keys.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 3] = [Self::Read, Self::Publish, Self::Admin];

    /// Parses `read`, `publish` or `admin`.
    ///
    /// # Errors
    /// A message naming the accepted roles.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Self::Read),
            "publish" => Ok(Self::Publish),
            "admin" => Ok(Self::Admin),
            _ => Err(format!("role {raw:?} is not one of read, publish, admin")),
        }
    }

    /// The role's name, as `parse` reads it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Publish => "publish",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A device endpoint or a probe: no key.
    Open,
    /// Any key that may see the app.
    Read,
    /// A `publish` or `admin` key.
    Publish,
    /// An `admin` key (scoped to the app or not).
    Admin,
    /// An `admin` key scoped to no app: creating apps, API keys, signing keys.
    Installation,
}

impl Access {
    /// The name used in docs and the route table.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Publish => "publish",
            Self::Admin => "admin",
            Self::Installation => "installation",
        }
    }
}

/// What one key may touch: its role and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key's role.
    pub role: Role,
    /// The one app it may see, or every app.
    pub app: Option<AppId>,
    /// The one channel it may change (reads stay app-wide), or every channel of its apps.
    pub channel: Option<ChannelName>,
}

/// Why a [`Grant`] does not allow something: a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl Grant {
    /// Everything: the bootstrap admin key, and stored keys from before roles.
    #[must_use]
    pub fn everything() -> Self {
        Self { role: Role::Admin, app: None, channel: None }
    }

    /// Whether the key's role is enough for a route that needs `access` (its scope is checked per app and channel).
    ///
    /// # Errors
    /// [`Denied`] saying which role or scope is missing.
    pub fn allows(&self, access: Access) -> Result<(), Denied> {
        let needed = match access {
            Access::Open => return Ok(()),
            Access::Read => Role::Read,
            Access::Publish => Role::Publish,
            Access::Admin | Access::Installation => Role::Admin,
        };
        if self.role < needed {
            return Err(Denied(format!(
                "this API key has the {} role; this needs a {needed} key (`updraft apikey create --role {needed}`)",
                self.role
            )));
        }
        if access == Access::Installation && (self.app.is_some() || self.channel.is_some()) {
            return Err(Denied("this needs an admin key scoped to no app (or the bootstrap admin key)".to_owned()));
        }
        Ok(())
    }

    /// Whether the key may see `app_id`.
    ///
    /// # Errors
    /// [`Denied`] when the key is scoped to another app.
    pub fn may_see(&self, app_id: &AppId) -> Result<(), Denied> {
        match &self.app {
            Some(scoped) if scoped != app_id => Err(Denied(format!(
                "this API key cannot access app {app_id}; use a key created for it or an unscoped key"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the key may change channel `channel` of `app_id`.
    ///
    /// # Errors
    /// [`Denied`] when the key is scoped to another app or another channel.
    pub fn may_change_channel(&self, app_id: &AppId, channel: &ChannelName) -> Result<(), Denied> {
        self.may_see(app_id)?;
        match &self.channel {
            Some(scoped) if scoped != channel => Err(Denied(format!(
                "this API key may change channel {scoped} only, not {channel}; use a key for {channel} or an unscoped one"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the key may make a change to `app_id` that is not about one channel (deleting bundles, unpinning a
    /// device, pinning one to a version).
    ///
    /// # Errors
    /// [`Denied`] when the key is scoped to another app or to one channel.
    pub fn may_change_app(&self, app_id: &AppId) -> Result<(), Denied> {
        self.may_see(app_id)?;
        match &self.channel {
            Some(scoped) => Err(Denied(format!(
                "this API key may change channel {scoped} only; this change is not about one channel, so it needs a key not scoped to a channel"
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: Role, app: Option<&str>, channel: Option<&str>) -> Grant {
        Grant {
            role,
            app: app.map(|a| AppId::parse(a).unwrap()),
            channel: channel.map(|c| ChannelName::parse(c).unwrap()),
        }
    }

    fn check_access(role: Role, app: Option<&str>, access: Access, allowed: bool) {
        assert_eq!(grant(role, app, None).allows(access).is_ok(), allowed, "{role} {app:?} {access:?}");
    }

    #[test]
    fn roles_are_ordered_and_installation_needs_an_unscoped_admin() {
        use Access::*;
        use Role::{Admin as A, Publish as P, Read as R};
        for (role, app, access, allowed) in [
            (R, None, Open, true),
            (R, None, Read, true),
            (R, None, Publish, false),
            (R, None, Admin, false),
            (P, Some("com.a"), Read, true),
            (P, Some("com.a"), Publish, true),
            (P, None, Admin, false),
            (A, Some("com.a"), Admin, true),
            (A, Some("com.a"), Installation, false),
            (A, None, Installation, true),
            (P, None, Installation, false),
        ] {
            check_access(role, app, access, allowed);
        }
    }

    #[test]
    fn a_channel_scoped_key_moves_only_its_channel() {
        let app = AppId::parse("com.a").unwrap();
        let beta = ChannelName::parse("beta").unwrap();
        let production = ChannelName::parse("production").unwrap();
        let scoped = grant(Role::Publish, Some("com.a"), Some("beta"));
        assert!(scoped.may_change_channel(&app, &beta).is_ok());
        assert!(scoped.may_change_channel(&app, &production).is_err());
        assert!(scoped.may_change_app(&app).is_err());
        assert!(scoped.may_see(&app).is_ok());
        let other = AppId::parse("com.b").unwrap();
        assert!(scoped.may_see(&other).is_err());
        assert!(scoped.may_change_channel(&other, &beta).is_err());
        let unscoped = grant(Role::Publish, None, None);
        assert!(unscoped.may_change_channel(&other, &production).is_ok());
        assert!(unscoped.may_change_app(&other).is_ok());
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse(" Admin "), Ok(Role::Admin));
        assert!(Role::parse("owner").unwrap_err().contains("read, publish, admin"));
    }
}
