//! Prometheus metrics with Istio's names and labels, so the dashboards and queries users
//! have for Istio work unchanged. Served on their own port at `/stats/prometheus`.
//!
//! Both sides of a request are labelled with both workloads, as Istio labels them. The
//! source side (`reporter="source"`) takes the `destination_*` labels from the endpoint the
//! request went to (pilot names each endpoint's workload); the destination side
//! (`reporter="destination"`) takes the `source_*` labels from the peer's certificate and
//! from metadata exchange ([`exchange`]). No label carries a path, query or header value:
//! the number of series is bounded by workloads, services and response codes.

pub mod exchange;
mod size;

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use mesh_core::model::WorkloadMeta;
use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use exchange::PeerRef;
pub use size::{Counted, RequestSize};

pub const REQUESTS_TOTAL: &str = "mesh_requests_total";
pub const REQUEST_DURATION: &str = "mesh_request_duration_milliseconds";
/// Request and response body sizes, in bytes (histograms).
pub const REQUEST_BYTES: &str = "mesh_request_bytes";
pub const RESPONSE_BYTES: &str = "mesh_response_bytes";
/// pilot's discovery stream: 1 while a stream is open.
pub const XDS_CONNECTED: &str = "mesh_xds_connected";
/// Responses from pilot, by `result`: `ack` (applied) or `nack` (refused).
pub const XDS_UPDATES: &str = "mesh_xds_updates_total";
/// Attempts to reach pilot again after a failed or lost stream.
pub const XDS_RECONNECTS: &str = "mesh_xds_reconnects_total";
/// When the workload certificate expires, in Unix seconds.
pub const CERT_EXPIRY: &str = "mesh_cert_expiry_timestamp_seconds";
/// Attempts to get a workload certificate, by `result`: `success` or `failure`.
pub const CERT_RENEWALS: &str = "mesh_cert_renewals_total";

/// Istio's buckets for request durations, in milliseconds.
const DURATION_BUCKETS: [f64; 16] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0,
];

/// Istio's buckets for body sizes, in bytes: powers of ten from 1 B to 10 MB.
const SIZE_BUCKETS: [f64; 8] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7];

/// Who this proxy is: the `source_*` labels of what it sends, the `destination_*` labels
/// of what it receives.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub workload: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    /// Its SPIFFE ID when it has a certificate, else `unknown`.
    pub principal: String,
}

