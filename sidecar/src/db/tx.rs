//! The per-request transaction that every REST and RPC request runs in.
//!
//! REST requests take `run_request`: one call of the extension's `sluice.run_request`, which sets
//! the role and settings and runs the statement inside the call's own implicit transaction (one
//! protocol message; see extension/src/request.rs for why), and re-raises the statement's error
//! as it was raised, whatever its SQLSTATE. A request runs once: nothing here retries it.
//! `run`, below, is the same transaction spelled out in SQL, for several statements at once (no
//! REST path needs that today; the tests use it to check the transaction's guarantees):
//!
//! ```text
//! BEGIN [READ ONLY]
//! SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), …
//! <the caller's statements>
//! COMMIT | ROLLBACK
//! ```
//!
//! tokio-postgres queues a request on the connection the first time its future is polled, and the
//! connection task writes everything queued before it reads; so polling each of these futures once,
//! in order, before awaiting any, puts the whole transaction on the wire in one write: one round
//! trip. The statements are prepared once per connection (`prepare_cached`).
//!
//! Preparing is where names are resolved and schema privileges checked, so a statement must be
//! prepared as the request's role, inside its transaction, not as the login role (which may not even
//! see schema `auth`). A statement new to the connection is therefore parsed right after the
//! settings, in a first transaction that is then rolled back, and the request runs in a second one:
//! two round trips, once per statement and connection.
//!
//! COMMIT is queued before the statements' results are known. That is safe because Postgres answers
//! COMMIT in a failed transaction by rolling back; we report the first error in pipeline order.
//! It also makes the transaction cancel-safe: every transaction's end is queued in the same poll as
//! its BEGIN, so it ends on the server whether or not anyone awaits the answer. A connection never
//! returns to the pool mid-transaction, and the `set_config(..., true)` settings, being
//! transaction-local, never outlive the request.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use axum::http::{HeaderMap, Method};
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error as PgError, Row, Statement as PgStatement};

use super::cancel::Abandonable;
use super::{DbError, Pool};

/// Sets everything a request's SQL (and RLS policies, through `auth.uid()` and friends) may read.
/// The settings are transaction-local (`true`), as PostgREST's are.
const SET_REQUEST: &str = "SELECT set_config('role', $1, true), \
     set_config('request.jwt.claims', $2, true), \
     set_config('request.method', $3, true), \
     set_config('request.path', $4, true), \
     set_config('request.headers', $5, true)";

/// Whether the transaction may write. GET and HEAD run read-only, as in PostgREST, so that a GET
/// can never change data (a volatile function called by GET fails with 25006, answered with 405).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// How the transaction ends: `Prefer: tx=rollback` asks for a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Commit,
    Rollback,
}

/// Who a request runs as: the Postgres role, the JWT claims its SQL reads (`auth.uid()` and
/// friends), and whether that is the anonymous role (a permission error is then a 401, not a 403).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub role: &'a str,
    /// The claims as JSON text (an object), as `request.jwt.claims` is set.
    pub claims: &'a str,
    pub anonymous: bool,
}

/// The request a transaction runs for.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub caller: Caller<'a>,
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub access: Access,
    pub end: End,
    /// The role's own `statement_timeout` (from the schema cache), applied to this request.
    pub statement_timeout: Option<&'a str>,
}

impl<'a> RequestContext<'a> {
    /// Read-only for GET and HEAD, read-write otherwise; committed.
    pub fn new(
        caller: Caller<'a>,
        method: &'a Method,
        path: &'a str,
        headers: &'a HeaderMap,
    ) -> Self {
        let access = if method == Method::GET || method == Method::HEAD {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        RequestContext {
            caller,
            method,
            path,
            headers,
            access,
            end: End::Commit,
            statement_timeout: None,
        }
    }
}

/// One statement of the transaction: SQL with `$n` placeholders and its parameters.
#[derive(Clone, Copy)]
pub struct Statement<'a> {
    pub sql: &'a str,
    pub params: &'a [&'a (dyn ToSql + Sync)],
}

/// A failed request transaction, with whether it ran as `anon`: a permission error (42501) is a
/// 401 for anon, who may log in, and a 403 for everyone else.
#[derive(Debug, thiserror::Error)]
#[error("the request transaction failed")]
pub struct TxError {
    #[source]
    pub error: DbError,
    pub anonymous: bool,
}

