//! Rate limits for sign-in, sign-up and recovery: a fixed window of `window` holding at most
//! `limit` attempts per key. Every attempt counts, successful or not, and is counted before its
//! password is checked, so a password-guessing run stops at the limit whatever it guesses, however
//! many of its requests run at once.
//!
//! The keys, and why:
//! - Every action is limited per client address (`per_ip`, the looser limit).
//! - Sign-in is also limited per account *from one address* (`per_email` attempts for each pair of
//!   email and address). Counting an account's failures from everywhere together, as this module
//!   once did, let anyone lock the owner out: ten wrong passwords from one address refused the
//!   owner's right password from another for the whole window. Now guesses cost only the address
//!   that sends them, as GoTrue and OWASP's guidance do; guessing from many addresses is bounded
//!   by each address's limits and by the cost of an Argon2 hash per guess.
//! - Sign-up and recovery are also limited per email from every address together, since each may
//!   send that address mail: a limit per address would let many addresses flood one inbox.
//!
//! An IPv6 client is counted by its /64 prefix, the block a single host or customer is routinely
//! given: otherwise one attacker could take a new address for every attempt. Which address is the
//! client's (the TCP peer, or a trusted proxy's header) is `http::auth_api`'s decision, see
//! `AuthSettings::client_ip_header`.
//!
//! The counters live in this sidecar's memory: with several sidecars behind a balancer each
//! enforces its own limit (the effective limit is the sum). That keeps sign-in free of extra
//! database writes; a shared limit would belong in Postgres.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys, expired windows are swept on the next check, bounding memory.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

/// What one counter counts: an action from an address, for an email, or both. A struct rather
/// than one formatted string, so that no email or header value can spell another key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    action: &'static str,
    address: Option<String>,
    email: Option<String>,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_ip: Limit,
    per_email: Limit,
    windows: Mutex<HashMap<Key, (Instant, u32)>>,
}

/// Refused: try again after this long (the `Retry-After` header, in whole seconds, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The part of a client address that is counted: an IPv6 address's /64, any other as it is.
fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
        Ok(IpAddr::V6(v6)) => v6.to_canonical().to_string(),
        _ => ip.to_owned(),
    }
}

