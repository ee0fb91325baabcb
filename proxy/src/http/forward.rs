//! Sending a routed request upstream: endpoint choice, timeouts and retries.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as _, Incoming};
use mesh_core::model::{Cluster, Downstream, HttpRoute, RequestInfo, RetryPolicy};
use rand::RngExt;
use tokio::time::Instant;

use super::body::{Body, Flag, boxed, local_reply};
use super::handle::Connection;
use super::mirror::{self, Mirror};
use super::sticky;
use super::upgrade;
use super::upstream::Dial;
use crate::resilience::{Admission, ClusterHealth, Outcome as OutlierOutcome, Refused};
use crate::state::{ClusterBalancer, InFlight};

/// Where a routed request goes: a cluster (or subset) and its balancer.
pub struct Target<'r> {
    pub cluster: &'r Cluster,
    pub subset: Option<&'r str>,
    pub balancer: &'r ClusterBalancer,
    pub health: &'r std::sync::Arc<ClusterHealth>,
}

/// Bodies up to this size are kept so that a retry can send them again; larger or
/// streaming bodies are forwarded once, without retries.
const REPLAYABLE_BODY_LIMIT: u64 = 64 * 1024;

enum RequestBody {
    Replayable(Bytes),
    Streaming(crate::metrics::Counted<Incoming>),
}

impl RequestBody {
    fn is_replayable(&self) -> bool {
        matches!(self, RequestBody::Replayable(_))
    }
}

async fn prepare_body(body: Incoming, retries: bool) -> Result<RequestBody, hyper::Error> {
    if body.is_end_stream() {
        return Ok(RequestBody::Replayable(Bytes::new()));
    }
    let small = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= REPLAYABLE_BODY_LIMIT);
    if retries && small {
        return Ok(RequestBody::Replayable(body.collect().await?.to_bytes()));
    }
    Ok(RequestBody::Streaming(crate::metrics::Counted::new(body)))
}

