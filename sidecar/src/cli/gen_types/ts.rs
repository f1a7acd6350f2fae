//! The TypeScript types the generator builds (`Ty`) and how its formatter lays them out: object
//! types written over several lines stay so, others break only past 80 columns; long unions break
//! with a leading `|` per member; a union of one object and `null` hugs the object.

use super::doc::{group, if_break, join, text, Doc};

/// The key of an empty group (`Tables: { [_ in never]: never }`).
pub(super) const NEVER: &str = "[_ in never]";

/// A TypeScript type, as the generator builds it.
#[derive(Debug, Clone)]
pub(super) enum Ty {
    /// A keyword or reference that never breaks: `number`, `Database["public"]["Enums"]["mood"]`.
    Plain(String),
    /// A string literal type.
    Literal(String),
    Array(Box<Ty>),
    Union(Vec<Ty>),
    /// An object type; `expanded` when the generator writes it over several lines (the formatter
    /// then keeps it so).
    Object {
        members: Vec<Member>,
        expanded: bool,
    },
    Intersection(Vec<Ty>),
    Tuple(Vec<Ty>),
}

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub key: String,
    pub optional: bool,
    pub ty: Ty,
}

pub(super) fn plain(value: &str) -> Ty {
    Ty::Plain(value.to_string())
}

pub(super) fn member(key: &str, optional: bool, ty: Ty) -> Member {
    Member {
        key: key.to_string(),
        optional,
        ty,
    }
}

pub(super) fn object(members: Vec<Member>, expanded: bool) -> Ty {
    Ty::Object { members, expanded }
}

/// The type, `| null` when nullable (`unknown` already holds null; a NOT NULL json is
/// `NonNullable<Json>` because `Json` holds null).
pub(super) fn nullable(ty: Ty, is_nullable: bool) -> Ty {
    match ty {
        Ty::Plain(ref p) if p == "Json" && !is_nullable => plain("NonNullable<Json>"),
        Ty::Plain(ref p) if p == "unknown" || p == "any" => ty,
        _ if !is_nullable => ty,
        Ty::Union(mut members) => {
            members.push(plain("null"));
            Ty::Union(members)
        }
        other => Ty::Union(vec![other, plain("null")]),
    }
}

/// A string as JSON.stringify writes it and the formatter then quotes it (double quotes, unless
/// the text holds more double than single quotes).
pub(super) fn quote(value: &str) -> String {
    let doubles = value.matches('"').count();
    let singles = value.matches('\'').count();
    let json = serde_json::to_string(value).unwrap_or_default();
    if doubles > singles {
        let inner = &json[1..json.len() - 1];
        format!("'{}'", inner.replace("\\\"", "\"").replace('\'', "\\'"))
    } else {
        json
    }
}

/// A property name: bare when it is an identifier, quoted otherwise.
pub(super) fn key(name: &str) -> String {
    if name == NEVER {
        return name.to_string();
    }
    let mut chars = name.chars();
    let identifier = matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if identifier {
        name.to_string()
    } else {
        quote(name)
    }
}

pub(super) fn is_object(ty: &Ty) -> bool {
    matches!(ty, Ty::Object { .. })
}

/// The formatter's layout of a type.
pub(super) fn layout(ty: &Ty) -> Doc {
    match ty {
        Ty::Plain(value) => text(value.clone()),
        Ty::Literal(value) => text(quote(value)),
        Ty::Array(inner) => match inner.as_ref() {
            Ty::Union(_) => Doc::Concat(vec![text("("), flat_union(inner), text(")[]")]),
            _ => Doc::Concat(vec![layout(inner), text("[]")]),
        },
        Ty::Union(members) => {
            let hug = members.iter().filter(|m| is_object(m)).count() == 1
                && members.iter().all(|m| {
                    is_object(m) || matches!(m, Ty::Plain(p) if p == "null" || p == "void")
                });
            if hug {
                return Doc::Concat(join(&[text(" | ")], members.iter().map(layout).collect()));
            }
            let members = members
                .iter()
                .map(|m| Doc::Align(2, vec![layout(m)]))
                .collect();
            group(
                vec![Doc::Indent(
                    [
                        vec![if_break(vec![Doc::Line, text("| ")], vec![])],
                        join(&[Doc::Line, text("| ")], members),
                    ]
                    .concat(),
                )],
                false,
            )
        }
        Ty::Intersection(members) => {
            let docs = members.iter().map(layout).collect();
            group(join(&[text(" & ")], docs), false)
        }
        Ty::Object { members, expanded } => {
            if members.is_empty() {
                return text("{}");
            }
            let members = members.iter().map(layout_member).collect();
            group(
                vec![
                    text("{"),
                    Doc::Indent(
                        [
                            vec![Doc::Line],
                            join(&[if_break(vec![], vec![text(";")]), Doc::Line], members),
                        ]
                        .concat(),
                    ),
                    Doc::Line,
                    text("}"),
                ],
                *expanded,
            )
        }
        Ty::Tuple(items) => bracketed(items.iter().map(layout).collect()),
    }
}

pub(super) fn flat_union(ty: &Ty) -> Doc {
    match ty {
        Ty::Union(members) => {
            Doc::Concat(join(&[text(" | ")], members.iter().map(layout).collect()))
        }
        other => layout(other),
    }
}

/// `[a, b]`, or one item a line with a trailing comma.
pub(super) fn bracketed(items: Vec<Doc>) -> Doc {
    if items.is_empty() {
        return text("[]");
    }
    group(
        vec![
            text("["),
            Doc::Indent([vec![Doc::SoftLine], join(&[text(","), Doc::Line], items)].concat()),
            if_break(vec![text(",")], vec![]),
            Doc::SoftLine,
            text("]"),
        ],
        false,
    )
}

pub(super) fn layout_member(member: &Member) -> Doc {
    group(
        vec![
            text(format!(
                "{}{}: ",
                key(&member.key),
                if member.optional { "?" } else { "" }
            )),
            layout(&member.ty),
        ],
        false,
    )
}

/// An object literal (values, not types) that the generator writes expanded: `{ k: v, }`.
pub(super) fn value_object(members: Vec<(String, Doc)>) -> Doc {
    if members.is_empty() {
        return text("{}");
    }
    let members = members
        .into_iter()
        .map(|(name, value)| group(vec![text(format!("{}: ", key(&name))), value], false))
        .collect();
    group(
        vec![
            text("{"),
            Doc::Indent([vec![Doc::Line], join(&[text(","), Doc::Line], members)].concat()),
            text(","),
            Doc::Line,
            text("}"),
        ],
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::gen_types::doc;

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key("CamelCase"), "CamelCase");
        assert_eq!(key("weird-name"), "\"weird-name\"");
        assert_eq!(key(""), "\"\"");
        assert_eq!(key("1st"), "\"1st\"");
        assert_eq!(quote("say \"hi\""), "'say \"hi\"'");
    }

    #[test]
    fn long_unions_break_with_leading_bars() {
        let ty = Ty::Union(
            [
                "waiting_for_review",
                "under_review",
                "changes_requested",
                "approved_by_editor",
            ]
            .iter()
            .map(|s| Ty::Literal(s.to_string()))
            .collect(),
        );
        let printed = doc::print(&layout_member(&member("status", false, ty)), 80, 6);
        assert_eq!(
            printed,
            "status:\n        | \"waiting_for_review\"\n        | \"under_review\"\n        | \"changes_requested\"\n        | \"approved_by_editor\""
        );
    }
}