/// The labels Istio's request and TCP metrics share: who reports, both workloads, the
/// service and the connection's security. `inbound_peer` is set on inbound listeners: the
/// peer's SPIFFE ID (if it showed one) and whether mTLS was used; the proxy then reports as
/// the destination (`reporter="destination"`), its own workload in the `destination_*`
/// labels and the peer's principal and namespace in the `source_*` ones. Without metadata
/// exchange the peer's workload, app and version are `unknown`.
///
/// `remote` is the other side's workload when known: the endpoint the request went to
/// (outbound; its principal is `upstream_principal`, set when the connection was mesh
/// mTLS) or what the peer said in metadata exchange (inbound). Outbound without it, app
/// and version are guessed from the service's name and the subset.
pub(crate) fn workload_labels(
    identity: &Identity,
    destination: Option<(&str, Option<&str>)>,
    inbound_peer: Option<(Option<&str>, bool)>,
    upstream_mtls: bool,
    remote: Option<PeerRef<'_>>,
    upstream_principal: Option<&str>,
) -> Vec<(&'static str, String)> {
    const UNKNOWN: &str = "unknown";
    let (service, subset) = destination.unwrap_or((UNKNOWN, None));
    let service_name = service.split('.').next().unwrap_or(UNKNOWN);
    // Only a Kubernetes service host names its namespace.
    let service_namespace = service
        .strip_suffix(".svc.cluster.local")
        .and_then(|s| s.split('.').nth(1))
        .unwrap_or(UNKNOWN);
    let security = match inbound_peer {
        Some((_, true)) => "mutual_tls",
        Some((_, false)) => "none",
        None if upstream_mtls => "mutual_tls",
        None => UNKNOWN,
    };
    let own = |value: &String| value.clone();
    let mut labels = match inbound_peer {
        Some((peer, _)) => {
            let peer_namespace = peer
                .and_then(|p| p.split("/ns/").nth(1))
                .and_then(|rest| rest.split('/').next())
                .unwrap_or(UNKNOWN);
            let said = |pick: fn(PeerRef<'_>) -> &str| remote.map_or(UNKNOWN, pick).to_owned();
            vec![
                ("reporter", "destination".to_owned()),
                ("source_workload", said(|r| r.workload)),
                ("source_workload_namespace", peer_namespace.to_owned()),
                ("source_principal", peer.unwrap_or(UNKNOWN).to_owned()),
                ("source_app", said(|r| r.app)),
                ("source_version", said(|r| r.version)),
                ("destination_workload", own(&identity.workload)),
                ("destination_workload_namespace", own(&identity.namespace)),
                ("destination_principal", own(&identity.principal)),
                ("destination_app", own(&identity.app)),
                ("destination_version", own(&identity.version)),
            ]
        }
        None => vec![
            ("reporter", "source".to_owned()),
            ("source_workload", own(&identity.workload)),
            ("source_workload_namespace", own(&identity.namespace)),
            ("source_principal", own(&identity.principal)),
            ("source_app", own(&identity.app)),
            ("source_version", own(&identity.version)),
            (
                "destination_workload",
                remote.map_or(UNKNOWN, |r| r.workload).to_owned(),
            ),
            (
                "destination_workload_namespace",
                remote.map_or(service_namespace, |r| r.namespace).to_owned(),
            ),
            (
                "destination_principal",
                upstream_principal.unwrap_or(UNKNOWN).to_owned(),
            ),
            (
                "destination_app",
                remote.map_or(service_name, |r| r.app).to_owned(),
            ),
            (
                "destination_version",
                remote
                    .map(|r| r.version)
                    .or(subset)
                    .unwrap_or(UNKNOWN)
                    .to_owned(),
            ),
        ],
    };
    labels.extend([
        ("destination_service", service.to_owned()),
        ("destination_service_name", service_name.to_owned()),
        (
            "destination_service_namespace",
            service_namespace.to_owned(),
        ),
        ("connection_security_policy", security.to_owned()),
    ]);
    labels
}

pub struct Metrics {
    handle: PrometheusHandle,
    identity: Identity,
    access_log: bool,
    /// This proxy's metadata-exchange header, built once.
    peer_metadata: Option<HeaderValue>,
    /// Handles of the series seen so far, by a hash of what distinguishes them: a request
    /// then costs a hash and a lookup, not 19 labels built and registered again.
    series: std::sync::Mutex<SeriesCache>,
}

/// Past this many label sets, what peers say in metadata exchange no longer makes new
/// ones: a peer can name any workload of its namespace, and must not grow the proxy's
/// series (and memory) without bound. The other labels are bounded: by the config, or
/// (response code, flags, gRPC status) by a fixed set whatever the upstream answers.
const MAX_SERIES: usize = 10_000;

/// Requests whose peer metadata was dropped because [`MAX_SERIES`] was reached.
pub const PEER_METADATA_DROPPED: &str = "mesh_peer_metadata_dropped_total";

/// The registered series, by the hash of their [`SeriesRef`].
#[derive(Default)]
struct SeriesCache {
    by_hash: std::collections::HashMap<u64, Vec<Series>>,
    len: usize,
}

impl SeriesCache {
    fn hash(key: &SeriesRef<'_>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        hasher.finish()
    }

    fn find(&self, key: &SeriesRef<'_>) -> Option<Handles> {
        let bucket = self.by_hash.get(&Self::hash(key))?;
        bucket
            .iter()
            .find(|s| key.is(&s.key))
            .map(|s| s.handles.clone())
    }

    fn insert(&mut self, key: &SeriesRef<'_>, handles: Handles) {
        self.by_hash
            .entry(Self::hash(key))
            .or_default()
            .push(Series {
                key: key.owned(),
                handles,
            });
        self.len += 1;
    }

    fn full(&self) -> bool {
        self.len >= MAX_SERIES
    }
}

/// One label set of the request metrics, as registered, and its handles.
struct Series {
    key: SeriesKey,
    handles: Handles,
}

/// The handles one request records into.
#[derive(Clone)]
struct Handles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    request_bytes: metrics::Histogram,
    response_bytes: metrics::Histogram,
}