pub async fn forward(
    conn: &Connection,
    route: &HttpRoute,
    target: Target<'_>,
    mirrors: &[Mirror<'_>],
    parts: Parts,
    body: Incoming,
    downstream: &Downstream,
) -> Response<Body> {
    let policy = &route.policy;
    let deadline = policy.timeout.map(|t| Instant::now() + t);
    let mut parts = parts;
    if parts.version == Version::HTTP_11
        && let Some(protocol) = upgrade::requested(&parts.headers)
        && let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
    {
        return forward_upgrade(conn, target, parts, body, downstream, protocol, on_upgrade).await;
    }
    let set_cookie = sticky::issue_cookie(&target, &mut parts);
    let outgoing = Outgoing {
        parts,
        body,
        downstream,
        deadline,
    };
    let mut response = forward_request(conn, policy, target, mirrors, outgoing).await;
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The request as it leaves for upstream, and its deadline.
struct Outgoing<'a> {
    parts: Parts,
    body: Incoming,
    downstream: &'a Downstream,
    deadline: Option<Instant>,
}

/// Sends the request with its retries, once upgrades and cookies are dealt with.
async fn forward_request(
    conn: &Connection,
    policy: &mesh_core::model::RoutePolicy,
    target: Target<'_>,
    mirrors: &[Mirror<'_>],
    outgoing: Outgoing<'_>,
) -> Response<Body> {
    let Outgoing {
        parts,
        body,
        downstream,
        deadline,
    } = outgoing;
    let body = match prepare_body(body, policy.retry.is_some() || !mirrors.is_empty()).await {
        Ok(body) => body,
        Err(_) => return local_reply(StatusCode::BAD_REQUEST, "request body error", None),
    };
    if let RequestBody::Replayable(bytes) = &body {
        mirror::send_copies(&conn.upstreams, mirrors, &parts, bytes, downstream);
    }
    let request_size = match &body {
        RequestBody::Replayable(bytes) => crate::metrics::RequestSize::Known(bytes.len() as u64),
        RequestBody::Streaming(counted) => counted.size(),
    };
    let retry = policy.retry.as_ref().filter(|_| body.is_replayable());
    let tries = 1 + retry.map_or(0, |r| r.attempts);
    let limits = &target.cluster.limits;
    let mut body = Some(body);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut last = None;
    let mut retry_permit = None;
    for attempt in 0..tries {
        if attempt > 0 {
            let Some(retry) = retry else { break };
            retry_permit = target.health.circuit.retry(limits);
            if retry_permit.is_none() {
                tracing::debug!(cluster = %target.cluster.host, "maxRetries in flight: not retrying");
                break;
            }
            if !sleep_backoff(retry, attempt, deadline).await {
                return timeout_reply();
            }
        }
        let admission = match target.health.circuit.admit(limits, deadline).await {
            Ok(admission) => admission,
            Err(Refused::Overflow) => return overflow_reply(),
            Err(Refused::Deadline) => return timeout_reply(),
        };
        let Some((index, endpoint)) = pick_endpoint(
            &target,
            &parts,
            downstream,
            &tried,
            retry.is_some_and(|r| r.prefer_other_endpoints),
        ) else {
            return local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream",
                Some(Flag::NoHealthyUpstream),
            );
        };
        tried.push(endpoint);
        let guards = Guards {
            _admission: admission,
            _in_flight: InFlight::start(&target.balancer.loads[index]),
        };
        let per_try = retry.and_then(|r| r.per_try_timeout);
        let dial = Dial {
            endpoint,
            connect_timeout: target.cluster.connect_timeout,
            idle_timeout: limits.idle_timeout,
            // The client's protocol (HTTP/2 and gRPC stay HTTP/2), unless the cluster
            // upgrades HTTP/1.1 to HTTP/2 (h2UpgradePolicy: UPGRADE).
            http2: parts.version == Version::HTTP_2 || limits.upgrade_to_http2,
            keep_alive: limits.max_requests_per_connection != Some(1),
            tls: endpoint_tls(&target, index),
        };
        let resendable =
            is_idempotent(&parts.method) && matches!(body, Some(RequestBody::Replayable(_)));
        let mut stale = 0;
        let sent = loop {
            let mut request = upstream_request(&parts, &dial, next_body(&mut body));
            conn.metrics.exchange(request.headers_mut(), is_mesh(&dial));
            match within(deadline, per_try, conn.upstreams.send(&dial, request)).await {
                // A pooled connection the upstream had closed: the request never reached it,
                // so send it again on another connection. Not a retry: no budget, no back-off.
                Timed::Done(Err(error))
                    if resendable
                        && stale < MAX_STALE_RESENDS
                        && error.closed_before_response() =>
                {
                    stale += 1;
                    tracing::debug!(%endpoint, %error, "pooled connection closed by the upstream; resending");
                    metrics::counter!("mesh_upstream_stale_connection_resends_total").increment(1);
                }
                other => break other,
            }
        };
        let outcome = match sent {
            Timed::Done(Ok(mut response)) => {
                // Only mesh mTLS is `mutual_tls`; TLS the DestinationRule originates with
                // the user's files is not mesh security.
                let extensions = response.extensions_mut();
                if is_mesh(&dial) {
                    extensions.insert(crate::metrics::UpstreamMtls);
                }
                extensions.insert(request_size.clone());
                if let Some(workload) = endpoint_workload(&target, index) {
                    extensions.insert(crate::metrics::UpstreamWorkload(workload));
                }
                Outcome::Response(response, guards)
            }
            Timed::Done(Err(error)) => {
                tracing::debug!(%endpoint, %error, "upstream request failed");
                Outcome::Failed(if error.is_connect() {
                    Flag::UpstreamConnectFailure
                } else {
                    Flag::UpstreamReset
                })
            }
            Timed::TryTimedOut => Outcome::Failed(Flag::UpstreamTimeout),
            Timed::DeadlineReached => return timeout_reply(),
        };
        report_outlier(&target, endpoint, &outcome);
        let retriable = retry.is_some_and(|r| should_retry(r, &outcome));
        last = Some(outcome);
        if !retriable {
            break;
        }
        tracing::debug!(%endpoint, attempt, "retriable outcome");
    }
    drop(retry_permit);
    match last {
        Some(Outcome::Response(response, guards)) => {
            downstream_response(response, guards, tried.last().copied())
        }
        Some(Outcome::Failed(Flag::UpstreamTimeout)) => timeout_reply(),
        Some(Outcome::Failed(flag)) => local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers",
            Some(flag),
        ),
        None => local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream",
            Some(Flag::NoHealthyUpstream),
        ),
    }
}

