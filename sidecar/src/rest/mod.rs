//! The REST API in PostgREST's URL dialect (`/rest/v1/…`), as used unmodified by postgrest-js and
//! supabase-js.
//!
//! Work flows one way: `parse` (query string and headers → a typed request, no schema, no I/O) →
//! `plan` (resolve names against the schema cache) → `sql` (quoted identifiers, bound
//! parameters; one statement whose row is the body) → `response` (status, `Content-Range`,
//! content type). `execute` runs the statement as the caller, once. `RestError` lists every
//! refusal with its code and status.

mod error;
pub(crate) mod execute;
pub mod parse;
pub(crate) mod plan;
pub(crate) mod response;
pub mod sql;

pub use error::RestError;
