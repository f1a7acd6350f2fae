//! The OpenAPI 3.0 document served at `GET /rest/v1/`: one path per table or view, one per callable
//! function under `/rpc/`, and a component schema per table.
//!
//! It follows PostgREST's document where a client might rely on it: row filters are query
//! parameters named after columns, and column descriptions carry PostgREST's key markers
//! (`<pk/>`, `<fk table='t' column='c'/>`) that tools such as Supabase's type generator read.
//! PostgREST itself emits Swagger 2.0; this is OpenAPI 3.0, so its bodies and responses use
//! `content`, and nullability is `nullable`.
//!
//! One document describes one schema (as PostgREST's does for the schema a request's profile
//! selects), as the requesting role may use it (PostgREST's default `openapi-mode =
//! follow-privileges`, see `privileges`): only tables and views it holds a privilege on, only the
//! columns it may select, insert or update, only the operations it may perform (`get` with SELECT,
//! `post` with INSERT, `patch` with UPDATE, `delete` with DELETE), row filters only on columns it
//! may select, and only functions it may execute. A column's default is shown only to a role that
//! may insert that column, since that is when the default matters to a client; PostgREST shows it
//! with the column, which also shows a literal secret in a default to a role that may only read.
//!
//! Names become component keys after replacing characters OpenAPI does not allow there, and
//! become paths percent-encoded. A column named like a reserved query parameter (`select`,
//! `order`, `limit`, ...) cannot be filtered with a plain query parameter and gets none here.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::model::{Column, Function, QualifiedName, ReturnKind, SchemaCache, Table, Volatility};
use super::privileges::{Privileges, TableAccess};
use crate::VERSION;

/// Query parameter names with a meaning of their own in PostgREST's dialect.
const RESERVED_PARAMS: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "on_conflict",
    "columns",
    "and",
    "or",
];

/// The document for the default schema with everything in it, as its owner sees it (for tools
/// and tests; requests get `openapi_for_schema` with the role's privileges).
pub fn openapi(cache: &SchemaCache, server_url: &str) -> Value {
    openapi_for_schema(cache, cache.default_schema(), server_url, &Privileges::All)
        .expect("the default schema is always in the cache")
}

/// The document for one exposed schema as a role with `privileges` sees it; None if `schema` is
/// not exposed.
pub fn openapi_for_schema(
    cache: &SchemaCache,
    schema: &str,
    server_url: &str,
    privileges: &Privileges,
) -> Option<Value> {
    let objects = cache.schema(schema)?;
    let mut keys = ComponentKeys::default();
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut parameters = common_parameters();
    let mut request_bodies = Map::new();

    paths.insert(
        "/".into(),
        json!({"get": {
            "tags": ["Introspection"],
            "summary": "This OpenAPI description",
            "responses": {"200": {
                "description": "OK",
                "content": {"application/openapi+json": {"schema": {"type": "object"}}},
            }},
        }}),
    );

    // A foreign key note names the referenced table: only one the role can see (of this schema,
    // whose privileges were asked).
    let visible: HashSet<QualifiedName> = objects
        .tables
        .values()
        .filter(|table| privileges.on_table(table).is_some())
        .map(Table::qualified_name)
        .collect();
    let shown = |name: &QualifiedName| *privileges == Privileges::All || visible.contains(name);
    for table in objects.tables.values() {
        let Some(access) = privileges.on_table(table) else {
            continue;
        };
        let table = &restricted(table, &access);
        let key = keys.claim(&table.name);
        schemas.insert(key.clone(), table_schema(table, &access, &shown));
        let mut filters = Vec::new();
        for column in &table.columns {
            // A filter reads the column, which takes SELECT on it.
            if RESERVED_PARAMS.contains(&column.name.as_str())
                || !access.column(&column.name).select
            {
                continue;
            }
            let param_key = keys.claim(&format!("rowFilter.{key}.{}", column.name));
            parameters.insert(param_key.clone(), row_filter(column));
            filters.push(reference("parameters", &param_key));
        }
        request_bodies.insert(
            key.clone(),
            json!({
                "description": table.name,
                "required": true,
                "content": {"application/json": {"schema": {"oneOf": [
                    reference("schemas", &key),
                    {"type": "array", "items": reference("schemas", &key)},
                ]}}},
            }),
        );
        paths.insert(
            format!("/{}", encode_path_segment(&table.name)),
            Value::Object(table_operations(table, &key, &filters, access.read)),
        );
    }

    let mut functions: BTreeMap<&str, Vec<&Function>> = BTreeMap::new();
    for function in objects.functions.values().flatten() {
        if function.is_callable() && privileges.may_execute(function) {
            functions.entry(&function.name).or_default().push(function);
        }
    }
    for (name, overloads) in functions {
        let path = format!("/rpc/{}", encode_path_segment(name));
        paths.insert(
            path,
            Value::Object(rpc_operations(cache, &overloads, &keys)),
        );
    }

    Some(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Sluice REST API",
            "description": format!("Tables, views and functions of the schema `{schema}`."),
            "version": VERSION,
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": parameters,
            "requestBodies": request_bodies,
            "securitySchemes": {"bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
            }},
        },
        // Anonymous access is allowed (as the `anon` role); a JWT selects another role.
        "security": [{}, {"bearer": []}],
    }))
}

