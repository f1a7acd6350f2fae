//! `QueryLimits`: each bound is met exactly at its value and refused one past it, with a message
//! that names what was counted, the value and the limit, and a hint that names the setting.

use super::*;

/// `n` copies of `item` joined by `sep`.
fn repeated(item: &str, n: usize, sep: &str) -> String {
    vec![item; n].join(sep)
}

/// A query whose count for one limit is `n`.
fn query_with(limit: Limit, n: usize) -> String {
    match limit {
        Limit::Filters => repeated("id=gt.1", n, "&"),
        Limit::LogicBranches => format!("or=({})", repeated("id.eq.1", n, ",")),
        Limit::LogicDepth => format!("or=({}id.eq.1{})", "and(".repeat(n - 1), ")".repeat(n - 1)),
        Limit::SelectItems => format!("select={}", repeated("id", n, ",")),
        Limit::EmbedDepth => format!("select=id,{}id{}", "a(".repeat(n), ")".repeat(n)),
        Limit::OrderTerms => format!("order={}", repeated("id.desc", n, ",")),
    }
}

const SMALL: QueryLimits = QueryLimits {
    filters: 3,
    logic_branches: 4,
    logic_depth: 2,
    select_items: 5,
    embed_depth: 2,
    order_terms: 3,
};

fn max_of(limits: &QueryLimits, limit: Limit) -> usize {
    match limit {
        Limit::Filters => limits.filters,
        Limit::LogicBranches => limits.logic_branches,
        Limit::LogicDepth => limits.logic_depth,
        Limit::SelectItems => limits.select_items,
        Limit::EmbedDepth => limits.embed_depth,
        Limit::OrderTerms => limits.order_terms,
    }
}

const ALL: [Limit; 6] = [
    Limit::Filters,
    Limit::LogicBranches,
    Limit::LogicDepth,
    Limit::SelectItems,
    Limit::EmbedDepth,
    Limit::OrderTerms,
];

#[test]
fn each_limit_allows_its_value_and_refuses_one_more() {
    for limit in ALL {
        let max = max_of(&SMALL, limit);
        let at_limit = read(&query_with(limit, max));
        assert_eq!(SMALL.check(&at_limit), Ok(()), "{limit:?} at {max}");

        let over = read(&query_with(limit, max + 1));
        let err = SMALL.check(&over).unwrap_err();
        assert_eq!(
            err,
            ParseError::TooComplex {
                limit,
                value: max + 1,
                max
            }
        );
        assert_eq!((err.code(), err.http_status()), ("SLUICE115", 400));
        let message = err.to_string();
        assert!(
            message.contains(&format!("{} {}", max + 1, limit.what())),
            "{message}"
        );
        assert!(message.contains(&format!("the {max} allowed")), "{message}");
        let hint = err.hint().unwrap();
        let (env, flag) = limit.setting();
        assert!(hint.contains(env) && hint.contains(flag), "{hint}");
    }
}

#[test]
fn counts_cover_every_embed_path_and_every_parameter() {
    let limits = QueryLimits {
        filters: 2,
        order_terms: 2,
        logic_branches: 3,
        ..QueryLimits::default()
    };
    // Filters and order terms at embed paths count with the top level's.
    let request = read("select=*,a(*)&id=eq.1&a.id=eq.2&a.x=eq.3");
    assert!(matches!(
        limits.check(&request),
        Err(ParseError::TooComplex {
            limit: Limit::Filters,
            value: 3,
            ..
        })
    ));
    let request = read("order=id&a.order=x,y&select=*,a(*)");
    assert!(matches!(
        limits.check(&request),
        Err(ParseError::TooComplex {
            limit: Limit::OrderTerms,
            value: 3,
            ..
        })
    ));
    // Several logic parameters add up; a nested group counts itself and its children.
    let request = read("or=(a.eq.1,and(b.eq.2,c.eq.3))");
    assert!(matches!(
        limits.check(&request),
        Err(ParseError::TooComplex {
            limit: Limit::LogicBranches,
            value: 4,
            ..
        })
    ));
    let request = read("or=(a.eq.1,b.eq.2)&and=(c.eq.3)");
    assert_eq!(limits.check(&request), Ok(()));
    // Embedded select items count with the top level's.
    let limits = QueryLimits {
        select_items: 3,
        ..QueryLimits::default()
    };
    assert_eq!(limits.check(&read("select=id,a(x)")), Ok(()));
    assert!(limits.check(&read("select=id,a(x,y)")).is_err());
}

#[test]
fn the_defaults_leave_ordinary_requests_alone() {
    let limits = QueryLimits::default();
    for query in [
        "",
        "select=id,title,author:authors!inner(name,avatar),comments(id,body,user:users(name))\
         &status=eq.open&created_at=gte.2024-01-01&or=(priority.eq.high,due.lt.now)\
         &order=created_at.desc.nullslast,id&limit=20&offset=40",
        &query_with(Limit::Filters, 100),
        &query_with(Limit::SelectItems, 500),
        &query_with(Limit::EmbedDepth, 8),
        &query_with(Limit::LogicDepth, 8),
    ] {
        assert_eq!(limits.check(&read(query)), Ok(()), "{query}");
    }
}

#[test]
fn the_hostile_request_of_the_issue_is_refused() {
    // 5,000 copies of one filter: a 35 kB URL that held a backend for 33 s.
    let query = repeated("id=gte.0", 5_000, "&");
    assert!(query.len() > 35_000);
    let err = QueryLimits::default().check(&read(&query)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the request has 5000 filters, more than the 100 allowed"
    );
}
