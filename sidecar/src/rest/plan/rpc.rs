//! A call of `/rest/v1/rpc/<function>` resolved against the schema cache: which overload, which
//! arguments (named, or the whole body as the single unnamed one), how the transaction runs and
//! what the result looks like. Pure: no I/O, no SQL text.
//!
//! Functions that return rows (a table's row type, `RETURNS TABLE`, OUT arguments) are planned as
//! reads of those rows, so `select=`, filters, `order=`, paging, counts and `Accept` work as on a
//! table: a composite type of a table in the cache reads as that table (embedding included); the
//! columns of `RETURNS TABLE`/OUT arguments become a table of their own for the planner.

use axum::http::Method;

use super::{plan_read, schema_for, ReadPlan, TotalCount};
use crate::rest::parse::{Count, Handling, Page, RestRequest, Transaction};
use crate::rest::RestError;
use crate::schema::{
    Column, ExposedSchemas, Function, FunctionArg, RelationKind, ReturnKind, SchemaCache, Table,
    Volatility,
};

/// A function call, ready to become SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallPlan {
    pub schema: String,
    pub function: String,
    pub args: CallArgs,
    pub result: CallResult,
    /// GET and HEAD, and POST of a STABLE or IMMUTABLE function, run read-only (PostgREST's rule).
    pub read_only: bool,
    /// `Prefer: tx=rollback`.
    pub rollback: bool,
    /// `limit`/`offset` (with `--max-rows`) of a `SETOF` scalar or unknown composite; rows read
    /// as a relation carry their page in their `ReadPlan`.
    pub page: Page,
    /// `Prefer: count=…` (any kind): the statement counts the call's rows exactly, since the
    /// planner cannot estimate a function's rows from statistics (it assumes `ROWS 1000`).
    pub count: Option<Count>,
    /// `Prefer: handling=strict, max-affected=N`: more rows returned than N fail the call
    /// (PGRST124) and undo its writes, as PostgREST 12 checks a call's result.
    pub max_affected: Option<u64>,
}

/// How the arguments reach the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallArgs {
    /// Named notation: each given argument, read by Postgres from the JSON object `values` as the
    /// argument's catalog type (`json_to_record`). Arguments left out take their defaults.
    Named {
        args: Vec<NamedArg>,
        /// A JSON object holding exactly the given arguments.
        values: String,
    },
    /// `f(json)`: the request body, whole, as the single unnamed argument (for `bytea`, the
    /// body's bytes in hex).
    Body { type_name: String, body: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedArg {
    pub name: String,
    /// From the catalog (`format_type`).
    pub type_name: String,
    pub variadic: bool,
}

/// What the response is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallResult {
    /// `RETURNS void`: 204 without a body.
    Void,
    /// A scalar: its JSON value; `SETOF` a scalar: an array of them.
    Scalar { set: bool },
    /// Rows read as a relation; without `SETOF` the (first) row is answered as an object.
    Rows { read: Box<ReadPlan>, set: bool },
    /// A composite type the cache has no columns for: rows as JSON objects, without filters.
    Records { set: bool },
}

/// Why a call cannot be planned, as PostgREST answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("Could not find the function {schema}.{name}{} in the schema cache", with_args(.args))]
    NotFound {
        schema: String,
        name: String,
        /// The argument names given, sorted.
        args: Vec<String>,
        /// A POST whose body could have been the single unnamed json/jsonb argument.
        json_body: bool,
        /// PostgREST's "Perhaps you meant to call the function …": the closest overload's
        /// parameters, or with no overload of that name, the closest function name.
        suggestion: Option<String>,
    },
    #[error("Could not choose the best candidate function between: {}", .candidates.join(", "))]
    Ambiguous { candidates: Vec<String> },
}

