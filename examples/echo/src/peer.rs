//! The caller's identity as the sidecar verified it: the `URI=` of `x-forwarded-client-cert`,
//! so a demo prints who called without digging through headers.

use http::HeaderMap;

/// Set by the inbound sidecar after mTLS, e.g. `By=spiffe://.../sa/reviews;URI=spiffe://.../sa/productpage`.
pub const XFCC: &str = "x-forwarded-client-cert";

/// The last `URI=` value in the request's `x-forwarded-client-cert` headers, or `None`.
///
/// The header is a comma-separated list of elements (one per proxy hop that appended one),
/// each a `;`-separated list of `key=value` pairs whose values may be double-quoted. The
/// last element is the hop nearest to this app, so its `URI` is the peer that just called.
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(XFCC)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(last_uri)
        .next_back()
}

/// The last `URI=` value of one header value.
pub fn last_uri(value: &str) -> Option<String> {
    split_outside_quotes(value, ',')
        .into_iter()
        .flat_map(|element| split_outside_quotes(element, ';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("uri"))
        .map(|(_, value)| unquote(value.trim()))
        .rfind(|uri| !uri.is_empty())
}

/// Splits at `separator`, except inside double quotes (where `\"` is an escaped quote).
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_last_uri_wins() {
        let istio = "By=spiffe://cluster.local/ns/shop/sa/reviews;Hash=ab12;URI=spiffe://cluster.local/ns/shop/sa/productpage";
        assert_eq!(
            last_uri(istio).as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/productpage")
        );
        assert_eq!(
            last_uri("URI=spiffe://a,By=x;URI=spiffe://b").as_deref(),
            Some("spiffe://b")
        );
        assert_eq!(
            last_uri("uri=spiffe://lower").as_deref(),
            Some("spiffe://lower")
        );
    }

    #[test]
    fn quoted_values_may_hold_separators() {
        let value = r#"Subject="CN=a,O=b;c";URI="spiffe://x/y",Subject="q\"uote";URI=spiffe://z"#;
        assert_eq!(last_uri(value).as_deref(), Some("spiffe://z"));
        assert_eq!(
            last_uri(r#"Subject="URI=fake";URI="spiffe://real""#).as_deref(),
            Some("spiffe://real")
        );
    }

    #[test]
    fn nothing_to_report() {
        for value in ["", "By=spiffe://me", "URI=", "garbage", "\"", "URI"] {
            assert_eq!(last_uri(value), None, "{value:?}");
        }
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn repeated_headers_count_as_one_list() {
        let mut headers = HeaderMap::new();
        headers.append(XFCC, HeaderValue::from_static("URI=spiffe://first"));
        headers.append(XFCC, HeaderValue::from_static("By=spiffe://me"));
        headers.append(XFCC, HeaderValue::from_static("URI=spiffe://last"));
        assert_eq!(from_headers(&headers).as_deref(), Some("spiffe://last"));
        headers.append(
            XFCC,
            HeaderValue::from_bytes(b"URI=caf\xe9").expect("header value"),
        );
        assert_eq!(
            from_headers(&headers).as_deref(),
            Some("spiffe://last"),
            "a non-text value is skipped"
        );
    }
}
