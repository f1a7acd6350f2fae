//! The order the Supabase CLI's generator sorts names in: `Intl.Collator("en")`, CLDR's root
//! collation (English has no tailoring). Letters compare without case or accents first
//! (`CamelCase` sits between `birthday` and `created_at`, `été` next to `ete`), punctuation comes
//! before digits and digits before letters (`a_b` < `a1` < `ab`), and only then accents and case
//! (lower case first).

use std::cmp::Ordering;
use std::sync::OnceLock;

use icu_collator::options::CollatorOptions;
use icu_collator::{Collator, CollatorBorrowed};

fn collator() -> Option<&'static CollatorBorrowed<'static>> {
    static COLLATOR: OnceLock<Option<CollatorBorrowed<'static>>> = OnceLock::new();
    COLLATOR
        .get_or_init(|| Collator::try_new(Default::default(), CollatorOptions::default()).ok())
        .as_ref()
}

/// Compares like `new Intl.Collator("en").compare(a, b)`.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    match collator() {
        Some(collator) => collator.compare(a, b),
        // The root collation's data is compiled in; this is only a guard.
        None => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn orders_like_intl_collator_en() {
        assert_eq!(compare("birthday", "CamelCase"), Less);
        assert_eq!(compare("CamelCase", "created_at"), Less);
        assert_eq!(compare("a_b", "a1"), Less);
        assert_eq!(compare("a1", "ab"), Less);
        assert_eq!(compare("abc", "Abc"), Less);
        assert_eq!(compare("post", "post_tags"), Less);
        assert_eq!(compare("post_tags", "posts"), Less);
        assert_eq!(compare("ete", "été"), Less);
        assert_eq!(compare("été", "etf"), Less);
        assert_eq!(compare("same", "same"), Equal);
    }
}
