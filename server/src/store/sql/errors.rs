//! What a database error means, whichever database sent it: a lost lock conflict, a
//! (brief) outage, a value too long for its column, a duplicate key.

/// How a transaction lost a lock conflict; either way it was rolled back, so running it again
/// is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Failed at once: MySQL deadlock victim, PostgreSQL serialization failure or deadlock,
    /// SQLite snapshot outdated by another process (BUSY_SNAPSHOT).
    Lost,
    /// Waited for a lock until a timeout first: MySQL lock wait timeout, SQLite busy
    /// (another process kept the write lock past the busy timeout). Another attempt may wait
    /// as long again.
    WaitedOut,
}

/// Whether (and how) a database error is a lost lock conflict.
pub fn conflict(err: &sqlx::Error) -> Option<Conflict> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            1213 => Some(Conflict::Lost),
            1205 => Some(Conflict::WaitedOut),
            _ => None,
        };
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLITE_BUSY_SNAPSHOT is returned without waiting; SQLITE_BUSY and its extended codes
        // BUSY_RECOVERY and BUSY_TIMEOUT come after the busy handler gave up.
        return match db.code().as_deref() {
            Some("517") => Some(Conflict::Lost),
            Some("5" | "261" | "773") => Some(Conflict::WaitedOut),
            _ => None,
        };
    }
    matches!(db.code().as_deref(), Some("40001" | "40P01")).then_some(Conflict::Lost)
}

/// Errors that say the database is (briefly) out of reach or overloaded, not that the
/// request is wrong: a restart, a lost connection, a deadlock victim or a statement timeout.
/// The client may retry these; the pool replaces broken connections by itself.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // MySQL/MariaDB error numbers: deadlock, lock wait timeout, server shutdown, too
            // many connections, statement time exceeded (MariaDB, MySQL), connection killed,
            // query interrupted.
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return matches!(
                    my.number(),
                    1213 | 1205 | 1053 | 1040 | 1969 | 3024 | 1927 | 1317
                );
            }
            // PostgreSQL SQLSTATEs: admin/crash shutdown, cannot connect now, serialization
            // failure, deadlock, statement timeout (query_canceled), too many connections.
            matches!(
                db.code().unwrap_or_default().as_ref(),
                "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "57014" | "53300"
            )
        }
        _ => false,
    }
}

/// A string longer than its column (PostgreSQL 22001, MySQL 1406 in strict mode).
pub fn is_too_long(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return my.number() == 1406;
    }
    db.code().as_deref() == Some("22001")
}

/// Whether a database error is a primary-key or unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
                return true;
            }
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let message = db.message().to_ascii_lowercase();
            // SQLite (2067/1555), PostgreSQL (23505), MySQL (1062), whatever the Any driver keeps.
            matches!(code.as_str(), "2067" | "1555" | "23505" | "1062")
                || message.contains("unique constraint")
                || message.contains("duplicate")
        }
        _ => false,
    }
}
