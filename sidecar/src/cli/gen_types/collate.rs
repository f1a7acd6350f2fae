//! The order the Supabase CLI's generator sorts names in: `Intl.Collator("en")` (ICU's root
//! collation). Letters compare without case first (`CamelCase` sits between `birthday` and
//! `created_at`), punctuation comes before digits and digits before letters (`a_b` < `a1` < `ab`),
//! and only then does lower case come before upper case. Exact for ASCII names; other characters
//! sort after the ASCII ones by code point (ICU would interleave accented letters).

use std::cmp::Ordering;

/// ICU root order of the ASCII punctuation and symbols (whitespace first, `$` last).
const SYMBOLS: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

fn primary(c: char) -> (u8, u32) {
    if c.is_whitespace() || c.is_control() {
        (0, c as u32)
    } else if let Some(index) = SYMBOLS.find(c) {
        (1, index as u32)
    } else if c.is_ascii_digit() {
        (2, c as u32)
    } else if c.is_ascii_alphabetic() {
        (3, c.to_ascii_lowercase() as u32)
    } else {
        (4, c as u32)
    }
}

/// Compares like `new Intl.Collator("en").compare(a, b)` for ASCII names.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let keys = |s: &str| s.chars().map(primary).collect::<Vec<_>>();
    keys(a).cmp(&keys(b)).then_with(|| {
        // Tertiary level: at the first difference in case, lower case first.
        let case = |s: &str| s.chars().map(|c| c.is_uppercase()).collect::<Vec<_>>();
        case(a).cmp(&case(b))
    })
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn orders_like_icu() {
        assert_eq!(compare("birthday", "CamelCase"), Less);
        assert_eq!(compare("CamelCase", "created_at"), Less);
        assert_eq!(compare("a_b", "a1"), Less);
        assert_eq!(compare("a1", "ab"), Less);
        assert_eq!(compare("abc", "Abc"), Less);
        assert_eq!(compare("post", "post_tags"), Less);
        assert_eq!(compare("post_tags", "posts"), Less);
        assert_eq!(compare("same", "same"), Equal);
    }
}
