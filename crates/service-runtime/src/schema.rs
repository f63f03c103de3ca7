//! The platform's database schema: the migrations that `identity migrate` applies (and nothing else
//! applies), and the assertion `/readyz` makes (which never migrates).
//!
//! Migrations run inside one `BEGIN IMMEDIATE` transaction: SQLite grants the write lock to one
//! connection at a time, so two `identity migrate` started together serialise (the second waits up
//! to [`crate::database::BUSY_TIMEOUT`]), and the second finds every version recorded and applies
//! nothing. The DDL is plain `CREATE TABLE`, not `IF NOT EXISTS`: a race would fail loudly.

use rusqlite::{Connection, TransactionBehavior};

use crate::database::{DatabaseError, DatabaseUrl};

/// One schema change, applied once and recorded in `schema_migrations`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The bookkeeping table: which migrations are applied.
pub const SCHEMA_MIGRATIONS: &str = "schema_migrations";
/// identity: one row per issued token (never the token itself).
pub const ISSUED_TOKENS: &str = "issued_tokens";
/// gateway: one row per answered query.
pub const QUERY_AUDIT: &str = "query_audit";

/// Every migration, in order. Append only: an applied migration never changes.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "issued_tokens",
        sql: "CREATE TABLE issued_tokens (
                jti TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                class TEXT NOT NULL,
                issued_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
              );
              CREATE INDEX issued_tokens_client ON issued_tokens (client_id);",
    },
    Migration {
        version: 2,
        name: "query_audit",
        sql: "CREATE TABLE query_audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                subject TEXT NOT NULL,
                class TEXT NOT NULL,
                worker_id TEXT NOT NULL,
                answered_at INTEGER NOT NULL
              );",
    },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SchemaError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Database(#[from] DatabaseError),
    #[error("SQLite error while {doing}: {source}")]
    #[diagnostic(help(
        "check that DATABASE_URL names the database `identity migrate` created, not some other file; `database is locked` means another process (a second migrate, say) held the write lock too long: retry; `readonly database` means the file or its directory is not writable by this user"
    ))]
    Sqlite {
        doing: &'static str,
        source: rusqlite::Error,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    #[diagnostic(help(
        "the migrations run in one transaction, so nothing was applied; `already exists` means the table was made outside the migrations (restore the database from a backup, or drop that table if it holds nothing), otherwise fix the cause the SQLite error names and run `identity migrate` again"
    ))]
    Migration {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("schema incomplete: missing table(s) {}; run `identity migrate`", missing.join(", "))]
    #[diagnostic(help(
        "run `identity migrate` with the DATABASE_URL this service uses (the migrate job and the services must mount the same volume at the same path); the services never create tables themselves, so /readyz stays 503 until then"
    ))]
    MissingTables { missing: Vec<String> },
    #[error(
        "schema at version {found}, this build needs {needed}; run `identity migrate` from this version"
    )]
    #[diagnostic(help(
        "run the `identity migrate` of this release (same image version) against this DATABASE_URL before rolling out its services; an older identity does not know migration {needed}"
    ))]
    Outdated { found: i64, needed: i64 },
    #[error(
        "database schema version {found} is newer than this build knows ({known}); deploy a newer build"
    )]
    #[diagnostic(help(
        "a newer release has migrated this database: roll forward to that release instead of back; migrations are never undone, so running this build again needs the database restored from a backup made at schema version {known} or older"
    ))]
    Newer { found: i64, known: i64 },
}

fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> SchemaError {
    move |source| SchemaError::Sqlite { doing, source }
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run (empty when the schema was already current).
    pub applied: Vec<i64>,
    /// The schema version after the run.
    pub version: i64,
}

/// Applies every pending migration, once, under the database write lock.
pub fn migrate(db: &DatabaseUrl) -> Result<MigrationReport, SchemaError> {
    let mut conn = db.open_or_create()?;
    migrate_connection(&mut conn)
}