impl RateLimiter {
    pub fn new(per_ip: Limit, per_email: Limit) -> RateLimiter {
        RateLimiter {
            per_ip,
            per_email,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one sign-up or recovery attempt (`action`) from `ip` for `email` (if any); refused
    /// when the address or the email, counted over every address, is over its limit.
    pub fn check(
        &self,
        action: &'static str,
        ip: &str,
        email: Option<&str>,
    ) -> Result<(), Limited> {
        self.check_at(action, ip, email, Instant::now())
    }

    fn check_at(
        &self,
        action: &'static str,
        ip: &str,
        email: Option<&str>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut keys = vec![self.per_address(action, ip)];
        if let Some(email) = email {
            let key = Key {
                action,
                address: None,
                email: Some(email.to_lowercase()),
            };
            keys.push((key, self.per_email));
        }
        self.count(&keys, now)
    }

    /// Counts one password sign-in from `ip` for `email`; refused when the address, or this
    /// email from this address, is over its limit. Attempts from other addresses do not count.
    pub fn check_sign_in(&self, ip: &str, email: &str) -> Result<(), Limited> {
        self.check_sign_in_at(ip, email, Instant::now())
    }

    fn check_sign_in_at(&self, ip: &str, email: &str, now: Instant) -> Result<(), Limited> {
        let account = Key {
            action: "token",
            address: Some(address_key(ip)),
            email: Some(email.to_lowercase()),
        };
        let keys = [self.per_address("token", ip), (account, self.per_email)];
        self.count(&keys, now)
    }

    fn per_address(&self, action: &'static str, ip: &str) -> (Key, Limit) {
        let key = Key {
            action,
            address: Some(address_key(ip)),
            email: None,
        };
        (key, self.per_ip)
    }

    /// One attempt against every key, or a refusal that counts against none.
    fn count(&self, keys: &[(Key, Limit)], now: Instant) -> Result<(), Limited> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_ABOVE {
            let longest = self.per_ip.window.max(self.per_email.window);
            windows.retain(|_, (start, _)| now.duration_since(*start) < longest);
        }
        // Check every key first, so a refusal counts nowhere.
        for (key, limit) in keys {
            if let Some((start, count)) = windows.get(key) {
                let age = now.duration_since(*start);
                if age < limit.window && *count >= limit.limit {
                    return Err(Limited {
                        retry_after: limit.window - age,
                    });
                }
            }
        }
        for (key, limit) in keys {
            let entry = windows.entry(key.clone()).or_insert((now, 0));
            if now.duration_since(entry.0) >= limit.window {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            Limit {
                limit: 5,
                window: Duration::from_secs(60),
            },
            Limit {
                limit: 2,
                window: Duration::from_secs(30),
            },
        )
    }

    #[test]
    fn per_email_limit_refuses_with_the_time_left() {
        let limiter = limiter();
        let t0 = Instant::now();
        assert!(limiter
            .check_at("recover", "1.1.1.1", Some("A@x.io"), t0)
            .is_ok());
        assert!(limiter
            .check_at("recover", "2.2.2.2", Some("a@x.io"), t0)
            .is_ok());
        let refused = limiter
            .check_at(
                "recover",
                "3.3.3.3",
                Some("a@x.io"),
                t0 + Duration::from_secs(10),
            )
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert_eq!(refused.retry_after_secs(), 20);
        // Another action, another email: separate counters.
        assert!(limiter
            .check_at("signup", "3.3.3.3", Some("a@x.io"), t0)
            .is_ok());
        assert!(limiter
            .check_at("recover", "3.3.3.3", Some("b@x.io"), t0)
            .is_ok());
        // The window ends.
        assert!(limiter
            .check_at(
                "recover",
                "3.3.3.3",
                Some("a@x.io"),
                t0 + Duration::from_secs(31)
            )
            .is_ok());
    }

    #[test]
    fn per_ip_limit_counts_every_email() {
        let limiter = limiter();
        let t0 = Instant::now();
        for i in 0..5 {
            let email = format!("user{i}@x.io");
            assert!(limiter
                .check_at("signup", "9.9.9.9", Some(&email), t0)
                .is_ok());
        }
        let refused = limiter
            .check_at("signup", "9.9.9.9", Some("new@x.io"), t0)
            .unwrap_err();
        assert_eq!(refused.retry_after_secs(), 60);
        assert!(limiter
            .check_at("signup", "8.8.8.8", Some("new@x.io"), t0)
            .is_ok());
    }

    #[test]
    fn sign_in_guesses_from_one_address_do_not_limit_another() {
        let limiter = limiter();
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(limiter.check_sign_in_at("6.6.6.6", "ann@x.io", t0).is_ok());
        }
        // The guessing address is refused for this account, even with the right password...
        let refused = limiter
            .check_sign_in_at("6.6.6.6", "ANN@x.io", t0)
            .unwrap_err();
        assert_eq!(refused.retry_after_secs(), 30);
        // ...but the owner, elsewhere, is not; and the guesser may still try other accounts,
        // up to the looser per-address limit (5, two of them spent on ann).
        assert!(limiter.check_sign_in_at("1.2.3.4", "ann@x.io", t0).is_ok());
        for i in 0..3 {
            let email = format!("user{i}@x.io");
            assert!(limiter.check_sign_in_at("6.6.6.6", &email, t0).is_ok());
        }
        assert!(limiter.check_sign_in_at("6.6.6.6", "bob@x.io", t0).is_err());
        // Sign-in and recovery count separately.
        assert!(limiter
            .check_at("recover", "6.6.6.6", Some("ann@x.io"), t0)
            .is_ok());
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_prefix() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("unknown"), "unknown");
        let limiter = limiter();
        let t0 = Instant::now();
        for i in 0..2 {
            let ip = format!("2001:db8:1:2::{i}");
            assert!(limiter.check_sign_in_at(&ip, "ann@x.io", t0).is_ok());
        }
        // A new address in the same /64 is the same client.
        assert!(limiter
            .check_sign_in_at("2001:db8:1:2::99", "ann@x.io", t0)
            .is_err());
        assert!(limiter
            .check_sign_in_at("2001:db8:1:3::1", "ann@x.io", t0)
            .is_ok());
    }
}