/// Runs `statements` in one transaction as `context`'s identity; returns each statement's rows.
pub async fn run(
    client: &Client,
    context: &RequestContext<'_>,
    statements: &[Statement<'_>],
) -> Result<Vec<Vec<Row>>, TxError> {
    let fail = |err: PgError| TxError {
        error: DbError::Query(err),
        anonymous: context.caller.anonymous,
    };
    // It reads nothing the login role lacks, so it may be prepared outside a transaction.
    let set_request = client.prepare_cached(SET_REQUEST).await.map_err(fail)?;
    let method = context.method.as_str();
    let headers = headers_json(context.headers);
    let settings: [&(dyn ToSql + Sync); 5] = [
        &context.caller.role,
        &context.caller.claims,
        &method,
        &context.path,
        &headers,
    ];
    let begin_sql = match context.access {
        Access::ReadOnly => "BEGIN READ ONLY",
        Access::ReadWrite => "BEGIN",
    };
    let end_sql = match context.end {
        End::Commit => "COMMIT",
        End::Rollback => "ROLLBACK",
    };

    // Queue BEGIN and the settings, then look each statement up in the connection's cache; a
    // statement the connection has not seen is parsed there and then, as the request's role.
    let begin = Step::start(client.batch_execute(begin_sql)).await;
    let set = Step::start(client.query(&set_request, &settings)).await;
    let mut lookups = Vec::with_capacity(statements.len());
    for statement in statements {
        lookups.push(Step::start(client.prepare_cached(statement.sql)).await);
    }
    let cached: Option<Vec<PgStatement>> = lookups.iter().map(Step::cached).collect();
    let (begin, set, prepared) = match cached {
        Some(prepared) => (begin, set, prepared),
        None => {
            // End this transaction at once (queued before anything is awaited, so it cannot be
            // left open), wait for the statements to be prepared, and begin the real one.
            let rollback = Step::start(client.batch_execute("ROLLBACK")).await;
            let mut errors = FirstError::default();
            errors.note(begin.finish().await);
            errors.note(set.finish().await);
            let mut prepared = Vec::with_capacity(lookups.len());
            for lookup in lookups {
                prepared.extend(errors.note(lookup.finish().await));
            }
            errors.note(rollback.finish().await);
            errors.check().map_err(fail)?;
            let begin = Step::start(client.batch_execute(begin_sql)).await;
            let set = Step::start(client.query(&set_request, &settings)).await;
            (begin, set, prepared)
        }
    };
    let mut queries = Vec::with_capacity(statements.len());
    for (statement, prepared) in statements.iter().zip(&prepared) {
        queries.push(Step::start(client.query(prepared, statement.params)).await);
    }
    let end = Step::start(client.batch_execute(end_sql)).await;

    // Everything is on its way; collect the answers in order.
    let mut errors = FirstError::default();
    errors.note(begin.finish().await);
    errors.note(set.finish().await);
    let mut rows = Vec::with_capacity(queries.len());
    for query in queries {
        rows.extend(errors.note(query.finish().await));
    }
    errors.note(end.finish().await);
    errors.check().map_err(fail)?;
    Ok(rows)
}

/// Calls `sluice.run_request`, which sets the role and settings and runs the statement inside
/// the calling statement's own transaction: one protocol message, one flush on each side.
pub(crate) const RUN_REQUEST: &str =
    "SELECT sluice.run_request($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The first result row of a statement run by `run_request`, each column as its text output
/// (`None` for SQL NULL); `None` when the statement returned no row.
pub type TextRow = Vec<Option<String>>;

/// Calls `sluice.run_reads`: several read-only requests in one statement, each answering its
/// first row or its error in a row of its own (see extension/src/reads.rs).
pub(crate) const RUN_READS: &str =
    "SELECT result, error FROM sluice.run_reads($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The nine arguments of `RUN_REQUEST`, borrowed from the request.
pub(crate) struct Call<'a> {
    pub(crate) role: &'a str,
    pub(crate) claims: &'a str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a str,
    pub(crate) read_only: bool,
    pub(crate) statement_timeout: &'a str,
    pub(crate) sql: &'a str,
    pub(crate) params: &'a [Option<String>],
}

impl<'a> Call<'a> {
    /// `headers` is `request.headers` of the request (`headers_json`).
    fn new(
        context: &RequestContext<'a>,
        headers: &'a str,
        sql: &'a str,
        params: &'a [Option<String>],
    ) -> Call<'a> {
        Call {
            role: context.caller.role,
            claims: context.caller.claims,
            method: context.method.as_str(),
            path: context.path,
            headers,
            read_only: context.access == Access::ReadOnly,
            statement_timeout: context.statement_timeout.unwrap_or_default(),
            sql,
            params,
        }
    }

    pub(crate) fn args(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.role,
            &self.claims,
            &self.method,
            &self.path,
            &self.headers,
            &self.read_only,
            &self.statement_timeout,
            &self.sql,
            &self.params,
        ]
    }
}