/// What varies between a proxy's request series (the source labels do not), borrowed
/// from a request so that finding its series allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesRef<'a> {
    host: Option<&'a str>,
    subset: Option<&'a str>,
    code: u16,
    flags: &'a str,
    grpc: &'a str,
    protocol: &'static str,
    principal: Option<&'a str>,
    mtls: bool,
    /// Reported as the destination (an inbound request) rather than the source.
    inbound: bool,
    /// The other side's workload, when known.
    remote: Option<PeerRef<'a>>,
    upstream_principal: Option<&'a str>,
}

/// A [`SeriesRef`] kept with its series.
#[derive(PartialEq, Eq)]
struct SeriesKey {
    host: Option<String>,
    subset: Option<String>,
    code: u16,
    flags: String,
    grpc: String,
    protocol: &'static str,
    principal: Option<String>,
    mtls: bool,
    inbound: bool,
    /// Workload, namespace, app and version.
    remote: Option<[String; 4]>,
    upstream_principal: Option<String>,
}

impl SeriesRef<'_> {
    fn owned(&self) -> SeriesKey {
        SeriesKey {
            host: self.host.map(str::to_owned),
            subset: self.subset.map(str::to_owned),
            code: self.code,
            flags: self.flags.to_owned(),
            grpc: self.grpc.to_owned(),
            protocol: self.protocol,
            principal: self.principal.map(str::to_owned),
            mtls: self.mtls,
            inbound: self.inbound,
            remote: self
                .remote
                .map(|r| [r.workload, r.namespace, r.app, r.version].map(str::to_owned)),
            upstream_principal: self.upstream_principal.map(str::to_owned),
        }
    }

    fn is(&self, key: &SeriesKey) -> bool {
        self.code == key.code
            && self.protocol == key.protocol
            && self.host == key.host.as_deref()
            && self.subset == key.subset.as_deref()
            && self.flags == key.flags
            && self.grpc == key.grpc
            && self.mtls == key.mtls
            && self.inbound == key.inbound
            && self.principal == key.principal.as_deref()
            && self.upstream_principal == key.upstream_principal.as_deref()
            && match (&self.remote, &key.remote) {
                (None, None) => true,
                (Some(r), Some([w, n, a, v])) => {
                    r.workload == w && r.namespace == n && r.app == a && r.version == v
                }
                _ => false,
            }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("building the Prometheus recorder: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
}

impl Metrics {
    /// Installs the process-wide recorder; call once. `access_log` forces access logging
    /// on whatever the Telemetry says ([`crate::access_log::enabled`]).
    pub fn install(identity: Identity, access_log: bool) -> Result<Arc<Self>, MetricsError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &DURATION_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(REQUEST_BYTES.into()), &SIZE_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(RESPONSE_BYTES.into()), &SIZE_BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
        metrics::describe_counter!(
            REQUESTS_TOTAL,
            "Requests, by source, destination, response code and flags."
        );
        metrics::describe_histogram!(
            REQUEST_DURATION,
            "Request duration until the response headers, in ms."
        );
        metrics::describe_histogram!(REQUEST_BYTES, "Request body sizes, in bytes.");
        metrics::describe_histogram!(RESPONSE_BYTES, "Response body sizes, in bytes.");
        metrics::describe_counter!(
            PEER_METADATA_DROPPED,
            "Requests labelled without their peer's metadata: the proxy has too many series."
        );
        describe_xds();
        describe_certs();
        Ok(Arc::new(Self {
            handle,
            peer_metadata: exchange::encode(&identity),
            identity,
            access_log,
            series: Default::default(),
        }))
    }

    /// Who this proxy is, for the labels of other subsystems' metrics (TCP).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Metadata exchange, outbound: removes any peer-metadata header the app sent and, when
    /// the request goes over mesh mTLS to a meshed endpoint, adds this proxy's.
    pub fn exchange(&self, headers: &mut HeaderMap, meshed: bool) {
        headers.remove(exchange::HEADER);
        if meshed && let Some(value) = &self.peer_metadata {
            headers.insert(exchange::HEADER, value.clone());
        }
    }

    /// Folds recorded histogram samples into their buckets. Without it the recorder keeps
    /// every sample until the next scrape: memory grows with traffic when nobody scrapes.
    pub async fn run_upkeep_every(self: Arc<Self>, every: std::time::Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            self.handle.run_upkeep();
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Starts measuring one request; it is recorded exactly once, when the record drops.
    /// With the access log on, the request's line is written then too.
    pub fn request(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        peer: std::net::SocketAddr,
    ) -> RequestRecord {
        let headers = &parts.headers;
        let grpc = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        RequestRecord {
            metrics: self.clone(),
            start: Instant::now(),
            protocol: if grpc { "grpc" } else { "http" },
            destination: None,
            outcome: None,
            peer: None,
            upstream_mtls: false,
            upstream: None,
            peer_metadata: None,
            request_bytes: None,
            response_bytes: 0,
            log: crate::access_log::enabled(self.access_log)
                .then(|| Box::new(crate::access_log::Entry::start(parts, Some(peer)))),
        }
    }
}

fn describe_xds() {
    metrics::describe_gauge!(
        XDS_CONNECTED,
        "1 while the discovery stream to pilot is open."
    );
    metrics::describe_counter!(
        XDS_UPDATES,
        "Config pushes from pilot, by result: ack (applied) or nack (refused)."
    );
    metrics::describe_counter!(
        XDS_RECONNECTS,
        "Attempts to reach pilot again after a failed or lost stream."
    );
}

fn describe_certs() {
    metrics::describe_gauge!(
        CERT_EXPIRY,
        "When the workload certificate expires, in Unix seconds; alert well before."
    );
    metrics::describe_counter!(
        CERT_RENEWALS,
        "Attempts to get a workload certificate from the CA, by result: success or failure."
    );
}

/// The workload certificate's metrics; [`certs::register`] shows the counters at 0 from the
/// first scrape.
pub mod certs {
    use super::{CERT_EXPIRY, CERT_RENEWALS};

    pub fn register() {
        metrics::counter!(CERT_RENEWALS, "result" => "success").increment(0);
        metrics::counter!(CERT_RENEWALS, "result" => "failure").increment(0);
    }

    /// The current certificate's `not_after`, in Unix seconds.
    pub fn expiry(not_after: i64) {
        metrics::gauge!(CERT_EXPIRY).set(not_after as f64);
    }

    pub fn renewal(succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        metrics::counter!(CERT_RENEWALS, "result" => result).increment(1);
    }
}

/// The discovery stream's metrics. Touched at start, so that every series shows from the
/// first scrape (at 0) rather than only after it first changes.
pub mod xds {
    use super::{XDS_CONNECTED, XDS_RECONNECTS, XDS_UPDATES};

    pub fn register() {
        connected(false);
        metrics::counter!(XDS_UPDATES, "result" => "ack").increment(0);
        metrics::counter!(XDS_UPDATES, "result" => "nack").increment(0);
        metrics::counter!(XDS_RECONNECTS).increment(0);
    }

    pub fn connected(up: bool) {
        metrics::gauge!(XDS_CONNECTED).set(if up { 1.0 } else { 0.0 });
    }

    pub fn update(applied: bool) {
        let result = if applied { "ack" } else { "nack" };
        metrics::counter!(XDS_UPDATES, "result" => result).increment(1);
    }

    pub fn reconnect() {
        metrics::counter!(XDS_RECONNECTS).increment(1);
    }
}

/// One request's labels, filled in as they become known. Dropped without an outcome (the
/// client went away), it records response code 0 and flag DC, as Envoy does.
pub struct RequestRecord {
    metrics: Arc<Metrics>,
    start: Instant,
    protocol: &'static str,
    destination: Option<(String, Option<String>)>,
    outcome: Option<(StatusCode, String, String)>,
    /// Inbound: the peer's SPIFFE ID (if it showed one) and whether mTLS was used.
    peer: Option<(Option<std::sync::Arc<str>>, bool)>,
    /// Outbound: the upstream connection was mTLS.
    upstream_mtls: bool,
    /// Outbound: the workload of the endpoint the request went to.
    upstream: Option<Arc<WorkloadMeta>>,
    /// Inbound: the peer's metadata-exchange header, when believed.
    peer_metadata: Option<HeaderValue>,
    request_bytes: Option<RequestSize>,
    response_bytes: u64,
    /// Present when access logging is on; written when the record drops.
    log: Option<Box<crate::access_log::Entry>>,
}

/// Set on a forwarded response by the HTTP path, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamHost(pub std::net::SocketAddr);

/// Set on a forwarded response that came over an mTLS upstream connection.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamMtls;

/// Set on a forwarded response: the workload of the endpoint that answered.
#[derive(Debug, Clone)]
pub struct UpstreamWorkload(pub Arc<WorkloadMeta>);

impl RequestRecord {
    pub fn set_route(&mut self, name: &str) {
        if let Some(log) = &mut self.log {
            log.route_name = Some(name.to_owned());
        }
    }

    /// An inbound request: labelled with the peer's identity and the connection's security.
    pub fn set_peer(&mut self, peer: &crate::inbound::Peer) {
        if let Some(log) = &mut self.log {
            log.set_peer(peer);
        }
        self.peer = Some((peer.identity.clone(), peer.mtls));
    }

    /// Metadata exchange, inbound: takes the peer's header off the request (it never
    /// reaches the app) and labels the request with it if the peer may say it.
    pub fn take_peer_metadata(&mut self, headers: &mut HeaderMap, peer: &crate::inbound::Peer) {
        self.peer_metadata = exchange::take_inbound(headers, peer.mtls, peer.identity.as_deref());
    }

    pub fn set_authz(&mut self, decision: &mesh_core::authz::Decision) {
        if let Some(log) = &mut self.log {
            log.authz = Some(decision.to_string());
        }
    }

    /// An inbound request: `destination_service` is the service the client asked for (its
    /// authority, completed with this workload's namespace as Kubernetes DNS would) when
    /// this proxy knows a service by that name, never a raw header value; else the inbound
    /// cluster's name stays.
    pub fn set_inbound_service(
        &mut self,
        config: &mesh_core::model::ProxyConfig,
        parts: &http::request::Parts,
    ) {
        let authority = parts.uri.authority().map(|a| a.host()).or_else(|| {
            let host = parts.headers.get(http::header::HOST)?.to_str().ok()?;
            host.rsplit_once(':')
                .map_or(Some(host), |(name, _)| Some(name))
        });
        let Some(name) = authority.filter(|n| !n.is_empty()) else {
            return;
        };
        let known = |host: &str| {
            config
                .clusters_of(host)
                .next()
                .map(|cluster| cluster.host.clone())
        };
        // The name as given first: an FQDN costs no allocation.
        let namespace = &self.metrics.identity.namespace;
        let found = known(name)
            .or_else(|| known(&format!("{name}.{namespace}.svc.cluster.local")))
            .or_else(|| known(&format!("{name}.svc.cluster.local")));
        if let Some(host) = found {
            let subset = self.destination.as_ref().and_then(|(_, s)| s.clone());
            self.destination = Some((host, subset));
        }
    }

    pub fn set_destination(&mut self, host: &str, subset: Option<&str>) {
        if let Some(log) = &mut self.log {
            log.upstream_cluster = Some(format!("outbound||{}|{host}", subset.unwrap_or_default()));
        }
        self.destination = Some((host.to_owned(), subset.map(str::to_owned)));
    }

    /// Takes the code, flags (from `x-mesh-response-flags`) and gRPC status of `response`,
    /// and rides along in its body: the request is recorded when the body ends (or the client
    /// goes away), with the gRPC status of its trailers and the bytes actually sent.
    pub fn attach(mut self, response: Response<crate::http::Body>) -> Response<crate::http::Body> {
        self.observe(&response);
        response.map(|body| {
            crate::http::boxed(Recorded {
                body,
                record: self,
                sent: 0,
            })
        })
    }

    fn observe<B>(&mut self, response: &Response<B>) {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.outcome = Some((
            response.status(),
            flags_label(header(crate::http::RESPONSE_FLAGS).as_deref()),
            header("grpc-status")
                .map(|s| grpc_status_label(&s))
                .unwrap_or_default(),
        ));
        let extensions = response.extensions();
        self.upstream_mtls = extensions.get::<UpstreamMtls>().is_some();
        self.upstream = extensions.get::<UpstreamWorkload>().map(|w| w.0.clone());
        self.request_bytes = extensions.get::<RequestSize>().cloned();
        if let Some(log) = &mut self.log {
            log.observe(response);
        }
    }

    fn series_ref(&self) -> SeriesRef<'_> {
        let (code, flags, grpc) = match &self.outcome {
            Some((status, flags, grpc)) => (status.as_u16(), flags.as_str(), grpc.as_str()),
            None => (0, "DC", ""),
        };
        SeriesRef {
            host: self.destination.as_ref().map(|(host, _)| host.as_str()),
            subset: self
                .destination
                .as_ref()
                .and_then(|(_, subset)| subset.as_deref()),
            code,
            flags,
            grpc,
            protocol: self.protocol,
            principal: self.peer.as_ref().and_then(|(id, _)| id.as_deref()),
            mtls: self.upstream_mtls || self.peer.as_ref().is_some_and(|(_, mtls)| *mtls),
            inbound: self.peer.is_some(),
            remote: self.remote(),
            upstream_principal: self.upstream_principal(),
        }
    }

    /// The other side's workload: the endpoint's (outbound) or the peer's word (inbound).
    fn remote(&self) -> Option<PeerRef<'_>> {
        if self.peer.is_some() {
            return self.peer_metadata.as_ref().and_then(exchange::decode);
        }
        self.upstream.as_deref().map(|w| PeerRef {
            workload: &w.name,
            namespace: &w.namespace,
            app: &w.app,
            version: &w.version,
        })
    }

    /// The endpoint's identity, when mesh mTLS proved it.
    fn upstream_principal(&self) -> Option<&str> {
        self.upstream
            .as_deref()
            .filter(|_| self.upstream_mtls)
            .map(|w| w.principal.as_str())
    }

    fn labels(&self) -> Vec<Label> {
        let (code, flags, grpc) = match &self.outcome {
            Some((status, flags, grpc)) => {
                (status.as_u16().to_string(), flags.clone(), grpc.clone())
            }
            None => ("0".into(), "DC".into(), String::new()),
        };
        let destination = self
            .destination
            .as_ref()
            .map(|(host, subset)| (host.as_str(), subset.as_deref()));
        let peer = self.peer.as_ref().map(|(id, mtls)| (id.as_deref(), *mtls));
        let mut labels = workload_labels(
            &self.metrics.identity,
            destination,
            peer,
            self.upstream_mtls,
            self.remote(),
            self.upstream_principal(),
        );
        labels.extend([
            ("request_protocol", self.protocol.to_owned()),
            ("response_code", code),
            ("grpc_response_status", grpc),
            ("response_flags", flags),
        ]);
        labels.into_iter().map(|(k, v)| Label::new(k, v)).collect()
    }
}

