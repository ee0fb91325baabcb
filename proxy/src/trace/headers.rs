//! The context the proxy sends upstream: its own span as the parent, in W3C always and in
//! B3 when the request came with B3 (Envoy's behaviour), replacing what came in.

use http::{HeaderMap, HeaderValue};

use super::context::{Incoming, SpanId, TraceId};

/// The proxy's span of one request, as the upstream must see it.
pub struct Outgoing<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    pub incoming: &'a Incoming,
}

const B3_MULTI: [&str; 5] = [
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

pub fn inject(headers: &mut HeaderMap, out: &Outgoing) {
    let flags = if out.sampled { "01" } else { "00" };
    let traceparent = format!("00-{}-{}-{flags}", out.trace_id.hex(), out.span_id.hex());
    set(headers, "traceparent", &traceparent);
    match out
        .incoming
        .parent
        .as_ref()
        .and_then(|p| p.trace_state.as_deref())
    {
        Some(state) => set(headers, "tracestate", state),
        None => {
            headers.remove("tracestate");
        }
    }
    if !out.incoming.b3 {
        return;
    }
    let short = out.incoming.parent.as_ref().is_some_and(|p| p.short_b3_id);
    let trace = out.trace_id.hex();
    let trace = if short { &trace[16..] } else { &trace[..] };
    let span = out.span_id.hex();
    let parent = out.incoming.parent.as_ref().map(|p| p.span_id.hex());
    let sampled = if out.sampled { "1" } else { "0" };
    for name in B3_MULTI {
        headers.remove(name);
    }
    if out.incoming.b3_single {
        let value = match &parent {
            Some(parent) => format!("{trace}-{span}-{sampled}-{parent}"),
            None => format!("{trace}-{span}-{sampled}"),
        };
        set(headers, "b3", &value);
        return;
    }
    set(headers, "x-b3-traceid", trace);
    set(headers, "x-b3-spanid", &span);
    if let Some(parent) = &parent {
        set(headers, "x-b3-parentspanid", parent);
    }
    set(headers, "x-b3-sampled", sampled);
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
