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
            DbError::Query(err) => match err.code() {
                // Class 08 (connection exception) and 57P01..57P03 (shutdown, crash, starting up)
                // mean the server went away or is not back yet.
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
                // No SQLSTATE: the connection broke (closed, or an I/O error on the socket), or the
                // error is ours (a type conversion), which is not an outage.
                None => {
                    err.is_closed()
                        || std::error::Error::source(err)
                            .is_some_and(|cause| cause.is::<std::io::Error>())
                }
            },
        }
    }

    /// The SQLSTATE, when Postgres itself raised the error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Connect(err) | DbError::Query(err) => err.code().map(|code| code.code()),
            _ => None,
        }
    }

    /// The error as Postgres reported it (message, detail, hint), when Postgres raised it.
    pub fn server_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            DbError::Connect(err) | DbError::Query(err) => err.as_db_error(),
            _ => None,
        }
    }
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