/// `response_flags` from a response header: one of this proxy's codes (a local reply, here
/// or at the next mesh hop), else `-`. The upstream writes response headers, so any other
/// value would let it mint a new series per response.
fn flags_label(value: Option<&str>) -> String {
    value
        .filter(|v| crate::http::Flag::ALL.iter().any(|f| f.code() == *v))
        .unwrap_or("-")
        .to_owned()
}

/// `grpc_response_status` from the upstream's `grpc-status`: a gRPC code (0..=16); any
/// other value counts as 2 (UNKNOWN), as gRPC clients read it, rather than becoming a
/// label value the upstream chose.
fn grpc_status_label(value: &str) -> String {
    match value.trim().parse::<u8>() {
        Ok(code) if code <= 16 => code.to_string(),
        _ => "2".into(),
    }
}

/// A response body that records its request when it ends.
struct Recorded {
    body: crate::http::Body,
    record: RequestRecord,
    sent: u64,
}

impl hyper::body::Body for Recorded {
    type Data = bytes::Bytes;
    type Error = crate::http::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            } else if let Some(status) = frame
                .trailers_ref()
                .and_then(|t| t.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                && let Some(outcome) = &mut self.record.outcome
            {
                outcome.2 = grpc_status_label(status);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.record.response_bytes = self.sent;
        if let Some(log) = &mut self.record.log {
            log.bytes_sent = Some(self.sent);
        }
    }
}

