//! One request: find its route, apply faults, answer locally or forward upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use mesh_core::balance::pick_weighted;
use mesh_core::compile::resolve;
use mesh_core::model::{
    Abort, Destination, DirectResponse, Downstream, Fault, HttpRoute, RequestInfo, RouteAction,
    StringMatch, WeightedDestination,
};
use mesh_core::route::redirect_location;
use rand::RngExt;

use super::body::{Body, Flag, boxed, local_reply};
use super::cors;
use super::forward::{Target, forward};
use super::mirror::Mirror;
use super::upstream::Upstreams;
use crate::metrics::{Metrics, RequestRecord};
use crate::state::{Runtime, State};

/// What every request on one accepted connection shares.
pub struct Connection {
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub upstreams: Arc<Upstreams>,
    pub route_config: String,
    pub local_port: u16,
    pub peer: SocketAddr,
    /// On inbound listeners: the peer as mTLS identified it; policies apply.
    pub inbound: Option<crate::inbound::Peer>,
}

pub async fn handle(
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    ensure_request_id(&mut parts.headers);
    let inbound = conn.inbound.is_some();
    let mut span = conn.state.tracer.start(&mut parts, conn.peer, inbound);
    let response = handle_request(&conn, parts, body, span.as_mut()).await;
    Ok(crate::trace::attach(span, response))
}

/// Admission (inbound), then routing; the response carries the request's metrics record.
async fn handle_request(
    conn: &Connection,
    mut parts: http::request::Parts,
    body: Incoming,
    span: Option<&mut crate::trace::ActiveSpan>,
) -> Response<Body> {
    let mut record = conn.metrics.request(&parts, conn.peer);
    if let Some(peer) = &conn.inbound {
        record.set_peer(peer);
        record.take_peer_metadata(&mut parts.headers, peer);
        // Before authorization, as Envoy sanitizes before its RBAC filter: a policy on
        // `request.headers[x-forwarded-client-cert]` sees what this proxy states, never a
        // value the client made up.
        crate::inbound::xfcc::apply(&mut parts.headers, peer);
        let claims = match crate::inbound::authn::authenticate(&conn.state, &mut parts) {
            Ok(claims) => claims,
            Err(failure) => {
                let unauthorized = crate::inbound::authn::unauthorized(&failure);
                return record.attach(unauthorized);
            }
        };
        let decision =
            crate::inbound::authz::decide(&conn.state, peer, Some(&parts), claims.as_ref());
        record.set_authz(&decision);
        if !decision.is_allowed() {
            return record.attach(crate::inbound::authz::denied_response());
        }
    }
    let req = Request::from_parts(parts, body);
    let response = match conn.state.current() {
        Some(runtime) => route_request(conn, &runtime, req, &mut record, span).await,
        None => local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no config yet",
            Some(Flag::NoCluster),
        ),
    };
    record.attach(response)
}

/// Every request carries an `x-request-id` upstream, as Envoy ensures: logs and traces
/// of one request can then be joined across hops.
fn ensure_request_id(headers: &mut http::HeaderMap) {
    if headers.contains_key("x-request-id") {
        return;
    }
    let id: u128 = rand::rng().random();
    let hex = format!("{id:032x}");
    let uuid = format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    );
    if let Ok(value) = HeaderValue::from_str(&uuid) {
        headers.insert("x-request-id", value);
    }
}

/// The outcome of matching, decided without awaiting anything.
enum Decision<'r> {
    Reply(Response<Body>),
    Forward {
        route: &'r HttpRoute,
        match_index: usize,
        target: Target<'r>,
        /// The destination the weights chose, for its header changes.
        destination: &'r WeightedDestination,
        mirrors: Vec<Mirror<'r>>,
    },
}

async fn route_request(
    conn: &Connection,
    runtime: &Runtime,
    req: Request<Incoming>,
    record: &mut RequestRecord,
    span: Option<&mut crate::trace::ActiveSpan>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let downstream = Downstream {
        source_ip: Some(conn.peer.ip()),
        ..Downstream::sidecar(conn.local_port)
    };
    let (decision, fault) = {
        let info = RequestInfo::new(&parts, &downstream);
        decide(conn, runtime, &info)
    };
    if let Decision::Forward { target, route, .. } = &decision {
        record.set_route(&route.name);
        record.set_destination(&target.cluster.host, target.subset);
        if conn.inbound.is_some() {
            record.set_inbound_service(&runtime.config, &parts);
        }
        if let Some(span) = span {
            span.set_cluster(&target.cluster.host, target.cluster.port, target.subset);
        }
    }
    if let Some(fault) = fault
        && let Some(reply) = inject(&fault).await
    {
        return reply;
    }
    match decision {
        Decision::Reply(reply) => reply,
        Decision::Forward {
            route,
            match_index,
            target,
            destination,
            mirrors,
        } => {
            if parts.method == http::Method::CONNECT {
                return super::connect::tunnel(target, parts, &downstream).await;
            }
            let cors = route
                .policy
                .cors
                .as_ref()
                .map(|c| cors::evaluate(c, &parts));
            let decorate = match cors {
                Some(cors::Decision::Answer(reply)) => return reply,
                Some(cors::Decision::Decorate(headers)) => Some(headers),
                _ => None,
            };
            let mut parts = parts;
            rewrite(route, match_index, &mut parts);
            route.policy.request_headers.apply(&mut parts.headers);
            destination.request_headers.apply(&mut parts.headers);
            let mut response =
                forward(conn, route, target, &mirrors, parts, body, &downstream).await;
            destination.response_headers.apply(response.headers_mut());
            route.policy.response_headers.apply(response.headers_mut());
            if let Some(headers) = decorate {
                response.headers_mut().extend(headers);
            }
            response
        }
    }
}

