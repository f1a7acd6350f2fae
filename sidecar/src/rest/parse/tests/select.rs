use super::super::select::parse_select;
use super::*;

fn sel(input: &str) -> Vec<SelectItem> {
    parse_select(input).unwrap_or_else(|err| panic!("{input}: {err:?}"))
}

/// The error for `select=<input>`, sent percent-encoded.
fn sel_err(input: &str) -> ParseError {
    read_err(&format!("select={}", enc(input)))
}

fn column(alias: Option<&str>, field: Field, cast: Option<&str>) -> SelectItem {
    SelectItem::Column(SelectColumn {
        alias: alias.map(str::to_owned),
        field,
        cast: cast.map(str::to_owned),
    })
}

fn plain(name: &str) -> SelectItem {
    column(None, col(name), None)
}

fn embed(relation: &str, select: Vec<SelectItem>) -> Embed {
    Embed {
        alias: None,
        relation: relation.to_owned(),
        hint: None,
        join: None,
        select,
    }
}

#[test]
fn star() {
    assert_eq!(sel("*"), vec![SelectItem::Star]);
}

#[test]
fn columns_keep_their_order() {
    assert_eq!(
        sel("id,name,*"),
        vec![plain("id"), plain("name"), SelectItem::Star]
    );
}

#[test]
fn alias_and_cast() {
    assert_eq!(sel("n:name"), vec![column(Some("n"), col("name"), None)]);
    assert_eq!(sel("id::text"), vec![column(None, col("id"), Some("text"))]);
    assert_eq!(
        sel("n:id::text"),
        vec![column(Some("n"), col("id"), Some("text"))]
    );
}

#[test]
fn cast_to_a_type_with_a_space() {
    assert_eq!(
        sel("x::double precision"),
        vec![column(None, col("x"), Some("double precision"))]
    );
}

#[test]
fn json_paths_with_both_arrows() {
    let field = Field {
        name: "data".into(),
        json_path: vec![
            step(JsonArrow::Json, key("a")),
            step(JsonArrow::Text, key("b")),
        ],
    };
    assert_eq!(sel("data->a->>b"), vec![column(None, field.clone(), None)]);
    assert_eq!(
        sel("x:data->a->>b::int"),
        vec![column(Some("x"), field, Some("int"))]
    );
}

#[test]
fn json_indexes_positive_and_negative() {
    let field = Field {
        name: "data".into(),
        json_path: vec![
            step(JsonArrow::Json, JsonOperand::Index(0)),
            step(JsonArrow::Text, JsonOperand::Index(-1)),
        ],
    };
    assert_eq!(sel("data->0->>-1"), vec![column(None, field, None)]);
}

#[test]
fn digits_followed_by_more_text_are_a_key() {
    let field = Field {
        name: "data".into(),
        json_path: vec![step(JsonArrow::Json, key("1x"))],
    };
    assert_eq!(sel("data->1x"), vec![column(None, field, None)]);
}

#[test]
fn json_keys_may_hold_punctuation_or_be_quoted() {
    let field = |k: &str| Field {
        name: "data".into(),
        json_path: vec![step(JsonArrow::Text, key(k))],
    };
    assert_eq!(
        sel("data->>!@#$%^&*_a"),
        vec![column(None, field("!@#$%^&*_a"), None)]
    );
    assert_eq!(
        sel("data->>\"a.b,c\""),
        vec![column(None, field("a.b,c"), None)]
    );
    assert_eq!(sel("data->>a-b"), vec![column(None, field("a-b"), None)]);
}

#[test]
fn an_index_inside_an_embedding_ends_at_the_parenthesis() {
    let field = Field {
        name: "data".into(),
        json_path: vec![step(JsonArrow::Json, JsonOperand::Index(0))],
    };
    assert_eq!(
        sel("author(data->0)"),
        vec![SelectItem::Embed(embed(
            "author",
            vec![column(None, field, None)]
        ))]
    );
}

#[test]
fn embeddings_with_alias_hint_and_join() {
    assert_eq!(
        sel("author(*)"),
        vec![SelectItem::Embed(embed("author", vec![SelectItem::Star]))]
    );
    let mut aliased = embed("users", vec![plain("name")]);
    aliased.alias = Some("author".into());
    assert_eq!(sel("author:users(name)"), vec![SelectItem::Embed(aliased)]);
    let mut hinted = embed("users", vec![plain("name")]);
    hinted.hint = Some("author_id".into());
    assert_eq!(
        sel("users!author_id(name)"),
        vec![SelectItem::Embed(hinted)]
    );
}

#[test]
fn join_types() {
    let joined = |join| {
        let mut e = embed("users", vec![SelectItem::Star]);
        e.join = Some(join);
        vec![SelectItem::Embed(e)]
    };
    assert_eq!(sel("users!inner(*)"), joined(JoinType::Inner));
    assert_eq!(sel("users!left(*)"), joined(JoinType::Left));
}

#[test]
fn hint_and_join_in_either_order() {
    let mut expected = embed("users", vec![SelectItem::Star]);
    expected.alias = Some("a".into());
    expected.hint = Some("fk".into());
    expected.join = Some(JoinType::Inner);
    let expected = vec![SelectItem::Embed(expected)];
    assert_eq!(sel("a:users!fk!inner(*)"), expected);
    assert_eq!(sel("a:users!inner!fk(*)"), expected);
}

#[test]
fn nested_embeddings() {
    let comments = embed(
        "comments",
        vec![
            plain("body"),
            SelectItem::Embed(embed("likes", vec![plain("id")])),
        ],
    );
    assert_eq!(
        sel("id,posts(title,comments(body,likes(id)))"),
        vec![
            plain("id"),
            SelectItem::Embed(embed(
                "posts",
                vec![plain("title"), SelectItem::Embed(comments)]
            ))
        ]
    );
}

