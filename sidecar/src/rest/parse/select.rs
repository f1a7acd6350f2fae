//! `select=`: which columns to return and which related resources to embed.
//!
//! ```text
//! select  := [item (',' item)*]                        (may be empty: `select=`, `author()`)
//! item    := '*'
//!          | [alias ':'] name ['!' param]* '(' select ')'      an embedding
//!          | [alias ':'] name json_path ['::' type]           a column
//! param   := 'inner' | 'left' | hint                   (hint: a foreign key or column name)
//! ```
//! Spaces and tabs may surround every token. Aggregates (`count()`, `col.sum()`) and spreads
//! (`...rel(*)`) are recognised only to be refused with a clear error.

use super::cursor::{Cursor, Failure, MAX_DEPTH};
use super::field::{self, Field};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: every column the role may read.
    Star,
    Column(SelectColumn),
    Embed(Embed),
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

const AGGREGATES: [&str; 5] = ["sum()", "avg()", "count()", "max()", "min()"];

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
    if c.looking_at("...") {
        return Err(Failure::Unsupported("spreading an embedding (...)"));
    }
    if c.eat('*') {
        end_of_item(c)?;
        return Ok(SelectItem::Star);
    }
    let alias = alias(c);
    let name = field::name(c)?;
    if name == "count" && c.looking_at("()") {
        return Err(Failure::Aggregates);
    }
    let after_name = c.pos();
    c.skip_ws();
    if matches!(c.peek(), Some('!' | '(')) {
        return embed(c, depth, alias, name).map(SelectItem::Embed);
    }
    c.reset(after_name);
    let json_path = field::json_path(c)?;
    c.skip_ws();
    let cast = if c.eat_str("::") {
        Some(field::identifier(c, "a type name")?)
    } else {
        None
    };
    c.skip_ws();
    if c.peek() == Some('.') && AGGREGATES.iter().any(|agg| c.rest()[1..].starts_with(agg)) {
        return Err(Failure::Aggregates);
    }
    end_of_item(c)?;
    Ok(SelectItem::Column(SelectColumn {
        alias,
        field: Field { name, json_path },
        cast,
    }))
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
