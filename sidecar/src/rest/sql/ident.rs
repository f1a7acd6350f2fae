//! Identifier quoting: the only way a name reaches SQL text.
//!
//! As PostgREST's `pgFmtIdent`: NUL characters are dropped (Postgres cannot store them, and a
//! client could use one to cut a name short), every `"` is doubled, and the result is wrapped in
//! `"`. A quoted identifier is never a keyword and never ends before its closing quote, so any
//! string is safe here.

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for ch in name.chars() {
        match ch {
            '\0' => {}
            '"' => quoted.push_str("\"\""),
            _ => quoted.push(ch),
        }
    }
    quoted.push('"');
    quoted
}

/// `schema.name`, both quoted.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote(schema), quote(name))
}

/// A type name from a request (`select=id::text`) as SQL, if it looks like one type name:
/// letters, digits and `_`, not starting with a digit, at most 63 bytes, optionally followed by one
/// `[]`. Anything else (`double precision`, `varchar(3)`, `text);--`) is refused rather than
/// interpreted; the catalog's type names, which may have spaces and modifiers, never come here.
/// Written unquoted, as PostgREST writes it, so that the aliases `int`, `float` and `decimal`
/// resolve (such a word can at worst be a syntax error, never more SQL).
pub(crate) fn cast_type(name: &str) -> Option<String> {
    let (base, array) = match name.strip_suffix("[]") {
        Some(base) => (base, "[]"),
        None => (name, ""),
    };
    let first_ok = base
        .chars()
        .next()
        .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_');
    let rest_ok = base
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    (first_ok && rest_ok && base.len() <= 63).then(|| format!("{base}{array}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_wrapped() {
        assert_eq!(quote("todos"), "\"todos\"");
        assert_eq!(quote("First Name"), "\"First Name\"");
        assert_eq!(qualified("public", "todos"), "\"public\".\"todos\"");
    }

    #[test]
    fn hostile_names_stay_one_identifier() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote("\""), "\"\"\"\"");
        assert_eq!(
            quote("x\"; DROP TABLE todos; --"),
            "\"x\"\"; DROP TABLE todos; --\""
        );
        assert_eq!(quote("nul\0here"), "\"nulhere\"");
        assert_eq!(quote("\0\"\0"), "\"\"\"\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("emoji 🦀 'quote'"), "\"emoji 🦀 'quote'\"");
        // Whatever the input, the text between the outer quotes has only doubled quotes.
        for hostile in ["\"\"", "a\"\"\"b", "\\\"", "\"\0\"x"] {
            let quoted = quote(hostile);
            let inner = &quoted[1..quoted.len() - 1];
            assert!(!inner.replace("\"\"", "").contains('"'), "{quoted}");
            assert!(!quoted.contains('\0'));
        }
    }

    #[test]
    fn cast_types_are_single_plain_names() {
        assert_eq!(cast_type("text").as_deref(), Some("text"));
        assert_eq!(cast_type("int4[]").as_deref(), Some("int4[]"));
        assert_eq!(cast_type("_x1").as_deref(), Some("_x1"));
        for refused in [
            "",
            "[]",
            "1int",
            "double precision",
            "varchar(3)",
            "text);--",
            "a\"b",
            "text[][]",
            "public.t",
            "nul\0",
        ] {
            assert_eq!(cast_type(refused), None, "{refused:?}");
        }
        assert_eq!(cast_type(&"a".repeat(64)), None);
    }
}
