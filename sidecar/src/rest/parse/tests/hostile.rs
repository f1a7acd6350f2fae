//! Input meant to hurt: it must produce an error or a result, quickly, and never a panic.

use std::time::{Duration, Instant};

use axum::http::Method;

use super::*;

/// Big inputs must stay linear: generous for a debug build on a busy machine.
const QUICK: Duration = Duration::from_secs(5);

/// `n` copies of `item` joined by `sep`.
fn repeated(item: &str, n: usize, sep: &str) -> String {
    vec![item; n].join(sep)
}

fn quickly<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = work();
    assert!(start.elapsed() < QUICK, "{what} took {:?}", start.elapsed());
    result
}

#[test]
fn a_query_string_over_the_limit_is_414_before_any_parsing() {
    let err = read_err(&format!("select={}", "(".repeat(MAX_QUERY_LEN)));
    assert_eq!(err.code(), "SLUICE111");
    assert_eq!(err.http_status(), 414);
}

#[test]
fn thousands_of_open_parentheses_stop_at_the_depth_limit() {
    for query in [
        format!("select={}", "a(".repeat(100_000)),
        format!("or=({}a.eq.1", "and(".repeat(100_000)),
        format!("or={}", "(".repeat(100_000)),
        format!("id=in.{}", "(".repeat(100_000)),
        format!("order={}", "a(".repeat(100_000)),
    ] {
        let err = quickly(&query[..10], || read_err(&query));
        assert!(
            matches!(err.code(), "SLUICE110" | "PGRST100"),
            "{}: {err}",
            &query[..10]
        );
    }
}

#[test]
fn thousands_of_closing_parentheses_are_a_plain_syntax_error() {
    for query in [
        format!("select=a{}", ")".repeat(100_000)),
        format!("or=(a.eq.1{}", ")".repeat(100_000)),
    ] {
        assert_eq!(read_err(&query).code(), "PGRST100");
    }
}

#[test]
fn long_embed_paths_stop_at_the_depth_limit() {
    let path = |n: usize| repeated("a", n, ".");
    assert!(parse_read(&format!("{}=eq.1", path(MAX_DEPTH + 1)), &HeaderMap::new()).is_ok());
    for key in [
        format!("{}=eq.1", path(10_000)),
        format!("{}.order=id", path(10_000)),
        format!("{}.limit=1", path(10_000)),
        format!("{}.or=(a.eq.1)", path(10_000)),
    ] {
        assert_eq!(read_err(&key).code(), "SLUICE110", "{}", &key[..20]);
    }
}

#[test]
fn wide_inputs_parse_in_linear_time() {
    let columns = repeated("column_name", 50_000, ",");
    let parsed = quickly("wide select", || read(&format!("select={columns}")));
    assert_eq!(parsed.select.len(), 50_000);

    let list = repeated("12345", 100_000, ",");
    let parsed = quickly("long in list", || read(&format!("id=in.({list})")));
    assert!(matches!(&parsed.filters[0].item.operation, Operation::In(v) if v.len() == 100_000));

    let ors = repeated("a.eq.1", 50_000, ",");
    quickly("wide or", || read(&format!("or=({ors})")));

    let filters = repeated("a=eq.1", 50_000, "&");
    assert_eq!(
        quickly("many filters", || read(&filters)).filters.len(),
        50_000
    );

    let limits: Vec<String> = (0..40_000).map(|i| format!("e{i}.limit=1")).collect();
    let parsed = quickly("many embedded limits", || read(&limits.join("&")));
    assert_eq!(parsed.embedded_pages.len(), 40_000);

    let path = "->a".repeat(100_000);
    quickly("long json path", || read(&format!("select=data{path}")));
}

#[test]
fn control_characters_and_nul_bytes_do_not_panic() {
    for query in [
        "id=eq.%00",
        "%00=eq.1",
        "select=%00",
        "select=%22%00%22",
        "or=(a.eq.%00)",
    ] {
        let _ = parse_read(query, &HeaderMap::new());
    }
}

#[test]
fn lone_quotes_and_backslashes() {
    for query in [
        "select=%22",
        "select=%22%5C",
        "id=in.(%22)",
        "id=in.(%22%5C",
        "or=(a.eq.%22)",
        "or=(a.eq.%22%5C%22)",
        "order=%22",
        "columns=%22a",
    ] {
        let _ = parse_read(query, &HeaderMap::new());
    }
    assert_eq!(read_err("select=%22").code(), "PGRST100");
    assert_eq!(read_err("columns=%22a").code(), "PGRST100");
}

#[test]
fn stray_dots_and_separators() {
    for query in [
        "select=.",
        "select=a.b",
        "select=a..b",
        "id=eq",
        "id=.",
        "id=..",
        "order=.",
        "order=id..",
        ".=eq.1",
        "..=eq.1",
        "or=(.)",
        "or=(a..eq.1)",
        "select=a::",
        "select=::a",
        "select=!",
        "select=a!",
        "select=a!()",
        "select=->a",
        "select=a->>",
    ] {
        assert_eq!(read_err(query).code(), "PGRST100", "{query}");
    }
}

/// Deterministic pseudo-random strings over the characters the grammars care about.
#[test]
fn random_punctuation_never_panics() {
    const ALPHABET: &[u8] = b"ab.,()!:\"\\*->{}[] \t%+=&;0-9neqinotorand";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let methods = [Method::GET, Method::POST, Method::PUT];
    for round in 0..20_000 {
        let len = (next() % 40) as usize;
        let text: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
            .collect();
        let query = match round % 6 {
            0 => format!("select={text}"),
            1 => format!("id={text}"),
            2 => format!("or=({text})"),
            3 => format!("order={text}"),
            4 => format!("{text}=eq.1"),
            _ => text.clone(),
        };
        let method = &methods[round % methods.len()];
        let target = if round % 2 == 0 {
            Target::Relation
        } else {
            Target::Function
        };
        let h = headers(&[("Prefer", text.as_str()), ("Range", text.as_str())]);
        let _ = parse_request(method, target, &query, &h);
    }
}
