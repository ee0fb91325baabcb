//! `paths`: Istio's string forms, or Envoy URI templates when a path holds `{*}` or `{**}`.

use regex::Regex;

use super::error::Problem;
use super::pattern::Pattern;

const ONE_SEGMENT: &str = "{*}";
const ANY_SEGMENTS: &str = "{**}";

/// Envoy's `pchar` punctuation for template literals (RFC 3986 without `*`), besides ASCII
/// letters and digits.
const PUNCTUATION: &str = "-._~%!$&'()+,;:@=";

#[derive(Debug, Clone)]
pub(super) enum PathMatch {
    Pattern(Pattern),
    /// An anchored regex built from the template.
    Template(Regex),
}

impl PathMatch {
    pub(super) fn parse(value: &str) -> Result<Self, Problem> {
        if value.contains(ONE_SEGMENT) || value.contains(ANY_SEGMENTS) {
            template(value).map(Self::Template)
        } else {
            Ok(Self::Pattern(Pattern::parse(value)))
        }
    }

    /// `path` is the request's `:path`; the query and fragment are not part of the match.
    pub(super) fn matches(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        match self {
            Self::Pattern(pattern) => pattern.matches(path),
            Self::Template(regex) => regex.is_match(path),
        }
    }
}

/// Envoy's `uri_template` as Istio feeds it: `{*}` is one non-empty segment, `{**}` is any
/// text including `/` and must be the last operator; every other segment is a literal of
/// `pchar`s. Envoy's own rules (a leading `/`, no `//`) are Istio's validation here.
fn template(path: &str) -> Result<Regex, Problem> {
    let bad = |why: &'static str| Problem::PathTemplate {
        path: path.to_owned(),
        why,
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("a path template must start with '/'"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    let literal = format!("a-zA-Z0-9{}", regex::escape(PUNCTUATION));
    let mut seen_any = false;
    let mut pieces = Vec::with_capacity(segments.len());
    for (i, segment) in segments.into_iter().enumerate() {
        let piece = match segment {
            ONE_SEGMENT | ANY_SEGMENTS if seen_any => {
                return Err(bad("{**} must be the last operator"));
            }
            ONE_SEGMENT => format!("[{literal}]+"),
            ANY_SEGMENTS => {
                seen_any = true;
                format!("[{literal}/]*")
            }
            "" if i == last => String::new(),
            "" => return Err(bad("a path template must not hold an empty segment ('//')")),
            _ if segment.contains(['*', '{', '}']) => {
                return Err(bad(
                    "'*', '{' and '}' are allowed only as a whole {*} or {**} segment",
                ));
            }
            _ if !segment.bytes().all(is_literal) => {
                return Err(bad("a template segment may hold only URL path characters"));
            }
            _ => regex::escape(segment),
        };
        pieces.push(piece);
    }
    Regex::new(&format!("^/{}$", pieces.join("/")))
        .map_err(|_| bad("the template does not compile"))
}

fn is_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || PUNCTUATION.as_bytes().contains(&byte)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matches(template: &str, path: &str) -> bool {
        PathMatch::parse(template).unwrap().matches(path)
    }

    #[test]
    fn istio_reference_examples() {
        assert!(matches("/foo/{*}", "/foo/bar"));
        assert!(!matches("/foo/{*}", "/foo/bar/baz"));
        assert!(!matches("/foo/{*}", "/foo/"));
        assert!(matches("/foo/{**}/", "/foo/bar/"));
        assert!(matches("/foo/{**}/", "/foo//"));
        assert!(!matches("/foo/{**}/", "/foo/bar"));
        assert!(matches("/foo/{*}/bar/{**}", "/foo/buzz/bar/"));
        assert!(matches("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz"));
        assert!(matches("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz?x=1"));
        assert!(!matches("/f.o/{*}", "/fxo/a"));
    }

    #[test]
    fn invalid_templates() {
        for bad in [
            "/*/baz/{*}",
            "/**/baz/{*}",
            "/{**}/foo/{*}",
            "/foo/{*}.txt",
            "foo/{*}",
            "/foo//{*}",
            "/foo/{*}/a b",
        ] {
            assert!(PathMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_paths_ignore_the_query() {
        assert!(matches("/info*", "/info/x?a=b"));
        assert!(matches("/data", "/data?x"));
        assert!(matches("*.txt", "/a/b.txt#frag"));
        assert!(!matches("/data", "/data/"));
    }
}
