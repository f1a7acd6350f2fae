//! The REST API in PostgREST's URL dialect (`/rest/v1/…`), as used unmodified by postgrest-js and
//! supabase-js.
//!
//! Work flows one way: `parse` (query string and headers → a typed request, no schema, no I/O) →
//! plan (resolve names against the schema cache) → SQL (quoted identifiers, bound parameters).

pub mod parse;