fn decide<'r>(
    conn: &Connection,
    runtime: &'r Runtime,
    info: &RequestInfo,
) -> (Decision<'r>, Option<Fault>) {
    let no_route = || {
        Decision::Reply(local_reply(
            StatusCode::NOT_FOUND,
            "no route",
            Some(Flag::NoRoute),
        ))
    };
    let Some(route_config) = runtime.config.route_configs.get(&conn.route_config) else {
        return (no_route(), None);
    };
    let Some(table) = route_config.table_for(info.authority) else {
        tracing::debug!(authority = info.authority, "no virtual host");
        return (no_route(), None);
    };
    let Some((route, match_index)) = table.select(info) else {
        tracing::debug!(authority = info.authority, path = info.path, table = %table.name, "no route matched");
        return (no_route(), None);
    };
    let fault = route.policy.fault.clone();
    let decision = match &route.action {
        RouteAction::Redirect(redirect) => {
            let location = redirect_location(redirect, info);
            let mut reply = local_reply(redirect.status, "", None);
            if let Ok(value) = HeaderValue::from_str(&location) {
                reply.headers_mut().insert(header::LOCATION, value);
            }
            Decision::Reply(reply)
        }
        RouteAction::DirectResponse(direct) => Decision::Reply(direct_reply(direct)),
        RouteAction::Route(destinations) => match pick_target(runtime, destinations) {
            Some((target, destination)) => Decision::Forward {
                route,
                match_index,
                target,
                destination,
                mirrors: route
                    .policy
                    .mirrors
                    .iter()
                    .filter_map(|m| {
                        Some(Mirror {
                            target: resolve_target(runtime, &m.destination)?,
                            fraction: m.fraction,
                        })
                    })
                    .collect(),
            },
            None => Decision::Reply(local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "no cluster",
                Some(Flag::NoCluster),
            )),
        },
    };
    (decision, fault)
}

/// A destination chosen by weight, and its cluster; `None` when it has none (compile
/// prevents that).
fn pick_target<'r>(
    runtime: &'r Runtime,
    destinations: &'r [WeightedDestination],
) -> Option<(Target<'r>, &'r WeightedDestination)> {
    let chosen = &destinations[pick_weighted(destinations, &mut rand::rng())?];
    Some((resolve_target(runtime, &chosen.destination)?, chosen))
}

fn resolve_target<'r>(runtime: &'r Runtime, destination: &'r Destination) -> Option<Target<'r>> {
    let cluster = resolve(&runtime.config, destination).ok()?;
    let subset = destination.subset.as_deref();
    let balancer = runtime.balancer(cluster, subset)?;
    let health = runtime.health(cluster)?;
    Some(Target {
        cluster,
        subset,
        balancer,
        health,
    })
}

fn direct_reply(direct: &DirectResponse) -> Response<Body> {
    let body = direct.body.clone().unwrap_or_default();
    let mut reply = Response::new(boxed(http_body_util::Full::new(bytes::Bytes::from(body))));
    *reply.status_mut() = direct.status;
    reply
}

/// Delays, then aborts, each for its share of requests.
async fn inject(fault: &Fault) -> Option<Response<Body>> {
    let roll = |rng: &mut rand::rngs::ThreadRng| rng.random_range(0..1_000_000u32);
    let (delay_roll, abort_roll) = {
        let mut rng = rand::rng();
        (roll(&mut rng), roll(&mut rng))
    };
    if let Some((delay, share)) = fault.delay
        && share.includes(delay_roll)
    {
        tokio::time::sleep(delay).await;
    }
    let (abort, share) = fault.abort?;
    if !share.includes(abort_roll) {
        return None;
    }
    Some(match abort {
        Abort::Http(status) => local_reply(status, "fault filter abort", Some(Flag::FaultAbort)),
        Abort::Grpc(code) => {
            let mut reply = local_reply(StatusCode::OK, "", Some(Flag::FaultAbort));
            let headers = reply.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from(code.code()));
            headers.insert(
                "grpc-message",
                HeaderValue::from_static("fault filter abort"),
            );
            reply
        }
    })
}

/// Istio `rewrite`: the matched prefix (or the whole path) of the URI, and the authority.
fn rewrite(route: &HttpRoute, match_index: usize, parts: &mut http::request::Parts) {
    let Some(rewrite) = &route.policy.rewrite else {
        return;
    };
    let path = parts.uri.path().to_owned();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let new_path = if let Some((regex, with)) = &rewrite.uri_regex {
        Some(regex.replace_all(&path, with.as_str()).into_owned())
    } else if let Some(uri) = &rewrite.uri {
        let matched_prefix = route
            .matches
            .get(match_index)
            .and_then(|m| m.uri.as_ref())
            .and_then(|u| match u {
                StringMatch::Prefix(prefix) => Some(prefix.len()),
                _ => None,
            });
        Some(match matched_prefix {
            Some(len) if path.len() >= len => format!("{uri}{}", &path[len..]),
            _ => uri.clone(),
        })
    } else {
        None
    };
    if let Some(new_path) = new_path
        && let Ok(uri) = format!("{new_path}{query}").parse()
    {
        parts.uri = uri;
    }
    if let Some(authority) = &rewrite.authority
        && let Ok(value) = HeaderValue::from_str(authority)
    {
        parts.headers.insert(header::HOST, value);
    }
}