/// An upgrade request: one try, no retries, and the tunnel keeps its slot.
async fn forward_upgrade(
    conn: &Connection,
    target: Target<'_>,
    parts: Parts,
    body: Incoming,
    downstream: &Downstream,
    protocol: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> Response<Body> {
    let limits = &target.cluster.limits;
    let admission = match target.health.circuit.admit(limits, None).await {
        Ok(admission) => admission,
        Err(_) => return overflow_reply(),
    };
    let Some((index, endpoint)) = pick_endpoint(&target, &parts, downstream, &[], false) else {
        return local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream",
            Some(Flag::NoHealthyUpstream),
        );
    };
    let guards = Guards {
        _admission: admission,
        _in_flight: InFlight::start(&target.balancer.loads[index]),
    };
    let dial = Dial {
        endpoint,
        connect_timeout: target.cluster.connect_timeout,
        idle_timeout: limits.idle_timeout,
        http2: false,
        keep_alive: limits.max_requests_per_connection != Some(1),
        tls: endpoint_tls(&target, index),
    };
    let mut request = upstream_request(&parts, &dial, boxed(body));
    conn.metrics.exchange(request.headers_mut(), is_mesh(&dial));
    upgrade::restore(request.headers_mut(), protocol.clone());
    match conn.upstreams.send(&dial, request).await {
        Ok(mut response) => {
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            upgrade::splice(on_upgrade, &mut response, guards);
            let (mut response_parts, body) = response.into_parts();
            strip_hop_by_hop(&mut response_parts.headers);
            if switching {
                upgrade::restore(&mut response_parts.headers, protocol);
            }
            Response::from_parts(response_parts, boxed(body))
        }
        Err(error) => {
            tracing::debug!(%endpoint, %error, "upgrade request failed");
            let flag = if error.is_connect() {
                Flag::UpstreamConnectFailure
            } else {
                Flag::UpstreamReset
            };
            local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers",
                Some(flag),
            )
        }
    }
}

/// Resends per try on stale pooled connections: each one discards a dead connection, so a
/// few cover a pool the upstream closed all at once.
const MAX_STALE_RESENDS: u32 = 3;

/// Methods that may be sent twice without changing the outcome (RFC 9110 9.2.2).
fn is_idempotent(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// The body for the next try: the kept bytes again, or the stream the first time.
fn next_body(body: &mut Option<RequestBody>) -> Body {
    match body.take() {
        Some(RequestBody::Replayable(bytes)) => {
            *body = Some(RequestBody::Replayable(bytes.clone()));
            boxed(Full::new(bytes))
        }
        Some(RequestBody::Streaming(incoming)) => boxed(incoming),
        None => boxed(Empty::<Bytes>::new()),
    }
}

/// What a request holds until its response body ends: an HTTP/1.1 connection is busy (and
/// the endpoint loaded) until then.
struct Guards {
    _admission: Admission,
    _in_flight: InFlight,
}

fn overflow_reply() -> Response<Body> {
    metrics::counter!("mesh_upstream_overflow_total").increment(1);
    local_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream connect error: overflow",
        Some(Flag::Overflow),
    )
}

