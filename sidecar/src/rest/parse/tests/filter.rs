use super::*;

fn filter(key: &str, value: &str) -> Scoped<Condition> {
    parse_filter(key, value).unwrap_or_else(|err| panic!("{key}={value}: {err}"))
}

fn operation(value: &str) -> (bool, Operation) {
    let parsed = filter("c", value).item;
    (parsed.negated, parsed.operation)
}

fn compare(operator: Operator, value: &str) -> Operation {
    Operation::Compare {
        operator,
        quantifier: None,
        value: value.to_owned(),
    }
}

fn filter_err(key: &str, value: &str) -> ParseError {
    match parse_filter(key, value) {
        Ok(parsed) => panic!("{key}={value} parsed: {parsed:?}"),
        Err(err) => err,
    }
}

const ALL_OPERATORS: [&str; 18] = [
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "cs", "cd", "ov",
    "sl", "sr", "nxr", "nxl", "adj",
];

#[test]
fn every_binary_operator_by_name() {
    for name in ALL_OPERATORS {
        let operator = Operator::from_name(name).unwrap();
        assert_eq!(operator.name(), name);
        assert_eq!(
            operation(&format!("{name}.v")),
            (false, compare(operator, "v"))
        );
    }
}

#[test]
fn every_operator_takes_not() {
    for name in ALL_OPERATORS {
        let (negated, _) = operation(&format!("not.{name}.v"));
        assert!(negated, "{name}");
    }
    for value in [
        "not.in.(1)",
        "not.is.null",
        "not.isdistinct.1",
        "not.fts.a",
        "not.wfts(simple).a",
    ] {
        assert!(operation(value).0, "{value}");
    }
}

#[test]
fn the_value_is_everything_after_the_operator() {
    assert_eq!(operation("eq.1.5").1, compare(Operator::Eq, "1.5"));
    assert_eq!(operation("eq.a,b)(").1, compare(Operator::Eq, "a,b)("));
    assert_eq!(operation("eq.").1, compare(Operator::Eq, ""));
    assert_eq!(operation("eq.not.x").1, compare(Operator::Eq, "not.x"));
}

#[test]
fn like_stars_become_percent_signs() {
    assert_eq!(operation("like.*foo*").1, compare(Operator::Like, "%foo%"));
    assert_eq!(operation("ilike.a*b").1, compare(Operator::Ilike, "a%b"));
    assert_eq!(operation("match.^a*").1, compare(Operator::Match, "^a*"));
    assert_eq!(operation("eq.*").1, compare(Operator::Eq, "*"));
}

#[test]
fn quantifiers_on_the_operators_that_take_them() {
    assert_eq!(
        operation("eq(any).{1,2}").1,
        Operation::Compare {
            operator: Operator::Eq,
            quantifier: Some(Quantifier::Any),
            value: "{1,2}".into()
        }
    );
    assert_eq!(
        operation("like(all).{a*,b*}").1,
        Operation::Compare {
            operator: Operator::Like,
            quantifier: Some(Quantifier::All),
            value: "{a%,b%}".into()
        }
    );
}

#[test]
fn quantifier_errors() {
    assert_eq!(filter_err("c", "neq(any).1").code(), "PGRST100");
    assert_eq!(filter_err("c", "eq(some).1").code(), "PGRST100");
    assert_eq!(filter_err("c", "eq(any.1").code(), "PGRST100");
}

#[test]
fn in_lists() {
    assert_eq!(
        operation("in.(1,2,3)").1,
        Operation::In(strings(&["1", "2", "3"]))
    );
    assert_eq!(
        operation("in.(a,\"b,c\",\"d\\\"e\")").1,
        Operation::In(strings(&["a", "b,c", "d\"e"]))
    );
    assert_eq!(operation("in.()").1, Operation::In(vec![]));
    assert_eq!(operation("in.( )").1, Operation::In(vec![]));
    assert_eq!(operation("in.(\"\")").1, Operation::In(strings(&[""])));
}

#[test]
fn in_list_elements_keep_inner_blanks_as_postgrest_does() {
    assert_eq!(
        operation("in. ( 1, 2 ) ").1,
        Operation::In(strings(&["1", " 2 "]))
    );
}

#[test]
fn a_quote_not_closing_an_element_is_raw_text() {
    assert_eq!(
        operation("in.(\"a\"b,c)").1,
        Operation::In(strings(&["\"a\"b", "c"]))
    );
    assert_eq!(operation("in.(\"ab)").1, Operation::In(strings(&["\"ab"])));
}

#[test]
fn in_list_errors() {
    for value in ["in.(1,2", "in.1,2", "in.(1)x", "in.", "in(1)"] {
        assert_eq!(filter_err("c", value).code(), "PGRST100", "{value}");
    }
}

#[test]
fn is_values_in_any_case() {
    let cases = [
        ("is.null", IsValue::Null),
        ("is.NULL", IsValue::Null),
        ("is.not_null", IsValue::NotNull),
        ("is.true", IsValue::True),
        ("is.False", IsValue::False),
        ("is.unknown", IsValue::Unknown),
    ];
    for (value, expected) in cases {
        assert_eq!(
            operation(value),
            (false, Operation::Is(expected)),
            "{value}"
        );
    }
    assert_eq!(
        operation("not.is.null"),
        (true, Operation::Is(IsValue::Null))
    );
}

