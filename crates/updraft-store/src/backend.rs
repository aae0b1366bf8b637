//! Which database a URL names, and the URL details each backend needs.

use updraft_core::StoreError;

/// The database behind a [`crate::SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server, shareable by several gateway instances.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    ///
    /// # Errors
    /// [`StoreError::Other`] with what is accepted, for any other scheme.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase()).unwrap_or_default();
        match scheme.as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::Other(format!(
                "unsupported database URL scheme {scheme:?}: use sqlite://<path> or postgres://user@host:port/database"
            ))),
        }
    }

    /// A short name for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A SQLite URL that creates the file when it is missing (`mode=rwc`), unless the URL sets a mode itself.
pub(crate) fn sqlite_create_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(Backend::of_url("sqlite://./data/updraft.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("postgres://u@h:5432/db").unwrap(), Backend::Postgres);
        assert_eq!(Backend::of_url("postgresql://u@h/db").unwrap(), Backend::Postgres);
        let error = Backend::of_url("mysql://h/db").unwrap_err().to_string();
        assert!(error.contains("\"mysql\"") && error.contains("postgres://"), "{error}");
    }

    #[test]
    fn sqlite_files_are_created_when_missing() {
        assert_eq!(sqlite_create_url("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(sqlite_create_url("sqlite://a.db?cache=shared"), "sqlite://a.db?cache=shared&mode=rwc");
        assert_eq!(sqlite_create_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(sqlite_create_url("sqlite::memory:"), "sqlite::memory:");
    }
}