impl RpcError {
    pub fn code(&self) -> &'static str {
        match self {
            RpcError::NotFound { .. } => "PGRST202",
            RpcError::Ambiguous { .. } => "PGRST203",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            RpcError::NotFound { .. } => 404,
            RpcError::Ambiguous { .. } => 300,
        }
    }

    pub fn details(&self) -> Option<String> {
        match self {
            RpcError::NotFound {
                schema,
                name,
                args,
                json_body,
                ..
            } => {
                let given = match args.as_slice() {
                    [] => " without parameters".to_owned(),
                    [one] => format!(" with parameter {one}"),
                    many => format!(" with parameters {}", many.join(", ")),
                };
                let or_body = if *json_body {
                    " or with a single unnamed json/jsonb parameter"
                } else {
                    ""
                };
                Some(format!(
                    "Searched for the function {schema}.{name}{given}{or_body}, but no matches \
                     were found in the schema cache."
                ))
            }
            RpcError::Ambiguous { .. } => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            RpcError::NotFound { suggestion, .. } => suggestion
                .as_ref()
                .map(|found| format!("Perhaps you meant to call the function {found}")),
            RpcError::Ambiguous { .. } => Some(
                "Try renaming the parameters or the function itself in the database so function \
                 overloading can be resolved"
                    .to_owned(),
            ),
        }
    }
}

fn with_args(args: &[String]) -> String {
    if args.is_empty() {
        " without parameters".to_owned()
    } else {
        format!("({})", args.join(", "))
    }
}

/// `public.f(a, b)`: a function by its argument names, as error messages show it.
/// PostgREST's PGRST202 suggestion: among the overloads of `name`, the one whose sorted
/// parameter names (`(a, b)`) are closest to the given ones; without any overload, the function
/// of the schema whose name is closest.
fn suggest_function(
    cache: &SchemaCache,
    schema: &str,
    name: &str,
    given: &[String],
) -> Option<String> {
    let overloads = cache.function_overloads(schema, name);
    if overloads.is_empty() {
        let names = cache
            .schema(schema)
            .into_iter()
            .flat_map(|objects| objects.functions.keys().map(String::as_str));
        return super::fuzzy::closest(names, name, false).map(|found| format!("{schema}.{found}"));
    }
    let listed = |names: Vec<&str>| {
        let mut names = names;
        names.sort_unstable();
        format!("({})", names.join(", "))
    };
    let lists: Vec<String> = overloads
        .iter()
        .map(|f| {
            listed(
                f.args
                    .iter()
                    .filter_map(|arg| arg.name.as_deref())
                    .collect(),
            )
        })
        .collect();
    let wanted = listed(given.iter().map(String::as_str).collect());
    super::fuzzy::closest(lists.iter().map(String::as_str), &wanted, false)
        .map(|params| format!("{schema}.{name}{params}"))
}

/// `public.f(a => integer)`: an overload with its types, for the ambiguity error.
fn typed_signature(function: &Function) -> String {
    let args: Vec<String> = function
        .args
        .iter()
        .map(|arg| match &arg.name {
            Some(name) => format!("{name} => {}", arg.type_name),
            None => arg.type_name.clone(),
        })
        .collect();
    format!("{}.{}({})", function.schema, function.name, args.join(", "))
}

/// The arguments a request gives: a JSON object's keys (POST), the query string's arguments
/// (GET, HEAD), or a body that is not an object (only a single-argument function takes that),
/// or not JSON at all (only a single `text` or `xml` argument takes that).
enum Given {
    Object(serde_json::Map<String, serde_json::Value>),
    /// A JSON array of objects with the same keys: PostgREST 12 has no bulk calls (it removed
    /// `params=multiple-objects` in v11) and calls the function once, with the first object
    /// (`json_to_recordset(…) LIMIT 1`); a function taking one unnamed json argument gets the
    /// whole array.
    Array(serde_json::Map<String, serde_json::Value>),
    Other,
    NotJson(String),
}

/// Single-argument types that take a body that is not JSON (`text/plain`, `text/xml`,
/// `application/octet-stream`).
const RAW_BODY_TYPES: &[&str] = &["text", "xml", "bytea"];

fn given_args(method: &Method, request: &RestRequest, body: &[u8]) -> Result<Given, RestError> {
    if method == Method::GET || method == Method::HEAD {
        let object = request
            .args
            .iter()
            .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
            .collect();
        return Ok(Given::Object(object));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Given::Object(serde_json::Map::new()));
    }
    Ok(match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => Given::Object(object),
        Ok(serde_json::Value::Array(items)) if items.iter().all(|item| item.is_object()) => {
            first_of_same_keys(items)?
        }
        Ok(_) => Given::Other,
        Err(err) => Given::NotJson(err.to_string()),
    })
}