#[test]
fn is_errors() {
    for value in ["is.maybe", "is.nullx", "is.", "is.1"] {
        assert_eq!(filter_err("c", value).code(), "PGRST100", "{value}");
    }
}

#[test]
fn is_distinct() {
    assert_eq!(
        operation("isdistinct.5").1,
        Operation::IsDistinct("5".into())
    );
    assert_eq!(
        operation("not.isdistinct.a.b"),
        (true, Operation::IsDistinct("a.b".into()))
    );
}

#[test]
fn full_text_search_with_and_without_language() {
    let fts = |operator, language: Option<&str>, query: &str| Operation::FullText {
        operator,
        language: language.map(str::to_owned),
        query: query.to_owned(),
    };
    assert_eq!(operation("fts.cat").1, fts(FtsOperator::Fts, None, "cat"));
    assert_eq!(
        operation("fts(english).cat & dog").1,
        fts(FtsOperator::Fts, Some("english"), "cat & dog")
    );
    assert_eq!(
        operation("plfts.a b").1,
        fts(FtsOperator::Plain, None, "a b")
    );
    assert_eq!(
        operation("phfts(simple).a b").1,
        fts(FtsOperator::Phrase, Some("simple"), "a b")
    );
    assert_eq!(
        operation("wfts(english).\"a b\" -c").1,
        fts(FtsOperator::Websearch, Some("english"), "\"a b\" -c")
    );
}

#[test]
fn full_text_errors() {
    for value in ["fts().x", "fts(english.x", "fts(english)x", "fts"] {
        assert_eq!(filter_err("c", value).code(), "PGRST100", "{value}");
    }
}

#[test]
fn array_and_range_literals_stay_text() {
    assert_eq!(
        operation("cs.{a,b}").1,
        compare(Operator::Contains, "{a,b}")
    );
    assert_eq!(operation("cd.{1}").1, compare(Operator::ContainedIn, "{1}"));
    assert_eq!(
        operation("ov.[1,2)").1,
        compare(Operator::Overlaps, "[1,2)")
    );
    assert_eq!(
        operation("sr.(1,5]").1,
        compare(Operator::StrictlyRight, "(1,5]")
    );
    assert_eq!(
        operation("adj.[1,2)").1,
        compare(Operator::Adjacent, "[1,2)")
    );
    assert_eq!(
        operation("cs.{\"a\":1}").1,
        compare(Operator::Contains, "{\"a\":1}")
    );
}

#[test]
fn json_paths_on_the_left() {
    let parsed = filter("data->a->>b", "eq.1");
    assert_eq!(parsed.path, Vec::<String>::new());
    assert_eq!(
        parsed.item.field,
        Field {
            name: "data".into(),
            json_path: vec![
                step(JsonArrow::Json, key("a")),
                step(JsonArrow::Text, key("b"))
            ]
        }
    );
    assert_eq!(
        filter("data->0", "eq.1").item.field.json_path,
        vec![step(JsonArrow::Json, JsonOperand::Index(0))]
    );
}

#[test]
fn embedded_filters_carry_their_path() {
    let parsed = filter("author.name", "eq.x");
    assert_eq!(parsed.path, strings(&["author"]));
    assert_eq!(parsed.item.field, col("name"));
    let deep = filter("a.b.c.data->>k", "is.null");
    assert_eq!(deep.path, strings(&["a", "b", "c"]));
    assert_eq!(deep.item.field.name, "data");
    assert_eq!(
        filter("\"my.table\".x", "eq.1").path,
        strings(&["my.table"])
    );
}

#[test]
fn unknown_operators_are_pgrst100_with_a_hint() {
    let err = filter_err("id", "eqq.1");
    assert_eq!(err.code(), "PGRST100");
    assert_eq!(invalid_at(&err), 1);
    assert!(err.to_string().contains("unknown operator 'eqq'"), "{err}");
    assert!(err.hint().unwrap().contains("isdistinct"));
}

#[test]
fn values_without_an_operator_are_errors() {
    for value in [
        "5",
        "",
        "not.5",
        "not.",
        "eq",
        "EQ.1",
        ".eq.1",
        "not.not.eq.1",
    ] {
        assert_eq!(filter_err("id", value).code(), "PGRST100", "{value:?}");
    }
}

#[test]
fn malformed_keys_are_errors() {
    for key in ["a..b", ".a", "a.", "", "a->", "a->b.c", "a b)", "\"a"] {
        let err = filter_err(key, "eq.1");
        assert_eq!(err.code(), "PGRST100", "{key:?}");
        assert!(err.to_string().contains("parameter"), "{err}");
    }
}

#[test]
fn error_columns_point_into_the_value() {
    assert_eq!(invalid_at(&filter_err("id", "in.(1")), 6);
    assert_eq!(invalid_at(&filter_err("id", "not.is.maybe")), 8);
    assert_eq!(invalid_at(&filter_err("a..b", "eq.1")), 3);
}

#[test]
fn filters_arrive_through_the_query_string() {
    let parsed = read("id=eq.1&author.name=ilike.*bob*&tags=cs.%7Ba,b%7D");
    assert_eq!(parsed.filters.len(), 3);
    assert_eq!(parsed.filters[1].path, strings(&["author"]));
    assert_eq!(
        parsed.filters[1].item.operation,
        compare(Operator::Ilike, "%bob%")
    );
    assert_eq!(
        parsed.filters[2].item.operation,
        compare(Operator::Contains, "{a,b}")
    );
}
