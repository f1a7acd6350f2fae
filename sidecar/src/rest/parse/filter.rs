//! Filters: `col=op.value`, and the same conditions inside `or=(…)` / `and=(…)` trees.
//!
//! ```text
//! operation := ['not.'] ( 'in.' list | 'is.' is_value | 'isdistinct.' value
//!                       | fts ['(' language ')'] '.' value
//!                       | operator ['(' ('any'|'all') ')'] '.' value )
//! list      := '(' element (',' element)* ')'     element: "quoted" (backslash escapes) or raw
//! ```
//! A top-level value is everything after the operator, dots included (`eq.1.5`). Inside a logic
//! tree a value ends at `,` or `)` unless it is quoted or a `{…}` array literal. Values stay text:
//! they become bound parameters, and Postgres parses them against the column's type.

use super::cursor::{Cursor, Failure};
use super::field::{self, Field};

/// One condition on a field. `negated` is the `not.` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: Field,
    pub negated: bool,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `eq.5`, `like(any).{a*,b*}`: a binary operator against one value.
    Compare {
        operator: Operator,
        quantifier: Option<Quantifier>,
        value: String,
    },
    /// `in.(1,2,"a,b")`; `in.()` is the empty list.
    In(Vec<String>),
    /// `is.null`: a keyword, since `IS` cannot take a bound parameter.
    Is(IsValue),
    /// `isdistinct.5`: `IS DISTINCT FROM`.
    IsDistinct(String),
    /// `fts(english).cat & dog`.
    FullText {
        operator: FtsOperator,
        language: Option<String>,
        query: String,
    },
}

/// The operators that compare a field with one value (SQL spelling in each doc line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Eq,
    /// `<>`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `LIKE`; the value's `*` are already turned into `%`.
    Like,
    /// `ILIKE`; the value's `*` are already turned into `%`.
    Ilike,
    /// `~`
    Match,
    /// `~*`
    Imatch,
    /// `@>` (cs)
    Contains,
    /// `<@` (cd)
    ContainedIn,
    /// `&&` (ov)
    Overlaps,
    /// `<<` (sl)
    StrictlyLeft,
    /// `>>` (sr)
    StrictlyRight,
    /// `&<` (nxr)
    NotExtendsRight,
    /// `&>` (nxl)
    NotExtendsLeft,
    /// `-|-` (adj)
    Adjacent,
}

const OPERATORS: [(&str, Operator); 18] = [
    ("eq", Operator::Eq),
    ("neq", Operator::Neq),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("like", Operator::Like),
    ("ilike", Operator::Ilike),
    ("match", Operator::Match),
    ("imatch", Operator::Imatch),
    ("cs", Operator::Contains),
    ("cd", Operator::ContainedIn),
    ("ov", Operator::Overlaps),
    ("sl", Operator::StrictlyLeft),
    ("sr", Operator::StrictlyRight),
    ("nxr", Operator::NotExtendsRight),
    ("nxl", Operator::NotExtendsLeft),
    ("adj", Operator::Adjacent),
];

const OPERATOR_HINT: &str = "operators are eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, \
    in, is, isdistinct, fts, plfts, phfts, wfts, cs, cd, ov, sl, sr, nxr, nxl, adj, each optionally \
    after not.";

