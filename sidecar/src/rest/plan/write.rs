//! A write (`POST`, `PATCH`, `PUT`, `DELETE` on a table or an automatically updatable view)
//! resolved against the schema cache. Pure: the body is inspected only for its keys (which
//! columns are written) and, for `PUT`, its primary key values; Postgres reads the values.
//!
//! PostgREST's rules: an insert writes the keys of the first object (or `columns=`), and a
//! row lacking one of them writes NULL there, or the column's default with `Prefer:
//! missing=default`; an upsert conflicts on `on_conflict=` (default: the primary key); a `PUT`
//! names its whole primary key with `eq` filters whose values the body repeats.

use serde_json::Value;

use super::{condition, tree, Node, Ordering, Planner, Predicate, RestError};
use crate::rest::parse::{
    Handling, MediaType, Missing, Operation, Operator, Page, Representation, Resolution,
    RestRequest,
};
use crate::rest::sql::ident::qualified;
use crate::schema::{Identity, SchemaCache, Table};

/// The HTTP method of a write, as far as planning cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMethod {
    Post,
    Patch,
    Put,
    Delete,
}

/// What the statement does to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Insert {
        /// Written columns whose absent keys take the column default (catalog text).
        defaults: Vec<(String, String)>,
        conflict: Option<Conflict>,
    },
    Update,
    Delete,
}

/// `ON CONFLICT (columns) DO UPDATE SET … | DO NOTHING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub columns: Vec<String>,
    pub merge: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub schema: String,
    pub table: String,
    pub mutation: Mutation,
    /// The payload keys written, each a column of the table, in the body's order.
    pub columns: Vec<String>,
    /// Top-level filters (PATCH, DELETE), ANDed.
    pub filters: Vec<Predicate>,
    /// The written rows as the body shows them (`select=` and embeddings), without the filters.
    pub returning: Node,
    pub representation: Representation,
    pub media: MediaType,
    pub count: bool,
    /// The primary key, for `Location` with `return=headers-only`.
    pub primary_key: Vec<String>,
    /// PATCH/DELETE with `limit`/`offset`: which of the filtered rows, in which order.
    pub limit: Option<Limit>,
    /// `Prefer: handling=strict, max-affected=N`: more rows touched fail the request.
    pub max_affected: Option<u64>,
    /// Other preferences honoured, for `Preference-Applied`.
    pub applied: Vec<&'static str>,
}

/// The rows a limited PATCH/DELETE touches: the first `page` of the filtered rows in `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub order: Vec<Ordering>,
    pub page: Page,
}

/// The request body, once read: a JSON object or an array of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// An array: a single object is wrapped.
    pub rows: Vec<serde_json::Map<String, Value>>,
}

