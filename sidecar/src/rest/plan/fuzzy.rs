//! "Perhaps you meant …" suggestions for names that are not found, as PostgREST's fuzzy hints
//! pick them: among the candidates that share a letter pair with the name (FuzzySet's n-gram
//! pre-selection, ends padded), the closest by edit distance, scored `1 - distance / longer
//! length` (case-insensitive), at least 1/3 alike. Only on error paths.

/// PostgREST's `Fuzzy.getOne` minimum score.
const MIN_SCORE: f64 = 0.33;

/// The candidate most like `name`, if any is alike enough. With `skip_exact`, nothing is
/// suggested when a candidate equals `name` (it exists: something else is wrong).
pub(crate) fn closest<'a, I>(candidates: I, name: &str, skip_exact: bool) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = similarity(&candidate.to_lowercase(), &wanted);
        if skip_exact && score >= 1.0 {
            return None;
        }
        if score < MIN_SCORE || !shares_a_pair(&candidate.to_lowercase(), &wanted) {
            continue;
        }
        if best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Whether `a` and `b` (padded with `-` at both ends) have a two-letter sequence in common.
fn shares_a_pair(a: &str, b: &str) -> bool {
    let pairs = |text: &str| -> Vec<(char, char)> {
        let padded: Vec<char> = std::iter::once('-')
            .chain(text.chars())
            .chain(std::iter::once('-'))
            .collect();
        padded.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let theirs = pairs(b);
    pairs(a).iter().any(|pair| theirs.contains(pair))
}

fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 1.0;
    }
    1.0 - levenshtein(&a, &b) as f64 / longer as f64
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn picks_the_closest_alike_enough() {
        let names = ["films", "roles", "actors"];
        assert_eq!(closest(names, "film", false), Some("films"));
        assert_eq!(closest(names, "role", false), Some("roles"));
        assert_eq!(closest(names, "noclosealternative", false), None);
        assert_eq!(closest(names, "actors", true), None);
        assert_eq!(closest(names, "ACTOR", false), Some("actors"));
        // A third alike by edits, but no letter pair in common: FuzzySet never compares them.
        assert_eq!(closest(["sorted"], "nope", false), None);
        assert_eq!(closest(["sorted", "nap"], "nope", false), Some("nap"));
    }
}