impl Operator {
    pub fn from_name(name: &str) -> Option<Self> {
        OPERATORS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, op)| *op)
    }

    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(n, _)| *n)
    }

    /// PostgREST allows `(any)`/`(all)` only on these.
    pub fn takes_quantifier(self) -> bool {
        use Operator::*;
        matches!(
            self,
            Eq | Gt | Gte | Lt | Lte | Like | Ilike | Match | Imatch
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsOperator {
    /// `fts`: `to_tsquery`
    Fts,
    /// `plfts`: `plainto_tsquery`
    Plain,
    /// `phfts`: `phraseto_tsquery`
    Phrase,
    /// `wfts`: `websearch_to_tsquery`
    Websearch,
}

/// Where a single value ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueEnd {
    /// A filter parameter: the value is the rest of the input.
    Rest,
    /// Inside `or=(…)`: at `,` or `)`.
    LogicItem,
}

/// A filter parameter's value, e.g. `not.in.(1,2)`.
pub(crate) fn parse_operation(value: &str) -> Result<(bool, Operation), Failure> {
    let mut c = Cursor::new(value);
    let parsed = operation(&mut c, ValueEnd::Rest)?;
    c.expect_end("the end of the value")?;
    Ok(parsed)
}

/// `not.` and an operation; the cursor is left after the value.
pub(crate) fn operation(c: &mut Cursor, end: ValueEnd) -> Result<(bool, Operation), Failure> {
    let negated = c.eat_str("not.");
    let start = c.pos();
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    let operation = match name {
        "in" => {
            c.expect('.')?;
            Operation::In(list(c)?)
        }
        "is" => {
            c.expect('.')?;
            Operation::Is(is_value(c)?)
        }
        "isdistinct" => {
            c.expect('.')?;
            Operation::IsDistinct(value(c, end)?)
        }
        "fts" | "plfts" | "phfts" | "wfts" => full_text(c, name, end)?,
        _ => match Operator::from_name(name) {
            Some(operator) => compare(c, operator, end)?,
            None if name.is_empty() => {
                return Err(c.unexpected("an operator").with_hint(OPERATOR_HINT))
            }
            None => {
                return Err(Failure::syntax(start, format!("unknown operator '{name}'"))
                    .with_hint(OPERATOR_HINT))
            }
        },
    };
    Ok((negated, operation))
}

fn compare(c: &mut Cursor, operator: Operator, end: ValueEnd) -> Result<Operation, Failure> {
    let quantifier = if operator.takes_quantifier() && c.eat('(') {
        let at = c.pos();
        let quantifier = match c.take_while(|ch| ch.is_ascii_alphabetic()) {
            "any" => Quantifier::Any,
            "all" => Quantifier::All,
            _ => return Err(Failure::syntax(at, "expected 'any' or 'all'")),
        };
        c.expect(')')?;
        Some(quantifier)
    } else {
        None
    };
    c.expect('.')?;
    let mut value = value(c, end)?;
    // PostgREST's LIKE wildcard is `*`, since `%` would have to be escaped in a URL.
    if matches!(operator, Operator::Like | Operator::Ilike) {
        value = value.replace('*', "%");
    }
    Ok(Operation::Compare {
        operator,
        quantifier,
        value,
    })
}

fn full_text(c: &mut Cursor, name: &str, end: ValueEnd) -> Result<Operation, Failure> {
    let operator = match name {
        "fts" => FtsOperator::Fts,
        "plfts" => FtsOperator::Plain,
        "phfts" => FtsOperator::Phrase,
        _ => FtsOperator::Websearch,
    };
    let language = if c.eat('(') {
        let language = field::identifier(c, "a text search configuration")?;
        c.expect(')')?;
        Some(language)
    } else {
        None
    };
    c.expect('.')?;
    Ok(Operation::FullText {
        operator,
        language,
        query: value(c, end)?,
    })
}

fn is_value(c: &mut Cursor) -> Result<IsValue, Failure> {
    let at = c.pos();
    let word = c.take_while(|ch| ch.is_ascii_alphabetic() || ch == '_');
    match word.to_ascii_lowercase().as_str() {
        "null" => Ok(IsValue::Null),
        "not_null" => Ok(IsValue::NotNull),
        "true" => Ok(IsValue::True),
        "false" => Ok(IsValue::False),
        "unknown" => Ok(IsValue::Unknown),
        _ => Err(Failure::syntax(
            at,
            "expected null, not_null, true, false or unknown after is.",
        )),
    }
}

fn value(c: &mut Cursor, end: ValueEnd) -> Result<String, Failure> {
    match end {
        ValueEnd::Rest => Ok(c.take_rest().to_owned()),
        ValueEnd::LogicItem => Ok(logic_value(c)),
    }
}

/// A value inside a logic tree: like a list element, or a `{…}` array literal (whose commas do
/// not end it).
fn logic_value(c: &mut Cursor) -> String {
    let start = c.pos();
    if c.eat('{') {
        let inner = c.take_while(|ch| ch != '{' && ch != '}');
        if c.eat('}') {
            return format!("{{{inner}}}");
        }
        c.reset(start);
    }
    element(c)
}

/// Quoted text when the quote closes right before `,` or `)`; otherwise raw text up to `,` or
/// `)`, quotes and spaces included, as PostgREST reads it.
fn element(c: &mut Cursor) -> String {
    let start = c.pos();
    if c.peek() == Some('"') {
        if let Ok(text) = c.quoted() {
            if matches!(c.peek(), None | Some(',' | ')')) {
                return text;
            }
        }
        c.reset(start);
    }
    c.take_while(|ch| ch != ',' && ch != ')').to_owned()
}

/// `(a,"b,c", d)`. `()` is the empty list; `("")` is a list holding the empty string.
fn list(c: &mut Cursor) -> Result<Vec<String>, Failure> {
    c.skip_ws();
    c.expect('(')?;
    c.skip_ws();
    let mut elements = Vec::new();
    if !c.eat(')') {
        loop {
            elements.push(element(c));
            if !c.eat(',') {
                break;
            }
        }
        c.expect(')').map_err(|_| c.unexpected("',' or ')'"))?;
    }
    c.skip_ws();
    Ok(elements)
}
