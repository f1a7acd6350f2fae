//! Errors for people: `describe` writes an error with its whole cause chain, for the log. It knows
//! no feature's error type, so every layer may use it; turning errors into HTTP responses is
//! `http::error`'s job.

use std::error::Error as StdError;

/// An error and its causes on one line, `outer: inner: innermost`. Many errors (tokio-postgres's among
/// them) print only their own layer, so a message without the chain would hide the actual cause; a
/// cause whose text is already shown is skipped, for errors that do print their source.
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_walks_the_cause_chain_without_repeating_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper: {0}")]
        struct Wrapper(#[source] Outer);

        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe(&Outer(inner)), "outer: refused");
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe(&Wrapper(Outer(inner))), "wrapper: outer: refused");
    }
}
