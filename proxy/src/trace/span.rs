//! One proxy span: opened when a request arrives, tagged as the request goes (Istio's tag
//! set), finished when the response body ends or the client goes away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::request::Parts;

use super::context::{SpanId, TraceId};
use super::{Active, NodeIdentity};

/// Envoy's span kinds for a sidecar: the client side of an outbound call (and gateways,
/// whose listeners Istio marks outbound), the server side of an inbound one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Client,
    Server,
}

/// A finished span, as the exporter sends it.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub trace_state: Option<String>,
    pub name: String,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub tags: Vec<(String, String)>,
    /// The response was a 5xx (or never came).
    pub error: bool,
}

/// The span of a request in flight. Dropped, it is finished and handed to the exporter,
/// which never blocks: a full queue drops it and counts.
pub struct ActiveSpan {
    active: Arc<Active>,
    span: Span,
    started: Instant,
    status: Option<u16>,
    response_size: u64,
}

/// What [`ActiveSpan::open`] needs beyond the request.
pub struct Ids {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub trace_state: Option<String>,
}

impl ActiveSpan {
    pub(super) fn open(
        active: Arc<Active>,
        parts: &Parts,
        peer: SocketAddr,
        kind: Kind,
        ids: Ids,
    ) -> Self {
        let header = |name: &str| {
            bounded(
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
            )
        };
        let authority = parts
            .uri
            .authority()
            .map(|a| bounded(a.as_str()))
            .unwrap_or_else(|| header("host"));
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut tags = node_tags(&active.identity);
        tags.extend([
            ("http.method".into(), parts.method.to_string()),
            (
                "http.url".into(),
                bounded(&format!("http://{authority}{path}")),
            ),
            ("http.protocol".into(), protocol(parts.version).into()),
            ("user_agent".into(), header("user-agent")),
            ("guid:x-request-id".into(), header("x-request-id")),
            ("peer.address".into(), peer.ip().to_string()),
            ("downstream_cluster".into(), "-".into()),
            ("request_size".into(), request_size(parts).to_string()),
        ]);
        let custom = &active.spec.custom_tags;
        tags.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
        let name = format!("{authority}/*");
        Self {
            span: Span {
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                parent: ids.parent,
                trace_state: ids.trace_state.filter(|s| s.len() <= MAX_TRACE_STATE),
                name,
                kind,
                start: SystemTime::now(),
                end: SystemTime::now(),
                tags,
                error: false,
            },
            active,
            started: Instant::now(),
            status: None,
            response_size: 0,
        }
    }

    /// The cluster the request was routed to, as Envoy names it: `outbound|port|subset|host`
    /// from a sidecar's outbound side or a gateway, `inbound|port||` from the inbound side.
    /// The operation name becomes `host:port/*`, Istio's default decorator.
    pub fn set_cluster(&mut self, host: &str, port: u16, subset: Option<&str>) {
        let cluster = match self.span.kind {
            Kind::Client => format!("outbound|{port}|{}|{host}", subset.unwrap_or_default()),
            Kind::Server => format!("inbound|{port}||"),
        };
        self.span.name = format!("{host}:{port}/*");
        self.span
            .tags
            .push(("upstream_cluster".into(), cluster.clone()));
        self.span
            .tags
            .push(("upstream_cluster.name".into(), cluster));
    }

    /// The response's status and flags; called once, when its headers are known.
    pub fn set_response(&mut self, status: http::StatusCode, flags: &str) {
        self.status = Some(status.as_u16());
        self.span
            .tags
            .push(("response_flags".into(), bounded(flags)));
    }

    pub fn add_response_bytes(&mut self, bytes: u64) {
        self.response_size += bytes;
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        let mut span = std::mem::replace(&mut self.span, empty_span());
        span.end = span.start + self.started.elapsed();
        let status = self.status.unwrap_or(0);
        span.tags
            .push(("http.status_code".into(), status.to_string()));
        span.tags
            .push(("response_size".into(), self.response_size.to_string()));
        if self.status.is_none() {
            span.tags.push(("response_flags".into(), "DC".into()));
        }
        if status == 0 || status >= 500 {
            span.error = true;
            span.tags.push(("error".into(), "true".into()));
        }
        self.active.exporter.submit(span);
    }
}

