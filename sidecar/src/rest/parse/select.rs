//! `select=`: which columns to return and which related resources to embed.
//!
//! ```text
//! select  := [item (',' item)*]                        (may be empty: `select=`, `author()`)
//! item    := '*'
//!          | [alias ':'] name ['!' param]* '(' select ')'      an embedding
//!          | '...' name ['!' param]* '(' select ')'            a spread embedding
//!          | [alias ':'] 'count()' ['::' type]                 the count of rows
//!          | [alias ':'] name json_path ['::' type] ['.' agg '()' ['::' type]]
//!                                                       a column, or an aggregate of it
//! param   := 'inner' | 'left' | hint                   (hint: a foreign key or column name)
//! agg     := 'sum' | 'avg' | 'count' | 'max' | 'min'
//! ```
//! Spaces and tabs may surround every token. Whether aggregates are allowed is the planner's
//! decision (PostgREST's `db-aggregates-enabled`).

use super::cursor::{Cursor, Failure, MAX_DEPTH};
use super::field::{self, Field};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: every column the role may read.
    Star,
    Column(SelectColumn),
    Embed(Embed),
    /// `...rel(cols)`: the embedding's columns become the parent's (arrays for a to-many).
    Spread(Embed),
    Aggregate(SelectAggregate),
}

/// `alias:col::in_type.sum()::out_type`, or `count()` with no column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectAggregate {
    pub alias: Option<String>,
    pub function: AggregateFunction,
    /// None for `count()`: the count of rows.
    pub field: Option<Field>,
    /// The cast of the column before aggregating (`amount::int.sum()`).
    pub input_cast: Option<String>,
    /// The cast of the result (`amount.sum()::int`).
    pub cast: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunction {
    Sum,
    Avg,
    Count,
    Max,
    Min,
}

impl AggregateFunction {
    /// The SQL function, and the JSON key when there is no alias (as PostgREST names it).
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Sum => "sum",
            AggregateFunction::Avg => "avg",
            AggregateFunction::Count => "count",
            AggregateFunction::Max => "max",
            AggregateFunction::Min => "min",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectColumn {
    pub alias: Option<String>,
    pub field: Field,
    /// The type to cast to, as written (`text`, `double precision`); checked by the planner.
    pub cast: Option<String>,
}

/// `alias:relation!hint!inner(select)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub alias: Option<String>,
    /// A table, view or foreign-key column name; the planner decides which.
    pub relation: String,
    /// Disambiguates between several relationships: a foreign key or column name.
    pub hint: Option<String>,
    pub join: Option<JoinType>,
    pub select: Vec<SelectItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    /// `!inner`: parent rows without a match are dropped.
    Inner,
    /// `!left`: the default, parent rows are kept.
    Left,
}

const AGGREGATES: [(&str, AggregateFunction); 5] = [
    ("sum()", AggregateFunction::Sum),
    ("avg()", AggregateFunction::Avg),
    ("count()", AggregateFunction::Count),
    ("max()", AggregateFunction::Max),
    ("min()", AggregateFunction::Min),
];

pub(crate) fn parse_select(input: &str) -> Result<Vec<SelectItem>, Failure> {
    let mut c = Cursor::new(input);
    let items = items(&mut c, 0)?;
    c.expect_end("',' or the end of the select")?;
    Ok(items)
}

fn items(c: &mut Cursor, depth: usize) -> Result<Vec<SelectItem>, Failure> {
    let mut items = Vec::new();
    c.skip_ws();
    if c.at_end() || c.peek() == Some(')') {
        return Ok(items);
    }
    loop {
        items.push(item(c, depth)?);
        c.skip_ws();
        if !c.eat(',') {
            return Ok(items);
        }
    }
}

fn item(c: &mut Cursor, depth: usize) -> Result<SelectItem, Failure> {
    c.skip_ws();
    if c.eat_str("...") {
        c.skip_ws();
        let name = field::name(c)?;
        c.skip_ws();
        return embed(c, depth, None, name).map(SelectItem::Spread);
    }
    if c.eat('*') {
        end_of_item(c)?;
        return Ok(SelectItem::Star);
    }
    let alias = alias(c);
    let name = field::name(c)?;
    if name == "count" && c.eat_str("()") {
        let cast = cast(c)?;
        end_of_item(c)?;
        return Ok(SelectItem::Aggregate(SelectAggregate {
            alias,
            function: AggregateFunction::Count,
            field: None,
            input_cast: None,
            cast,
        }));
    }
    let after_name = c.pos();
    c.skip_ws();
    if matches!(c.peek(), Some('!' | '(')) {
        return embed(c, depth, alias, name).map(SelectItem::Embed);
    }
    c.reset(after_name);
    let json_path = field::json_path(c)?;
    c.skip_ws();
    let cast = cast(c)?;
    c.skip_ws();
    let aggregate = match c.peek() {
        Some('.') => AGGREGATES
            .iter()
            .find(|(text, _)| c.rest()[1..].starts_with(text)),
        _ => None,
    };
    if let Some((text, function)) = aggregate {
        c.bump();
        let _ = c.eat_str(text);
        let result_cast = cast_after(c)?;
        end_of_item(c)?;
        return Ok(SelectItem::Aggregate(SelectAggregate {
            alias,
            function: *function,
            field: Some(Field { name, json_path }),
            input_cast: cast,
            cast: result_cast,
        }));
    }
    end_of_item(c)?;
    Ok(SelectItem::Column(SelectColumn {
        alias,
        field: Field { name, json_path },
        cast,
    }))
}

/// `::type`, if there.
fn cast(c: &mut Cursor) -> Result<Option<String>, Failure> {
    if c.eat_str("::") {
        Ok(Some(field::identifier(c, "a type name")?))
    } else {
        Ok(None)
    }
}

/// `::type` after an aggregate's `()`, blanks allowed before it.
fn cast_after(c: &mut Cursor) -> Result<Option<String>, Failure> {
    c.skip_ws();
    cast(c)
}

/// `alias:` before a column or embedding; `::` is a cast, not an alias.
fn alias(c: &mut Cursor) -> Option<String> {
    let start = c.pos();
    if let Ok(alias) = field::name(c) {
        if c.looking_at(":") && !c.looking_at("::") {
            c.bump();
            c.skip_ws();
            return Some(alias);
        }
    }
    c.reset(start);
    None
}

fn embed(
    c: &mut Cursor,
    depth: usize,
    alias: Option<String>,
    relation: String,
) -> Result<Embed, Failure> {
    let (mut hint, mut join) = (None, None);
    while c.eat('!') {
        let at = c.pos();
        let param = field::name(c)?;
        let twice = if param == "inner" {
            join.replace(JoinType::Inner).is_some()
        } else if param == "left" {
            join.replace(JoinType::Left).is_some()
        } else {
            hint.replace(param).is_some()
        };
        if twice {
            return Err(Failure::syntax(at, "a hint or join type given twice"));
        }
        c.skip_ws();
    }
    if depth + 1 > MAX_DEPTH {
        return Err(Failure::TooDeep);
    }
    c.expect('(')?;
    let select = items(c, depth + 1)?;
    c.expect(')').map_err(|_| c.unexpected("',' or ')'"))?;
    end_of_item(c)?;
    Ok(Embed {
        alias,
        relation,
        hint,
        join,
        select,
    })
}

fn end_of_item(c: &mut Cursor) -> Result<(), Failure> {
    c.skip_ws();
    match c.peek() {
        None | Some(',' | ')') => Ok(()),
        Some(_) => Err(c.unexpected("',', ')' or the end of the select")),
    }
}
