use super::super::decode::{decode, split_query, RawPair};
use super::*;

fn pairs(raw: &str) -> Vec<(String, Option<String>)> {
    split_query(raw)
        .unwrap()
        .into_iter()
        .map(|RawPair { key, value }| (key, value))
        .collect()
}

fn pair(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_owned(), value.map(str::to_owned))
}

#[test]
fn percent_escapes_decode_in_keys_and_values() {
    assert_eq!(pairs("a%20b=c%2Cd"), vec![pair("a b", Some("c,d"))]);
}

#[test]
fn plus_is_a_space_but_encoded_plus_is_a_plus() {
    assert_eq!(decode("a+b%2Bc").unwrap(), "a b+c");
}

#[test]
fn malformed_escapes_stay_as_written() {
    assert_eq!(decode("%zz%4").unwrap(), "%zz%4");
    assert_eq!(decode("100%").unwrap(), "100%");
}

#[test]
fn multibyte_utf8_decodes() {
    assert_eq!(decode("caf%C3%A9").unwrap(), "café");
}

#[test]
fn invalid_utf8_is_an_error_naming_the_key() {
    let err = read_err("name=eq.%FF");
    assert_eq!(err.code(), "SLUICE112");
    assert_eq!(err.http_status(), 400);
    assert!(err.to_string().contains("'name'"), "{err}");
    assert_eq!(read_err("%FF=eq.1").code(), "SLUICE112");
}

#[test]
fn ampersand_and_semicolon_both_separate_pairs() {
    assert_eq!(
        pairs("a=1;b=2&c=3"),
        vec![
            pair("a", Some("1")),
            pair("b", Some("2")),
            pair("c", Some("3"))
        ]
    );
}

#[test]
fn leading_question_mark_and_empty_pairs_are_skipped() {
    assert_eq!(pairs("?&&a=1&"), vec![pair("a", Some("1"))]);
    assert_eq!(pairs(""), vec![]);
}

#[test]
fn a_key_without_equals_has_no_value_and_an_empty_value_is_kept() {
    assert_eq!(pairs("a&b="), vec![pair("a", None), pair("b", Some(""))]);
}

#[test]
fn only_the_first_equals_splits() {
    assert_eq!(pairs("a=eq.x=y"), vec![pair("a", Some("eq.x=y"))]);
}

#[test]
fn keys_without_values_are_ignored_as_parameters() {
    let parsed = read("id&select");
    assert!(parsed.filters.is_empty());
    assert_eq!(parsed.select, vec![SelectItem::Star]);
}

#[test]
fn encoded_separators_are_data() {
    let parsed = read(&format!("name=eq.{}", enc("a&b;c=d+e")));
    match &parsed.filters[0].item.operation {
        Operation::Compare { value, .. } => assert_eq!(value, "a&b;c=d+e"),
        other => panic!("{other:?}"),
    }
}