impl RequestRecord {
    /// The handles of this request's series, registered on first sight. Once the cache is
    /// full, a peer's metadata is dropped rather than making a new series.
    fn handles(&mut self) -> Handles {
        let record = self;
        let mut cache = record
            .metrics
            .series
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.find(&record.series_ref()) {
            return found;
        }
        if cache.full() && record.peer_metadata.take().is_some() {
            metrics::counter!(PEER_METADATA_DROPPED).increment(1);
            if let Some(found) = cache.find(&record.series_ref()) {
                return found;
            }
        }
        let labels = record.labels();
        let handles = Handles {
            requests: metrics::counter!(REQUESTS_TOTAL, labels.clone()),
            duration: metrics::histogram!(REQUEST_DURATION, labels.clone()),
            request_bytes: metrics::histogram!(REQUEST_BYTES, labels.clone()),
            response_bytes: metrics::histogram!(RESPONSE_BYTES, labels),
        };
        cache.insert(&record.series_ref(), handles.clone());
        handles
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let handles = self.handles();
        let elapsed_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        handles.requests.increment(1);
        handles.duration.record(elapsed_ms);
        let request_bytes = self.request_bytes.as_ref().map_or(0, RequestSize::bytes);
        handles.request_bytes.record(request_bytes as f64);
        handles.response_bytes.record(self.response_bytes as f64);
        if let Some(log) = &mut self.log {
            log.duration = elapsed_ms as u64;
            log.write();
        }
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;

    fn handles() -> Handles {
        Handles {
            requests: metrics::Counter::noop(),
            duration: metrics::Histogram::noop(),
            request_bytes: metrics::Histogram::noop(),
            response_bytes: metrics::Histogram::noop(),
        }
    }

    fn key<'a>(workload: &'a str, code: u16) -> SeriesRef<'a> {
        SeriesRef {
            host: Some("reviews.shop.svc.cluster.local"),
            subset: None,
            code,
            flags: "-",
            grpc: "",
            protocol: "http",
            principal: Some("spiffe://cluster.local/ns/shop/sa/web"),
            mtls: true,
            inbound: true,
            remote: Some(PeerRef {
                workload,
                namespace: "shop",
                app: "web",
                version: "v1",
            }),
            upstream_principal: None,
        }
    }

    /// An upstream writes `grpc-status` and could write `x-mesh-response-flags`: whatever
    /// it writes, the labels stay within a fixed set (else one series per response).
    #[test]
    fn upstream_headers_make_only_bounded_labels() {
        let metrics = Arc::new(Metrics {
            handle: PrometheusBuilder::new().build_recorder().handle(),
            identity: Identity {
                workload: "reviews".into(),
                namespace: "shop".into(),
                app: "reviews".into(),
                version: "v1".into(),
                principal: "unknown".into(),
            },
            access_log: false,
            peer_metadata: None,
            series: Default::default(),
        });
        let (parts, ()) = http::Request::new(()).into_parts();
        let address: std::net::SocketAddr = ([127, 0, 0, 1], 1000).into();
        let labels = |flags: &str, grpc: &str| {
            let mut record = metrics.request(&parts, address);
            let response = Response::builder()
                .header(crate::http::RESPONSE_FLAGS, flags)
                .header("grpc-status", grpc)
                .body(())
                .expect("response");
            record.observe(&response);
            let key = record.series_ref();
            (key.flags.to_owned(), key.grpc.to_owned())
        };
        assert_eq!(labels("UF", "14"), ("UF".into(), "14".into()));
        assert_eq!(labels("UF", " 0 "), ("UF".into(), "0".into()));
        for (flags, grpc) in [("x1", "17"), ("UF,UF", "abc"), ("uf", "-1"), ("", "999")] {
            assert_eq!(
                labels(flags, grpc),
                ("-".into(), "2".into()),
                "{flags} {grpc}"
            );
        }
    }

    #[test]
    fn the_cache_finds_by_every_part_of_the_key_and_fills_up() {
        let mut cache = SeriesCache::default();
        cache.insert(&key("web-v1", 200), handles());
        assert!(cache.find(&key("web-v1", 200)).is_some());
        assert!(
            cache.find(&key("web-v2", 200)).is_none(),
            "another workload"
        );
        assert!(cache.find(&key("web-v1", 500)).is_none(), "another code");
        let mut anonymous = key("web-v1", 200);
        anonymous.remote = None;
        assert!(cache.find(&anonymous).is_none(), "no peer metadata");
        assert!(!cache.full());
        let names: Vec<String> = (0..MAX_SERIES).map(|i| format!("w{i}")).collect();
        for name in &names[1..] {
            cache.insert(&key(name, 200), handles());
        }
        assert_eq!(cache.len, MAX_SERIES);
        assert!(cache.full());
    }

    /// A full cache: a believed peer's metadata is dropped (and counted) instead of making
    /// a new series; the request is still recorded, under `unknown`.
    #[test]
    fn past_the_limit_peer_metadata_makes_no_new_series() {
        let mut cache = SeriesCache::default();
        let names: Vec<String> = (0..MAX_SERIES).map(|i| format!("w{i}")).collect();
        for name in &names {
            cache.insert(&key(name, 204), handles());
        }
        let metrics = Arc::new(Metrics {
            handle: PrometheusBuilder::new().build_recorder().handle(),
            identity: Identity {
                workload: "reviews".into(),
                namespace: "shop".into(),
                app: "reviews".into(),
                version: "v1".into(),
                principal: "unknown".into(),
            },
            access_log: false,
            peer_metadata: None,
            series: std::sync::Mutex::new(cache),
        });
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers.insert(
            exchange::HEADER,
            HeaderValue::from_static("w=new-one;n=shop;a=web;v=v1"),
        );
        let address: std::net::SocketAddr = ([127, 0, 0, 1], 1000).into();
        let peer = crate::inbound::Peer {
            identity: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
            own_identity: None,
            address,
            local: address,
            mtls: true,
        };
        let mut record = metrics.request(&parts, address);
        record.set_peer(&peer);
        record.take_peer_metadata(&mut parts.headers, &peer);
        assert!(record.peer_metadata.is_some(), "believed");
        record.handles();
        assert!(record.peer_metadata.is_none(), "dropped at the limit");
        drop(record);
        let cache = metrics.series.lock().expect("cache");
        assert_eq!(
            cache.len,
            MAX_SERIES + 1,
            "one series for the unknown peer, once"
        );
    }
}
