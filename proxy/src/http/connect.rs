//! `CONNECT host:port` (explicit proxy mode, e.g. through `HTTPS_PROXY`): the authority is
//! routed like any request, and on success the client gets `200` and a raw tunnel to the
//! endpoint chosen for it.

use std::net::SocketAddr;

use http::request::Parts;
use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use mesh_core::model::Downstream;
use tokio::net::TcpStream;

use super::body::{Body, Flag, local_reply};
use super::forward::{Target, pick_endpoint};
use crate::state::InFlight;

pub async fn tunnel(
    target: Target<'_>,
    mut parts: Parts,
    downstream: &Downstream,
) -> Response<Body> {
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return local_reply(
            StatusCode::BAD_REQUEST,
            "CONNECT needs an HTTP/1.1 connection",
            None,
        );
    };
    let Some((index, endpoint)) = pick_endpoint(&target, &parts, downstream, &[], false) else {
        return local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream",
            Some(Flag::NoHealthyUpstream),
        );
    };
    let upstream =
        match tokio::time::timeout(target.cluster.connect_timeout, TcpStream::connect(endpoint))
            .await
        {
            Ok(Ok(stream)) => stream,
            _ => {
                return local_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream connect error",
                    Some(Flag::UpstreamConnectFailure),
                );
            }
        };
    let in_flight = InFlight::start(&target.balancer.loads[index]);
    tokio::spawn(splice(on_upgrade, upstream, endpoint, in_flight));
    local_reply(StatusCode::OK, "", None)
}

async fn splice(
    on_upgrade: hyper::upgrade::OnUpgrade,
    mut upstream: TcpStream,
    endpoint: SocketAddr,
    _in_flight: InFlight,
) {
    match on_upgrade.await {
        Ok(upgraded) => {
            let mut downstream = TokioIo::new(upgraded);
            match tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
                Ok((sent, received)) => {
                    tracing::debug!(%endpoint, sent, received, "CONNECT tunnel closed")
                }
                Err(error) => {
                    tracing::debug!(%endpoint, %error, "CONNECT tunnel ended with an error")
                }
            }
        }
        Err(error) => tracing::debug!(%endpoint, %error, "CONNECT upgrade failed"),
    }
}