/// `table` with only the columns `access` shows and only the writes it allows.
fn restricted(table: &Table, access: &TableAccess) -> Table {
    Table {
        columns: table
            .columns
            .iter()
            .filter(|column| access.column(&column.name).any())
            .cloned()
            .collect(),
        insertable: table.insertable && access.insert,
        updatable: table.updatable && access.update,
        deletable: table.deletable && access.delete,
        ..table.clone()
    }
}

/// `readable`: whether the role may select rows (the `get` operation).
fn table_operations(
    table: &Table,
    key: &str,
    filters: &[Value],
    readable: bool,
) -> Map<String, Value> {
    let rows = json!({"type": "array", "items": reference("schemas", key)});
    let with = |extra: &[&str], filters: &[Value]| -> Vec<Value> {
        let mut params = filters.to_vec();
        params.extend(extra.iter().map(|name| reference("parameters", name)));
        params
    };
    let tags = json!([table.name]);
    let mut operations = Map::new();
    if readable {
        operations.insert(
            "get".into(),
            json!({
                "tags": tags,
                "summary": table.description.clone().unwrap_or_else(|| format!("Read rows of {}", table.name)),
                "parameters": with(
                    &["select", "order", "range", "rangeUnit", "offset", "limit", "preferCount"],
                    filters,
                ),
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": rows}}},
                    "206": {"description": "Partial Content", "content": {"application/json": {"schema": rows}}},
                },
            }),
        );
    }
    let changed = json!({
        "200": {"description": "OK (with Prefer: return=representation)",
                "content": {"application/json": {"schema": rows}}},
        "204": {"description": "No Content"},
    });
    if table.insertable {
        operations.insert(
            "post".into(),
            json!({
                "tags": tags,
                "summary": format!("Insert rows into {}", table.name),
                "parameters": with(&["select", "columns", "onConflict", "preferPost"], &[]),
                "requestBody": reference("requestBodies", key),
                "responses": {
                    "201": {"description": "Created",
                            "content": {"application/json": {"schema": rows}}},
                    "204": {"description": "No Content"},
                },
            }),
        );
    }
    if table.updatable {
        operations.insert(
            "patch".into(),
            json!({
                "tags": tags,
                "summary": format!("Update rows of {}", table.name),
                "parameters": with(&["select", "preferReturn"], filters),
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": reference("schemas", key)}},
                },
                "responses": changed,
            }),
        );
    }
    if table.deletable {
        operations.insert(
            "delete".into(),
            json!({
                "tags": tags,
                "summary": format!("Delete rows of {}", table.name),
                "parameters": with(&["select", "preferReturn"], filters),
                "responses": changed,
            }),
        );
    }
    operations
}

