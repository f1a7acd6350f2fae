//! What an answer means for a delivery, and how long to wait before the next attempt.

use std::time::{Duration, SystemTime};

/// The longest wait between two attempts, whatever the backoff or a `Retry-After` asks.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(3600);

/// What an attempt's outcome asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// A network error, a timeout, 429 or 5xx: try again later.
    Retry,
    /// 410 Gone: the receiver asks us to stop; the webhook is disabled.
    Gone,
    /// Any other answer: a failure that another attempt would not change.
    Refused,
}

/// The verdict on an HTTP status (`None`: no answer, a network error or a timeout).
pub(crate) fn classify(status: Option<u16>) -> Verdict {
    match status {
        None => Verdict::Retry,
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429) | Some(500..=599) => Verdict::Retry,
        Some(_) => Verdict::Refused,
    }
}

/// The wait after `failed` failed attempts (1 for the first): `first` doubled each time, at most
/// `MAX_DELAY`, with "equal jitter" (half fixed, half random from `random` in [0, 1)) so that
/// receivers that failed together are not retried together. `Retry-After` raises the wait.
pub(crate) fn delay(
    first: Duration,
    failed: u32,
    random: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let doubled = first.saturating_mul(1u32 << failed.saturating_sub(1).min(20));
    let backoff = doubled.min(MAX_DELAY);
    let jittered = backoff / 2 + backoff.mul_f64(random.clamp(0.0, 1.0) / 2.0);
    jittered.max(retry_after.unwrap_or_default()).min(MAX_DELAY)
}

/// A `Retry-After` header: seconds, or an HTTP date (RFC 9110), as a wait from `now`.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// A number in [0, 1) from the system's randomness (0.5 should it fail: jitter is not security).
pub(crate) fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_issue_says() {
        assert_eq!(classify(Some(200)), Verdict::Delivered);
        assert_eq!(classify(Some(204)), Verdict::Delivered);
        assert_eq!(classify(None), Verdict::Retry);
        assert_eq!(classify(Some(429)), Verdict::Retry);
        assert_eq!(classify(Some(500)), Verdict::Retry);
        assert_eq!(classify(Some(503)), Verdict::Retry);
        assert_eq!(classify(Some(410)), Verdict::Gone);
        assert_eq!(classify(Some(400)), Verdict::Refused);
        assert_eq!(classify(Some(301)), Verdict::Refused);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let first = Duration::from_secs(1);
        assert_eq!(delay(first, 1, 0.0, None), Duration::from_millis(500));
        assert_eq!(delay(first, 1, 0.999_999, None).as_millis(), 999);
        assert_eq!(delay(first, 3, 0.0, None), Duration::from_secs(2));
        assert_eq!(delay(first, 60, 0.0, None), MAX_DELAY / 2);
        assert!(delay(first, 60, 0.99, None) <= MAX_DELAY);
    }

    #[test]
    fn retry_after_raises_the_wait_but_not_past_the_cap() {
        let first = Duration::from_millis(100);
        let ten = Some(Duration::from_secs(10));
        assert_eq!(delay(first, 1, 0.0, ten), Duration::from_secs(10));
        assert_eq!(
            delay(first, 1, 0.0, Some(Duration::from_secs(1 << 20))),
            MAX_DELAY
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Dec 2026 12:00:00 GMT").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Dec 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Dec 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn random_units_stay_in_range() {
        for _ in 0..100 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
