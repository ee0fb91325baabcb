#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::trace::headers::{Outgoing, inject};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn w3c_traceparent_and_tracestate_are_read() {
    let parent = format!("00-{TRACE}-{SPAN}-01");
    let incoming = extract(&headers(&[("traceparent", &parent), ("tracestate", "k=v")]));
    let p = incoming.parent.unwrap();
    assert_eq!(
        (p.trace_id.hex(), p.span_id.hex()),
        (TRACE.into(), SPAN.into())
    );
    assert_eq!(p.trace_state.as_deref(), Some("k=v"));
    assert_eq!(incoming.sampled, Some(true));
    assert!(!incoming.b3);
    let unsampled = extract(&headers(&[(
        "traceparent",
        &format!("00-{TRACE}-{SPAN}-00"),
    )]));
    assert_eq!(unsampled.sampled, Some(false));
    let future = extract(&headers(&[(
        "traceparent",
        &format!("01-{TRACE}-{SPAN}-01-x"),
    )]));
    assert!(future.parent.is_some(), "a later version may add fields");
}

#[test]
fn malformed_traceparents_are_ignored() {
    let zeros = "0".repeat(32);
    for bad in [
        String::new(),
        "garbage".into(),
        format!("ff-{TRACE}-{SPAN}-01"),
        format!("00-{zeros}-{SPAN}-01"),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
        format!("00-{TRACE}-{SPAN}-01-extra"),
        format!("00-{TRACE}-{SPAN}-1"),
        format!("00-{}-{SPAN}-01", &TRACE[..31]),
        format!("0g-{TRACE}-{SPAN}-01"),
        "00-é-é-é".into(),
    ] {
        let incoming = extract(&headers(&[("traceparent", &bad)]));
        assert_eq!(incoming, Incoming::default(), "{bad:?}");
    }
}

#[test]
fn b3_multi_headers_are_read_with_64_bit_ids() {
    let incoming = extract(&headers(&[
        ("x-b3-traceid", &TRACE[16..]),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "1"),
    ]));
    let p = incoming.parent.unwrap();
    assert_eq!(
        p.trace_id.hex(),
        format!("{}{}", "0".repeat(16), &TRACE[16..])
    );
    assert!(p.short_b3_id);
    assert_eq!(incoming.sampled, Some(true));
    assert!(incoming.b3 && !incoming.b3_single);
    let debug = extract(&headers(&[("x-b3-flags", "1"), ("x-b3-sampled", "0")]));
    assert_eq!((debug.parent, debug.sampled), (None, Some(true)));
    let bad = extract(&headers(&[("x-b3-traceid", "xyz"), ("x-b3-spanid", SPAN)]));
    assert_eq!((bad.parent, bad.sampled, bad.b3), (None, None, true));
}

#[test]
fn b3_single_header_forms() {
    let full = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-1-{SPAN}"))]));
    assert_eq!(full.parent.unwrap().span_id.hex(), SPAN);
    assert_eq!(full.sampled, Some(true));
    let bare = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}"))]));
    assert_eq!(bare.sampled, None);
    assert!(bare.parent.is_some());
    let deny = extract(&headers(&[("b3", "0")]));
    assert_eq!((deny.parent, deny.sampled), (None, Some(false)));
    for bad in ["", "-", "x", &format!("{TRACE}-{SPAN}-7"), "a-b-c-d-e"] {
        let incoming = extract(&headers(&[("b3", bad)]));
        assert_eq!((incoming.parent, incoming.sampled), (None, None), "{bad:?}");
    }
}

#[test]
fn traceparent_wins_over_b3() {
    let other = "a".repeat(32);
    let incoming = extract(&headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-00")),
        ("x-b3-traceid", &other),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "1"),
    ]));
    assert_eq!(incoming.parent.unwrap().trace_id.hex(), TRACE);
    assert_eq!(incoming.sampled, Some(false));
    assert!(incoming.b3, "B3 still goes upstream");
}

fn forwarded(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = headers(pairs);
    let incoming = extract(&map);
    let trace_id = incoming
        .parent
        .as_ref()
        .map_or(TraceId([7; 16]), |p| p.trace_id);
    let out = Outgoing {
        trace_id,
        span_id: SpanId([9; 8]),
        sampled: true,
        incoming: &incoming,
    };
    inject(&mut map, &out);
    map
}

fn text<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn the_proxy_span_goes_upstream_as_the_parent() {
    let map = forwarded(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "k=v"),
    ]);
    assert_eq!(
        text(&map, "traceparent"),
        Some(format!("00-{TRACE}-0909090909090909-01").as_str())
    );
    assert_eq!(text(&map, "tracestate"), Some("k=v"));
    assert!(
        text(&map, "x-b3-traceid").is_none(),
        "no B3 unless B3 came in"
    );

    let map = forwarded(&[]);
    assert_eq!(
        text(&map, "traceparent"),
        Some("00-07070707070707070707070707070707-0909090909090909-01")
    );
}

#[test]
fn b3_goes_upstream_when_it_came_in() {
    let map = forwarded(&[
        ("x-b3-traceid", &TRACE[16..]),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "0"),
    ]);
    assert_eq!(text(&map, "x-b3-traceid"), Some(&TRACE[16..]));
    assert_eq!(text(&map, "x-b3-spanid"), Some("0909090909090909"));
    assert_eq!(text(&map, "x-b3-parentspanid"), Some(SPAN));
    assert_eq!(text(&map, "x-b3-sampled"), Some("1"));
    assert!(text(&map, "traceparent").unwrap().contains(&TRACE[16..]));

    let map = forwarded(&[("b3", &format!("{TRACE}-{SPAN}-1"))]);
    assert_eq!(
        text(&map, "b3"),
        Some(format!("{TRACE}-0909090909090909-1-{SPAN}").as_str())
    );
    assert!(text(&map, "x-b3-traceid").is_none());
}

#[test]
fn arbitrary_header_values_never_panic() {
    let alphabet = b"0123456789abcdefABCDEF-xd ";
    for _ in 0..20_000 {
        let len = rand::random_range(0..70);
        let value: String = (0..len)
            .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
            .collect();
        for name in ["traceparent", "b3", "x-b3-traceid", "x-b3-sampled"] {
            let mut map = forwarded(&[(name, value.trim())]);
            map.insert("x-b3-spanid", HeaderValue::from_str(value.trim()).unwrap());
            let _ = extract(&map);
        }
    }
}
