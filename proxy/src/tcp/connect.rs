//! Where a TCP connection goes: a destination by weight, an endpoint by the cluster's
//! balancer, and a connection to it, falling over to other endpoints when connecting fails.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mesh_core::balance::pick_weighted;
use mesh_core::compile::resolve;
use mesh_core::model::{Cluster, Downstream, RequestInfo, WeightedDestination};
use tokio::net::TcpStream;

use crate::http::Flag;
use crate::state::{ClusterBalancer, InFlight, Runtime};

/// Endpoints tried per connection before giving up (Envoy's TCP proxy default is 1; a
/// client that cannot retry is better served by a second endpoint than by a reset).
const MAX_TRIES: usize = 3;

/// The cluster (or subset) chosen for one connection, and its balancer.
pub(super) struct Target<'r> {
    pub cluster: &'r Cluster,
    pub subset: Option<&'r str>,
    pub balancer: &'r ClusterBalancer,
}

/// A destination of `routes` by weight, resolved in `runtime`; `None` when it names no
/// cluster of this snapshot (compile prevents it, but the listener may outlive a reload by
/// a moment).
pub(super) fn target<'r>(
    runtime: &'r Runtime,
    routes: &'r [WeightedDestination],
) -> Option<Target<'r>> {
    let index = pick_weighted(routes, &mut rand::rng())?;
    let destination = &routes[index].destination;
    let cluster = resolve(&runtime.config, destination).ok()?;
    let subset = destination.subset.as_deref();
    let balancer = runtime.balancer(cluster, subset)?;
    Some(Target {
        cluster,
        subset,
        balancer,
    })
}

/// An open upstream connection, counted as in flight on its endpoint for least-request
/// balancing (for TCP that is least connections) until it is dropped.
pub(super) struct Upstream {
    pub stream: TcpStream,
    pub endpoint: SocketAddr,
    pub in_flight: InFlight,
}

/// Connects to an endpoint of `target`, each try bounded by the cluster's connect timeout.
/// Fails with UH when the cluster has no endpoint, UF when every try failed.
pub(super) async fn connect(
    target: &Target<'_>,
    peer: SocketAddr,
    local_port: u16,
) -> Result<Upstream, Flag> {
    // There is no request: the source address is what a hash policy can key on.
    let (parts, ()) = http::Request::new(()).into_parts();
    let downstream = Downstream {
        source_ip: Some(peer.ip()),
        ..Downstream::sidecar(local_port)
    };
    let mut tried = Vec::with_capacity(MAX_TRIES);
    for _ in 0..MAX_TRIES {
        let index = {
            let info = RequestInfo::new(&parts, &downstream);
            pick(target.balancer, &info, &tried)
        };
        let Some(index) = index else {
            break;
        };
        tried.push(index);
        let endpoint = target.balancer.balancer.endpoints()[index].address;
        let in_flight = InFlight::start(&target.balancer.loads[index]);
        let timeout = target.cluster.connect_timeout;
        match tokio::time::timeout(timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(Upstream {
                    stream,
                    endpoint,
                    in_flight,
                });
            }
            Ok(Err(error)) => tracing::debug!(%endpoint, %error, "TCP connect failed"),
            Err(_) => tracing::debug!(%endpoint, ?timeout, "TCP connect timed out"),
        }
    }
    Err(if tried.is_empty() {
        Flag::NoHealthyUpstream
    } else {
        Flag::UpstreamConnectFailure
    })
}

/// The balancer's choice, or when that endpoint already failed for this connection, the
/// next one after it not tried yet: a retry must not land on the endpoint that just
/// refused, which a random or hashing balancer would often do.
fn pick(balancer: &ClusterBalancer, info: &RequestInfo, tried: &[usize]) -> Option<usize> {
    let load = |i: usize| {
        balancer
            .loads
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    };
    let picked = balancer.balancer.pick(info, load, &mut rand::rng())?;
    let count = balancer.balancer.endpoints().len();
    (0..count)
        .map(|step| (picked + step) % count)
        .find(|i| !tried.contains(i))
}
