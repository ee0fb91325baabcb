//! Query-string lookup for `queryParams` matches and query-parameter hashing.

use std::borrow::Cow;

/// The percent-decoded value of the first parameter named `name` in `query` (the text
/// after `?`). A parameter without `=` has the empty value. `+` is left as is, as Envoy
/// leaves it.
pub(crate) fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes. Malformed escapes stay as written; decoded bytes that are not
/// UTF-8 are replaced, so a match can fail but never panic.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match (byte, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_occurrence() {
        assert_eq!(query_param("a=1&b=2&a=3", "a").as_deref(), Some("1"));
        assert_eq!(query_param("a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(query_param("a=1&b=2", "c"), None);
        assert_eq!(query_param("", "a"), None);
    }

    #[test]
    fn flags_and_empty_values() {
        assert_eq!(query_param("debug&a=1", "debug").as_deref(), Some(""));
        assert_eq!(query_param("a=&b", "a").as_deref(), Some(""));
        assert_eq!(query_param("a=x=y", "a").as_deref(), Some("x=y"));
    }

    #[test]
    fn decodes_names_and_values() {
        assert_eq!(
            query_param("user%20id=j%C3%A9", "user id").as_deref(),
            Some("jé")
        );
        assert_eq!(query_param("q=a+b", "q").as_deref(), Some("a+b"));
        assert_eq!(query_param("q=100%", "q").as_deref(), Some("100%"));
        assert_eq!(query_param("q=%zz%4", "q").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("q=%ff", "q").as_deref(), Some("\u{fffd}"));
    }
}
