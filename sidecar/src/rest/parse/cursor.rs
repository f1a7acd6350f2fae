//! A cursor over one decoded parameter (a key or a value) and the failure it reports.
//!
//! Each grammar module reads through a `Cursor` and fails with a `Failure` that only knows a byte
//! offset; the caller, which knows which parameter it was parsing, turns it into a `ParseError`
//! that names the parameter and the 1-based column.

use super::error::{shorten, ParseError};

/// How deep embeddings, logic trees and embed paths may nest. PostgREST has no limit; we have
/// one so a hostile request cannot make the parser recurse without bound.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Syntax {
        at: usize,
        problem: String,
        hint: Option<String>,
    },
    TooDeep,
}

impl Failure {
    pub(crate) fn syntax(at: usize, problem: impl Into<String>) -> Self {
        Failure::Syntax {
            at,
            problem: problem.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, text: &str) -> Self {
        if let Failure::Syntax { hint, .. } = &mut self {
            *hint = Some(text.to_owned());
        }
        self
    }

    /// The error for the client: `param` is the query key, `input` the text that was parsed.
    pub(crate) fn into_error(self, param: &str, input: &str) -> ParseError {
        let param = shorten(param);
        match self {
            Failure::Syntax { at, problem, hint } => ParseError::InvalidParameter {
                column: input
                    .get(..at)
                    .map_or(1, |before| before.chars().count() + 1),
                input: shorten(input),
                param,
                problem,
                hint,
            },
            Failure::TooDeep => ParseError::TooDeep {
                param,
                limit: MAX_DEPTH,
            },
        }
    }
}

pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Back to an earlier `pos()`, for the few places the grammar needs to look ahead.
    pub(crate) fn reset(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn looking_at(&self, text: &str) -> bool {
        self.rest().starts_with(text)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    pub(crate) fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.pos += ch.len_utf8();
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_str(&mut self, text: &str) -> bool {
        if self.looking_at(text) {
            self.pos += text.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn take_while(&mut self, mut keep: impl FnMut(char) -> bool) -> &'a str {
        let start = self.pos;
        let rest = self.rest();
        let len = rest.find(|ch| !keep(ch)).unwrap_or(rest.len());
        self.pos += len;
        &self.src[start..self.pos]
    }

    pub(crate) fn take_rest(&mut self) -> &'a str {
        let rest = self.rest();
        self.pos = self.src.len();
        rest
    }

    /// PostgREST's whitespace between tokens: spaces and tabs only.
    pub(crate) fn skip_ws(&mut self) {
        self.take_while(|ch| ch == ' ' || ch == '\t');
    }

    /// "unexpected 'x', expected …" at the current position.
    pub(crate) fn unexpected(&self, expected: &str) -> Failure {
        let found = match self.peek() {
            Some(ch) => format!("unexpected '{ch}'"),
            None => "unexpected end of input".to_owned(),
        };
        Failure::syntax(self.pos, format!("{found}, expected {expected}"))
    }

    pub(crate) fn expect(&mut self, ch: char) -> Result<(), Failure> {
        if self.eat(ch) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{ch}'")))
        }
    }

    pub(crate) fn expect_end(&self, expected: &str) -> Result<(), Failure> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    /// A double-quoted string with backslash escaping any character, the cursor on the opening
    /// quote. Used for names (`"my col"`) and for values in lists (`in.("a,b")`).
    pub(crate) fn quoted(&mut self) -> Result<String, Failure> {
        let start = self.pos;
        self.expect('"')?;
        let mut text = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(text),
                Some('\\') => match self.bump() {
                    Some(ch) => text.push(ch),
                    None => break,
                },
                Some(ch) => text.push(ch),
                None => break,
            }
        }
        Err(Failure::syntax(start, "unterminated quoted text"))
    }
}
