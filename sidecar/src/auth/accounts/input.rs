//! Checking and encoding what clients send: emails, GoTrue's ban durations, query values.

use super::AccountError;

/// Lower-cased and trimmed, if it looks like an address: one `@`, something on each side, a dot in
/// the domain, no spaces or controls, at most 320 bytes. Deliverability is the mail's test.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 320
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(AccountError::InvalidEmail)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a query value).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A Go duration as GoTrue's `ban_duration` takes it ("24h", "1h30m", "90s", "none" to lift a
/// ban): its length in seconds, 0 for "none".
pub fn parse_ban_duration(text: &str) -> Option<f64> {
    let text = text.trim();
    if text == "none" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&end| end > 0)?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_or_refused() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "", "ann", "@x.io", "ann@", "ann@x", "a b@x.io", "a@b@x.io", "ann@.io", "ann@x.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ban_durations_are_go_durations() {
        assert_eq!(parse_ban_duration("none"), Some(0.0));
        assert_eq!(parse_ban_duration("24h"), Some(86400.0));
        assert_eq!(parse_ban_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_ban_duration("1.5s"), Some(1.5));
        for bad in ["", "h", "10", "10d", "-1h"] {
            assert_eq!(parse_ban_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent_encode("http://a.b/c?d=e f"),
            "http%3A%2F%2Fa.b%2Fc%3Fd%3De%20f"
        );
    }
}