#[test]
fn empty_select_and_empty_embedding() {
    assert_eq!(sel(""), vec![]);
    assert_eq!(sel("  "), vec![]);
    assert_eq!(
        sel("id,author()"),
        vec![plain("id"), SelectItem::Embed(embed("author", vec![]))]
    );
}

#[test]
fn absent_select_is_star() {
    assert_eq!(read("").select, vec![SelectItem::Star]);
    assert_eq!(read("select=").select, vec![]);
}

#[test]
fn blanks_around_every_token() {
    let mut author = embed("users", vec![plain("name")]);
    author.alias = Some("a".into());
    author.join = Some(JoinType::Inner);
    assert_eq!(
        sel(" id ,\ta : users !inner ( name ) , n : name :: text "),
        vec![
            plain("id"),
            SelectItem::Embed(author),
            column(Some("n"), col("name"), Some("text"))
        ]
    );
}

#[test]
fn quoted_names_may_hold_anything() {
    assert_eq!(
        sel("\"a,b\":\"weird)(\",\"say \\\"hi\\\"\""),
        vec![
            column(Some("a,b"), col("weird)("), None),
            plain("say \"hi\"")
        ]
    );
    assert_eq!(sel("\" padded \""), vec![plain(" padded ")]);
}

#[test]
fn names_with_dashes_spaces_digits_dollars_and_letters() {
    assert_eq!(
        sel("first-name,first name,$x,123,café"),
        vec![
            plain("first-name"),
            plain("first name"),
            plain("$x"),
            plain("123"),
            plain("café")
        ]
    );
}

#[test]
fn a_dash_before_an_arrow_is_not_part_of_the_name() {
    let field = Field {
        name: "a-b".into(),
        json_path: vec![step(JsonArrow::Json, key("c"))],
    };
    assert_eq!(sel("a-b->c"), vec![column(None, field, None)]);
}

#[test]
fn select_errors_are_pgrst100_with_a_column() {
    let cases = [
        ("author(name", 12),
        ("name)", 5),
        ("a,", 3),
        (",a", 1),
        ("a,,b", 3),
        ("\"\"", 1),
        ("name::", 7),
        ("name!hint", 10),
        ("*!hint", 2),
        ("rel->x(*)", 7),
        ("a:*", 3),
        ("\"abc", 1),
        ("data->", 7),
        ("data->>-78xy", 8),
        ("a:", 3),
        ("a b c d)", 8),
    ];
    for (input, column) in cases {
        let err = sel_err(input);
        assert_eq!(err.code(), "PGRST100", "{input}: {err}");
        assert_eq!(err.http_status(), 400);
        assert_eq!(invalid_at(&err), column, "{input}: {err}");
    }
}

#[test]
fn the_message_names_the_parameter_and_position() {
    let err = sel_err("id,author(name");
    assert_eq!(
        err.to_string(),
        "failed to parse the 'select' parameter at column 15: unexpected end of input, expected ',' or ')'"
    );
    assert_eq!(
        err.details().as_deref(),
        Some("while parsing: id,author(name")
    );
}

#[test]
fn out_of_range_json_index_is_an_error() {
    assert_eq!(sel_err("data->99999999999").code(), "PGRST100");
}

#[test]
fn join_type_or_hint_twice_is_an_error() {
    assert_eq!(sel_err("a!inner!left(*)").code(), "PGRST100");
    assert_eq!(sel_err("a!fk1!fk2(*)").code(), "PGRST100");
}

#[test]
fn aggregates_with_casts_and_aliases() {
    let agg = |input: &str| match sel(input).pop() {
        Some(SelectItem::Aggregate(agg)) => agg,
        other => panic!("{input}: {other:?}"),
    };
    let count = agg("c:count()::text");
    assert_eq!(count.function, AggregateFunction::Count);
    assert_eq!(
        (count.alias.as_deref(), count.field, count.cast.as_deref()),
        (Some("c"), None, Some("text"))
    );
    let sum = agg("total:amount::int.sum()::text");
    assert_eq!(sum.function, AggregateFunction::Sum);
    assert_eq!(sum.field, Some(col("amount")));
    assert_eq!(sum.input_cast.as_deref(), Some("int"));
    assert_eq!(sum.cast.as_deref(), Some("text"));
    for (input, function) in [
        ("x.avg()", AggregateFunction::Avg),
        ("x.max()", AggregateFunction::Max),
        ("x.min()", AggregateFunction::Min),
        ("x.count()", AggregateFunction::Count),
    ] {
        assert_eq!(agg(input).function, function, "{input}");
    }
    // Not an aggregate: a column followed by something else is a syntax error.
    assert_eq!(sel_err("x.median()").code(), "PGRST100");
    assert_eq!(sel_err("count()x").code(), "PGRST100");
}

#[test]
fn spread_embeddings() {
    let items = sel("id,...author!inner(name)");
    let SelectItem::Spread(spread) = &items[1] else {
        panic!("{items:?}")
    };
    assert_eq!(spread.relation, "author");
    assert_eq!(spread.join, Some(JoinType::Inner));
    assert_eq!(spread.select, vec![plain("name")]);
    assert_eq!(sel_err("...author").code(), "PGRST100");
}

#[test]
fn embeddings_nest_to_the_limit_and_no_further() {
    let nested = |depth: usize| format!("{}*{}", "a(".repeat(depth), ")".repeat(depth));
    assert!(parse_select(&nested(MAX_DEPTH)).is_ok());
    let err = sel_err(&nested(MAX_DEPTH + 1));
    assert_eq!(err.code(), "SLUICE110");
    assert_eq!(err.http_status(), 400);
}
