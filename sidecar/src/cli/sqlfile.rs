//! Splitting a migration file into statements, each with the line it starts on.
//!
//! The split is lexical, as psql's: a `;` ends a statement unless it is inside a quoted string
//! (`'...'`, `E'...'` with backslash escapes), a quoted identifier (`"..."`), a dollar-quoted body
//! (`$tag$...$tag$`), a line comment or a (nested) block comment. The statements keep their text
//! as written (comments included), so the history table stores what the file says.

/// One statement of a file: its text without the closing `;`, and the 1-based line of its first
/// character that is not blank or part of a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) text: String,
    pub(crate) line: usize,
}

/// The statements of `sql`, in order; blank and comment-only pieces are dropped.
pub(crate) fn split(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut first_code: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let code_at = i;
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'e' | b'E') && !word_before(bytes, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..]
                        .find(tag)
                        .map_or(bytes.len(), |n| body + n + tag.len());
                }
                None => i += 1,
            },
            b';' => {
                if let Some(first) = first_code {
                    statements.push(Statement {
                        text: sql[start..i].trim().to_owned(),
                        line: line_of(sql, first),
                    });
                }
                i += 1;
                start = i;
                first_code = None;
                continue;
            }
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        first_code.get_or_insert(code_at);
    }
    if let Some(first) = first_code {
        statements.push(Statement {
            text: sql[start..].trim().to_owned(),
            line: line_of(sql, first),
        });
    }
    statements
}

fn line_of(sql: &str, offset: usize) -> usize {
    sql[..offset].matches('\n').count() + 1
}

/// Whether the byte at `at` is preceded by an identifier character (so `e'x'` after `type` is
/// not an escape string: `typee'...'` cannot occur, but `somee'...'` would be a word).
fn word_before(bytes: &[u8], at: usize) -> bool {
    at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The index after the closing quote of the quoted run starting at `i`; a doubled quote is part
/// of the run, and so is a backslash-escaped one in an `E'...'` string.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The dollar-quote opening tag at `i` (`$$` or `$name$`), unless `$` starts a parameter (`$1`)
/// or follows an identifier character.
fn dollar_tag(sql: &str, i: usize) -> Option<&str> {
    let bytes = sql.as_bytes();
    if word_before(bytes, i) {
        return None;
    }
    let rest = &sql[i + 1..];
    let end = rest.find('$')?;
    let name = &rest[..end];
    let valid = name
        .chars()
        .enumerate()
        .all(|(n, ch)| ch == '_' || ch.is_alphabetic() || (n > 0 && ch.is_ascii_digit()));
    valid.then(|| &sql[i..i + end + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(String, usize)> {
        split(sql).into_iter().map(|s| (s.text, s.line)).collect()
    }

    #[test]
    fn semicolons_inside_quotes_comments_and_bodies_do_not_split() {
        let sql =
            "-- a comment; still a comment\nCREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine');\n\
                   /* block; /* nested; */ */ SELECT E'\\';', $$;$$, $fn$ ; $x$ ; $fn$;\n\n\
                   CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT $1";
        assert_eq!(
            texts(sql),
            vec![
                (
                    "-- a comment; still a comment\nCREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine')"
                        .to_owned(),
                    2
                ),
                (
                    "/* block; /* nested; */ */ SELECT E'\\';', $$;$$, $fn$ ; $x$ ; $fn$".to_owned(),
                    3
                ),
                (
                    "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql".to_owned(),
                    5
                ),
                ("SELECT $1".to_owned(), 6),
            ]
        );
    }

    #[test]
    fn comment_only_and_empty_pieces_are_dropped() {
        assert_eq!(texts("  ;; -- nothing\n/* here */ ;\n"), vec![]);
        assert_eq!(texts("\n\n  select 1 ; "), vec![("select 1".to_owned(), 3)]);
    }
}
