use super::*;

/// The single logic parameter of `query`.
fn logic(query: &str) -> Scoped<LogicTree> {
    let mut parsed = read(query);
    assert_eq!(parsed.logic.len(), 1, "{query}");
    assert!(parsed.filters.is_empty(), "{query} made filters");
    parsed.logic.remove(0)
}

fn cond(name: &str, operator: Operator, value: &str) -> LogicTree {
    LogicTree::Condition(Condition {
        field: col(name),
        negated: false,
        operation: Operation::Compare {
            operator,
            quantifier: None,
            value: value.to_owned(),
        },
    })
}

fn group(negated: bool, operator: LogicOperator, children: Vec<LogicTree>) -> LogicTree {
    LogicTree::Group {
        negated,
        operator,
        children,
    }
}

fn children(tree: &LogicTree) -> &[LogicTree] {
    match tree {
        LogicTree::Group { children, .. } => children,
        other => panic!("not a group: {other:?}"),
    }
}

#[test]
fn or_of_two_conditions() {
    let parsed = logic("or=(a.eq.1,b.eq.2)");
    assert!(parsed.path.is_empty());
    assert_eq!(
        parsed.item,
        group(
            false,
            LogicOperator::Or,
            vec![cond("a", Operator::Eq, "1"), cond("b", Operator::Eq, "2")]
        )
    );
}

#[test]
fn and_with_a_nested_group() {
    assert_eq!(
        logic("or=(a.eq.1,and(b.gt.2,c.lt.3))").item,
        group(
            false,
            LogicOperator::Or,
            vec![
                cond("a", Operator::Eq, "1"),
                group(
                    false,
                    LogicOperator::And,
                    vec![cond("b", Operator::Gt, "2"), cond("c", Operator::Lt, "3")]
                )
            ]
        )
    );
    assert_eq!(
        logic("and=(a.eq.1)").item,
        group(
            false,
            LogicOperator::And,
            vec![cond("a", Operator::Eq, "1")]
        )
    );
}

#[test]
fn negated_groups_at_the_top_and_inside() {
    let parsed = logic("not.or=(a.eq.1,not.and(b.eq.2,c.eq.3))").item;
    let LogicTree::Group {
        negated,
        operator,
        children,
    } = &parsed
    else {
        panic!()
    };
    assert!(*negated);
    assert_eq!(*operator, LogicOperator::Or);
    assert!(matches!(
        children[1],
        LogicTree::Group {
            negated: true,
            operator: LogicOperator::And,
            ..
        }
    ));
}

#[test]
fn embedded_logic_carries_its_path() {
    let parsed = logic("author.or=(a.eq.1,b.eq.2)");
    assert_eq!(parsed.path, strings(&["author"]));
    let negated = logic("author.posts.not.and=(a.eq.1)");
    assert_eq!(negated.path, strings(&["author", "posts"]));
    assert!(matches!(
        negated.item,
        LogicTree::Group {
            negated: true,
            operator: LogicOperator::And,
            ..
        }
    ));
}

#[test]
fn every_kind_of_condition_inside() {
    let parsed = logic(&format!(
        "or=({})",
        enc("id.in.(1,\"2,3\"),name.is.null,body.fts(english).cat,x.not.eq.1,tags.cs.{a,b},n.like.*a*,d.isdistinct.5")
    ));
    let items = children(&parsed.item);
    assert_eq!(items.len(), 7);
    let op = |i: usize| match &items[i] {
        LogicTree::Condition(c) => (c.negated, c.operation.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(op(0).1, Operation::In(strings(&["1", "2,3"])));
    assert_eq!(op(1).1, Operation::Is(IsValue::Null));
    assert_eq!(
        op(2).1,
        Operation::FullText {
            operator: FtsOperator::Fts,
            language: Some("english".into()),
            query: "cat".into()
        }
    );
    assert!(op(3).0);
    assert_eq!(
        op(4).1,
        Operation::Compare {
            operator: Operator::Contains,
            quantifier: None,
            value: "{a,b}".into()
        }
    );
    assert_eq!(
        op(5).1,
        Operation::Compare {
            operator: Operator::Like,
            quantifier: None,
            value: "%a%".into()
        }
    );
    assert_eq!(op(6).1, Operation::IsDistinct("5".into()));
}

#[test]
fn quoted_values_may_hold_commas_and_parentheses() {
    let parsed = logic(&format!("or=({})", enc("name.eq.\"a,b)\",x.eq.\"q\"")));
    assert_eq!(
        parsed.item,
        group(
            false,
            LogicOperator::Or,
            vec![
                cond("name", Operator::Eq, "a,b)"),
                cond("x", Operator::Eq, "q")
            ]
        )
    );
}

#[test]
fn json_paths_inside() {
    let parsed = logic("or=(data->>a.eq.1)");
    let LogicTree::Condition(condition) = &children(&parsed.item)[0] else {
        panic!()
    };
    assert_eq!(
        condition.field.json_path,
        vec![step(JsonArrow::Text, key("a"))]
    );
}

#[test]
fn a_column_named_and_is_a_column() {
    assert_eq!(
        logic("or=(and.eq.1,or.eq.2)").item,
        group(
            false,
            LogicOperator::Or,
            vec![
                cond("and", Operator::Eq, "1"),
                cond("or", Operator::Eq, "2")
            ]
        )
    );
}

#[test]
fn blanks_around_children_values_keep_trailing_blanks() {
    assert_eq!(
        logic(&format!("or={}", enc(" ( a.eq.1 , and ( b.eq.2 ) ) "))).item,
        group(
            false,
            LogicOperator::Or,
            vec![
                cond("a", Operator::Eq, "1 "),
                group(
                    false,
                    LogicOperator::And,
                    vec![cond("b", Operator::Eq, "2 ")]
                )
            ]
        )
    );
}

#[test]
fn logic_errors() {
    let cases = [
        "or=()",
        "or=(a.eq.1",
        "or=a.eq.1",
        "or=(a.eq.1))",
        "or=(a.eq.1,)",
        "or=(xor(a.eq.1))",
        "or=(a.foo.1)",
        "or=(a.eq.1)x",
        "or=(id.in.1,2)",
        "or=(a)",
        "or=",
        "or=(,a.eq.1)",
        "a..or=(a.eq.1)",
        "or=(not.xor(a.eq.1))",
        "or=(and(a.eq.1)",
    ];
    for query in cases {
        let err = read_err(query);
        assert_eq!(err.code(), "PGRST100", "{query}: {err}");
    }
}

#[test]
fn logic_error_names_the_key_and_column() {
    let err = read_err("author.or=(a.eq.1,b.foo.2)");
    assert!(err.to_string().contains("'author.or'"), "{err}");
    assert_eq!(invalid_at(&err), 11);
}

#[test]
fn logic_trees_nest_to_the_limit_and_no_further() {
    let nested = |depth: usize| {
        format!(
            "or=({}a.eq.1{})",
            "and(".repeat(depth - 1),
            ")".repeat(depth - 1)
        )
    };
    assert_eq!(read(&nested(MAX_DEPTH)).logic.len(), 1);
    assert_eq!(read_err(&nested(MAX_DEPTH + 1)).code(), "SLUICE110");
}

#[test]
fn several_logic_parameters_are_all_kept() {
    assert_eq!(read("or=(a.eq.1)&or=(b.eq.2)&and=(c.eq.3)").logic.len(), 3);
}