/// A table's row as a JSON object.
/// `shown`: whether a referenced table may be named in a foreign key note.
fn table_schema(
    table: &Table,
    access: &TableAccess,
    shown: &dyn Fn(&QualifiedName) -> bool,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for column in &table.columns {
        let show_default = access.column(&column.name).insert;
        properties.insert(
            column.name.clone(),
            column_schema(table, column, show_default, shown),
        );
        if !column.nullable && !column.has_default() && column.is_writable() {
            required.push(Value::String(column.name.clone()));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    if let Some(description) = &table.description {
        schema.insert("description".into(), json!(description));
    }
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("properties".into(), Value::Object(properties));
    Value::Object(schema)
}

/// `show_default`: whether the column's default may be shown (see the module documentation).
fn column_schema(
    table: &Table,
    column: &Column,
    show_default: bool,
    shown: &dyn Fn(&QualifiedName) -> bool,
) -> Value {
    let mut schema = column_type_schema(column);
    if column.nullable {
        schema.insert("nullable".into(), json!(true));
    }
    if !column.is_writable() {
        schema.insert("readOnly".into(), json!(true));
    }
    if let Some(default) = column
        .default
        .as_deref()
        .filter(|_| show_default)
        .and_then(|expr| literal_default(column, expr))
    {
        schema.insert("default".into(), default);
    }
    let mut notes = Vec::new();
    if table.primary_key.contains(&column.name) {
        notes.push("This is a Primary Key.<pk/>".to_owned());
    }
    for fk in table
        .foreign_keys
        .iter()
        .filter(|fk| shown(&fk.referenced_table))
    {
        if let ([own], [referenced]) = (fk.columns.as_slice(), fk.referenced_columns.as_slice()) {
            if *own == column.name {
                let target = &fk.referenced_table.name;
                notes.push(format!(
                    "This is a Foreign Key to `{target}.{referenced}`.<fk table='{target}' column='{referenced}'/>"
                ));
            }
        }
    }
    let description = match (&column.description, notes.is_empty()) {
        (Some(text), true) => Some(text.clone()),
        (text, false) => Some(format!(
            "{}Note:\n{}",
            text.as_deref()
                .map(|t| format!("{t}\n\n"))
                .unwrap_or_default(),
            notes.join("\n")
        )),
        (None, true) => None,
    };
    if let Some(description) = description {
        schema.insert("description".into(), json!(description));
    }
    Value::Object(schema)
}

/// The JSON shape of a column's values: by its base type, an array of its element type, or an
/// enum's labels.
fn column_type_schema(column: &Column) -> Map<String, Value> {
    let mut schema = match (&column.element_type, column.enum_values.is_empty()) {
        (Some(element), enum_empty) => {
            let items = if enum_empty {
                type_schema(element)
            } else {
                enum_schema(element, &column.enum_values)
            };
            let mut array = Map::new();
            array.insert("type".into(), json!("array"));
            array.insert("items".into(), Value::Object(items));
            array
        }
        (None, false) => enum_schema(&column.base_type, &column.enum_values),
        (None, true) => type_schema(&column.base_type),
    };
    if let Some(max) = column.max_length {
        schema.insert("maxLength".into(), json!(max));
    }
    schema
}

fn enum_schema(type_name: &str, values: &[String]) -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("string"));
    schema.insert("format".into(), json!(type_name));
    schema.insert("enum".into(), json!(values));
    schema
}

