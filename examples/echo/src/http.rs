//! HTTP mode: one connection served with HTTP/1.1 or h2c (whichever the client speaks), and
//! the answer to each request.

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tonic::codegen::Service as _;

use crate::body::EchoBody;
use crate::calls::{Call, CallConfig, Caller};
use crate::config::Behaviour;
use crate::grpc::{self, GrpcEcho, GrpcService};
use crate::knobs::{self, RequestKnobs};
use crate::plan::{FailSchedule, Plan};
use crate::reply::{EchoReply, Identity};
use crate::shutdown::Signal;
use crate::stats::{ConnectionGuard, Stats};
use crate::upgrade;

/// What every request of an HTTP server shares.
pub(crate) struct Shared {
    pub identity: Identity,
    pub behaviour: Arc<ArcSwap<Behaviour>>,
    pub stats: Arc<Stats>,
    /// Shared with the gRPC service, so a fail percentage spreads over both kinds of request.
    pub failures: Arc<FailSchedule>,
    caller: Caller,
    grpc: GrpcService,
    builder: auto::Builder<TokioExecutor>,
}

/// An HTTP echo answer or a gRPC one.
type AnyBody = Either<EchoBody, tonic::body::Body>;

/// What the requests of one connection share.
pub(crate) struct ConnCtx {
    /// Set by a request asking for `x-echo-close`; the connection then shuts down gracefully.
    close: Notify,
    /// Upgraded echoes clone this, so they too stop on shutdown and hold it back meanwhile.
    pub shutdown: Signal,
    /// Kept until the last user of the connection (an upgraded echo may outlive hyper's).
    _guard: ConnectionGuard,
}

impl Shared {
    pub fn new(
        identity: Identity,
        behaviour: Arc<ArcSwap<Behaviour>>,
        stats: Arc<Stats>,
        calls: CallConfig,
    ) -> Self {
        let failures = Arc::new(FailSchedule::default());
        let grpc = GrpcService::new(GrpcEcho {
            identity: identity.clone(),
            behaviour: Arc::clone(&behaviour),
            failures: Arc::clone(&failures),
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper only enforces its header-read timeout when it has a timer.
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        Self {
            identity,
            behaviour,
            stats,
            failures,
            caller: Caller::new(calls),
            grpc,
            builder,
        }
    }
}

/// Serves one accepted connection until the client leaves, a request asks to close it, or the
/// server shuts down (in-flight requests finish first).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    guard: ConnectionGuard,
    mut shutdown: Signal,
) {
    let ctx = Arc::new(ConnCtx {
        close: Notify::new(),
        shutdown: shutdown.clone(),
        _guard: guard,
    });
    let service = {
        let (shared, ctx) = (Arc::clone(&shared), Arc::clone(&ctx));
        service_fn(move |req| route(Arc::clone(&shared), Arc::clone(&ctx), req))
    };
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.signalled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = ctx.close.notified() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Sends gRPC calls to the gRPC service and everything else to the HTTP echo.
async fn route(
    shared: Arc<Shared>,
    conn: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<AnyBody>, Infallible> {
    if !grpc::is_grpc(&req) {
        let response = handle(shared, conn, req).await?;
        return Ok(response.map(Either::Left));
    }
    shared.stats.record_request(req.uri().path());
    let mut service = shared.grpc.clone();
    // The generated service is always ready and its errors are gRPC statuses in the response.
    let ready = std::future::poll_fn(|cx| {
        tonic::codegen::Service::<Request<Incoming>>::poll_ready(&mut service, cx)
    });
    if let Err(never) = ready.await {
        match never {}
    }
    match service.call(req).await {
        Ok(response) => Ok(response.map(Either::Right)),
        Err(never) => match never {},
    }
}

/// Answers one request. Never fails: bad input is a 400 that says what was wrong.
async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnCtx>,
    mut req: Request<Incoming>,
) -> Result<Response<EchoBody>, Infallible> {
    let path = req.uri().path().to_owned();
    shared.stats.record_request(&path);
    let identity = &shared.identity;
    if path == "/healthz" {
        return Ok(text(identity, StatusCode::OK, "ok"));
    }
    let knobs = match RequestKnobs::from_headers(req.headers()) {
        Ok(knobs) => knobs,
        Err(error) => return Ok(text(identity, StatusCode::BAD_REQUEST, error.to_string())),
    };
    let path_status = match path.strip_prefix("/status/").map(knobs::parse_status) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(error)) => return Ok(text(identity, StatusCode::BAD_REQUEST, error.to_string())),
    };
    let on_upgrade = upgrade::requested(&req).then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body_bytes = match count_body(body).await {
        Ok(n) => n,
        Err(error) => {
            let message = format!("failed to read the request body: {error}");
            return Ok(text(identity, StatusCode::BAD_REQUEST, message));
        }
    };