/// The first object of an array of objects, refused (PGRST102) when another object's keys differ
/// from the first one's, as PostgREST checks an array body; `[]` gives no arguments.
fn first_of_same_keys(items: Vec<serde_json::Value>) -> Result<Given, RestError> {
    let mut objects = items.into_iter().filter_map(|item| match item {
        serde_json::Value::Object(object) => Some(object),
        _ => None,
    });
    let Some(first) = objects.next() else {
        return Ok(Given::Object(serde_json::Map::new()));
    };
    for (index, object) in objects.enumerate() {
        let same = object.len() == first.len() && object.keys().all(|k| first.contains_key(k));
        if !same {
            return Err(RestError::KeysDiffer { object: index + 1 });
        }
    }
    Ok(Given::Array(first))
}

/// `Prefer: params=single-object`: the body, checked to be JSON, as the named argument of the
/// overload of `name` that takes exactly one `json` or `jsonb` argument.
fn single_object_arg(
    cache: &SchemaCache,
    schema: &str,
    name: &str,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, RestError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| RestError::InvalidBody {
            details: err.to_string(),
        })?;
    let function = cache
        .function_overloads(schema, name)
        .iter()
        .find(|f| matches!(f.args.as_slice(), [arg] if arg.name.is_some() && JSON_TYPES.contains(&arg.type_name.as_str())))
        .ok_or_else(|| RpcError::NotFound {
            schema: schema.to_owned(),
            name: name.to_owned(),
            args: vec!["<one json or jsonb argument>".to_owned()],
            json_body: true,
            suggestion: None,
        })?;
    let arg = function.args[0].name.clone().unwrap_or_default();
    Ok(serde_json::Map::from_iter([(arg, value)]))
}

const JSON_TYPES: &[&str] = &["json", "jsonb"];

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
    text
}

/// Resolves a call of `name` with `request` (parsed as `Target::Function`) and `body`.
pub(crate) fn plan_call(
    cache: &SchemaCache,
    name: &str,
    method: &Method,
    request: RestRequest,
    body: &[u8],
    max_rows: Option<u64>,
) -> Result<CallPlan, RestError> {
    let schema = schema_for(cache, request.profile.as_deref())?.to_owned();
    let given = if request.prefer.single_object && method == Method::POST {
        // The body is one value for the one json/jsonb argument: its keys are not arguments.
        Given::Object(single_object_arg(cache, &schema, name, body)?)
    } else {
        given_args(method, &request, body)?
    };
    let mut names: Vec<String> = match &given {
        Given::Object(object) | Given::Array(object) => object.keys().cloned().collect(),
        Given::Other | Given::NotJson(_) => Vec::new(),
    };
    let invalid_body = |details: &str| RestError::InvalidBody {
        details: details.to_owned(),
    };
    names.sort();
    let not_found = || RpcError::NotFound {
        schema: schema.clone(),
        name: name.to_owned(),
        args: names.clone(),
        json_body: method == Method::POST,
        suggestion: suggest_function(cache, &schema, name, &names),
    };
    let function = cache.function(&schema, name, &names).map_err(|err| {
        if let Given::NotJson(details) = &given {
            return invalid_body(details);
        }
        RestError::from(match err {
            crate::schema::FunctionLookupError::NotFound { .. } => not_found(),
            crate::schema::FunctionLookupError::Ambiguous { .. } => RpcError::Ambiguous {
                candidates: cache
                    .function_overloads(&schema, name)
                    .iter()
                    .filter(|f| f.is_callable() && f.accepts(&names))
                    .map(typed_signature)
                    .collect(),
            },
        })
    })?;
    let reads = method == Method::GET || method == Method::HEAD;
    let single_type = function.args.first().map(|arg| arg.type_name.as_str());
    let args = match given {
        Given::Object(object) | Given::Array(object) if function.accepts(&names) => {
            named_args(function, &object)
        }
        Given::NotJson(details)
            if !function.takes_body_as_single_arg()
                || !single_type.is_some_and(|t| RAW_BODY_TYPES.contains(&t)) =>
        {
            return Err(invalid_body(&details))
        }
        // Bytes travel as hex text, which the SQL decodes (`CallArgs::Body`'s bytea case).
        _ if function.takes_body_as_single_arg() && single_type == Some("bytea") && !reads => {
            CallArgs::Body {
                type_name: "bytea".to_owned(),
                body: hex(body),
            }
        }
        // The fallback of the lookup: the whole body is the single unnamed argument.
        _ if function.takes_body_as_single_arg() && !reads => CallArgs::Body {
            type_name: function.args[0].type_name.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
        },
        _ => return Err(not_found().into()),
    };
    let read_only = reads || function.volatility != Volatility::Volatile;
    let rollback = request.prefer.transaction == Some(Transaction::Rollback);
    let mut page = request.page;
    if let Some(max) = max_rows {
        page.limit = Some(page.limit.map_or(max, |limit| limit.min(max)));
    }
    let count = request.prefer.count;
    // As for writes, max-affected counts only with handling=strict.
    let max_affected = request
        .prefer
        .max_affected
        .filter(|_| request.prefer.handling == Some(Handling::Strict));
    let result = call_result(cache, function, request, max_rows)?;
    Ok(CallPlan {
        schema: function.schema.clone(),
        function: function.name.clone(),
        args,
        result,
        read_only,
        rollback,
        page,
        count,
        max_affected,
    })
}