/// A Postgres type (as `format_type` names it, without modifiers) as a JSON schema, following how
/// Postgres's `to_json` renders its values: numbers as numbers, json as itself, the rest as
/// strings. The format is OpenAPI's where it has one, else the Postgres type's name.
pub(crate) fn type_schema(type_name: &str) -> Map<String, Value> {
    let (json_type, format) = match type_name {
        "smallint" | "integer" => (Some("integer"), Some("int32")),
        "bigint" | "oid" => (Some("integer"), Some("int64")),
        "real" => (Some("number"), Some("float")),
        "double precision" => (Some("number"), Some("double")),
        "numeric" => (Some("number"), Some("numeric")),
        "boolean" => (Some("boolean"), None),
        // Any JSON value: OpenAPI 3.0 says so by leaving out `type`.
        "json" | "jsonb" => (None, Some(type_name)),
        "uuid" => (Some("string"), Some("uuid")),
        "date" => (Some("string"), Some("date")),
        "timestamp with time zone" | "timestamp without time zone" => {
            (Some("string"), Some("date-time"))
        }
        other => (Some("string"), Some(other)),
    };
    let mut schema = Map::new();
    if let Some(json_type) = json_type {
        schema.insert("type".into(), json!(json_type));
    }
    if let Some(format) = format {
        schema.insert("format".into(), json!(format));
    }
    schema
}

/// A default that is a plain literal of the column's JSON type (`0`, `true`, `'draft'::text`);
/// None for expressions (`now()`, `nextval(...)`), which have no value to show.
fn literal_default(column: &Column, expr: &str) -> Option<Value> {
    if column.element_type.is_some() {
        return None;
    }
    // `'text'::type` (negative numbers are printed this way too), else a bare token.
    let literal = match expr.strip_prefix('\'') {
        Some(rest) => {
            let end = rest.rfind("'::")?;
            let quoted = &rest[..end];
            if quoted.replace("''", "").contains('\'') {
                return None;
            }
            quoted.replace("''", "'")
        }
        // `0`, `true`, or a constant with a cast (`0::numeric`); calls like `now()` fail to parse.
        None => expr.split("::").next().unwrap_or(expr).to_owned(),
    };
    let schema = column_type_schema(column);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => literal.parse::<i64>().ok().map(Value::from),
        // `0` stays an integer in JSON; `0.5` is a float.
        Some("number") => match literal.parse::<i64>() {
            Ok(n) => Some(Value::from(n)),
            Err(_) => literal
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Value::from),
        },
        Some("boolean") => literal.parse::<bool>().ok().map(Value::from),
        Some("string") if expr.starts_with('\'') => {
            let allowed = column.enum_values.is_empty() || column.enum_values.contains(&literal);
            allowed.then_some(Value::String(literal))
        }
        _ => None,
    }
}

fn row_filter(column: &Column) -> Value {
    json!({
        "name": column.name,
        "in": "query",
        "required": false,
        "description": format!(
            "Filter on `{}` ({}): an operator and a value, e.g. `eq.1`, `in.(1,2)`, `is.null`",
            column.name, column.type_name
        ),
        "schema": {"type": "string"},
    })
}