fn report_outlier(target: &Target<'_>, endpoint: SocketAddr, outcome: &Outcome) {
    let Some(policy) = &target.cluster.outlier else {
        return;
    };
    let result = match outcome {
        Outcome::Response(response, _) => OutlierOutcome::Response(response.status()),
        Outcome::Failed(_) => OutlierOutcome::LocalFailure,
    };
    let members = &target.balancer.addresses;
    if target
        .health
        .outliers
        .report(policy, endpoint, result, members, Instant::now())
    {
        tracing::warn!(cluster = %target.cluster.host, %endpoint, "endpoint ejected by outlier detection");
        metrics::counter!("mesh_upstream_ejections_total", "destination_service" => target.cluster.host.clone())
            .increment(1);
    }
}

enum Outcome {
    Response(Response<Incoming>, Guards),
    Failed(Flag),
}

fn timeout_reply() -> Response<Body> {
    local_reply(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream request timeout",
        Some(Flag::UpstreamTimeout),
    )
}

/// Picks an endpoint, stepping around ejected ones and, if asked, ones tried already.
pub(super) fn pick_endpoint(
    target: &Target<'_>,
    parts: &Parts,
    downstream: &Downstream,
    tried: &[SocketAddr],
    avoid_tried: bool,
) -> Option<(usize, SocketAddr)> {
    let info = RequestInfo::new(parts, downstream);
    let balancer = &target.balancer;
    let now = Instant::now();
    let endpoints = balancer.balancer.endpoints();
    let ejections = target.cluster.outlier.as_ref().is_some_and(|policy| {
        target
            .health
            .outliers
            .enforced(policy, &balancer.addresses, now)
    });
    let usable =
        |address: &SocketAddr| !ejections || !target.health.outliers.is_ejected(*address, now);
    let load = |i: usize| {
        balancer
            .loads
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    };
    let mut rng = rand::rng();
    let mut choice = None;
    for _ in 0..3 {
        let index = balancer.balancer.pick(&info, load, &mut rng)?;
        let address = endpoints[index].address;
        if !usable(&address) {
            continue;
        }
        choice = Some((index, address));
        if !avoid_tried || !tried.contains(&address) {
            return choice;
        }
    }
    // The balancer kept landing on ejected endpoints (a hash key, or bad luck): take the
    // next usable one after its choice, as a host-set rebuild would.
    if choice.is_none() {
        let start = balancer.balancer.pick(&info, load, &mut rng)?;
        choice = (0..endpoints.len())
            .map(|offset| (start + offset) % endpoints.len())
            .find(|i| usable(&endpoints[*i].address))
            .map(|i| (i, endpoints[i].address));
    }
    choice
}

fn should_retry(retry: &RetryPolicy, outcome: &Outcome) -> bool {
    let on = &retry.retry_on;
    match outcome {
        Outcome::Failed(Flag::UpstreamConnectFailure) => {
            on.connect_failure || on.server_error || on.gateway_error
        }
        Outcome::Failed(Flag::UpstreamReset) => on.reset || on.server_error,
        Outcome::Failed(Flag::UpstreamTimeout) => on.server_error || on.gateway_error || on.reset,
        Outcome::Failed(_) => false,
        Outcome::Response(response, _) => {
            let status = response.status();
            (on.server_error && status.is_server_error())
                || (on.gateway_error && matches!(status.as_u16(), 502..=504))
                || (on.retriable_4xx && status == StatusCode::CONFLICT)
                || on.retriable_status_codes.contains(&status)
                || (!on.grpc.is_empty()
                    && grpc_status(response.headers())
                        .is_some_and(|c| on.grpc.iter().any(|g| g.code() == c)))
        }
    }
}