/// Reads `body` as PostgREST accepts it; anything else is `PGRST102`.
pub(crate) fn parse_payload(body: &[u8], method: WriteMethod) -> Result<Payload, RestError> {
    if method == WriteMethod::Delete {
        return Ok(Payload { rows: Vec::new() });
    }
    let invalid = |why: String| RestError::InvalidBody { details: why };
    let value: Value = serde_json::from_slice(body).map_err(|err| invalid(err.to_string()))?;
    let rows = match value {
        Value::Object(object) => vec![object],
        Value::Array(items) if method == WriteMethod::Post || method == WriteMethod::Put => items
            .into_iter()
            .map(|item| match item {
                Value::Object(object) => Ok(object),
                _ => Err(invalid(
                    "every element of the array must be an object".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("the body must be a JSON object".into())),
    };
    if method == WriteMethod::Put && rows.len() != 1 {
        return Err(invalid("PUT takes exactly one object".into()));
    }
    Ok(Payload { rows })
}

pub(crate) fn plan_write(
    cache: &SchemaCache,
    relation: &str,
    method: WriteMethod,
    request: RestRequest,
    payload: &Payload,
    allow_unfiltered: bool,
) -> Result<WritePlan, RestError> {
    let table = super::requested_table(cache, &request, relation)?;

    check_writable(table, method, request.prefer.resolution.is_some())?;
    let limited = matches!(method, WriteMethod::Patch | WriteMethod::Delete)
        && request.page != Page::default();
    if limited {
        if table.kind.is_view() {
            // Rows are picked by `ctid`, which only tables have.
            return Err(RestError::NotImplemented {
                what: "limit and offset on PATCH and DELETE of a view",
            });
        }
        if !request.order.iter().any(|scoped| scoped.path.is_empty()) {
            return Err(RestError::LimitWithoutOrder);
        }
    }
    // PostgREST honours max-affected only with handling=strict; lenient ignores it.
    let max_affected = request
        .prefer
        .max_affected
        .filter(|_| request.prefer.handling == Some(Handling::Strict));

    let mut filters = Vec::new();
    for scoped in request.filters.iter().filter(|s| s.path.is_empty()) {
        filters.push(condition(table, &scoped.item)?);
    }
    for scoped in request.logic.iter().filter(|s| s.path.is_empty()) {
        filters.push(tree(table, &scoped.item)?);
    }
    if filters.is_empty()
        && !allow_unfiltered
        && matches!(method, WriteMethod::Patch | WriteMethod::Delete)
    {
        return Err(RestError::UnfilteredWrite);
    }

    let columns = written_columns(table, &request, payload)?;
    let mutation = match method {
        WriteMethod::Post => {
            let conflict = request
                .prefer
                .resolution
                .map(|resolution| conflict_target(table, &request, resolution))
                .transpose()?;
            Mutation::Insert {
                defaults: defaults(table, &columns, &request),
                conflict,
            }
        }
        WriteMethod::Put => {
            check_put(table, &request, payload)?;
            Mutation::Insert {
                defaults: Vec::new(),
                conflict: Some(Conflict {
                    columns: table.primary_key.clone(),
                    merge: true,
                }),
            }
        }
        WriteMethod::Patch => Mutation::Update,
        WriteMethod::Delete => Mutation::Delete,
    };

    // The body shows the written rows: top-level filters chose them, they do not apply again.
    let mut shaped = request.clone();
    shaped.filters.retain(|s| !s.path.is_empty());
    shaped.logic.retain(|s| !s.path.is_empty());
    let mut planner = Planner {
        cache,
        request: &shaped,
        paths: vec![Vec::new()],
        aggregates: request.aggregates_enabled || cache.aggregates_enabled(),
    };
    let page = if limited {
        request.page
    } else {
        Page::default()
    };
    let mut returning = planner.node(table, &shaped.select, &Vec::new(), page)?;
    planner.check_paths()?;
    // A limited write picks its rows by the top-level order and page; the body then shows all
    // of the rows it wrote.
    let limit = limited.then(|| Limit {
        order: returning.order.clone(),
        page: returning.page,
    });
    returning.page = Page::default();

    Ok(WritePlan {
        schema: table.schema.clone(),
        table: table.name.clone(),
        mutation,
        columns,
        filters: if method == WriteMethod::Put {
            Vec::new()
        } else {
            filters
        },
        returning,
        representation: request
            .prefer
            .representation
            .unwrap_or(Representation::Minimal),
        media: request.media,
        count: request.prefer.count.is_some(),
        primary_key: table.primary_key.clone(),
        limit,
        max_affected,
        applied: applied(&request, method),
    })
}

fn applied(request: &RestRequest, method: WriteMethod) -> Vec<&'static str> {
    let prefer = &request.prefer;
    let mut applied = Vec::new();
    if method == WriteMethod::Post {
        match prefer.resolution {
            Some(Resolution::MergeDuplicates) => applied.push("resolution=merge-duplicates"),
            Some(Resolution::IgnoreDuplicates) => applied.push("resolution=ignore-duplicates"),
            None => {}
        }
        if prefer.missing == Some(Missing::Default) {
            applied.push("missing=default");
        }
    }
    if prefer.transaction == Some(crate::rest::parse::Transaction::Rollback) {
        applied.push("tx=rollback");
    }
    applied
}

/// A view Postgres cannot write through would fail at run time with a server error (55000);
/// the schema cache knows beforehand (`pg_relation_is_updatable`).
fn check_writable(table: &Table, method: WriteMethod, upsert: bool) -> Result<(), RestError> {
    let refused = |action| {
        Err(RestError::NotWritable {
            table: table.name.clone(),
            action,
        })
    };
    match method {
        WriteMethod::Post | WriteMethod::Put if !table.insertable => refused("inserts"),
        WriteMethod::Put if !table.updatable => refused("updates"),
        WriteMethod::Post if upsert && !table.updatable => refused("updates"),
        WriteMethod::Patch if !table.updatable => refused("updates"),
        WriteMethod::Delete if !table.deletable => refused("deletes"),
        _ => Ok(()),
    }
}

/// `columns=` if given, else the first object's keys, which every other object must have too
/// (`PGRST102`); each must be a column (`PGRST204`).
///
/// As PostgREST (`ApiRequest/Payload.hs`): without `columns=`, objects with different keys are
/// refused whatever `Prefer: missing` says, since guessing would write NULL (or a default) where
/// the client sent nothing. With `columns=`, only those columns are written: keys outside it are
/// ignored, and a missing key is NULL, or the column's default with `missing=default`.
fn written_columns(
    table: &Table,
    request: &RestRequest,
    payload: &Payload,
) -> Result<Vec<String>, RestError> {
    let names: Vec<String> = match (&request.columns, payload.rows.first()) {
        (Some(columns), _) => columns.clone(),
        (None, Some(first)) => {
            check_uniform_keys(&payload.rows)?;
            first.keys().cloned().collect()
        }
        (None, None) => Vec::new(),
    };
    let mut columns: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if table.column(&name).is_none() {
            return Err(RestError::UnknownPayloadColumn {
                table: table.name.clone(),
                column: name,
            });
        }
        if !columns.contains(&name) {
            columns.push(name);
        }
    }
    Ok(columns)
}

/// Every object has exactly the first object's keys (in any order).
fn check_uniform_keys(rows: &[serde_json::Map<String, Value>]) -> Result<(), RestError> {
    let Some((first, rest)) = rows.split_first() else {
        return Ok(());
    };
    let same_keys = |row: &serde_json::Map<String, Value>| {
        row.len() == first.len() && row.keys().all(|key| first.contains_key(key))
    };
    match rest.iter().position(|row| !same_keys(row)) {
        None => Ok(()),
        Some(index) => Err(RestError::KeysDiffer { object: index + 1 }),
    }
}

/// With `Prefer: missing=default`, each written column that has a default and the default text.
fn defaults(table: &Table, columns: &[String], request: &RestRequest) -> Vec<(String, String)> {
    if request.prefer.missing != Some(Missing::Default) {
        return Vec::new();
    }
    columns
        .iter()
        .filter_map(|name| {
            let column = table.column(name)?;
            match (&column.default, column.identity) {
                (Some(default), _) => Some((name.clone(), default.clone())),
                // An identity column has no default expression in the catalog: its next value
                // comes from its sequence, as when the column is left out of an INSERT.
                (None, Some(Identity::ByDefault)) => Some((
                    name.clone(),
                    format!(
                        "nextval(pg_catalog.pg_get_serial_sequence({}, {}))",
                        catalog_literal(&qualified(&table.schema, &table.name)),
                        catalog_literal(&column.name)
                    ),
                )),
                _ => None,
            }
        })
        .collect()
}

/// A name from the catalog as an SQL string literal (never request text).
fn catalog_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn conflict_target(
    table: &Table,
    request: &RestRequest,
    resolution: Resolution,
) -> Result<Conflict, RestError> {
    let columns = request
        .on_conflict
        .clone()
        .unwrap_or_else(|| table.primary_key.clone());
    if columns.is_empty() {
        return Err(RestError::NoConflictTarget {
            table: table.name.clone(),
        });
    }
    for name in &columns {
        if table.column(name).is_none() {
            return Err(RestError::ColumnNotFound {
                table: table.name.clone(),
                column: name.clone(),
            });
        }
    }
    Ok(Conflict {
        columns,
        merge: resolution == Resolution::MergeDuplicates,
    })
}

/// `PUT`: the filters are exactly `pk=eq.v` for every primary key column (`PGRST105`), and the
/// body repeats those values (`PGRST115`).
fn check_put(table: &Table, request: &RestRequest, payload: &Payload) -> Result<(), RestError> {
    let key = &table.primary_key;
    let mut filtered = Vec::new();
    for scoped in &request.filters {
        let condition = &scoped.item;
        match &condition.operation {
            Operation::Compare {
                operator: Operator::Eq,
                quantifier: None,
                value,
            } if scoped.path.is_empty()
                && !condition.negated
                && condition.field.json_path.is_empty()
                && key.contains(&condition.field.name) =>
            {
                filtered.push((condition.field.name.clone(), value.clone()))
            }
            _ => return Err(RestError::InvalidPutFilters),
        }
    }
    if key.is_empty()
        || !request.logic.is_empty()
        || filtered.len() != key.len()
        || !key
            .iter()
            .all(|k| filtered.iter().any(|(name, _)| name == k))
    {
        return Err(RestError::InvalidPutFilters);
    }
    let row = payload.rows.first();
    for (name, value) in &filtered {
        let given = row.and_then(|row| row.get(name)).map(|v| match v {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        });
        if given.as_deref() != Some(value.as_str()) {
            return Err(RestError::PutKeyMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::http::{HeaderMap, Method};

    use super::*;
    use crate::rest::parse::{parse_request, Target};
    use crate::rest::plan::tests::cache;

    /// Plans `method /todos?query` with `body` and the `Prefer` header `prefer`.
    pub(crate) fn plan(
        method: WriteMethod,
        query: &str,
        prefer: &str,
        body: &str,
    ) -> Result<WritePlan, RestError> {
        let http = match method {
            WriteMethod::Post => Method::POST,
            WriteMethod::Patch => Method::PATCH,
            WriteMethod::Put => Method::PUT,
            WriteMethod::Delete => Method::DELETE,
        };
        let mut headers = HeaderMap::new();
        if !prefer.is_empty() {
            headers.insert("prefer", prefer.parse().unwrap());
        }
        let request = parse_request(&http, Target::Relation, query, &headers)?;
        let payload = parse_payload(body.as_bytes(), method)?;
        plan_write(&cache(), "todos", method, request, &payload, false)
    }

    #[test]
    fn the_first_object_or_columns_decides_what_is_written() {
        let plan = plan(
            WriteMethod::Post,
            "",
            "",
            r#"[{"title": "a", "id": 1}, {"id": 2, "title": "b"}]"#,
        )
        .unwrap();
        let mut columns = plan.columns.clone();
        columns.sort();
        assert_eq!(columns, ["id", "title"]);
        let plan = plan_columns("columns=id", r#"{"id": 1, "nope": 2}"#);
        assert_eq!(plan, ["id"]);
        assert!(matches!(
            super::tests::plan(WriteMethod::Post, "", "", r#"{"nope": 1}"#),
            Err(RestError::UnknownPayloadColumn { .. })
        ));
    }

    #[test]
    fn objects_with_different_keys_need_columns() {
        let mixed =
            r#"[{"id": 1, "title": "a"}, {"id": 2, "title": "b"}, {"id": 3, "owner": "x"}]"#;
        let missing = r#"[{"id": 1, "title": "a"}, {"id": 2}]"#;
        let extra = r#"[{"id": 1}, {"id": 2, "title": "b"}]"#;
        for prefer in ["", "missing=default", "resolution=merge-duplicates"] {
            for (body, object) in [(mixed, 2), (missing, 1), (extra, 1)] {
                let err = plan(WriteMethod::Post, "", prefer, body).unwrap_err();
                assert_eq!(err, RestError::KeysDiffer { object }, "{prefer}: {body}");
                assert_eq!((err.code(), err.http_status()), ("PGRST102", 400));
                assert_eq!(err.to_string(), "All object keys must match");
            }
        }
        // `columns=` names what is written: keys outside it are ignored, missing ones are
        // NULL, or the column's default with missing=default.
        let named = plan(WriteMethod::Post, "columns=id,title", "", mixed).unwrap();
        assert_eq!(named.columns, ["id", "title"]);
        let named = plan(
            WriteMethod::Post,
            "columns=id,title",
            "missing=default",
            missing,
        );
        assert_eq!(named.unwrap().columns, ["id", "title"]);
    }

    fn plan_columns(query: &str, body: &str) -> Vec<String> {
        plan(WriteMethod::Post, query, "", body).unwrap().columns
    }

    #[test]
    fn bodies_must_be_objects_or_arrays_of_objects() {
        for (method, body) in [
            (WriteMethod::Post, "{"),
            (WriteMethod::Post, ""),
            (WriteMethod::Post, "[1]"),
            (WriteMethod::Post, "null"),
            (WriteMethod::Patch, "[{}]"),
            (WriteMethod::Put, "[{}, {}]"),
        ] {
            assert!(
                matches!(
                    parse_payload(body.as_bytes(), method),
                    Err(RestError::InvalidBody { .. })
                ),
                "{body}"
            );
        }
        assert_eq!(
            parse_payload(b"not json", WriteMethod::Delete).unwrap(),
            Payload { rows: Vec::new() }
        );
    }

    #[test]
    fn patch_and_delete_need_a_filter() {
        assert_eq!(
            plan(WriteMethod::Patch, "", "", r#"{"title": "x"}"#),
            Err(RestError::UnfilteredWrite)
        );
        assert_eq!(
            plan(WriteMethod::Delete, "", "", ""),
            Err(RestError::UnfilteredWrite)
        );
        assert!(plan(WriteMethod::Delete, "or=(id.eq.1)", "", "").is_ok());
    }

    #[test]
    fn a_limited_write_needs_an_order_and_picks_rows_by_it() {
        for query in ["id=gt.1&limit=1", "id=gt.1&offset=1"] {
            let err = plan(WriteMethod::Delete, query, "", "").unwrap_err();
            assert_eq!(err, RestError::LimitWithoutOrder, "{query}");
            assert_eq!((err.code(), err.http_status()), ("SLUICE126", 400));
        }
        let limited = plan(
            WriteMethod::Delete,
            "id=gt.1&order=id.desc&limit=2&offset=1",
            "",
            "",
        )
        .unwrap();
        let limit = limited.limit.expect("a limit");
        assert_eq!(
            limit.page,
            Page {
                offset: 1,
                limit: Some(2)
            }
        );
        assert_eq!(limit.order.len(), 1);
        assert_eq!(
            limited.returning.page,
            Page::default(),
            "the body shows every written row"
        );
        assert!(plan(WriteMethod::Delete, "id=gt.1", "", "")
            .unwrap()
            .limit
            .is_none());
    }

    #[test]
    fn max_affected_counts_only_with_strict_handling() {
        let strict = plan(
            WriteMethod::Delete,
            "id=gt.1",
            "handling=strict, max-affected=1",
            "",
        );
        assert_eq!(strict.unwrap().max_affected, Some(1));
        let lenient = plan(WriteMethod::Delete, "id=gt.1", "max-affected=1", "");
        assert_eq!(lenient.unwrap().max_affected, None);
    }

    #[test]
    fn put_names_exactly_the_primary_key_with_eq() {
        let ok = plan(
            WriteMethod::Put,
            "id=eq.7",
            "",
            r#"{"id": 7, "title": "t"}"#,
        )
        .unwrap();
        assert_eq!(
            ok.mutation,
            Mutation::Insert {
                defaults: Vec::new(),
                conflict: Some(Conflict {
                    columns: vec!["id".into()],
                    merge: true
                })
            }
        );
        assert!(ok.filters.is_empty());
        assert!(plan(WriteMethod::Put, "id=eq.7", "", r#"{"id": "7"}"#).is_ok());
        for query in [
            "",
            "id=gt.7",
            "title=eq.7",
            "id=eq.7&title=eq.x",
            "id=not.eq.7",
        ] {
            assert_eq!(
                plan(WriteMethod::Put, query, "", r#"{"id": 7}"#),
                Err(RestError::InvalidPutFilters),
                "{query}"
            );
        }
        assert_eq!(
            plan(WriteMethod::Put, "id=eq.7", "", r#"{"id": 8}"#),
            Err(RestError::PutKeyMismatch)
        );
        assert_eq!(
            plan(WriteMethod::Put, "id=eq.7", "", r#"{"title": "no id"}"#),
            Err(RestError::PutKeyMismatch)
        );
    }

    #[test]
    fn upserts_conflict_on_the_primary_key_unless_told() {
        let merge = "resolution=merge-duplicates";
        let default = plan(WriteMethod::Post, "", merge, r#"{"id": 1}"#).unwrap();
        assert!(matches!(
            default.mutation,
            Mutation::Insert { conflict: Some(Conflict { ref columns, merge: true }), .. }
                if columns == &["id"]
        ));
        let ignore = "resolution=ignore-duplicates";
        let named = plan(WriteMethod::Post, "on_conflict=owner,title", ignore, "{}").unwrap();
        assert!(matches!(
            named.mutation,
            Mutation::Insert { conflict: Some(Conflict { ref columns, merge: false }), .. }
                if columns == &["owner", "title"]
        ));
        assert!(matches!(
            plan(WriteMethod::Post, "on_conflict=nope", merge, "{}"),
            Err(RestError::ColumnNotFound { .. })
        ));
    }
}
