use super::*;

fn order(query: &str) -> Vec<Scoped<Vec<OrderTerm>>> {
    read(query).order
}

fn term(name: &str, direction: Option<Direction>, nulls: Option<NullsOrder>) -> OrderTerm {
    OrderTerm {
        relation: None,
        field: col(name),
        direction,
        nulls,
    }
}

#[test]
fn a_single_column() {
    let parsed = order("order=id");
    assert_eq!(parsed.len(), 1);
    assert!(parsed[0].path.is_empty());
    assert_eq!(parsed[0].item, vec![term("id", None, None)]);
}

#[test]
fn directions_and_nulls() {
    use Direction::*;
    use NullsOrder::*;
    let cases = [
        ("id.asc", Some(Asc), None),
        ("id.desc", Some(Desc), None),
        ("id.nullsfirst", None, Some(First)),
        ("id.nullslast", None, Some(Last)),
        ("id.desc.nullslast", Some(Desc), Some(Last)),
        ("id.asc.nullsfirst", Some(Asc), Some(First)),
    ];
    for (value, direction, nulls) in cases {
        assert_eq!(
            order(&format!("order={value}"))[0].item,
            vec![term("id", direction, nulls)],
            "{value}"
        );
    }
}

#[test]
fn several_terms_in_order() {
    assert_eq!(
        order("order=a.desc,b,c.asc.nullsfirst")[0].item,
        vec![
            term("a", Some(Direction::Desc), None),
            term("b", None, None),
            term("c", Some(Direction::Asc), Some(NullsOrder::First)),
        ]
    );
}

#[test]
fn json_paths_end_at_the_direction() {
    assert_eq!(
        order("order=data->a->>b.desc")[0].item,
        vec![OrderTerm {
            relation: None,
            field: Field {
                name: "data".into(),
                json_path: vec![
                    step(JsonArrow::Json, key("a")),
                    step(JsonArrow::Text, key("b"))
                ]
            },
            direction: Some(Direction::Desc),
            nulls: None,
        }]
    );
}

#[test]
fn ordering_by_a_to_one_relation_column() {
    assert_eq!(
        order("order=author(name).desc,id")[0].item,
        vec![
            OrderTerm {
                relation: Some("author".into()),
                field: col("name"),
                direction: Some(Direction::Desc),
                nulls: None,
            },
            term("id", None, None),
        ]
    );
}

#[test]
fn embedded_order_carries_its_path() {
    let parsed = order("order=id&comments.order=id.desc&posts.comments.order=at");
    assert_eq!(parsed.len(), 3);
    assert!(parsed[0].path.is_empty());
    assert_eq!(parsed[1].path, strings(&["comments"]));
    assert_eq!(parsed[2].path, strings(&["posts", "comments"]));
}

#[test]
fn blanks_and_quoted_names() {
    assert_eq!(
        order(&format!("order={}", enc(" a.desc , \"b,c\".asc ")))[0].item,
        vec![
            term("a", Some(Direction::Desc), None),
            term("b,c", Some(Direction::Asc), None),
        ]
    );
}

#[test]
fn order_errors() {
    let cases = [
        ("order=id.ac", 4),
        ("order=id.descc", 4),
        ("order=id.nullslasttt", 4),
        ("order=id.asc.desc", 8),
        ("order=id.nullsfirst.asc", 15),
        ("order=", 1),
        ("order=a,", 3),
        ("order=a..desc", 3),
        ("order=author(name,id)", 12),
        ("order=id.", 4),
    ];
    for (query, column) in cases {
        let err = read_err(query);
        assert_eq!(err.code(), "PGRST100", "{query}: {err}");
        assert_eq!(invalid_at(&err), column, "{query}: {err}");
    }
}

#[test]
fn a_malformed_embedded_order_key_is_an_error() {
    assert_eq!(read_err("a..order=id").code(), "PGRST100");
    assert_eq!(read_err(".order=id").code(), "PGRST100");
}
