//! Tokens already verified, so that a client sending the same token on every request (an API key,
//! a session's access token) pays for its signature and claims once, not on every request.
//!
//! The rules that keep the cache from changing any answer:
//! - Only a token that verified is kept; a refused one (bad signature, expired, wrong role...) is
//!   verified afresh every time it comes back.
//! - An entry ends when its token's `exp` comes (and no later than `MAX_AGE` after it was kept, for
//!   tokens without `exp`). From then on the token is verified again, which accepts it for the
//!   leeway past `exp` as before, then refuses it as expired: a cached token is never accepted
//!   beyond what verification itself would accept.
//! - The key is the whole token, compared in full (a hash alone could let another token hit the
//!   entry); tokens longer than `MAX_TOKEN_BYTES` are not kept.
//! - At most `capacity` entries: when full, expired entries go first, then arbitrary ones until an
//!   eighth of the room is free, so a stream of new tokens costs one sweep per `capacity / 8` tokens.
//!
//! The verifier's keys and rules are fixed once it is built, so nothing else can make a kept
//! answer wrong.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use serde_json::Value;

use super::identity::Identity;

/// How many verified tokens are kept by default.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;

/// Tokens longer than this are verified every time (the cache's memory stays under about
/// `capacity × 2 × MAX_TOKEN_BYTES`).
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;

/// How long a token without `exp` is kept, in seconds.
pub(crate) const MAX_AGE: u64 = 300;

pub(crate) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    identity: Identity,
    /// The entry is used while the time (Unix seconds) is below this.
    until: u64,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The verified token, if kept and its entry has not ended at `now` (Unix seconds).
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Identity> {
        let entries = self.entries.lock().unwrap_or_else(|err| err.into_inner());
        let entry = entries.get(token)?;
        (now < entry.until).then(|| entry.identity.clone())
    }

    /// Keeps `verified`, the outcome of verifying `token` at `now`, until its `exp` (or `MAX_AGE`).
    pub(crate) fn insert(&self, token: &str, identity: &Identity, now: u64) {
        if self.capacity == 0 || token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let until = match identity.claims.get("exp") {
            None | Some(Value::Null) => now.saturating_add(MAX_AGE),
            // Whole seconds, rounded down: the entry ends at or before `exp`, never after.
            Some(Value::Number(exp)) => match exp.as_f64() {
                Some(exp) if exp.is_finite() && exp > 0.0 => {
                    (exp.floor() as u64).min(now.saturating_add(MAX_AGE))
                }
                _ => return,
            },
            Some(_) => return,
        };
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|err| err.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, entry| now < entry.until);
            let keep = self.capacity - self.capacity.div_ceil(8);
            if entries.len() > keep {
                let evict: Vec<Box<str>> =
                    entries.keys().take(entries.len() - keep).cloned().collect();
                for key in evict {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(
            token.into(),
            Entry {
                identity: identity.clone(),
                until,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .len()
    }
}

/// Never prints the tokens.
impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;

    fn verified(claims: Value) -> Identity {
        assert!(claims.is_object(), "claims must be an object");
        Identity::new(claims["role"].as_str().unwrap().to_owned(), claims)
    }

    #[test]
    fn an_entry_ends_at_exp() {
        let cache = TokenCache::new(8);
        let token = verified(json!({"role": "authenticated", "exp": 1_000}));
        cache.insert("t", &token, 900);
        assert_eq!(cache.get("t", 900), Some(token.clone()));
        assert_eq!(cache.get("t", 999), Some(token));
        assert_eq!(cache.get("t", 1_000), None);
        assert_eq!(cache.get("t", 5_000), None);
        assert_eq!(cache.get("other", 900), None);
    }

    #[test]
    fn fractional_exp_rounds_down_and_no_exp_means_max_age() {
        let cache = TokenCache::new(8);
        cache.insert("f", &verified(json!({"role": "anon", "exp": 1_000.9})), 900);
        assert!(cache.get("f", 999).is_some());
        assert!(cache.get("f", 1_000).is_none());
        cache.insert("n", &verified(json!({"role": "anon"})), 900);
        assert!(cache.get("n", 900 + MAX_AGE - 1).is_some());
        assert!(cache.get("n", 900 + MAX_AGE).is_none());
        // A far exp is still bounded by MAX_AGE.
        cache.insert("far", &verified(json!({"role": "anon", "exp": 1e12})), 900);
        assert!(cache.get("far", 900 + MAX_AGE).is_none());
    }

    #[test]
    fn expired_odd_and_oversized_tokens_are_not_kept() {
        let cache = TokenCache::new(8);
        // Accepted within the leeway, but already past exp: verified again next time.
        cache.insert("late", &verified(json!({"role": "anon", "exp": 899})), 900);
        cache.insert(
            "odd",
            &verified(json!({"role": "anon", "exp": "soon"})),
            900,
        );
        cache.insert("neg", &verified(json!({"role": "anon", "exp": -5})), 900);
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        cache.insert(&long, &verified(json!({"role": "anon"})), 900);
        assert_eq!(cache.len(), 0);
        let off = TokenCache::new(0);
        off.insert("t", &verified(json!({"role": "anon"})), 900);
        assert!(off.get("t", 900).is_none());
    }

    #[test]
    fn the_bound_holds_and_expired_entries_go_first() {
        let cache = TokenCache::new(16);
        for i in 0..8 {
            cache.insert(
                &format!("old{i}"),
                &verified(json!({"role": "anon", "exp": 1_000})),
                900,
            );
        }
        for i in 0..8 {
            cache.insert(
                &format!("new{i}"),
                &verified(json!({"role": "anon", "exp": 5_000})),
                900,
            );
        }
        assert_eq!(cache.len(), 16);
        // Full, at a time when the old ones have ended: they make the room, the new ones stay.
        cache.insert(
            "late",
            &verified(json!({"role": "anon", "exp": 5_000})),
            1_100,
        );
        assert_eq!(cache.len(), 9);
        for i in 0..8 {
            assert!(cache.get(&format!("new{i}"), 1_100).is_some());
        }
        // Many more live tokens than room: never more than the capacity.
        for i in 0..1_000 {
            let mut claims = Map::new();
            claims.insert("role".into(), json!("anon"));
            claims.insert("exp".into(), json!(5_000));
            cache.insert(&format!("live{i}"), &verified(Value::Object(claims)), 1_100);
            assert!(cache.len() <= 16);
        }
        assert!(cache.get("live999", 1_100).is_some(), "the newest is kept");
    }
}
