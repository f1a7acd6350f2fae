//! Everything the REST layer can refuse before or after its SQL runs, each with a code and status.
//! `crate::http::error` turns these into responses; a Postgres error keeps its own SQLSTATE there.
//!
//! | Variant             | Code        | Status | When                                                   |
//! |---------------------|-------------|--------|--------------------------------------------------------|
//! | `Parse`             | see `ParseError` |   | the query string or a header does not follow the grammar |
//! | `Rpc`               | see `RpcError` |     | `/rpc/<fn>`: no such function (PGRST202, 404) or several fit (PGRST203, 300) |
//! | `SchemaNotExposed`  | `PGRST106`  | 406    | `Accept-Profile` names a schema that is not exposed     |
//! | `TableNotFound`     | `PGRST205`  | 404    | no table or view of that name in the schema            |
//! | `ColumnNotFound`    | `42703`     | 400    | a column named in `select`, a filter or `order`         |
//! | `InvalidCast`       | `SLUICE120` | 400    | `select=col::type` with a type that is not one plain name |
//! | `InvalidPath`       | `SLUICE121` | 400    | the table name in the path is not UTF-8 once decoded    |
//! | `NotOneRow`         | `PGRST116`  | 406    | `Accept: application/vnd.pgrst.object+json` and not exactly one row |
//! | `RelationshipNotFound` | `PGRST200` | 400 | an embedding with no relationship to its parent          |
//! | `AmbiguousRelationship` | `PGRST201` | 300 | an embedding several relationships match; a hint picks one |
//! | `DuplicateEmbed`    | `42712`     | 400    | two embeddings at one level with the same name (as Postgres answers PostgREST's query) |
//! | `AggregatesDisabled` | `PGRST123` | 400    | an aggregate in `select` while aggregates are off         |
//! | `RelatedOrderNotToOne` | `PGRST118` | 400 | `order=rel(col)` where `rel` is not a to-one embedding |
//! | `UnknownEmbedPath`  | `PGRST108`  | 400    | `x.order=…` and friends where `x` is not embedded        |
//! | `OffsetBeyondTotal` | `PGRST103`  | 416    | with `count=exact`, an offset past the last row         |
//! | `InvalidBody`       | `PGRST102`  | 400    | a write's body is not JSON, or not an object (array)    |
//! | `KeysDiffer`        | `PGRST102`  | 400    | a bulk write's objects have different keys, without `columns=` |
//! | `UnknownPayloadColumn` | `PGRST204` | 400  | a written key (or `columns=` name) is not a column      |
//! | `BodyTooLarge`      | `SLUICE122` | 413    | the body is longer than `--max-body-bytes`              |
//! | `UnfilteredWrite`   | `SLUICE123` | 400    | PATCH/DELETE without a filter (unless allowed)          |
//! | `NoConflictTarget`  | `SLUICE124` | 400    | an upsert on a table without primary key or `on_conflict` |
//! | `InvalidPutFilters` | `PGRST105`  | 405    | PUT not filtered by exactly its primary key with `eq`   |
//! | `PutKeyMismatch`    | `PGRST115`  | 400    | PUT's body does not repeat the filtered key values      |
//! | `NotWritable`       | `SLUICE125` | 405    | a view (or table) that cannot take this write          |
//! | `LimitWithoutOrder` | `SLUICE126` | 400    | `limit`/`offset` on PATCH/DELETE without `order=`       |
//! | `MaxAffectedExceeded` | `PGRST124` | 400   | `handling=strict, max-affected=N` and more rows touched |
//! | `NotImplemented`    | `SLUICE501` | 501    | a write form this server does not support yet           |

