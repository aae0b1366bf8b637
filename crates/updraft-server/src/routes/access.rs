//! Which role each route needs: one row per (route pattern, method), the one place this is decided.
//!
//! `auth::authenticate` refuses a key whose role is below the row's [`Access`] before the handler runs; the handler
//! then checks the app and channel the request touches (`Caller::require_app`, `require_channel`,
//! `require_app_change`). Rows are written one per line, as `row("/pattern", "METHOD", Access),`: the role test
//! (`tests/api/roles.rs`) reads this file and walks every row with every role and scope against the real binary.
//! Console pages are `Open` here because they authenticate by session, not by key, and check the same [`Grant`]
//! themselves (`routes/console/`).
//!
//! [`Grant`]: updraft_core::Grant

use updraft_core::Access::{self, Admin, Installation, Open, Publish, Read};

/// One row: a pattern of `ROUTES`, a method, what it needs.
pub(crate) struct AccessRow {
    pub(crate) pattern: &'static str,
    pub(crate) method: &'static str,
    pub(crate) access: Access,
}

const fn row(pattern: &'static str, method: &'static str, access: Access) -> AccessRow {
    AccessRow { pattern, method, access }
}

/// Every route and method, with the access it needs.
pub(crate) const ACCESS: &[AccessRow] = &[
    row("/health", "GET", Open),
    row("/updates", "POST", Open),
    row("/updates/manifest_size", "POST", Open),
    row("/stats", "POST", Open),
    row("/stats", "GET", Read),
    row("/channel_self", "POST", Open),
    row("/channel_self", "PUT", Open),
    row("/channel_self", "GET", Open),
    row("/channel_self", "DELETE", Open),
    row("/app", "POST", Installation),
    row("/app", "PUT", Admin),
    row("/apikey", "POST", Installation),
    row("/apikey", "GET", Installation),
    row("/apikey", "DELETE", Installation),
    row("/channel", "POST", Publish),
    row("/channel", "GET", Read),
    row("/channel", "DELETE", Publish),
    row("/device", "POST", Publish),
    row("/device", "GET", Read),
    row("/device", "DELETE", Publish),
    row("/bundle", "POST", Publish),
    row("/bundle", "GET", Read),
    row("/bundle", "DELETE", Publish),
    row("/metrics", "GET", Open),
    row("/api/manifest", "GET", Open),
    row("/expo/{app_id}/manifest", "GET", Open),
    row("/expo/{app_id}/assets/missing", "POST", Publish),
    row("/expo/{app_id}/assets/{file}", "GET", Open),
    row("/expo/{app_id}/assets/{file}", "PUT", Publish),
    row("/expo/{app_id}/releases", "GET", Read),
    row("/expo/{app_id}/releases", "POST", Publish),
    row("/expo/{app_id}/releases/rollback", "POST", Publish),
    row("/expo/{app_id}/releases/promote", "POST", Publish),
    row("/expo/{app_id}/keys", "GET", Installation),
    row("/expo/{app_id}/keys", "POST", Installation),
    row("/files/{key:.+}", "GET", Open),
    row("/files/{key:.+}", "HEAD", Open),
    // Rollouts.
    row("/rollout", "GET", Read),
    row("/rollout", "POST", Publish),
    row("/rollout/halt", "POST", Publish),
    row("/rollout/resume", "POST", Publish),
    row("/rollout/complete", "POST", Publish),
    row("/release_health", "GET", Read),
    // The audit log and the console.
    row("/audit", "GET", Read),
    row("/console", "GET", Open),
    row("/console/signin", "POST", Open),
    row("/console/signout", "POST", Open),
    row("/console/assets/{file}", "GET", Open),
    row("/console/apps", "GET", Open),
    row("/console/apps/{app_id}", "GET", Open),
    row("/console/apps/{app_id}/devices", "GET", Open),
    row("/console/apps/{app_id}/audit", "GET", Open),
    row("/console/apps/{app_id}/actions/{action}", "POST", Open),
];

/// What a request to `path` with `method` needs (`None`: no row, which is a bug the tests catch).
pub(crate) fn access_of(path: &str, method: &str) -> Option<Access> {
    let pattern = super::route_label(path);
    ACCESS.iter().find(|row| row.pattern == pattern && row.method == method).map(|row| row.access)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route has rows and every row names a route, so a new route cannot be served without a decision.
    #[test]
    fn every_route_has_an_access_row() {
        for route in super::super::ROUTES {
            assert!(
                ACCESS.iter().any(|row| row.pattern == route.pattern),
                "route {} has no row in routes/access.rs ACCESS",
                route.pattern
            );
        }
        for row in ACCESS {
            assert!(
                super::super::ROUTES.iter().any(|route| route.pattern == row.pattern),
                "ACCESS row {} names no route",
                row.pattern
            );
            let twins = ACCESS.iter().filter(|other| other.pattern == row.pattern && other.method == row.method);
            assert_eq!(twins.count(), 1, "{} {} has two rows", row.method, row.pattern);
        }
    }

    #[test]
    fn requests_find_their_row() {
        assert_eq!(access_of("/channel/", "POST"), Some(Publish));
        assert_eq!(access_of("/expo/com.example.app/releases/promote", "POST"), Some(Publish));
        assert_eq!(access_of("/expo/com.example.app/assets/abc.png", "GET"), Some(Open));
        assert_eq!(access_of("/apikey", "GET"), Some(Installation));
        assert_eq!(access_of("/nope", "GET"), None);
    }
}