/// A `Call` that owns its arguments: a read handed to a shared connection, which may send it
/// after its request has gone (see shared.rs).
pub(crate) struct OwnedCall {
    role: String,
    claims: String,
    method: String,
    path: String,
    headers: String,
    read_only: bool,
    statement_timeout: String,
    sql: String,
    params: Vec<Option<String>>,
}

impl OwnedCall {
    /// What `Call::new` makes of the request, owned (the headers' JSON is written once and moved
    /// in).
    fn new(context: &RequestContext<'_>, sql: &str, params: &[Option<String>]) -> OwnedCall {
        let Call {
            role,
            claims,
            method,
            path,
            headers: _,
            read_only,
            statement_timeout,
            sql,
            params,
        } = Call::new(context, "", sql, params);
        OwnedCall {
            role: role.to_owned(),
            claims: claims.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            read_only,
            statement_timeout: statement_timeout.to_owned(),
            sql: sql.to_owned(),
            params: params.to_vec(),
            headers: headers_json(context.headers),
        }
    }

    pub(crate) fn borrowed(&self) -> Call<'_> {
        Call {
            role: &self.role,
            claims: &self.claims,
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            read_only: self.read_only,
            statement_timeout: &self.statement_timeout,
            sql: &self.sql,
            params: &self.params,
        }
    }
}

/// Runs one statement (parameters as text, cast in its SQL) as `context`'s identity, with one
/// message to the server: the extension's `sluice.run_request` does what `run`'s BEGIN, settings
/// and COMMIT do, in the implicit transaction of the call. A dry run (`End::Rollback`) wraps the
/// call in BEGIN … ROLLBACK, still one pipeline.
pub async fn run_request<'a>(
    client: &Client,
    context: &RequestContext<'a>,
    sql: &'a str,
    params: &'a [Option<String>],
) -> Result<Option<TextRow>, TxError> {
    let fail = |err: PgError| TxError {
        error: DbError::Query(err),
        anonymous: context.caller.anonymous,
    };
    let statement = client.prepare_cached(RUN_REQUEST).await.map_err(fail)?;
    let headers = headers_json(context.headers);
    let call = Call::new(context, &headers, sql, params);
    let args = call.args();
    let row = match context.end {
        End::Commit => client.query_one(&statement, &args).await.map_err(fail)?,
        End::Rollback => {
            let begin = Step::start(client.batch_execute("BEGIN")).await;
            let query = Step::start(client.query_one(&statement, &args)).await;
            let rollback = Step::start(client.batch_execute("ROLLBACK")).await;
            let mut errors = FirstError::default();
            errors.note(begin.finish().await);
            let row = errors.note(query.finish().await);
            errors.note(rollback.finish().await);
            errors.check().map_err(fail)?;
            row.expect("no error means the call returned its row")
        }
    };
    row.try_get(0).map_err(fail)
}

/// `run_request` for `context`: a read-only, committed request on one of the pool's shared
/// connections when it has one free (see `shared.rs`, which also says why such a read is never
/// cancelled); anything else, or when none is free, on a connection of its own from `pool`,
/// cancelled in Postgres if the caller stops waiting (the future is dropped before it completes;
/// see `cancel.rs`).
pub async fn execute<'a>(
    pool: &Pool,
    context: &RequestContext<'a>,
    sql: &'a str,
    params: &'a [Option<String>],
) -> Result<Option<TextRow>, TxError> {
    if context.access == Access::ReadOnly && context.end == End::Commit {
        if let Some(lane) = pool.pipeline().and_then(|pipeline| pipeline.lane()) {
            let call = OwnedCall::new(context, sql, params);
            return lane.run(call).await.map_err(|error| TxError {
                error,
                anonymous: context.caller.anonymous,
            });
        }
    }
    let client = pool.get().await.map_err(|err| TxError {
        error: err.into(),
        anonymous: context.caller.anonymous,
    })?;
    let guard = Abandonable::new(client);
    let result = run_request(guard.client(), context, sql, params).await;
    guard.finish();
    result
}

/// `run` on a connection from `pool`, cancelled in Postgres if the caller stops waiting, as
/// `execute`: for a statement whose every row counts (a plan in text, one row per line).
pub async fn execute_all(
    pool: &Pool,
    context: &RequestContext<'_>,
    statements: &[Statement<'_>],
) -> Result<Vec<Vec<Row>>, TxError> {
    let client = pool.get().await.map_err(|err| TxError {
        error: err.into(),
        anonymous: context.caller.anonymous,
    })?;
    let guard = Abandonable::new(client);
    let result = run(guard.client(), context, statements).await;
    guard.finish();
    result
}

/// The first error of a pipeline: the cause. Any later one is an echo ("current transaction is
/// aborted"), and COMMIT after an error rolls back without one.
#[derive(Default)]
struct FirstError(Option<PgError>);

impl FirstError {
    fn note<T>(&mut self, result: Result<T, PgError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.get_or_insert(err);
                None
            }
        }
    }

    fn check(self) -> Result<(), PgError> {
        self.0.map_or(Ok(()), Err)
    }
}