use super::parse::ParseError;
use super::plan::rpc::RpcError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("The schema must be one of the following: {}", .exposed.join(", "))]
    SchemaNotExposed {
        schema: String,
        exposed: Vec<String>,
    },
    #[error("Could not find the table '{schema}.{table}' in the schema cache")]
    TableNotFound { schema: String, table: String },
    #[error("column {table}.{column} does not exist")]
    ColumnNotFound { table: String, column: String },
    #[error("the path is not valid UTF-8 once percent-decoded")]
    InvalidPath,
    #[error("cannot cast to the type '{cast}'")]
    InvalidCast { cast: String },
    #[error("Cannot coerce the result to a single JSON object")]
    NotOneRow { rows: i64 },
    #[error("Could not find a relationship between '{table}' and '{target}' in the schema cache")]
    RelationshipNotFound {
        schema: String,
        table: String,
        target: String,
        hint: Option<String>,
        /// PostgREST's "Perhaps you meant 'x' instead of 'y'." (a close table name), if any.
        suggestion: Option<String>,
    },
    #[error(
        "Could not embed because more than one relationship was found for '{table}' and '{target}'"
    )]
    AmbiguousRelationship {
        table: String,
        target: String,
        candidates: Vec<Candidate>,
    },
    /// PostgREST names each embedding's subquery `<parent>_<name>_<depth>`, so two with one name
    /// make Postgres refuse the query with 42712; we refuse it the same way before running it.
    #[error("table name \"{alias}\" specified more than once")]
    DuplicateEmbed { alias: String },
    #[error("Use of aggregate functions is not allowed")]
    AggregatesDisabled,
    #[error("A related order on '{relation}' is not possible")]
    RelatedOrderNotToOne { relation: String },
    #[error("'{path}' is not an embedded resource in this request")]
    UnknownEmbedPath { path: String },
    #[error("Requested range not satisfiable")]
    OffsetBeyondTotal { offset: u64, total: i64 },
    #[error("Empty or invalid json")]
    InvalidBody { details: String },
    /// PostgREST's message; `object` is the 0-based index of the first object whose keys differ
    /// from the first one's.
    #[error("All object keys must match")]
    KeysDiffer { object: usize },
    #[error("Could not find the '{column}' column of '{table}' in the schema cache")]
    UnknownPayloadColumn { table: String, column: String },
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("PATCH and DELETE require a filter")]
    UnfilteredWrite,
    #[error("there is no primary key or on_conflict to upsert '{table}' on")]
    NoConflictTarget { table: String },
    #[error("Filters must include all and only primary key columns with 'eq' operators")]
    InvalidPutFilters,
    #[error("Payload values do not match URL in primary key column(s)")]
    PutKeyMismatch,
    #[error("'{table}' does not allow {action}")]
    NotWritable { table: String, action: &'static str },
    #[error("A limit on PATCH or DELETE needs an explicit order")]
    LimitWithoutOrder,
    #[error("Query result exceeds max-affected preference constraint")]
    MaxAffectedExceeded { affected: i64 },
    #[error("{what} is not implemented")]
    NotImplemented { what: &'static str },
}

impl RestError {
    pub fn code(&self) -> &'static str {
        match self {
            RestError::Parse(err) => err.code(),
            RestError::Rpc(err) => err.code(),
            RestError::SchemaNotExposed { .. } => "PGRST106",
            RestError::TableNotFound { .. } => "PGRST205",
            RestError::ColumnNotFound { .. } => "42703",
            RestError::InvalidCast { .. } => "SLUICE120",
            RestError::InvalidPath => "SLUICE121",
            RestError::NotOneRow { .. } => "PGRST116",
            RestError::RelationshipNotFound { .. } => "PGRST200",
            RestError::AmbiguousRelationship { .. } => "PGRST201",
            RestError::DuplicateEmbed { .. } => "42712",
            RestError::AggregatesDisabled => "PGRST123",
            RestError::UnknownEmbedPath { .. } => "PGRST108",
            RestError::RelatedOrderNotToOne { .. } => "PGRST118",
            RestError::OffsetBeyondTotal { .. } => "PGRST103",
            RestError::InvalidBody { .. } | RestError::KeysDiffer { .. } => "PGRST102",
            RestError::UnknownPayloadColumn { .. } => "PGRST204",
            RestError::BodyTooLarge { .. } => "SLUICE122",
            RestError::UnfilteredWrite => "SLUICE123",
            RestError::NoConflictTarget { .. } => "SLUICE124",
            RestError::InvalidPutFilters => "PGRST105",
            RestError::PutKeyMismatch => "PGRST115",
            RestError::NotWritable { .. } => "SLUICE125",
            RestError::LimitWithoutOrder => "SLUICE126",
            RestError::MaxAffectedExceeded { .. } => "PGRST124",
            RestError::NotImplemented { .. } => "SLUICE501",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            RestError::Parse(err) => err.http_status(),
            RestError::Rpc(err) => err.http_status(),
            RestError::SchemaNotExposed { .. } | RestError::NotOneRow { .. } => 406,
            RestError::TableNotFound { .. } => 404,
            RestError::ColumnNotFound { .. }
            | RestError::InvalidCast { .. }
            | RestError::InvalidPath => 400,
            RestError::RelationshipNotFound { .. }
            | RestError::DuplicateEmbed { .. }
            | RestError::AggregatesDisabled
            | RestError::UnknownEmbedPath { .. }
            | RestError::RelatedOrderNotToOne { .. } => 400,
            RestError::AmbiguousRelationship { .. } => 300,
            RestError::OffsetBeyondTotal { .. } => 416,
            RestError::InvalidBody { .. }
            | RestError::KeysDiffer { .. }
            | RestError::UnknownPayloadColumn { .. }
            | RestError::UnfilteredWrite
            | RestError::LimitWithoutOrder
            | RestError::MaxAffectedExceeded { .. }
            | RestError::NoConflictTarget { .. }
            | RestError::PutKeyMismatch => 400,
            RestError::BodyTooLarge { .. } => 413,
            RestError::InvalidPutFilters | RestError::NotWritable { .. } => 405,
            RestError::NotImplemented { .. } => 501,
        }
    }

    pub fn details(&self) -> Option<String> {
        match self {
            RestError::Parse(err) => err.details(),
            RestError::Rpc(err) => err.details(),
            RestError::NotOneRow { rows } => Some(format!("The result contains {rows} rows")),
            RestError::RelationshipNotFound {
                schema,
                table,
                target,
                hint,
                ..
            } => Some(format!(
                "Searched for a foreign key relationship between '{table}' and '{target}'{} in \
                 the schema '{schema}', but no matches were found.",
                hint.as_ref()
                    .map(|hint| format!(" using the hint '{hint}'"))
                    .unwrap_or_default()
            )),
            RestError::OffsetBeyondTotal { offset, total } => Some(format!(
                "An offset of {offset} was requested, but there are only {total} rows."
            )),
            RestError::InvalidBody { details } => Some(details.clone()),
            RestError::KeysDiffer { object } => Some(format!(
                "the object at index {object} does not have the same keys as the first one"
            )),
            RestError::MaxAffectedExceeded { affected } => {
                Some(format!("The query affects {affected} rows"))
            }
            _ => None,
        }
    }

    /// `details` as the body carries it: PGRST201's is an array of the candidates, as objects
    /// clients parse; every other is text.
    pub fn details_value(&self) -> Option<serde_json::Value> {
        match self {
            RestError::AmbiguousRelationship { candidates, .. } => Some(serde_json::Value::Array(
                candidates
                    .iter()
                    .map(|candidate| {
                        serde_json::json!({
                            "cardinality": candidate.cardinality,
                            "embedding": candidate.embedding,
                            "relationship": candidate.relationship,
                        })
                    })
                    .collect(),
            )),
            _ => self.details().map(serde_json::Value::String),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            RestError::Parse(err) => err.hint(),
            RestError::Rpc(err) => err.hint(),
            RestError::InvalidCast { .. } => Some(
                "cast to one type name such as text, int4, float8, numeric or jsonb".to_owned(),
            ),
            RestError::AmbiguousRelationship {
                target, candidates, ..
            } => Some(format!(
                "Try changing '{target}' to one of the following: {}. Find the desired \
                 relationship in the 'details' key.",
                candidates
                    .iter()
                    .map(|candidate| format!("'{}'", candidate.hint))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            RestError::RelationshipNotFound { suggestion, .. } => suggestion.clone(),
            RestError::RelatedOrderNotToOne { .. } => Some(
                "order by a column of a to-one (many-to-one or one-to-one) embedding in select"
                    .to_owned(),
            ),
            RestError::UnknownEmbedPath { .. } => Some(
                "filter, order or page only embeddings named in select, by alias or name"
                    .to_owned(),
            ),
            RestError::LimitWithoutOrder => Some(
                "order by unique column(s), e.g. order=id, so that the limit picks known rows"
                    .to_owned(),
            ),
            RestError::UnfilteredWrite => Some(
                "add a filter such as id=eq.1; the server may allow unfiltered writes with \
                 --allow-unfiltered-writes"
                    .to_owned(),
            ),
            RestError::NotWritable { .. } => Some(
                "only tables and automatically updatable views (or views with INSTEAD OF \
                 triggers) take writes"
                    .to_owned(),
            ),
            RestError::NoConflictTarget { .. } => {
                Some("name the unique columns with on_conflict=".to_owned())
            }
            RestError::KeysDiffer { .. } => Some(
                "give every object the same keys, or name the columns with columns= (missing \
                 keys are then NULL, or the column default with Prefer: missing=default)"
                    .to_owned(),
            ),
            RestError::TableNotFound { .. } => Some(
                "check the name, the Accept-Profile header and the role's privileges; the schema \
                 cache reloads after DDL"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// One of the relationships an ambiguous embedding could mean, as PGRST201 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `many-to-one`, `one-to-many`, `one-to-one` or `many-to-many`.
    pub cardinality: &'static str,
    /// `<table> with <foreign table>`.
    pub embedding: String,
    /// `<constraint> using <table>(<columns>) and <foreign table>(<columns>)`, or for a
    /// many-to-many `<junction> using <constraint>(<columns>) and <constraint>(<columns>)`.
    pub relationship: String,
    /// What to write instead: `<foreign table>!<constraint or junction>`.
    pub hint: String,
}