    // The guard is released before any await: arc-swap guards are meant to be short-lived.
    let plan = Plan::resolve(
        &knobs,
        path_status,
        &shared.behaviour.load(),
        &shared.failures,
    );
    let calls = if on_upgrade.is_none() {
        shared.caller.call_all(&parts.headers).await
    } else {
        Vec::new()
    };
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let plan = plan.after_calls(shared.caller.fail_on_error(), &calls);
    if plan.close {
        // A stored permit: the connection task sees it even if it polls only after we return.
        conn.close.notify_one();
    }
    if let Some(on_upgrade) = on_upgrade
        && plan.status == StatusCode::OK
    {
        return Ok(upgrade::accept(&shared, conn, &parts.headers, on_upgrade));
    }
    Ok(answer(identity, &plan, &parts, body_bytes, calls))
}

/// The response a plan calls for: the JSON echo, or filler when a body size was asked for.
fn answer(
    identity: &Identity,
    plan: &Plan,
    parts: &Parts,
    body_bytes: u64,
    calls: Vec<Call>,
) -> Response<EchoBody> {
    let (body, content_type) = if !allows_body(plan.status) {
        (EchoBody::empty(), "application/json")
    } else if let Some(size) = plan.body_size {
        (EchoBody::filler(size), "application/octet-stream")
    } else {
        let reply = EchoReply {
            calls,
            ..EchoReply::new(identity, parts, body_bytes)
        };
        match serde_json::to_vec(&reply) {
            Ok(json) => (EchoBody::bytes(json), "application/json"),
            Err(error) => {
                let message = format!("failed to encode the echo: {error}");
                return text(identity, StatusCode::INTERNAL_SERVER_ERROR, message);
            }
        }
    };
    let mut response = respond(identity, plan.status, content_type, body);
    if plan.close && parts.version < Version::HTTP_2 {
        // Tells an HTTP/1 client the connection is going; HTTP/2 learns it from the GOAWAY.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the body to its end without keeping it, counting bytes.
async fn count_body(mut body: Incoming) -> Result<u64, hyper::Error> {
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}

/// 204 and 304 must not carry a body; hyper would drop it, but the length would be wrong.
fn allows_body(status: StatusCode) -> bool {
    status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED
}

fn text(identity: &Identity, status: StatusCode, message: impl Into<Bytes>) -> Response<EchoBody> {
    let body = if allows_body(status) {
        EchoBody::bytes(message)
    } else {
        EchoBody::empty()
    };
    respond(identity, status, "text/plain; charset=utf-8", body)
}

/// A response with the identity headers every answer carries.
fn respond(
    identity: &Identity,
    status: StatusCode,
    content_type: &'static str,
    body: EchoBody,
) -> Response<EchoBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    identify(identity, response.headers_mut());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds `x-echo-name` and `x-echo-version`, which every answer carries.
pub(crate) fn identify(identity: &Identity, headers: &mut HeaderMap) {
    headers.insert(knobs::NAME_HEADER, identity.name_header.clone());
    headers.insert(knobs::VERSION_HEADER, identity.version_header.clone());
}