/// The gRPC status of a trailers-only response (carried in its headers).
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Envoy's back-off: a random wait up to base * 2^(attempt-1), capped at 10x base; false if
/// the request's deadline would pass first.
async fn sleep_backoff(retry: &RetryPolicy, attempt: u32, deadline: Option<Instant>) -> bool {
    let cap = retry.backoff * 10;
    let ceiling = retry
        .backoff
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(cap);
    let wait =
        Duration::from_micros(rand::rng().random_range(0..=ceiling.as_micros().max(1) as u64));
    if deadline.is_some_and(|d| Instant::now() + wait >= d) {
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}

enum Timed<T> {
    Done(T),
    TryTimedOut,
    DeadlineReached,
}

/// Runs `work` bounded by the per-try timeout and the request's overall deadline.
async fn within<F: Future>(
    deadline: Option<Instant>,
    per_try: Option<Duration>,
    work: F,
) -> Timed<F::Output> {
    let try_deadline = per_try.map(|t| Instant::now() + t);
    let limit = match (deadline, try_deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(limit) = limit else {
        return Timed::Done(work.await);
    };
    match tokio::time::timeout_at(limit, work).await {
        Ok(output) => Timed::Done(output),
        Err(_) if deadline.is_some_and(|d| d <= limit) => Timed::DeadlineReached,
        Err(_) => Timed::TryTimedOut,
    }
}

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// Whether the request goes over mesh mTLS, to a sidecar: then it carries this proxy's
/// metadata-exchange header.
fn is_mesh(dial: &Dial) -> bool {
    matches!(dial.tls, Some(crate::tls::Security::Mesh(_)))
}

/// Who endpoint `index` of `target` is, for the request's `destination_*` labels.
fn endpoint_workload(
    target: &Target<'_>,
    index: usize,
) -> Option<std::sync::Arc<mesh_core::model::WorkloadMeta>> {
    target
        .balancer
        .balancer
        .endpoints()
        .get(index)?
        .workload
        .clone()
}

/// Whether the connection to endpoint `index` of `target` is mTLS, and to whom.
pub(super) fn endpoint_tls(target: &Target<'_>, index: usize) -> crate::tls::Expected {
    let endpoint = target.balancer.balancer.endpoints().get(index)?;
    crate::tls::expected_or_refused(target.cluster, target.subset, endpoint)
}

pub(super) fn upstream_request(parts: &Parts, dial: &Dial, body: Body) -> Request<Body> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    // Only the proxy speaks metadata exchange (see `Metrics::exchange`), never an app.
    headers.remove(crate::metrics::exchange::HEADER);
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| dial.endpoint.to_string());
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    if dial.http2 {
        // HTTP/2 carries the authority in :authority; the connection already goes to the endpoint.
        *request.uri_mut() = format!("http://{authority}{path}")
            .parse()
            .unwrap_or_default();
        *request.version_mut() = Version::HTTP_2;
        headers.remove(header::HOST);
    } else {
        // The pooled HTTP/1.1 client dials the URI's authority: the endpoint; Host keeps the name.
        *request.uri_mut() = format!("http://{}{path}", dial.endpoint)
            .parse()
            .unwrap_or_default();
        *request.version_mut() = Version::HTTP_11;
        if let Ok(value) = HeaderValue::from_str(&authority) {
            headers.entry(header::HOST).or_insert(value);
        }
        if !dial.keep_alive {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    *request.headers_mut() = headers;
    request
}

fn downstream_response(
    response: Response<Incoming>,
    guards: Guards,
    endpoint: Option<SocketAddr>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(endpoint) = endpoint {
        parts
            .extensions
            .insert(crate::metrics::UpstreamHost(endpoint));
    }
    Response::from_parts(
        parts,
        boxed(Guarded {
            body,
            _guards: guards,
        }),
    )
}

/// A response body that keeps its request's guards until it ends or is dropped.
struct Guarded {
    body: Incoming,
    _guards: Guards,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