/// The parameters every table path shares.
fn common_parameters() -> Map<String, Value> {
    let query = |name: &str, description: &str| {
        json!({"name": name, "in": "query", "required": false,
               "description": description, "schema": {"type": "string"}})
    };
    let header = |name: &str, description: &str| {
        json!({"name": name, "in": "header", "required": false,
               "description": description, "schema": {"type": "string"}})
    };
    let mut parameters = Map::new();
    parameters.insert(
        "select".into(),
        query(
            "select",
            "Columns and embedded resources to return, e.g. `id,name,author:authors(name)`",
        ),
    );
    parameters.insert(
        "order".into(),
        query("order", "Ordering, e.g. `name.asc,id.desc.nullslast`"),
    );
    parameters.insert(
        "columns".into(),
        query("columns", "The columns of the body to insert"),
    );
    parameters.insert(
        "onConflict".into(),
        query(
            "on_conflict",
            "Columns of a unique key to upsert on (with Prefer: resolution=...)",
        ),
    );
    for (name, description) in [
        ("offset", "Rows to skip"),
        ("limit", "Rows to return at most"),
    ] {
        parameters.insert(
            name.into(),
            json!({"name": name, "in": "query", "required": false, "description": description,
                   "schema": {"type": "integer", "minimum": 0}}),
        );
    }
    parameters.insert(
        "range".into(),
        header("Range", "Rows to return, e.g. `0-24`"),
    );
    parameters.insert(
        "rangeUnit".into(),
        json!({"name": "Range-Unit", "in": "header", "required": false,
               "schema": {"type": "string", "default": "items"}}),
    );
    parameters.insert(
        "preferCount".into(),
        json!({"name": "Prefer", "in": "header", "required": false,
               "description": "Count the rows in Content-Range",
               "schema": {"type": "string",
                          "enum": ["count=exact", "count=planned", "count=estimated"]}}),
    );
    parameters.insert(
        "preferReturn".into(),
        json!({"name": "Prefer", "in": "header", "required": false,
               "description": "What to return for the changed rows",
               "schema": {"type": "string", "enum": [
                   "return=representation", "return=minimal", "return=headers-only"]}}),
    );
    parameters.insert(
        "preferPost".into(),
        header(
            "Prefer",
            "Comma-separated: return=representation|minimal|headers-only, \
             resolution=merge-duplicates|ignore-duplicates, missing=default",
        ),
    );
    parameters.insert(
        "preferParams".into(),
        header(
            "Prefer",
            "params=single-object passes the body as the one argument",
        ),
    );
    parameters
}

/// `POST /rpc/f` always; `GET /rpc/f` (arguments as query parameters) when every overload is
/// stable or immutable, since GET runs in a read-only transaction.
fn rpc_operations(
    cache: &SchemaCache,
    overloads: &[&Function],
    keys: &ComponentKeys,
) -> Map<String, Value> {
    let name = &overloads[0].name;
    let tags = json!(["(rpc) ".to_owned() + name]);
    let summary = overloads
        .iter()
        .find_map(|f| f.description.clone())
        .unwrap_or_else(|| format!("Call {name}"));
    let response = json!({"200": {
        "description": "OK",
        "content": {"application/json": {"schema": result_schema(cache, overloads[0], keys)}},
    }});
    let bodies: Vec<Value> = overloads.iter().map(|f| arguments_schema(f)).collect();
    let body = match bodies.as_slice() {
        [one] => one.clone(),
        _ => json!({"oneOf": bodies}),
    };
    let mut operations = Map::new();
    operations.insert(
        "post".into(),
        json!({
            "tags": tags,
            "summary": summary,
            "parameters": [reference("parameters", "preferParams")],
            "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
            "responses": response,
        }),
    );
    let read_only = overloads
        .iter()
        .all(|f| f.volatility != Volatility::Volatile);
    let by_query = overloads.iter().all(|f| !f.takes_body_as_single_arg());
    if read_only && by_query {
        let mut seen = HashSet::new();
        let mut parameters = Vec::new();
        for function in overloads {
            for arg in &function.args {
                let Some(arg_name) = &arg.name else { continue };
                if RESERVED_PARAMS.contains(&arg_name.as_str()) || !seen.insert(arg_name.clone()) {
                    continue;
                }
                parameters.push(json!({
                    "name": arg_name,
                    "in": "query",
                    "required": overloads.len() == 1 && !arg.has_default,
                    "description": arg.type_name,
                    "schema": Value::Object(type_schema(&arg.type_name)),
                }));
            }
        }
        operations.insert(
            "get".into(),
            json!({"tags": tags, "summary": summary, "parameters": parameters, "responses": response}),
        );
    }
    operations
}

