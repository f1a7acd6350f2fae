//! Everything that talks to Postgres: the connection pool, the shared connections that pipeline
//! single-statement reads (`shared`), the start-up check, the per-request transaction (`tx`) and
//! the sidecar's one LISTEN connection (`listen`), whose notifications the schema cache, realtime
//! and the change-log reader subscribe to.

mod cancel;
pub mod listen;
pub mod pool;
pub mod shared;
pub(crate) mod startup;
pub mod tx;

use std::sync::Arc;
use std::time::Duration;

pub use pool::Pool;

/// A failure to reach or use the database, as seen by request handlers.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The pool had no idle connection and opening a new one failed.
    #[error("could not connect to the database")]
    Connect(#[source] tokio_postgres::Error),
    /// The pool itself gave up (waited too long for a slot, or was closed).
    #[error("could not get a database connection")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    /// The call that carried several reads failed as a whole (the connection broke): each of
    /// its reads answers this same error.
    #[error("database query failed")]
    Shared(#[source] Arc<tokio_postgres::Error>),
    /// One read of several sent together failed with this error, raised by Postgres while it
    /// ran (`sluice.run_reads` answers it in the read's row).
    #[error("database query failed")]
    Read(#[source] Box<ReadError>),
}

/// An error Postgres raised, whichever way it came back: what responses are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerError<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

impl<'a> From<&'a tokio_postgres::error::DbError> for ServerError<'a> {
    fn from(err: &'a tokio_postgres::error::DbError) -> Self {
        ServerError {
            code: err.code().code(),
            message: err.message(),
            detail: err.detail(),
            hint: err.hint(),
        }
    }
}

/// The error of one read of a batch, as `sluice.run_reads` answers it:
/// `[sqlstate, message, detail, hint]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ReadError {
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl ReadError {
    pub(crate) fn from_fields(fields: Vec<Option<String>>) -> ReadError {
        let mut fields = fields.into_iter();
        let mut next = || fields.next().flatten();
        ReadError {
            code: next().unwrap_or_else(|| "XX000".to_owned()),
            message: next().unwrap_or_default(),
            detail: next(),
            hint: next(),
        }
    }

    /// A failure of the sidecar's own, reported as Postgres's internal_error.
    pub(crate) fn internal(message: String) -> ReadError {
        ReadError {
            code: "XX000".to_owned(),
            message,
            detail: None,
            hint: None,
        }
    }

    fn server_error(&self) -> ServerError<'_> {
        ServerError {
            code: &self.code,
            message: &self.message,
            detail: self.detail.as_deref(),
            hint: self.hint.as_deref(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(err) => DbError::Connect(err),
            err => DbError::Pool(err),
        }
    }
}

impl DbError {
    /// Whether the database is unreachable (as opposed to reachable but refusing a statement).
    /// Unreachable is an operational state: 503, retry later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Connect(_) | DbError::Pool(_) | DbError::Timeout(_) => true,
            DbError::Query(err) => unreachable_server(err),
            DbError::Shared(err) => unreachable_server(err),
            DbError::Read(err) => unavailable_code(&err.code),
        }
    }

    /// The SQLSTATE, when Postgres itself raised the error.
    pub fn sqlstate(&self) -> Option<&str> {
        self.server_error().map(|err| err.code)
    }

    /// The error as Postgres reported it (code, message, detail, hint), when Postgres raised it.
    pub fn server_error(&self) -> Option<ServerError<'_>> {
        match self {
            DbError::Connect(err) | DbError::Query(err) => err.as_db_error().map(ServerError::from),
            DbError::Shared(err) => err.as_db_error().map(ServerError::from),
            DbError::Read(err) => Some(err.server_error()),
            DbError::Pool(_) | DbError::Timeout(_) => None,
        }
    }
}

/// Whether `err` means the server went away or the connection broke.
fn unreachable_server(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        Some(code) => unavailable_code(code.code()),
        // No SQLSTATE: the connection broke (closed, or an I/O error on the socket), or the error
        // is ours (a type conversion), which is not an outage.
        None => {
            err.is_closed()
                || std::error::Error::source(err).is_some_and(|cause| cause.is::<std::io::Error>())
        }
    }
}

/// Class 08 (connection exception) and 57P01..57P03 (shutdown, crash, starting up) mean the
/// server went away or is not back yet.
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// One round trip on a pooled connection, the whole of it bounded by `timeout`: proves that a
/// connection can be had (or made) and that the server answers.
pub async fn ping(pool: &Pool, timeout: Duration) -> Result<(), DbError> {
    let round_trip = async {
        let client = pool.get().await?;
        // The simple protocol: one round trip, no statement to prepare.
        client.simple_query("SELECT 1").await?;
        Ok(())
    };
    tokio::time::timeout(timeout, round_trip)
        .await
        .unwrap_or(Err(DbError::Timeout(timeout)))
}
