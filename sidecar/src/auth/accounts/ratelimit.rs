//! Rate limits for sign-in, sign-up and recovery, per client IP and per email: a fixed window of
//! `window` holding at most `limit` attempts per key. Every attempt counts, successful or not, so a
//! password-guessing run stops at the limit whatever it guesses.
//!
//! The counters live in this sidecar's memory: with several sidecars behind a balancer each
//! enforces its own limit (the effective limit is the sum). That keeps sign-in free of extra
//! database writes; a shared limit would belong in Postgres.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys, expired windows are swept on the next check, bounding memory.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_ip: Limit,
    per_email: Limit,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
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

impl RateLimiter {
    pub fn new(per_ip: Limit, per_email: Limit) -> RateLimiter {
        RateLimiter {
            per_ip,
            per_email,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt of `action` (e.g. "token") from `ip` for `email` (if any); refused when
    /// either key is over its limit. A refused attempt is not counted against the other key.
    pub fn check(&self, action: &str, ip: &str, email: Option<&str>) -> Result<(), Limited> {
        self.check_at(action, ip, email, Instant::now())
    }

    fn check_at(
        &self,
        action: &str,
        ip: &str,
        email: Option<&str>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_ABOVE {
            let longest = self.per_ip.window.max(self.per_email.window);
            windows.retain(|_, (start, _)| now.duration_since(*start) < longest);
        }
        let mut keys = vec![(format!("{action}|ip|{ip}"), self.per_ip)];
        if let Some(email) = email {
            keys.push((
                format!("{action}|email|{}", email.to_lowercase()),
                self.per_email,
            ));
        }
        // Check every key first, so a refusal counts nowhere.
        for (key, limit) in &keys {
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
            let entry = windows.entry(key).or_insert((now, 0));
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
            .check_at("token", "1.1.1.1", Some("A@x.io"), t0)
            .is_ok());
        assert!(limiter
            .check_at("token", "2.2.2.2", Some("a@x.io"), t0)
            .is_ok());
        let refused = limiter
            .check_at(
                "token",
                "3.3.3.3",
                Some("a@x.io"),
                t0 + Duration::from_secs(10),
            )
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert_eq!(refused.retry_after_secs(), 20);
        // Another action, another email: separate counters.
        assert!(limiter
            .check_at("recover", "3.3.3.3", Some("a@x.io"), t0)
            .is_ok());
        assert!(limiter
            .check_at("token", "3.3.3.3", Some("b@x.io"), t0)
            .is_ok());
        // The window ends.
        assert!(limiter
            .check_at(
                "token",
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
}