/// The request body of one overload: an object of its named arguments, or anything for a function
/// that takes the body as its single argument.
fn arguments_schema(function: &Function) -> Value {
    if function.takes_body_as_single_arg() {
        return json!({"description": function.args[0].type_name});
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for arg in &function.args {
        let Some(name) = &arg.name else { continue };
        let mut schema = type_schema(arg.type_name.trim_end_matches("[]"));
        if arg.type_name.ends_with("[]") {
            schema = Map::from_iter([
                ("type".to_owned(), json!("array")),
                ("items".to_owned(), Value::Object(schema)),
            ]);
        }
        properties.insert(name.clone(), Value::Object(schema));
        if !arg.has_default {
            required.push(json!(name));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("properties".into(), Value::Object(properties));
    Value::Object(schema)
}

fn result_schema(cache: &SchemaCache, function: &Function, keys: &ComponentKeys) -> Value {
    let one = match &function.returns {
        ReturnKind::Void => return json!({"nullable": true}),
        ReturnKind::Scalar => Value::Object(type_schema(&function.return_type)),
        ReturnKind::Composite { relation } => {
            let table = cache.table(&relation.schema, &relation.name);
            match (table, keys.get(&relation.name)) {
                // Only this document's tables have components.
                (Some(_), Some(key)) if relation.schema == function.schema => {
                    reference("schemas", key)
                }
                _ => json!({"type": "object"}),
            }
        }
        ReturnKind::OutArgs => {
            let properties: Map<String, Value> = function
                .out_args
                .iter()
                .filter_map(|arg| {
                    let name = arg.name.clone()?;
                    Some((name, Value::Object(type_schema(&arg.type_name))))
                })
                .collect();
            json!({"type": "object", "properties": properties})
        }
    };
    if function.returns_set {
        json!({"type": "array", "items": one})
    } else {
        one
    }
}

fn reference(kind: &str, key: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{key}")})
}

/// Component keys must match `^[a-zA-Z0-9.\-_]+$`. Other characters become `_`, and a key already
/// taken (`a b` and `a_b`) gets a numeric suffix. Keys need no JSON-pointer escaping since `~`
/// and `/` are among the replaced characters.
#[derive(Default)]
struct ComponentKeys {
    taken: HashSet<String>,
    by_name: BTreeMap<String, String>,
}

impl ComponentKeys {
    fn claim(&mut self, name: &str) -> String {
        let base: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() {
            "_".to_owned()
        } else {
            base
        };
        let mut key = base.clone();
        let mut n = 2;
        while !self.taken.insert(key.clone()) {
            key = format!("{base}_{n}");
            n += 1;
        }
        self.by_name
            .entry(name.to_owned())
            .or_insert_with(|| key.clone());
        key
    }

    /// The key first claimed for `name`.
    fn get(&self, name: &str) -> Option<&String> {
        self.by_name.get(name)
    }
}

/// A name as one path segment: unreserved characters stay, others are percent-encoded, so that
/// `{`, `/` or `?` in a table name cannot be read as template, separator or query.
fn encode_path_segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_keys_are_sanitised_and_unique() {
        let mut keys = ComponentKeys::default();
        assert_eq!(keys.claim("films"), "films");
        assert_eq!(keys.claim("my table"), "my_table");
        assert_eq!(keys.claim("my_table"), "my_table_2");
        assert_eq!(keys.claim("été/~"), "_t___");
        assert_eq!(keys.get("my table").map(String::as_str), Some("my_table"));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_path_segment("films"), "films");
        assert_eq!(encode_path_segment("a b/{c}"), "a%20b%2F%7Bc%7D");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
    }

    #[test]
    fn types_map_to_json_types_with_formats() {
        let ty = |name| Value::Object(type_schema(name));
        assert_eq!(ty("integer"), json!({"type": "integer", "format": "int32"}));
        assert_eq!(ty("bigint"), json!({"type": "integer", "format": "int64"}));
        assert_eq!(
            ty("numeric"),
            json!({"type": "number", "format": "numeric"})
        );
        assert_eq!(ty("boolean"), json!({"type": "boolean"}));
        assert_eq!(ty("jsonb"), json!({"format": "jsonb"}));
        assert_eq!(ty("uuid"), json!({"type": "string", "format": "uuid"}));
        assert_eq!(
            ty("timestamp with time zone"),
            json!({"type": "string", "format": "date-time"})
        );
        assert_eq!(ty("text"), json!({"type": "string", "format": "text"}));
    }
}