fn named_args(
    function: &Function,
    object: &serde_json::Map<String, serde_json::Value>,
) -> CallArgs {
    let args = function
        .args
        .iter()
        .filter_map(|arg: &FunctionArg| {
            let name = arg.name.as_ref()?;
            object.contains_key(name).then(|| NamedArg {
                name: name.clone(),
                type_name: arg.type_name.clone(),
                variadic: arg.variadic,
            })
        })
        .collect();
    CallArgs::Named {
        args,
        values: serde_json::Value::Object(object.clone()).to_string(),
    }
}

fn call_result(
    cache: &SchemaCache,
    function: &Function,
    mut request: RestRequest,
    max_rows: Option<u64>,
) -> Result<CallResult, RestError> {
    let set = function.returns_set;
    match &function.returns {
        ReturnKind::Void => Ok(CallResult::Void),
        ReturnKind::Scalar => Ok(CallResult::Scalar { set }),
        ReturnKind::Composite { relation } => {
            if cache.table(&relation.schema, &relation.name).is_none() {
                return Ok(CallResult::Records { set });
            }
            request.profile = Some(relation.schema.clone());
            let read = exact_count(plan_read(cache, &relation.name, request, max_rows)?);
            Ok(CallResult::Rows {
                read: Box::new(read),
                set,
            })
        }
        ReturnKind::OutArgs => {
            let table = out_args_table(function);
            // The function's schema is exposed, so this cannot fail; if it did, the function's
            // rows would have nowhere to be read from.
            let exposed = ExposedSchemas::new([function.schema.clone()]).map_err(|_| {
                RestError::TableNotFound {
                    schema: function.schema.clone(),
                    table: function.name.clone(),
                }
            })?;
            let own = SchemaCache::new(&exposed, vec![table], Vec::new());
            request.profile = Some(function.schema.clone());
            let read = exact_count(plan_read(&own, &function.name, request, max_rows)?);
            Ok(CallResult::Rows {
                read: Box::new(read),
                set,
            })
        }
    }
}

/// The rows of `RETURNS TABLE (...)` or OUT arguments as a table named after the function, so
/// that the read planner resolves `select=`, filters and `order=` against its columns. An unnamed
/// OUT argument is `columnN`, as Postgres names it.
fn out_args_table(function: &Function) -> Table {
    let columns = function
        .out_args
        .iter()
        .enumerate()
        .map(|(i, arg)| Column {
            name: arg
                .name
                .clone()
                .unwrap_or_else(|| format!("column{}", i + 1)),
            position: i16::try_from(i + 1).unwrap_or(i16::MAX),
            type_name: arg.type_name.clone(),
            type_oid: arg.type_oid,
            base_type: arg.type_name.clone(),
            base_type_oid: arg.type_oid,
            element_type: None,
            element_type_oid: None,
            enum_values: Vec::new(),
            max_length: None,
            nullable: true,
            default: None,
            identity: None,
            generated: false,
            description: None,
        })
        .collect();
    Table {
        oid: function.oid,
        schema: function.schema.clone(),
        name: function.name.clone(),
        kind: RelationKind::View,
        description: None,
        insertable: false,
        updatable: false,
        deletable: false,
        columns,
        primary_key: Vec::new(),
        unique_keys: Vec::new(),
        foreign_keys: Vec::new(),
    }
}