pub fn migrate_connection(conn: &mut Connection) -> Result<MigrationReport, SchemaError> {
    if write_lock_taken(conn)? {
        // Another migration (or writer) holds the lock: say so, then wait for it below.
        tracing::info!("waiting for the write lock: another migration or writer holds it");
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("taking the write lock for migrations"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        );",
    )
    .map_err(sql("creating schema_migrations"))?;
    let found: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sql("reading schema_migrations"))?;
    if found > latest_version() {
        return Err(SchemaError::Newer {
            found,
            known: latest_version(),
        });
    }
    let now = unix_now();
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.execute_batch(m.sql)
            .map_err(|source| SchemaError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, now],
        )
        .map_err(|source| SchemaError::Migration {
            version: m.version,
            name: m.name,
            source,
        })?;
        applied.push(m.version);
    }
    tx.commit().map_err(sql("committing migrations"))?;
    Ok(MigrationReport {
        applied,
        version: found.max(latest_version()),
    })
}

/// Whether another connection holds the write lock now: one `BEGIN IMMEDIATE` that does not wait
/// (rolled back at once when it gets the lock). For telling operators why a migration waits.
fn write_lock_taken(conn: &Connection) -> Result<bool, SchemaError> {
    conn.busy_timeout(std::time::Duration::ZERO)
        .map_err(sql("setting the busy timeout"))?;
    let probe = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;");
    conn.busy_timeout(crate::database::BUSY_TIMEOUT)
        .map_err(sql("setting the busy timeout"))?;
    match probe {
        Ok(()) => Ok(false),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(true),
        Err(e) => Err(sql("probing the write lock")(e)),
    }
}

/// What one service needs of the schema: tables that must exist.
#[derive(Debug, Clone, Copy)]
pub struct SchemaRequirement {
    pub tables: &'static [&'static str],
}

impl SchemaRequirement {
    /// Asserts the tables exist and the schema is at this build's version or newer. Read-only:
    /// opens the database without creating it and never migrates.
    pub fn check(&self, db: &DatabaseUrl) -> Result<(), SchemaError> {
        let conn = db.open_read_only()?;
        self.check_connection(&conn)
    }

    pub fn check_connection(&self, conn: &Connection) -> Result<(), SchemaError> {
        let mut stmt = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
            .map_err(sql("reading sqlite_master"))?;
        let mut missing = Vec::new();
        for table in std::iter::once(&SCHEMA_MIGRATIONS).chain(self.tables) {
            let present = stmt.exists([table]).map_err(sql("reading sqlite_master"))?;
            if !present && !missing.iter().any(|m| m == table) {
                missing.push((*table).to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(SchemaError::MissingTables { missing });
        }
        let found: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(sql("reading schema_migrations"))?;
        if found < latest_version() {
            return Err(SchemaError::Outdated {
                found,
                needed: latest_version(),
            });
        }
        Ok(())
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: SchemaRequirement = SchemaRequirement {
        tables: &[ISSUED_TOKENS, QUERY_AUDIT],
    };

    #[test]
    fn migrate_applies_once_and_the_check_passes_after() {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseUrl::from_path(dir.path().join("sub/rel.db"));
        assert!(matches!(
            ALL.check(&db),
            Err(SchemaError::Database(DatabaseError::Missing { .. }))
        ));

        let first = migrate(&db).unwrap();
        assert_eq!(first.applied, vec![1, 2]);
        assert_eq!(first.version, latest_version());
        let second = migrate(&db).unwrap();
        assert!(second.applied.is_empty());
        ALL.check(&db).unwrap();
    }

    #[test]
    fn check_names_missing_tables_and_old_versions() {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseUrl::from_path(dir.path().join("rel.db"));
        let conn = db.open_or_create().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);",
        )
        .unwrap();
        match ALL.check(&db) {
            Err(SchemaError::MissingTables { missing }) => {
                assert_eq!(missing, vec!["issued_tokens", "query_audit"])
            }
            other => panic!("expected missing tables, got {other:?}"),
        }
        let only_base = SchemaRequirement { tables: &[] };
        assert!(matches!(
            only_base.check(&db),
            Err(SchemaError::Outdated { found: 0, .. })
        ));
    }

    #[test]
    fn a_newer_schema_is_refused_not_downgraded() {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseUrl::from_path(dir.path().join("rel.db"));
        migrate(&db).unwrap();
        db.open_existing()
            .unwrap()
            .execute(
                "INSERT INTO schema_migrations VALUES (999, 'future', 0)",
                [],
            )
            .unwrap();
        assert!(matches!(
            migrate(&db),
            Err(SchemaError::Newer { found: 999, .. })
        ));
    }
}
