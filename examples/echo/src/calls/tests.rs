use http::HeaderValue;

use super::*;

#[test]
fn urls_must_be_plain_http_with_a_host() {
    let uri = parse_url("http://reviews:9080/reviews/1?x=2").expect("valid");
    assert_eq!(uri.host(), Some("reviews"));
    assert_eq!(uri.path(), "/reviews/1");
    assert_eq!(parse_url(" http://ratings ").expect("valid").path(), "/");
    for bad in [
        "",
        "reviews:9080",
        "https://reviews/",
        "/path",
        "http://",
        "ftp://x/",
    ] {
        assert_eq!(
            parse_url(bad),
            Err(CallConfigError::Url(bad.to_owned())),
            "{bad:?}"
        );
    }
}

#[test]
fn proxies_may_omit_the_scheme() {
    for text in [
        "http://127.0.0.5:15001",
        "127.0.0.5:15001",
        "http://127.0.0.5:15001/",
    ] {
        let proxy = parse_proxy(text).expect("valid");
        assert_eq!(
            (proxy.host(), proxy.port_u16()),
            (Some("127.0.0.5"), Some(15001)),
            "{text}"
        );
    }
    for bad in ["", "https://p:1", "http://p:1/path", "socks5://p:1"] {
        assert!(parse_proxy(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn header_names_are_lower_cased() {
    assert_eq!(
        parse_header_name(" X-Request-Id ").expect("valid"),
        "x-request-id"
    );
    assert!(parse_header_name("bad name").is_err());
    assert!(parse_header_name("").is_err());
}

#[test]
fn the_default_list_is_bookinfos() {
    let config = CallConfig::default();
    assert_eq!(config.forward_headers.len(), DEFAULT_FORWARD_HEADERS.len());
    assert!(config.forward_headers.iter().any(|name| name == "end-user"));
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);
    assert!(validate(&config).is_ok());
    let https = CallConfig {
        urls: vec![Uri::from_static("https://reviews/")],
        ..CallConfig::default()
    };
    assert!(
        validate(&https)
            .expect_err("https")
            .contains("https://reviews/")
    );
}

#[test]
fn only_listed_headers_are_forwarded_with_every_value() {
    let mut incoming = HeaderMap::new();
    incoming.insert("end-user", HeaderValue::from_static("jason"));
    incoming.append("cookie", HeaderValue::from_static("a=1"));
    incoming.append("cookie", HeaderValue::from_static("b=2"));
    incoming.insert("x-secret", HeaderValue::from_static("no"));
    let names = ["end-user", "cookie", "x-request-id"].map(HeaderName::from_static);
    let out = forwarded(&incoming, &names);
    assert_eq!(out["end-user"], "jason");
    assert_eq!(out.get_all("cookie").iter().count(), 2);
    assert!(!out.contains_key("x-secret"));
    assert!(!out.contains_key("x-request-id"));
}

#[test]
fn failures_are_no_answer_or_5xx() {
    let call = |status, error: Option<&str>| Call {
        url: "http://x/".into(),
        status,
        duration_ms: 1,
        body: serde_json::Value::Null,
        error: error.map(str::to_owned),
    };
    assert!(!call(Some(200), None).failed());
    assert!(!call(Some(404), None).failed());
    assert!(call(Some(503), None).failed());
    assert!(call(None, Some("refused")).failed());
    assert!(call(Some(200), Some("body too large")).failed());
}

#[test]
fn bodies_are_json_when_they_parse() {
    assert_eq!(json_or_text(br#"{"version":"v2"}"#)["version"], "v2");
    assert_eq!(json_or_text(b"no healthy upstream"), "no healthy upstream");
    assert_eq!(json_or_text(b""), "");
}
