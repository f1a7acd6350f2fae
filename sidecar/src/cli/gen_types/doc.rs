//! A tiny Wadler-style document printer with Prettier's rules (groups that break when their
//! content and the rest of the line pass the width; a group marked expanded breaks, and so does
//! every group around it). The Supabase CLI's generator runs its
//! output through such a formatter (oxfmt, Prettier-compatible, 80 columns, no semicolons); the
//! types here print the few TypeScript shapes the generator emits the way it formats them.

/// A document: text and the places where it may break.
use unicode_width::UnicodeWidthStr;

#[derive(Debug, Clone)]
pub(crate) enum Doc {
    Text(String),
    /// A space, or a new line when its group breaks.
    Line,
    /// Nothing, or a new line when its group breaks.
    SoftLine,
    Group {
        docs: Vec<Doc>,
        broken: bool,
    },
    Indent(Vec<Doc>),
    Align(usize, Vec<Doc>),
    /// `broken` when the enclosing group breaks, `flat` otherwise.
    IfBreak {
        broken: Vec<Doc>,
        flat: Vec<Doc>,
    },
    Concat(Vec<Doc>),
}

pub(crate) fn text(value: impl Into<String>) -> Doc {
    Doc::Text(value.into())
}

/// A group; `expanded` forces it to break (an object written with a new line after `{`).
pub(crate) fn group(docs: Vec<Doc>, expanded: bool) -> Doc {
    let broken = expanded || docs.iter().any(forces_break);
    Doc::Group { docs, broken }
}

fn forces_break(doc: &Doc) -> bool {
    match doc {
        Doc::Group { broken, .. } => *broken,
        Doc::Indent(docs) | Doc::Align(_, docs) | Doc::Concat(docs) => {
            docs.iter().any(forces_break)
        }
        Doc::IfBreak { broken, flat } => {
            broken.iter().any(forces_break) || flat.iter().any(forces_break)
        }
        Doc::Text(_) | Doc::Line | Doc::SoftLine => false,
    }
}

pub(crate) fn if_break(broken: Vec<Doc>, flat: Vec<Doc>) -> Doc {
    Doc::IfBreak { broken, flat }
}

/// `docs` with `separator` between them.
pub(crate) fn join(separator: &[Doc], docs: Vec<Doc>) -> Vec<Doc> {
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if index > 0 {
            out.extend(separator.iter().cloned());
        }
        out.push(doc);
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Flat,
    Break,
}

struct Command<'a> {
    indent: usize,
    mode: Mode,
    doc: &'a Doc,
}

/// Prints `doc` at `width` columns; the output starts at column `start` with indentation `start`.
pub(crate) fn print(doc: &Doc, width: usize, start: usize) -> String {
    let mut out = String::new();
    let mut column = start;
    let mut stack = vec![Command {
        indent: start,
        mode: Mode::Break,
        doc,
    }];
    while let Some(Command { indent, mode, doc }) = stack.pop() {
        match doc {
            Doc::Text(value) => {
                out.push_str(value);
                column += value.width();
            }
            Doc::Line | Doc::SoftLine => {
                if mode == Mode::Flat {
                    if matches!(doc, Doc::Line) {
                        out.push(' ');
                        column += 1;
                    }
                } else {
                    let trimmed = out.trim_end_matches([' ', '\t']).len();
                    out.truncate(trimmed);
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                    column = indent;
                }
            }
            Doc::Group { docs, broken } => {
                let mode = if *broken {
                    Mode::Break
                } else if mode == Mode::Flat || fits(docs, &stack, width as isize - column as isize)
                {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                push_all(&mut stack, docs, indent, mode);
            }
            Doc::Indent(docs) => push_all(&mut stack, docs, indent + 2, mode),
            Doc::Align(by, docs) => push_all(&mut stack, docs, indent + by, mode),
            Doc::Concat(docs) => push_all(&mut stack, docs, indent, mode),
            Doc::IfBreak { broken, flat } => {
                let docs = if mode == Mode::Break { broken } else { flat };
                push_all(&mut stack, docs, indent, mode);
            }
        }
    }
    out
}

fn push_all<'a>(stack: &mut Vec<Command<'a>>, docs: &'a [Doc], indent: usize, mode: Mode) {
    for doc in docs.iter().rev() {
        stack.push(Command { indent, mode, doc });
    }
}

/// Whether `docs` printed flat, followed by the rest of the line (the commands below it, up to
/// their first line in break mode), stays within `width`.
fn fits(docs: &[Doc], rest: &[Command<'_>], mut width: isize) -> bool {
    let mut pending: Vec<(Mode, &Doc)> = docs.iter().rev().map(|doc| (Mode::Flat, doc)).collect();
    let mut rest_index = rest.len();
    while width >= 0 {
        let Some((mode, doc)) = pending.pop() else {
            if rest_index == 0 {
                return true;
            }
            rest_index -= 1;
            pending.push((rest[rest_index].mode, rest[rest_index].doc));
            continue;
        };
        match doc {
            Doc::Text(value) => width -= value.width() as isize,
            Doc::Line => {
                if mode == Mode::Break {
                    return true;
                }
                width -= 1;
            }
            Doc::SoftLine => {
                if mode == Mode::Break {
                    return true;
                }
            }
            Doc::Group { docs, broken } => {
                let mode = if *broken { Mode::Break } else { mode };
                pending.extend(docs.iter().rev().map(|doc| (mode, doc)));
            }
            Doc::Indent(docs) | Doc::Align(_, docs) | Doc::Concat(docs) => {
                pending.extend(docs.iter().rev().map(|doc| (mode, doc)));
            }
            Doc::IfBreak { broken, flat } => {
                let docs = if mode == Mode::Break { broken } else { flat };
                pending.extend(docs.iter().rev().map(|doc| (mode, doc)));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(expanded: bool) -> Doc {
        group(
            vec![
                text("a"),
                Doc::Indent(vec![Doc::Line, text("b")]),
                Doc::SoftLine,
                text("c"),
            ],
            expanded,
        )
    }

    #[test]
    fn groups_break_only_when_they_do_not_fit() {
        assert_eq!(print(&words(false), 80, 0), "a bc");
        assert_eq!(print(&words(false), 3, 0), "a\n  b\nc");
        assert_eq!(print(&words(true), 80, 0), "a\n  b\nc");
        // The rest of the line counts: "a bc" fits in 4 columns, not with "xyz" after it.
        let line = Doc::Concat(vec![words(false), text("xyz")]);
        assert_eq!(print(&line, 4, 0), "a\n  b\ncxyz");
    }
}
