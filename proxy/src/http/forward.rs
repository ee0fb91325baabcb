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
use crate::state::{ClusterBalancer, InFlight};

/// Where a routed request goes: a cluster (or subset) and its balancer.
pub struct Target<'r> {
    pub cluster: &'r Cluster,
    pub subset: Option<&'r str>,
    pub balancer: &'r ClusterBalancer,
}

/// Bodies up to this size are kept so that a retry can send them again; larger or
/// streaming bodies are forwarded once, without retries.
const REPLAYABLE_BODY_LIMIT: u64 = 64 * 1024;

enum RequestBody {
    Replayable(Bytes),
    Streaming(Incoming),
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
    Ok(RequestBody::Streaming(body))
}

pub async fn forward(
    conn: &Connection,
    route: &HttpRoute,
    target: Target<'_>,
    parts: Parts,
    body: Incoming,
    downstream: &Downstream,
) -> Response<Body> {
    let policy = &route.policy;
    let deadline = policy.timeout.map(|t| Instant::now() + t);
    let body = match prepare_body(body, policy.retry.is_some()).await {
        Ok(body) => body,
        Err(_) => return local_reply(StatusCode::BAD_REQUEST, "request body error", None),
    };
    let retry = policy.retry.as_ref().filter(|_| body.is_replayable());
    let tries = 1 + retry.map_or(0, |r| r.attempts);
    let client = conn.upstreams.client(target.cluster.connect_timeout);
    let mut body = Some(body);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut outcome = Outcome::Failed(Flag::NoHealthyUpstream);
    for attempt in 0..tries {
        if attempt > 0
            && let Some(retry) = retry
            && !sleep_backoff(retry, attempt, deadline).await
        {
            return timeout_reply();
        }
        let Some((index, endpoint)) = pick(&target, &parts, downstream, &tried, retry) else {
            return local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream",
                Some(Flag::NoHealthyUpstream),
            );
        };
        tried.push(endpoint);
        let _in_flight = InFlight::start(&target.balancer.loads[index]);
        let this_body = match body.take() {
            Some(RequestBody::Replayable(bytes)) => {
                body = Some(RequestBody::Replayable(bytes.clone()));
                boxed(Full::new(bytes))
            }
            Some(RequestBody::Streaming(incoming)) => boxed(incoming),
            None => boxed(Empty::<Bytes>::new()),
        };
        let request = upstream_request(&parts, endpoint, this_body);
        let per_try = retry.and_then(|r| r.per_try_timeout);
        outcome = match within(deadline, per_try, client.request(request)).await {
            Timed::Done(Ok(response)) => Outcome::Response(response),
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
        let retriable = retry.is_some_and(|r| should_retry(r, &outcome));
        if !retriable || attempt + 1 == tries {
            break;
        }
        tracing::debug!(%endpoint, attempt, "retrying");
    }
    match outcome {
        Outcome::Response(response) => downstream_response(response),
        Outcome::Failed(Flag::UpstreamTimeout) => timeout_reply(),
        Outcome::Failed(flag) => local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers",
            Some(flag),
        ),
    }
}

enum Outcome {
    Response(Response<Incoming>),
    Failed(Flag),
}

fn timeout_reply() -> Response<Body> {
    local_reply(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream request timeout",
        Some(Flag::UpstreamTimeout),
    )
}

/// Picks an endpoint, preferring ones not tried yet for this request.
fn pick(
    target: &Target<'_>,
    parts: &Parts,
    downstream: &Downstream,
    tried: &[SocketAddr],
    retry: Option<&RetryPolicy>,
) -> Option<(usize, SocketAddr)> {
    let info = RequestInfo::new(parts, downstream);
    let balancer = &target.balancer;
    let load = |i: usize| {
        balancer
            .loads
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    };
    let mut rng = rand::rng();
    let avoid_tried = retry.is_some_and(|r| r.prefer_other_endpoints);
    let mut choice = None;
    for _ in 0..3 {
        let index = balancer.balancer.pick(&info, load, &mut rng)?;
        let address = balancer.balancer.endpoints()[index].address;
        choice = Some((index, address));
        if !avoid_tried || !tried.contains(&address) {
            break;
        }
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
        Outcome::Response(response) => {
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

fn upstream_request(parts: &Parts, endpoint: SocketAddr, body: Body) -> Request<Body> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = format!("http://{endpoint}{path}")
        .parse()
        .unwrap_or_default();
    *request.version_mut() = Version::HTTP_11;
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    // HTTP/2 carries the host in :authority; an HTTP/1.1 upstream needs it in Host.
    if !headers.contains_key(header::HOST)
        && let Some(value) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(header::HOST, value);
    }
    *request.headers_mut() = headers;
    request
}

fn downstream_response(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, boxed(body))
}
