use super::*;

fn prefer(values: &[&str]) -> Preferences {
    let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("Prefer", *v)).collect();
    parse_read("", &headers(&pairs)).unwrap().prefer
}

#[test]
fn no_header_no_preferences() {
    assert_eq!(prefer(&[]), Preferences::default());
}

#[test]
fn each_preference_alone() {
    assert_eq!(
        prefer(&["return=representation"]).representation,
        Some(Representation::Full)
    );
    assert_eq!(
        prefer(&["return=minimal"]).representation,
        Some(Representation::Minimal)
    );
    assert_eq!(
        prefer(&["return=headers-only"]).representation,
        Some(Representation::HeadersOnly)
    );
    assert_eq!(prefer(&["count=exact"]).count, Some(Count::Exact));
    assert_eq!(prefer(&["count=planned"]).count, Some(Count::Planned));
    assert_eq!(prefer(&["count=estimated"]).count, Some(Count::Estimated));
    assert_eq!(
        prefer(&["resolution=merge-duplicates"]).resolution,
        Some(Resolution::MergeDuplicates)
    );
    assert_eq!(
        prefer(&["resolution=ignore-duplicates"]).resolution,
        Some(Resolution::IgnoreDuplicates)
    );
    assert_eq!(prefer(&["missing=default"]).missing, Some(Missing::Default));
    assert_eq!(prefer(&["missing=null"]).missing, Some(Missing::Null));
    assert_eq!(
        prefer(&["tx=commit"]).transaction,
        Some(Transaction::Commit)
    );
    assert_eq!(
        prefer(&["tx=rollback"]).transaction,
        Some(Transaction::Rollback)
    );
    assert_eq!(
        prefer(&["handling=lenient"]).handling,
        Some(Handling::Lenient)
    );
    assert_eq!(
        prefer(&["timezone=Europe/Paris"]).timezone.as_deref(),
        Some("Europe/Paris")
    );
    assert_eq!(prefer(&["max-affected=10"]).max_affected, Some(10));
}

#[test]
fn several_in_one_header_with_any_spacing() {
    let parsed = prefer(&["count=exact,    tx=commit   ,return=representation , missing=default"]);
    assert_eq!(parsed.count, Some(Count::Exact));
    assert_eq!(parsed.transaction, Some(Transaction::Commit));
    assert_eq!(parsed.representation, Some(Representation::Full));
    assert_eq!(parsed.missing, Some(Missing::Default));
    assert!(parsed.invalid.is_empty());
}

#[test]
fn several_headers() {
    let parsed = prefer(&["return=minimal", "count=planned"]);
    assert_eq!(parsed.representation, Some(Representation::Minimal));
    assert_eq!(parsed.count, Some(Count::Planned));
}

#[test]
fn the_first_of_a_kind_wins_within_and_across_headers() {
    assert_eq!(
        prefer(&["tx=commit, tx=rollback"]).transaction,
        Some(Transaction::Commit)
    );
    assert_eq!(
        prefer(&[
            "resolution=ignore-duplicates",
            "resolution=merge-duplicates"
        ])
        .resolution,
        Some(Resolution::IgnoreDuplicates)
    );
}

#[test]
fn unknown_preferences_are_collected_and_ignored() {
    let parsed =
        prefer(&["anything, return=minimal, Return=minimal, count=EXACT, max-affected=x,,"]);
    assert_eq!(parsed.representation, Some(Representation::Minimal));
    assert_eq!(parsed.count, None);
    assert_eq!(
        parsed.invalid,
        strings(&[
            "anything",
            "Return=minimal",
            "count=EXACT",
            "max-affected=x"
        ])
    );
}

#[test]
fn strict_handling_refuses_unknown_preferences() {
    let err = parse_read("", &headers(&[("Prefer", "handling=strict, foo, bar=1")])).unwrap_err();
    assert_eq!(err.code(), "PGRST122");
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        err.details().as_deref(),
        Some("Invalid preferences: foo, bar=1")
    );
    let ok = prefer(&["handling=strict, count=exact"]);
    assert_eq!(ok.handling, Some(Handling::Strict));
    assert_eq!(
        prefer(&["handling=lenient, foo"]).invalid,
        strings(&["foo"])
    );
}

#[test]
fn the_prefer_header_name_is_case_insensitive() {
    let parsed = parse_read("", &headers(&[("prefer", "count=exact")])).unwrap();
    assert_eq!(parsed.prefer.count, Some(Count::Exact));
}
