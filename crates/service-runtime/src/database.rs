//! The SQLite database named by `DATABASE_URL`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use rusqlite;
use rusqlite::{Connection, OpenFlags};

/// How long a connection waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `DATABASE_URL`: `sqlite://PATH`, `sqlite:PATH`, or a plain path.
/// `sqlite:///abs/path` and `sqlite://rel/path` both work (the part after `sqlite://` is the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DatabaseUrlError {
    #[error("DATABASE_URL is empty; set it to a SQLite path such as `sqlite:///data/rel.db`")]
    #[diagnostic(help(
        "give the file after the scheme in DATABASE_URL (or --database-url): `sqlite:///data/rel.db` is absolute, `sqlite://rel.db` relative to the working directory; on Kubernetes put it on a mounted volume"
    ))]
    Empty,
    #[error(
        "DATABASE_URL scheme `{0}` is not supported; the services speak SQLite: use `sqlite://PATH` or a plain path"
    )]
    #[diagnostic(help(
        "point DATABASE_URL (or --database-url) at a SQLite file on a volume the services share, e.g. `sqlite:///data/rel.db`; a server database (postgres, mysql) cannot be used"
    ))]
    UnsupportedScheme(String),
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let path = if let Some(rest) = s.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = s.strip_prefix("sqlite:") {
            rest
        } else if let Some((scheme, _)) = s.split_once("://") {
            return Err(DatabaseUrlError::UnsupportedScheme(scheme.to_owned()));
        } else {
            s
        };
        if path.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        Ok(Self {
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite://{}", self.path.display())
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DatabaseError {
    #[error("database {path} does not exist yet; run `identity migrate` against it")]
    #[diagnostic(help(
        "check that DATABASE_URL names the file `identity migrate` creates: every service must see the same path on the same volume; only `identity migrate` creates the database, so run it (with this DATABASE_URL) before starting the services"
    ))]
    Missing { path: PathBuf },
    #[error("cannot open database {path}: {source}")]
    #[diagnostic(help(
        "check that DATABASE_URL names a SQLite file (not a directory), that its directory exists and is writable by this process's user (SQLite writes a journal beside the file), and that the volume is not mounted read-only; `database is locked` means another process held the lock for over {} s",
        BUSY_TIMEOUT.as_secs()
    ))]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the directory for database {path}: {source}")]
    #[diagnostic(help(
        "create the directory beforehand or choose a DATABASE_URL under a writable one; check that no part of the path is a file and, with a read-only root filesystem, that the path lies on a mounted volume"
    ))]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DatabaseUrl {
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens read-write, creating the file (and its directory) if needed. For `identity migrate`.
    pub fn open_or_create(&self) -> Result<Connection, DatabaseError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DatabaseError::CreateDir {
                path: self.path.clone(),
                source,
            })?;
        }
        self.open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens an existing database read-write; never creates one (a service that is not the schema
    /// owner must not leave an empty database behind).
    pub fn open_existing(&self) -> Result<Connection, DatabaseError> {
        self.require_exists()?;
        self.open(OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    /// Opens an existing database read-only. For the `/readyz` assertion.
    pub fn open_read_only(&self) -> Result<Connection, DatabaseError> {
        self.require_exists()?;
        self.open(OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn require_exists(&self) -> Result<(), DatabaseError> {
        if self.path.exists() {
            Ok(())
        } else {
            Err(DatabaseError::Missing {
                path: self.path.clone(),
            })
        }
    }

    fn open(&self, flags: OpenFlags) -> Result<Connection, DatabaseError> {
        let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|source| {
            DatabaseError::Open {
                path: self.path.clone(),
                source,
            }
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| DatabaseError::Open {
                path: self.path.clone(),
                source,
            })?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        let cases = [
            ("sqlite:///data/rel.db", "/data/rel.db"),
            ("sqlite://rel.db", "rel.db"),
            ("sqlite:rel.db", "rel.db"),
            ("/var/lib/rel.db", "/var/lib/rel.db"),
        ];
        for (input, path) in cases {
            let url: DatabaseUrl = input.parse().unwrap();
            assert_eq!(url.path(), Path::new(path), "{input}");
        }
    }

    #[test]
    fn refuses_other_schemes_and_empty() {
        assert!(matches!(
            "postgres://u@h/db".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::UnsupportedScheme(s)) if s == "postgres"
        ));
        assert!(matches!(
            "sqlite://".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::Empty)
        ));
    }

    #[test]
    fn read_only_open_does_not_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::from_path(dir.path().join("absent.db"));
        assert!(matches!(
            url.open_read_only(),
            Err(DatabaseError::Missing { .. })
        ));
        assert!(!url.path().exists());
    }
}
