//! A trace context as it arrives in request headers: W3C `traceparent`/`tracestate`, B3's
//! multi-header form (`x-b3-*`) and its single `b3` header. Anything malformed is ignored,
//! as if absent: the proxy then starts a new trace rather than refusing the request.

use http::HeaderMap;

/// A 16-byte trace id, never all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id, never all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    pub fn random() -> Self {
        loop {
            let id: u128 = rand::random();
            if id != 0 {
                return Self(id.to_be_bytes());
            }
        }
    }

    /// 32 lower-case hex digits, or 16 for a B3 64-bit id (the upper half is zero).
    fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        match text.len() {
            32 => decode_hex(text, &mut bytes)?,
            16 => decode_hex(text, &mut bytes[8..])?,
            _ => return None,
        }
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl SpanId {
    pub fn random() -> Self {
        loop {
            let id: u64 = rand::random();
            if id != 0 {
                return Self(id.to_be_bytes());
            }
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 8];
        if text.len() != 16 {
            return None;
        }
        decode_hex(text, &mut bytes)?;
        (bytes != [0; 8]).then_some(Self(bytes))
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// The caller's span, which the proxy's span continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// W3C `tracestate`, passed on unchanged with a W3C parent.
    pub trace_state: Option<String>,
    /// B3 carried a 64-bit trace id: B3 headers go on with 16 digits too.
    pub short_b3_id: bool,
}

/// What the request headers say about tracing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    pub parent: Option<Parent>,
    /// A sampling decision made upstream; honoured when present.
    pub sampled: Option<bool>,
    /// The request carried B3 headers: the proxy forwards B3 too, as Envoy does.
    pub b3: bool,
    /// It was the single `b3` header rather than `x-b3-*`.
    pub b3_single: bool,
}

/// W3C first, then B3 single, then B3 multi: the first valid context wins. A sampling
/// decision without a context (`b3: 0`, `x-b3-sampled` alone) still counts.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let b3_single = text("b3");
    let b3_multi = text("x-b3-traceid").is_some()
        || text("x-b3-sampled").is_some()
        || text("x-b3-flags").is_some();
    let mut incoming = Incoming {
        b3: b3_single.is_some() || b3_multi,
        b3_single: b3_single.is_some(),
        ..Incoming::default()
    };
    if let Some((parent, sampled)) = text("traceparent").and_then(parse_traceparent) {
        incoming.parent = Some(Parent {
            trace_state: text("tracestate").map(str::to_owned),
            ..parent
        });
        incoming.sampled = Some(sampled);
        return incoming;
    }
    let (parent, sampled) = match b3_single {
        Some(value) => parse_b3_single(value),
        None => parse_b3_multi(
            text("x-b3-traceid"),
            text("x-b3-spanid"),
            text("x-b3-sampled"),
            text("x-b3-flags"),
        ),
    };
    incoming.parent = parent;
    incoming.sampled = sampled;
    incoming
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; a later version may append
/// fields, version `ff` is invalid.
fn parse_traceparent(value: &str) -> Option<(Parent, bool)> {
    let value = value.trim();
    let mut fields = value.split('-');
    let version = fields.next()?;
    let (trace, span, flags) = (fields.next()?, fields.next()?, fields.next()?);
    let mut version_byte = [0u8; 1];
    decode_hex(version, &mut version_byte)?;
    if version.len() != 2 || version_byte[0] == 0xff {
        return None;
    }
    if version_byte[0] == 0 && (value.len() != 55 || fields.next().is_some()) {
        return None;
    }
    let mut flag_byte = [0u8; 1];
    if flags.len() != 2 || trace.len() != 32 {
        return None;
    }
    decode_hex(flags, &mut flag_byte)?;
    let parent = Parent {
        trace_id: TraceId::parse(trace)?,
        span_id: SpanId::parse(span)?,
        trace_state: None,
        short_b3_id: false,
    };
    Some((parent, flag_byte[0] & 1 == 1))
}

/// `{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`, or the decision alone (`0`, `1`,
/// `d`).
fn parse_b3_single(value: &str) -> (Option<Parent>, Option<bool>) {
    let fields: Vec<&str> = value.trim().split('-').collect();
    if let [decision] = fields.as_slice() {
        return (None, b3_decision(decision));
    }
    if fields.len() > 4 {
        return (None, None);
    }
    let sampled = fields.get(2).and_then(|d| b3_decision(d));
    if fields
        .get(2)
        .is_some_and(|d| sampled.is_none() && !d.is_empty())
    {
        return (None, None);
    }
    let parent = b3_parent(fields[0], fields[1]);
    match parent {
        Some(parent) => (Some(parent), sampled),
        None => (None, None),
    }
}

fn parse_b3_multi(
    trace: Option<&str>,
    span: Option<&str>,
    sampled: Option<&str>,
    flags: Option<&str>,
) -> (Option<Parent>, Option<bool>) {
    let debug = flags.is_some_and(|f| f.trim() == "1");
    let decision = if debug {
        Some(true)
    } else {
        sampled.and_then(b3_decision)
    };
    let parent = match (trace, span) {
        (Some(trace), Some(span)) => b3_parent(trace.trim(), span.trim()),
        _ => None,
    };
    (parent, decision)
}

fn b3_parent(trace: &str, span: &str) -> Option<Parent> {
    Some(Parent {
        trace_id: TraceId::parse(trace)?,
        span_id: SpanId::parse(span)?,
        trace_state: None,
        short_b3_id: trace.len() == 16,
    })
}

fn b3_decision(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "d" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Lower-case hex only, as W3C requires (B3 ids are lower-case too).
fn decode_hex(text: &str, out: &mut [u8]) -> Option<()> {
    let digits = text.as_bytes();
    if digits.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(())
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