/// `request.headers`: the request's headers as a JSON object of lower-case names (as PostgREST sets
/// it), names in order. Repeated headers are joined with ", " (RFC 9110 §5.3); bytes that are not
/// UTF-8 are replaced, since a setting is text. Written straight into the text, with no
/// intermediate JSON value: this runs for every request.
fn headers_json(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'{');
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(&mut out, name);
        out.push(b':');
        let mut values = headers.get_all(name).iter();
        let first = values
            .next()
            .map(|value| String::from_utf8_lossy(value.as_bytes()));
        match values.next() {
            None => write_json_string(&mut out, first.as_deref().unwrap_or_default()),
            Some(second) => {
                let mut joined = first.unwrap_or_default().into_owned();
                for value in std::iter::once(second).chain(values) {
                    joined.push_str(", ");
                    joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
                }
                write_json_string(&mut out, &joined);
            }
        }
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON written from UTF-8 text is UTF-8")
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a string into memory cannot fail");
}

/// A database request whose message has been queued on the connection.
enum Step<'a, T> {
    Waiting(Pin<Box<dyn Future<Output = T> + Send + 'a>>),
    Done(T),
}

impl<'a, T> Step<'a, T> {
    /// Polls `future` once, which is when tokio-postgres queues its request, and keeps it for
    /// `finish`. Never waits: the next request is queued right behind this one.
    async fn start(future: impl Future<Output = T> + Send + 'a) -> Step<'a, T> {
        let mut future = Box::pin(future);
        match poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
            Poll::Ready(output) => Step::Done(output),
            Poll::Pending => Step::Waiting(future),
        }
    }

    async fn finish(self) -> T {
        match self {
            Step::Waiting(future) => future.await,
            Step::Done(output) => output,
        }
    }
}

impl Step<'_, Result<PgStatement, PgError>> {
    /// The statement, if the cache had it: the lookup finished without waiting for the server.
    fn cached(&self) -> Option<PgStatement> {
        match self {
            Step::Done(Ok(statement)) => Some(statement.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_head_are_read_only() {
        let caller = Caller {
            role: "anon",
            claims: r#"{"role":"anon"}"#,
            anonymous: true,
        };
        let headers = HeaderMap::new();
        for (method, access) in [
            (Method::GET, Access::ReadOnly),
            (Method::HEAD, Access::ReadOnly),
            (Method::POST, Access::ReadWrite),
            (Method::PATCH, Access::ReadWrite),
            (Method::DELETE, Access::ReadWrite),
        ] {
            let context = RequestContext::new(caller, &method, "/rest/v1/t", &headers);
            assert_eq!(context.access, access, "{method}");
            assert_eq!(context.end, End::Commit);
        }
    }

    #[test]
    fn headers_become_a_json_object_with_repeats_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-one", "1".parse().unwrap());
        headers.append("accept", "application/json".parse().unwrap());
        headers.append("accept", "text/csv".parse().unwrap());
        headers.append(
            "x-bytes",
            axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        headers.append("x-quote", "a \"b\" \\ c".parse().unwrap());
        let text = headers_json(&headers);
        // Names in order, as a JSON object built from a map writes them.
        assert!(
            text.starts_with(r#"{"accept":"application/json, text/csv","x-bytes":"#),
            "{text}"
        );
        // Exactly the text a serde_json object of the same names and values prints.
        let mut object = serde_json::Map::new();
        for name in headers.keys() {
            let values: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            object.insert(name.as_str().to_owned(), values.join(", ").into());
        }
        assert_eq!(text, serde_json::Value::Object(object).to_string());
        assert_eq!(headers_json(&HeaderMap::new()), "{}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "x-one": "1",
                "accept": "application/json, text/csv",
                "x-bytes": "caf\u{fffd}",
                "x-quote": "a \"b\" \\ c",
            })
        );
    }

    #[tokio::test]
    async fn a_step_is_polled_once_when_started_and_awaited_when_finished() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let polls = AtomicUsize::new(0);
        let counted = |rounds: usize| {
            let polls = &polls;
            async move {
                for _ in 0..rounds {
                    polls.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
                rounds
            }
        };
        let waiting = Step::start(counted(3)).await;
        assert!(matches!(waiting, Step::Waiting(_)));
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "started, not run to completion"
        );
        assert_eq!(waiting.finish().await, 3);
        let done = Step::start(async { 7 }).await;
        assert!(matches!(done, Step::Done(7)));
        assert_eq!(done.finish().await, 7);
    }
}