/// A call's rows are counted exactly whatever `count=` asked: the planner cannot estimate a
/// function's rows from statistics (it assumes `ROWS 1000`), so an estimate would mislead.
fn exact_count(mut read: ReadPlan) -> ReadPlan {
    read.count = read.count.map(|_| TotalCount::Exact);
    read
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;
    use crate::rest::parse::{parse_request, Target};
    use crate::schema::QualifiedName;

    fn arg(name: Option<&str>, type_name: &str, has_default: bool) -> FunctionArg {
        FunctionArg {
            name: name.map(str::to_owned),
            type_name: type_name.to_owned(),
            type_oid: 0,
            has_default,
            variadic: false,
        }
    }

    fn function(name: &str, args: Vec<FunctionArg>, returns: ReturnKind) -> Function {
        Function {
            oid: 1,
            schema: "public".into(),
            name: name.into(),
            description: None,
            args,
            out_args: Vec::new(),
            return_type: "integer".into(),
            return_type_oid: 23,
            returns_set: false,
            single_row: true,
            returns,
            volatility: Volatility::Immutable,
        }
    }

    fn cache() -> SchemaCache {
        let add = function(
            "add",
            vec![
                arg(Some("a"), "integer", false),
                arg(Some("b"), "integer", true),
            ],
            ReturnKind::Scalar,
        );
        let echo = function("echo", vec![arg(None, "json", false)], ReturnKind::Scalar);
        let mut bump = function("bump", Vec::new(), ReturnKind::Void);
        bump.volatility = Volatility::Volatile;
        let mut rows = function(
            "rows",
            Vec::new(),
            ReturnKind::Composite {
                relation: QualifiedName::new("public", "nowhere"),
            },
        );
        rows.returns_set = true;
        let mut pairs = function("pairs", Vec::new(), ReturnKind::OutArgs);
        pairs.returns_set = true;
        pairs.out_args = vec![arg(Some("k"), "text", false), arg(None, "integer", false)];
        let exposed = ExposedSchemas::new(["public"]).unwrap();
        SchemaCache::new(&exposed, Vec::new(), vec![add, echo, bump, rows, pairs])
    }

    fn plan(method: Method, path: &str, body: &str) -> Result<CallPlan, RestError> {
        let (name, query) = path.split_once('?').unwrap_or((path, ""));
        let request = parse_request(&method, Target::Function, query, &HeaderMap::new()).unwrap();
        plan_call(&cache(), name, &method, request, body.as_bytes(), None)
    }

    #[test]
    fn named_arguments_keep_only_those_given() {
        let call = plan(Method::POST, "add", r#"{"a": 1}"#).unwrap();
        let CallArgs::Named { args, values } = call.args else {
            panic!("{:?}", call.args)
        };
        assert_eq!(
            args,
            [NamedArg {
                name: "a".into(),
                type_name: "integer".into(),
                variadic: false
            }]
        );
        assert_eq!(values, r#"{"a":1}"#);
        assert_eq!(call.result, CallResult::Scalar { set: false });
        assert!(call.read_only, "an IMMUTABLE function runs read-only");
        let get = plan(Method::GET, "add?a=1&b=2", "").unwrap();
        let CallArgs::Named { values, .. } = get.args else {
            panic!()
        };
        assert_eq!(values, r#"{"a":"1","b":"2"}"#);
    }

    #[test]
    fn a_volatile_post_writes_and_a_get_never_does() {
        let post = plan(Method::POST, "bump", "").unwrap();
        assert!(!post.read_only);
        assert_eq!(post.result, CallResult::Void);
        assert!(plan(Method::GET, "bump", "").unwrap().read_only);
        let rollback = {
            let mut headers = HeaderMap::new();
            headers.insert("prefer", "tx=rollback".parse().unwrap());
            let request = parse_request(&Method::POST, Target::Function, "", &headers).unwrap();
            plan_call(&cache(), "bump", &Method::POST, request, b"", None).unwrap()
        };
        assert!(rollback.rollback);
    }

    #[test]
    fn a_single_json_argument_takes_the_body_by_post_only() {
        let call = plan(Method::POST, "echo", r#"{"x": [1]}"#).unwrap();
        assert_eq!(
            call.args,
            CallArgs::Body {
                type_name: "json".into(),
                body: r#"{"x": [1]}"#.into()
            }
        );
        assert!(plan(Method::POST, "echo", "[1, 2]").is_ok());
        assert_eq!(
            plan(Method::POST, "echo", "not json").unwrap_err().code(),
            "PGRST102"
        );
        assert!(matches!(
            plan(Method::GET, "echo?x=1", ""),
            Err(RestError::Rpc(RpcError::NotFound { .. }))
        ));
    }

    #[test]
    fn an_array_body_is_one_call_with_its_first_object() {
        let call = plan(
            Method::POST,
            "add",
            r#"[{"a": 1, "b": 2}, {"b": 4, "a": 3}]"#,
        )
        .unwrap();
        let CallArgs::Named { values, .. } = call.args else {
            panic!("{:?}", call.args)
        };
        assert_eq!(values, r#"{"a":1,"b":2}"#);
        let differ = plan(Method::POST, "add", r#"[{"a": 1, "b": 2}, {"a": 3}]"#).unwrap_err();
        assert_eq!(differ, RestError::KeysDiffer { object: 1 });
        // The single json argument takes the array whole.
        let echo = plan(Method::POST, "echo", r#"[{"x": 1}]"#).unwrap();
        assert!(matches!(echo.args, CallArgs::Body { ref body, .. } if body == r#"[{"x": 1}]"#));
    }

    #[test]
    fn unknown_calls_say_what_was_searched_and_what_exists() {
        let err = plan(Method::POST, "add", r#"{"c": 1, "a": 2}"#).unwrap_err();
        assert_eq!(err.code(), "PGRST202");
        assert_eq!(err.http_status(), 404);
        assert_eq!(
            err.to_string(),
            "Could not find the function public.add(a, c) in the schema cache"
        );
        assert_eq!(
            err.hint().as_deref(),
            Some("Perhaps you meant to call the function public.add(a, b)")
        );
        let none = plan(Method::POST, "nope", "").unwrap_err();
        assert_eq!(
            none.details().as_deref(),
            Some(
                "Searched for the function public.nope without parameters or with a single \
                 unnamed json/jsonb parameter, but no matches were found in the schema cache."
            )
        );
        assert_eq!(none.hint(), None);
        assert_eq!(
            plan(Method::POST, "add", "{").unwrap_err().code(),
            "PGRST102"
        );
    }

    #[test]
    fn rows_are_read_through_the_read_planner() {
        let pairs = plan(Method::POST, "pairs?select=k&column2=gt.1&order=k", "").unwrap();
        let CallResult::Rows { read, set: true } = pairs.result else {
            panic!("{:?}", pairs.result)
        };
        assert_eq!(
            (read.root.schema.as_str(), read.root.table.as_str()),
            ("public", "pairs")
        );
        assert_eq!(read.root.filters.len(), 1);
        assert_eq!(read.root.order.len(), 1);
        assert_eq!(
            plan(Method::POST, "pairs?nope=eq.1", "")
                .unwrap_err()
                .code(),
            "42703"
        );
        // A composite type the cache has no table for is answered without filters.
        let rows = plan(Method::POST, "rows", "").unwrap();
        assert_eq!(rows.result, CallResult::Records { set: true });
        let request = parse_request(
            &Method::POST,
            Target::Function,
            "limit=5&offset=2",
            &HeaderMap::new(),
        )
        .unwrap();
        let capped = plan_call(&cache(), "rows", &Method::POST, request, b"", Some(3)).unwrap();
        assert_eq!(
            capped.page,
            Page {
                offset: 2,
                limit: Some(3)
            }
        );
    }
}
