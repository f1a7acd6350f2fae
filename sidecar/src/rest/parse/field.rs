//! Names, JSON paths and the embed paths in query keys: the tokens every other grammar shares.
//!
//! A name is either double-quoted (`"my col"`, backslash escapes) or a run of letters, digits,
//! `_`, `$` and spaces, trimmed, with single dashes allowed inside (`first-name`, but `a->b` is a
//! JSON path). A JSON path is a list of `->` (JSON) and `->>` (text) steps, each a key or an
//! integer index (`data->items->0->>name`).

use super::cursor::{Cursor, Failure, MAX_DEPTH};

/// A column, possibly followed by a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub json_path: Vec<JsonStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    pub arrow: JsonArrow,
    pub operand: JsonOperand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonArrow {
    /// `->`: the result stays JSON.
    Json,
    /// `->>`: the result is text.
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonOperand {
    Key(String),
    /// An array index; negative counts from the end, as in Postgres.
    Index(i32),
}

impl Field {
    pub fn column(name: &str) -> Self {
        Field {
            name: name.to_owned(),
            json_path: Vec::new(),
        }
    }
}

fn is_name_char(ch: char) -> bool {
    ch.is_alphabetic() || ch.is_ascii_digit() || matches!(ch, '_' | ' ' | '$')
}

/// Characters that end an unquoted JSON key: everything else may appear in one.
fn ends_json_key(ch: char) -> bool {
    matches!(ch, '(' | '-' | ':' | '.' | ',' | '>' | ')')
}

/// A dash that joins two parts of a name, as opposed to the start of `->`.
fn at_joining_dash(c: &Cursor) -> bool {
    c.looking_at("-") && !c.looking_at("->")
}

pub(crate) fn name(c: &mut Cursor) -> Result<String, Failure> {
    if c.peek() == Some('"') {
        let start = c.pos();
        let name = c.quoted()?;
        if name.is_empty() {
            return Err(Failure::syntax(start, "empty name"));
        }
        return Ok(name);
    }
    dashed(c, is_name_char, "a name")
}

/// Parts made of `part_char`, trimmed, joined by single dashes; no part may be empty.
fn dashed(c: &mut Cursor, part_char: fn(char) -> bool, what: &str) -> Result<String, Failure> {
    let mut text = String::new();
    loop {
        let part = c.take_while(part_char).trim();
        if part.is_empty() {
            return Err(c.unexpected(what));
        }
        text.push_str(part);
        if !at_joining_dash(c) {
            return Ok(text);
        }
        c.bump();
        text.push('-');
    }
}

/// A type name after `::`, or a text-search configuration in `fts(english)`.
pub(crate) fn identifier(c: &mut Cursor, what: &str) -> Result<String, Failure> {
    let text = c.take_while(is_name_char).trim();
    if text.is_empty() {
        return Err(c.unexpected(what));
    }
    Ok(text.to_owned())
}

pub(crate) fn field(c: &mut Cursor) -> Result<Field, Failure> {
    let name = name(c)?;
    let json_path = json_path(c)?;
    Ok(Field { name, json_path })
}

pub(crate) fn json_path(c: &mut Cursor) -> Result<Vec<JsonStep>, Failure> {
    let mut steps = Vec::new();
    loop {
        let arrow = if c.eat_str("->>") {
            JsonArrow::Text
        } else if c.eat_str("->") {
            JsonArrow::Json
        } else {
            return Ok(steps);
        };
        let operand = json_operand(c)?;
        steps.push(JsonStep { arrow, operand });
    }
}

fn json_operand(c: &mut Cursor) -> Result<JsonOperand, Failure> {
    let start = c.pos();
    let negative = c.eat('-');
    let digits = c.take_while(|ch| ch.is_ascii_digit());
    // Digits are an index only when the step ends there: `->1x` is the key "1x".
    if !digits.is_empty() && ends_json_index(c.rest()) {
        let text = &signed(negative, digits);
        return text
            .parse()
            .map(JsonOperand::Index)
            .map_err(|_| Failure::syntax(start, "JSON array index out of range"));
    }
    c.reset(start);
    if c.peek() == Some('"') {
        return c.quoted().map(JsonOperand::Key);
    }
    dashed(c, |ch| !ends_json_key(ch), "a JSON key or array index").map(JsonOperand::Key)
}

fn signed(negative: bool, digits: &str) -> String {
    if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    }
}

/// PostgREST ends an index at `->`, `::`, `.`, `,` or the end; we also end it at `)` and blanks so
/// `author(data->0)` means the index 0 rather than the key "0".
fn ends_json_index(rest: &str) -> bool {
    rest.is_empty()
        || rest.starts_with("->")
        || rest.starts_with("::")
        || rest.starts_with(['.', ',', ')', ' ', '\t'])
}

/// Names separated by dots, as in the keys `author.name`, `author.comments.order`. At most
/// `MAX_DEPTH` of them, so an embed path is never deeper than an embedding may be.
pub(crate) fn dotted_names(c: &mut Cursor) -> Result<Vec<String>, Failure> {
    let mut names = vec![name(c)?];
    while c.eat('.') {
        if names.len() > MAX_DEPTH {
            return Err(Failure::TooDeep);
        }
        names.push(name(c)?);
    }
    Ok(names)
}

/// A filter key: an embed path, then the filtered field with its JSON path
/// (`author.data->>name` is `(["author"], data->>name)`).
pub(crate) fn tree_path(key: &str) -> Result<(Vec<String>, Field), Failure> {
    let mut c = Cursor::new(key);
    let mut names = dotted_names(&mut c)?;
    let json_path = json_path(&mut c)?;
    c.expect_end("'.', '->', '->>' or the end of the key")?;
    let name = names.pop().unwrap_or_default();
    Ok((names, Field { name, json_path }))
}
