//! The release-health headers of an `expo-updates` manifest request, read without allocating: who the device is
//! (`EAS-Client-ID`), which updates failed to launch on it (`Expo-Recent-Failed-Update-IDs`) and the last fatal JS
//! error (`Expo-Fatal-Error`).
//!
//! What the client sends (expo-updates 57.0.24):
//! - `EAS-Client-ID`: a random UUID per install, on every request; lowercase on Android, uppercase on iOS
//!   (`UUID().uuidString`), so callers lowercase it (`DeviceId::parse` does).
//! - `Expo-Recent-Failed-Update-IDs`: an RFC 8941 list of strings, the ids of up to 5 updates whose launch failed
//!   (`failed_launch_count > 0`), newest first, on every request while there are any (android
//!   `FileDownloader.getExtraHeadersForRemoteUpdateRequest` with `UpdateDao.loadRecentUpdateIdsWithFailedLaunch`;
//!   ios `FileDownloader.extraHeadersForRemoteUpdateRequest` with `recentUpdateIdsWithFailedLaunch`). Android
//!   writes the ids with `UUID.toString()` (lowercase), iOS lowercases them.
//! - `Expo-Fatal-Error`: the text of the last fatal error, at most 1024 characters, sent once (the client consumes
//!   its error log when it builds the request: android `NoDatabaseLauncher.consumeErrorLog`, ios
//!   `ErrorRecovery.consumeErrorLog`). It names no update: the update that crashed is the one the client then
//!   lists as failed.

/// The most failed ids read from one request (the client sends at most 5).
pub const MAX_FAILED_IDS: usize = 10;

/// The health headers of one request, borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthHeaders<'a> {
    /// `EAS-Client-ID`, trimmed, as sent (not yet lowercased).
    pub client_id: Option<&'a str>,
    /// `Expo-Recent-Failed-Update-IDs` as sent.
    pub recent_failed: Option<&'a str>,
    /// `Expo-Fatal-Error`, trimmed.
    pub fatal_error: Option<&'a str>,
}

impl<'a> HealthHeaders<'a> {
    /// Reads them; `header(name)` gives a header's (first) value; names are given lowercase.
    pub fn read(header: impl Fn(&'static str) -> Option<&'a str>) -> Self {
        let value = |name| header(name).map(str::trim).filter(|v| !v.is_empty());
        Self {
            client_id: value("eas-client-id"),
            recent_failed: value("expo-recent-failed-update-ids"),
            fatal_error: value("expo-fatal-error"),
        }
    }

    /// The failed update ids: each member of the list that is a quoted UUID (parameters ignored), at most
    /// [`MAX_FAILED_IDS`]; anything else is skipped, never an error (a device's report must not fail its check).
    pub fn failed_update_ids(&self) -> impl Iterator<Item = &'a str> {
        self.recent_failed.unwrap_or_default().split(',').filter_map(failed_id).take(MAX_FAILED_IDS)
    }
}

/// One list member: `"<uuid>"`, possibly with `;parameters`, else `None`.
fn failed_id(member: &str) -> Option<&str> {
    let item = member.split(';').next()?.trim();
    let id = item.strip_prefix('"')?.strip_suffix('"')?;
    is_uuid(id).then_some(id)
}

/// 8-4-4-4-12 hex digits.
fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<'a>(headers: &'a [(&'static str, &'a str)]) -> HealthHeaders<'a> {
        HealthHeaders::read(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn reads_what_the_clients_send() {
        let headers = [
            ("eas-client-id", " 0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21 "),
            (
                "expo-recent-failed-update-ids",
                r#""0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a", "1c9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a""#,
            ),
            ("expo-fatal-error", "TypeError: undefined is not an object"),
        ];
        let read = read(&headers);
        assert_eq!(read.client_id, Some("0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21"));
        assert_eq!(read.fatal_error, Some("TypeError: undefined is not an object"));
        let ids: Vec<&str> = read.failed_update_ids().collect();
        assert_eq!(ids, ["0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a", "1c9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a"]);
    }

    #[test]
    fn odd_lists_give_only_their_uuids() {
        let id = "0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a";
        for (raw, expected) in [
            ("", vec![]),
            (r#""not-a-uuid", 42, "#, vec![]),
            (&format!(r#""{id}";a=1,"{id}""#) as &str, vec![id, id]),
            (&format!(r#"{id}, "{id}"#), vec![]),
            (&format!(r#"("{id}")"#), vec![]),
        ] {
            let headers = [("expo-recent-failed-update-ids", raw)];
            assert_eq!(read(&headers).failed_update_ids().collect::<Vec<_>>(), expected, "{raw:?}");
        }
        let many = vec![format!(r#""{id}""#); 50].join(", ");
        let headers = [("expo-recent-failed-update-ids", many.as_str())];
        assert_eq!(read(&headers).failed_update_ids().count(), MAX_FAILED_IDS);
        assert_eq!(read(&[]), HealthHeaders::default());
    }
}
