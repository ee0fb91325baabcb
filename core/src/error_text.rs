//! Errors as one line of text for logs and status pages.

/// An error and its causes on one line: tonic's and hyper's own messages alone
/// ("transport error") do not say what went wrong.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("connecting to pilot")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once_each() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            super::chain(&error),
            "connecting to pilot: connection refused"
        );
    }
}
