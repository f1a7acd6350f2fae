//! The whole query string: which parameter is which, each handed to its grammar.
//!
//! As in PostgREST: `select`, `columns` and `on_conflict` are reserved keys, and their first
//! occurrence counts; a key whose last dot-separated word is `order`, `limit`, `offset`, `and` or
//! `or` is reserved at any embed path (`comments.order`, `author.not.or`); `limit`/`offset` keep
//! their last occurrence, `order` and logic parameters keep every occurrence. Every other key
//! that has a value is a filter — or, for a function read with GET, a function argument when its
//! value is not an operator expression (`?name=bob` calls `f(name => 'bob')`, `?age=gt.3`
//! filters the result).

use std::collections::BTreeMap;

use super::cursor::Failure;
use super::decode::{split_query, RawPair};
use super::error::ParseError;
use super::field;
use super::filter::{self, Condition};
use super::logic::{self, LogicTree};
use super::order::{self, OrderTerm};
use super::page::{self, Bound, Page};
use super::select::{self, SelectItem};
use super::Scoped;

#[derive(Debug, Default)]
pub(crate) struct QueryParams {
    pub select: Vec<SelectItem>,
    pub filters: Vec<Scoped<Condition>>,
    pub logic: Vec<Scoped<LogicTree>>,
    pub order: Vec<Scoped<Vec<OrderTerm>>>,
    /// From `limit`/`offset` only, by embed path (the top level is the empty path).
    pub pages: BTreeMap<Vec<String>, Page>,
    pub columns: Option<Vec<String>>,
    pub on_conflict: Option<Vec<String>>,
    pub args: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
}

pub(crate) fn parse_query(raw: &str, function_read: bool) -> Result<QueryParams, ParseError> {
    let mut query = QueryParams {
        select: vec![SelectItem::Star],
        ..QueryParams::default()
    };
    let (mut seen_select, mut seen_columns, mut seen_on_conflict) = (false, false, false);
    for RawPair { key, value } in split_query(raw)? {
        let first = match key.as_str() {
            "select" => Some(std::mem::replace(&mut seen_select, true)),
            "columns" => Some(std::mem::replace(&mut seen_columns, true)),
            "on_conflict" => Some(std::mem::replace(&mut seen_on_conflict, true)),
            _ => None,
        };
        let Some(value) = value else { continue };
        match first {
            None => embeddable(&mut query, key, value, function_read)?,
            Some(true) => {}
            Some(false) if key == "select" => {
                query.select = at(&key, &value, select::parse_select(&value))?;
            }
            Some(false) if key == "columns" => {
                query.columns = Some(at(&key, &value, names(&value))?);
            }
            Some(false) => query.on_conflict = Some(at(&key, &value, names(&value))?),
        }
    }
    Ok(query)
}

/// What a key that is not `select`, `columns` or `on_conflict` is, by its last word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Order,
    Limit,
    Offset,
    Logic,
    Filter,
}

/// Everything but `select`, `columns` and `on_conflict`.
fn embeddable(
    query: &mut QueryParams,
    key: String,
    value: String,
    function_read: bool,
) -> Result<(), ParseError> {
    let kind = match key.rsplit('.').next().unwrap_or_default() {
        "order" => Kind::Order,
        "limit" => Kind::Limit,
        "offset" => Kind::Offset,
        "and" | "or" => Kind::Logic,
        _ => Kind::Filter,
    };
    match kind {
        Kind::Order => {
            let path = at(&key, &key, embed_path(&key))?;
            let terms = at(&key, &value, order::parse_order(&value))?;
            query.order.push(Scoped { path, item: terms });
        }
        Kind::Limit | Kind::Offset => {
            let path = at(&key, &key, embed_path(&key))?;
            let rows = query.pages.entry(path).or_default();
            if kind == Kind::Limit {
                rows.limit = Some(page::parse_bound(&key, &value, Bound::Limit)?);
            } else {
                rows.offset = page::parse_bound(&key, &value, Bound::Offset)?;
            }
        }
        Kind::Logic => {
            let (path, negated, operator) = at(&key, &key, logic::parse_key(&key))?;
            let tree = at(&key, &value, logic::parse_value(&value, negated, operator))?;
            query.logic.push(Scoped { path, item: tree });
        }
        Kind::Filter => {
            query.params.push((key.clone(), value.clone()));
            match parse_filter(&key, &value) {
                Ok(filter) => query.filters.push(filter),
                Err(_) if function_read => query.args.push((key, value)),
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// One filter parameter, `author.name=eq.bob`: its embed path and condition.
pub fn parse_filter(key: &str, value: &str) -> Result<Scoped<Condition>, ParseError> {
    let (path, field) = at(key, key, field::tree_path(key))?;
    let (negated, operation) = at(key, value, filter::parse_operation(value))?;
    Ok(Scoped {
        path,
        item: Condition {
            field,
            negated,
            operation,
        },
    })
}

/// The embed path of a reserved key: `a.b.order` is `[a, b]`.
fn embed_path(key: &str) -> Result<Vec<String>, Failure> {
    let mut c = super::cursor::Cursor::new(key);
    let mut names = field::dotted_names(&mut c)?;
    c.expect_end("'.' or the end of the key")?;
    names.pop();
    Ok(names)
}

/// `columns=a,b` and `on_conflict=a,b`: names separated by commas.
fn names(value: &str) -> Result<Vec<String>, Failure> {
    let mut c = super::cursor::Cursor::new(value);
    let mut names = Vec::new();
    loop {
        c.skip_ws();
        names.push(field::name(&mut c)?);
        c.skip_ws();
        if !c.eat(',') {
            break;
        }
    }
    c.expect_end("',' or the end of the list")?;
    Ok(names)
}

/// Attaches the parameter and the parsed text to a grammar failure.
fn at<T>(key: &str, input: &str, parsed: Result<T, Failure>) -> Result<T, ParseError> {
    parsed.map_err(|failure| failure.into_error(key, input))
}
