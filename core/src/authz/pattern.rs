//! Istio's string values: exact `abc`, prefix `abc*`, suffix `*abc` and presence `*`.

/// One string value of a policy, compiled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pattern {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// `*`: any non-empty value (Envoy's regex `.+`).
    Present,
}

impl Pattern {
    /// Istio's precedence (`StringMatcherWithPrefix`): `*` alone, then a leading `*`, then a
    /// trailing one, so `*abc*` is the suffix `abc*`. A `*` anywhere else is literal.
    pub(super) fn parse(value: &str) -> Self {
        if value == "*" {
            Self::Present
        } else if let Some(suffix) = value.strip_prefix('*') {
            Self::Suffix(suffix.into())
        } else if let Some(prefix) = value.strip_suffix('*') {
            Self::Prefix(prefix.into())
        } else {
            Self::Exact(value.into())
        }
    }

    pub(super) fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => value == &**exact,
            Self::Prefix(prefix) => value.starts_with(&**prefix),
            Self::Suffix(suffix) => value.ends_with(&**suffix),
            Self::Present => !value.is_empty(),
        }
    }

    /// ASCII case-insensitive, as Istio matches `hosts`. Compares bytes, so a multi-byte
    /// character straddling the prefix length cannot panic.
    pub(super) fn matches_ignore_case(&self, value: &str) -> bool {
        let value = value.as_bytes();
        let same =
            |a: Option<&[u8]>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b.as_bytes()));
        match self {
            Self::Exact(exact) => value.eq_ignore_ascii_case(exact.as_bytes()),
            Self::Prefix(prefix) => same(value.get(..prefix.len()), prefix),
            Self::Suffix(suffix) => same(
                value
                    .len()
                    .checked_sub(suffix.len())
                    .and_then(|at| value.get(at..)),
                suffix,
            ),
            Self::Present => !value.is_empty(),
        }
    }
}

/// A `requestPrincipals` value, `<iss>/<sub>`, split as Istio's `requestPrincipalGenerator`
/// does: at the last `/` of the pattern (issuers are often URLs), then a `*` at either end
/// applies to the issuer or the subject alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JwtPrincipal {
    issuer: Pattern,
    subject: Pattern,
}

impl JwtPrincipal {
    pub(super) fn parse(value: &str) -> Self {
        let split = value.rsplit_once('/');
        let leading = value.strip_prefix('*');
        let trailing = value.strip_suffix('*');
        let (issuer, subject) = match (split, leading, trailing) {
            _ if value == "*" => (Pattern::Present, Pattern::Present),
            // `*.example.com/sub`: an issuer suffix; `*foo`: a subject suffix.
            (Some((iss, sub)), Some(_), _) => (glob_suffix(iss), exact(sub)),
            (None, Some(suffix), _) => (Pattern::Present, Pattern::Suffix(suffix.into())),
            // `iss/sub*`: a subject prefix; `https://iss*`: an issuer prefix.
            (Some((iss, sub)), None, Some(_)) => (exact(iss), glob_prefix(sub)),
            (None, None, Some(prefix)) => (Pattern::Prefix(prefix.into()), Pattern::Present),
            (Some((iss, sub)), None, None) => (exact(iss), exact(sub)),
            (None, None, None) => (exact(value), exact("")),
        };
        Self { issuer, subject }
    }

    pub(super) fn matches(&self, issuer: &str, subject: &str) -> bool {
        self.issuer.matches(issuer) && self.subject.matches(subject)
    }
}

fn exact(value: &str) -> Pattern {
    Pattern::Exact(value.into())
}

/// `*` alone is presence; otherwise one leading `*` is stripped and the rest is a suffix.
fn glob_suffix(value: &str) -> Pattern {
    match value {
        "*" => Pattern::Present,
        _ => Pattern::Suffix(value.strip_prefix('*').unwrap_or(value).into()),
    }
}

/// `*` alone is presence; otherwise one trailing `*` is stripped and the rest is a prefix.
fn glob_prefix(value: &str) -> Pattern {
    match value {
        "*" => Pattern::Present,
        _ => Pattern::Prefix(value.strip_suffix('*').unwrap_or(value).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(Pattern::parse("abc").matches("abc"));
        assert!(!Pattern::parse("abc").matches("abcd"));
        assert!(Pattern::parse("abc*").matches("abc"));
        assert!(Pattern::parse("abc*").matches("abcd"));
        assert!(Pattern::parse("*abc").matches("xabc"));
        assert!(!Pattern::parse("*abc").matches("abcx"));
        assert!(Pattern::parse("*").matches("x"));
        assert!(!Pattern::parse("*").matches(""));
        assert_eq!(Pattern::parse("*a*"), Pattern::Suffix("a*".into()));
        assert_eq!(Pattern::parse("a*b"), Pattern::Exact("a*b".into()));
    }

    #[test]
    fn ignore_case() {
        assert!(Pattern::parse("Example.COM").matches_ignore_case("example.com"));
        assert!(Pattern::parse("*.Example.com").matches_ignore_case("api.EXAMPLE.com"));
        assert!(Pattern::parse("API.*").matches_ignore_case("api.example"));
        assert!(!Pattern::parse("ab*").matches_ignore_case("aé"));
        assert!(!Pattern::parse("*ab").matches_ignore_case("é"));
    }

    #[test]
    fn jwt_principals() {
        let p = JwtPrincipal::parse;
        assert!(p("https://iss.example/sub").matches("https://iss.example", "sub"));
        assert!(!p("https://iss.example/sub").matches("https://iss.example/sub", ""));
        assert!(p("*").matches("i", "s"));
        assert!(!p("*").matches("i", ""));
        assert!(p("*/admin").matches("any", "admin"));
        assert!(p("*.example/admin").matches("https://a.example", "admin"));
        assert!(p("*min").matches("any", "admin"));
        assert!(p("https://iss/*").matches("https://iss", "anyone"));
        assert!(p("https://iss/adm*").matches("https://iss", "admin"));
        assert!(!p("https://iss/adm*").matches("https://iss2", "admin"));
        assert!(p("iss*").matches("issuer", "x"));
        // The split is at the pattern's last `/`, even inside a URL scheme, as in Istio.
        assert!(p("https://is*").matches("https:/", "iss"));
        assert!(!p("https://is*").matches("https://iss", "x"));
        assert!(p("issuer").matches("issuer", ""));
        assert!(!p("issuer").matches("issuer", "sub"));
    }
}
