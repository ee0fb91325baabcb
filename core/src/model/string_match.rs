//! Istio's `StringMatch`, compiled.

use std::fmt;

use regex::Regex;

/// How one string value is compared: Istio's `StringMatch` (`exact`, `prefix`, `regex`).
///
/// Istio's "empty match means present" and `regex: "*"` forms are not string comparisons;
/// they compile to [`super::ValueMatch::Present`] instead.
#[derive(Debug, Clone)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// A regex that must match the whole value, as Envoy's `safe_regex` does. Build it with
    /// [`StringMatch::regex`], which adds the anchors; a `Regex` built elsewhere matches
    /// wherever its own anchors say.
    Regex(Regex),
}

impl StringMatch {
    pub fn exact(value: impl Into<String>) -> Self {
        Self::Exact(value.into())
    }

    pub fn prefix(value: impl Into<String>) -> Self {
        Self::Prefix(value.into())
    }

    /// Compiles an RE2-style pattern that must match the whole value.
    ///
    /// The pattern is compiled on its own first: wrapping an unbalanced pattern such as
    /// `a)|(b` in `^(?:...)$` would otherwise parse, and match unanchored.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        Regex::new(pattern)?;
        Ok(Self::Regex(Regex::new(&format!("^(?:{pattern})$"))?))
    }

    /// Whether `value` matches, case-sensitively.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => value == expected,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Regex(regex) => regex.is_match(value),
        }
    }

    /// Whether `value` matches, ignoring ASCII case for exact and prefix matches.
    ///
    /// Regexes keep their own case rules (`(?i)`), as with Istio's `ignoreUriCase`, which
    /// "only applies to exact and prefix URI matches".
    pub fn matches_ignore_case(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => value.eq_ignore_ascii_case(expected),
            Self::Prefix(prefix) => value
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
            Self::Regex(regex) => regex.is_match(value),
        }
    }
}

/// Regexes compare by their source text: two compiled regexes are equal when they were
/// compiled from the same pattern.
impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) | (Self::Prefix(a), Self::Prefix(b)) => a == b,
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for StringMatch {}

/// Istio's YAML spelling, for logs and `meshctl` explanations: `exact: "/a"`.
impl fmt::Display for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(value) => write!(f, "exact: {value:?}"),
            Self::Prefix(value) => write!(f, "prefix: {value:?}"),
            Self::Regex(regex) => {
                let source = regex.as_str();
                let pattern = source
                    .strip_prefix("^(?:")
                    .and_then(|rest| rest.strip_suffix(")$"))
                    .unwrap_or(source);
                write!(f, "regex: {pattern:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exact_and_prefix() {
        assert!(StringMatch::exact("/a").matches("/a"));
        assert!(!StringMatch::exact("/a").matches("/a/"));
        assert!(!StringMatch::exact("/a").matches("/A"));
        assert!(StringMatch::prefix("/a").matches("/a/b"));
        assert!(StringMatch::prefix("").matches(""));
        assert!(!StringMatch::prefix("/a/b").matches("/a"));
    }

    #[test]
    fn regex_matches_the_whole_value() {
        let m = StringMatch::regex("/v[0-9]+").unwrap();
        assert!(m.matches("/v12"));
        assert!(!m.matches("/v12/users"));
        assert!(!m.matches("x/v12"));
        let alternation = StringMatch::regex("a|b").unwrap();
        assert!(alternation.matches("a"));
        assert!(!alternation.matches("ab"));
    }

    #[test]
    fn regex_that_would_escape_its_anchors_is_rejected() {
        assert!(StringMatch::regex("a)|(b").is_err());
        assert!(StringMatch::regex("(").is_err());
        assert!(StringMatch::regex("a\\").is_err());
    }

    #[test]
    fn ignore_case_applies_to_exact_and_prefix_only() {
        assert!(StringMatch::exact("/Api").matches_ignore_case("/aPI"));
        assert!(StringMatch::prefix("/API").matches_ignore_case("/api/users"));
        assert!(!StringMatch::prefix("/API/x").matches_ignore_case("/api"));
        // A multi-byte character straddling the prefix length must not panic.
        assert!(!StringMatch::prefix("ab").matches_ignore_case("aé"));
        let regex = StringMatch::regex("/api").unwrap();
        assert!(!regex.matches_ignore_case("/API"));
    }

    #[test]
    fn equality_and_display() {
        assert_eq!(
            StringMatch::regex("a+").unwrap(),
            StringMatch::regex("a+").unwrap()
        );
        assert_ne!(StringMatch::exact("a"), StringMatch::prefix("a"));
        assert_eq!(StringMatch::prefix("/a").to_string(), r#"prefix: "/a""#);
        assert_eq!(
            StringMatch::regex("a+").unwrap().to_string(),
            r#"regex: "a+""#
        );
    }
}