fn empty_span() -> Span {
    Span {
        trace_id: TraceId([0; 16]),
        span_id: SpanId([0; 8]),
        parent: None,
        trace_state: None,
        name: String::new(),
        kind: Kind::Client,
        start: SystemTime::UNIX_EPOCH,
        end: SystemTime::UNIX_EPOCH,
        tags: Vec::new(),
        error: false,
    }
}

/// The longest tag value taken from a request (Envoy's `max_path_tag_length` default): a
/// queued span must not hold whatever a client put in its URL or headers, times
/// [`super::QUEUE_CAPACITY`].
const MAX_TAG: usize = 256;
/// W3C's size that every tracer must pass on; a longer `tracestate` still goes upstream
/// in the headers, but is not kept in the span.
const MAX_TRACE_STATE: usize = 512;

/// `value`, cut to [`MAX_TAG`] bytes at a character boundary.
fn bounded(value: &str) -> String {
    let mut end = value.len().min(MAX_TAG);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Who reports the span, as Istio's bootstrap tags it.
fn node_tags(node: &NodeIdentity) -> Vec<(String, String)> {
    vec![
        ("node_id".into(), node.node_id.clone()),
        ("istio.mesh_id".into(), node.mesh_id.clone()),
        ("istio.namespace".into(), node.namespace.clone()),
        (
            "istio.canonical_service".into(),
            node.canonical_service.clone(),
        ),
        (
            "istio.canonical_revision".into(),
            node.canonical_revision.clone(),
        ),
        ("component".into(), "proxy".into()),
    ]
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The request body's declared length; a streamed body without one counts 0.
fn request_size(parts: &Parts) -> u64 {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client chooses the URL, headers and `tracestate`, an upstream its response
    /// headers: what a queued span keeps of them is bounded, whatever they send.
    #[tokio::test]
    async fn a_span_keeps_bounded_request_text() {
        let long = "a".repeat(10_000);
        let request = http::Request::get(format!("http://reviews/{long}"))
            .header("user-agent", &long)
            .header("x-request-id", &long)
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        let spec = mesh_core::snapshot::TracingSpec {
            sampling_percentage: 100.0,
            collector: "127.0.0.1:9".into(),
            custom_tags: Default::default(),
        };
        let stats = Arc::new(super::super::stats::Stats::default());
        let exporter = super::super::export::Exporter::start(&spec.collector, "t".into(), stats)
            .expect("exporter");
        let active = Arc::new(Active {
            spec,
            identity: Arc::new(NodeIdentity::default()),
            exporter,
        });
        let ids = |trace_state: String| Ids {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent: None,
            trace_state: Some(trace_state),
        };
        let peer: SocketAddr = ([127, 0, 0, 1], 1000).into();
        let mut span = ActiveSpan::open(
            active.clone(),
            &parts,
            peer,
            Kind::Client,
            ids(long.clone()),
        );
        // The flags header reaches the span from the upstream's response.
        span.set_response(http::StatusCode::OK, &long);
        for (key, value) in &span.span.tags {
            assert!(value.len() <= MAX_TAG, "{key}: {} bytes", value.len());
        }
        let tag = |key: &str| {
            span.span
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(tag("user_agent").map(|v| v.len()), Some(MAX_TAG));
        assert_eq!(
            bounded("é".repeat(200).as_str()).len(),
            MAX_TAG,
            "at a char boundary"
        );
        assert_eq!(bounded(&format!("a{}", "é".repeat(200))).len(), MAX_TAG - 1);
        assert!(tag("http.url").is_some_and(|u| u.starts_with("http://reviews/aaa")));
        assert_eq!(span.span.trace_state, None, "a tracestate over 512 bytes");
        let short = ActiveSpan::open(active, &parts, peer, Kind::Client, ids("k=v".into()));
        assert_eq!(short.span.trace_state.as_deref(), Some("k=v"));
    }
}
