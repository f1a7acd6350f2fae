//! The schema cache: what the REST API knows about the exposed schemas (PostgREST's `SchemaCache`).
//!
//! `config` says which schemas are exposed → `load` reads them from `pg_catalog` into the immutable
//! `model` (with `relationships` derived from foreign keys) → `holder` keeps the current cache in an
//! `ArcSwap` and reloads it when the sidecar's LISTEN connection (`db::listen`) hears of a schema
//! change → `openapi` describes a cache as an OpenAPI document, filtered by the `privileges` of the
//! role asking. Requests take a snapshot with `SchemaHandle::current()`. All of the module's SQL
//! that reads the catalog is in `load`.

pub(crate) mod config;
#[cfg(test)]
pub(crate) mod fixtures;
pub(crate) mod holder;
pub(crate) mod load;
pub(crate) mod model;
pub(crate) mod openapi;
pub(crate) mod privileges;
mod relationships;
mod view_defaults;

pub use config::{ExposedSchemas, ExposedSchemasError};
pub use holder::{start, SchemaHandle};
pub use model::{
    Cardinality, Column, ForeignKey, Function, FunctionArg, FunctionLookupError, Identity,
    Junction, QualifiedName, RelationKind, Relationship, ReturnKind, SchemaCache, Table,
    Volatility,
};
pub use openapi::{openapi, openapi_for_schema};
pub use privileges::Privileges;

use crate::error::describe;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the schema cache could not get a database connection: {}", describe(.0))]
    Connect(#[source] deadpool_postgres::PoolError),
    #[error("loading the schema cache from pg_catalog failed: {}", describe(.0))]
    Load(#[source] tokio_postgres::Error),
}
