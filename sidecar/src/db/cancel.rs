//! A request's query stops in Postgres when the request is abandoned.
//!
//! When an HTTP client goes away mid-request, hyper drops the handler's future, and with it the
//! future waiting for the query's answer; but the backend keeps running the query to its end (a
//! slow query holds its connection, its locks and its CPU long after anyone wants the answer).
//! `Abandonable` holds the pooled connection while a request's statement runs; dropped before
//! `finish`, it sends Postgres a cancel request for that backend, then closes the connection
//! instead of returning it to the pool: a cancel that arrived late must never hit the next
//! request's query on a reused connection.

use deadpool_postgres::{Client, Object};
use tokio_postgres::NoTls;

/// A pooled connection with a statement in flight.
pub(crate) struct Abandonable {
    client: Option<Client>,
}

impl Abandonable {
    pub(crate) fn new(client: Client) -> Self {
        Abandonable {
            client: Some(client),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client is only taken when the guard ends")
    }

    /// The statement has answered: the connection goes back to the pool as usual.
    pub(crate) fn finish(mut self) {
        self.client.take();
    }
}

impl Drop for Abandonable {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // Dropped during a runtime shutdown there is nothing to send the cancel with; the
        // connection closes with the process and the backend ends at its next write.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let token = client.cancel_token();
        // Out of the pool: the connection is closed once the cancel is sent.
        let connection = Object::take(client);
        runtime.spawn(async move {
            if let Err(err) = token.cancel_query(NoTls).await {
                tracing::warn!("could not cancel the query of an abandoned request: {err}");
            }
            drop(connection);
        });
    }
}
