//! Where a TCP connection goes: a destination by weight, an endpoint by the cluster's
//! balancer, and a connection to it, falling over to other endpoints when connecting fails.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mesh_core::balance::pick_weighted;
use mesh_core::compile::resolve;
use mesh_core::model::{Cluster, ConnectionLimits, Downstream, RequestInfo, WeightedDestination};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::http::Flag;
use crate::identity::CertificateManager;
use crate::resilience::{Admission, ClusterHealth, Outcome as OutlierOutcome};
use crate::state::{ClusterBalancer, InFlight, Runtime};

/// Endpoints tried per connection before giving up (Envoy's TCP proxy default is 1; a
/// client that cannot retry is better served by a second endpoint than by a reset).
const MAX_TRIES: usize = 3;

/// The cluster (or subset) chosen for one connection, and its balancer.
pub(super) struct Target<'r> {
    pub cluster: &'r Cluster,
    pub subset: Option<&'r str>,
    pub balancer: &'r ClusterBalancer,
    pub health: &'r std::sync::Arc<ClusterHealth>,
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
    let health = runtime.health(cluster)?;
    Some(Target {
        cluster,
        subset,
        balancer,
        health,
    })
}

/// An open upstream connection, counted as in flight on its endpoint for least-request
/// balancing (for TCP that is least connections) until it is dropped.
pub(super) struct Upstream {
    /// Plain TCP, or mTLS when the endpoint gets it.
    pub stream: Box<dyn Io>,
    pub endpoint: SocketAddr,
    /// Who the endpoint is, and whether the connection is mesh mTLS: the metrics'
    /// `destination_*` labels and `connection_security_policy`.
    pub workload: Option<std::sync::Arc<mesh_core::model::WorkloadMeta>>,
    pub mesh_mtls: bool,
    pub in_flight: InFlight,
    /// The connection's circuit-breaker slot (`maxConnections`), held while it is open.
    pub admission: Admission,
}

/// A byte stream to an upstream, plain or encrypted.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to an endpoint of `target`, each try bounded by the cluster's connect timeout.
/// Fails with UO past `maxConnections`, UH when the cluster has no usable endpoint, UF when
/// every try failed.
pub(super) async fn connect(
    target: &Target<'_>,
    peer: SocketAddr,
    local_port: u16,
    certs: Option<&std::sync::Arc<CertificateManager>>,
) -> Result<Upstream, Flag> {
    // TCP has no pending queue: past maxConnections a connection is refused at once.
    let limits = ConnectionLimits {
        max_pending_requests: 0,
        ..target.cluster.limits.clone()
    };
    let admission = target
        .health
        .circuit
        .admit(&limits, None)
        .await
        .map_err(|_| Flag::Overflow)?;
    let members = &target.balancer.addresses;
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
            pick(target, &info, &tried, members)
        };
        let Some(index) = index else {
            break;
        };
        tried.push(index);
        let Some(chosen) = target.balancer.balancer.endpoints().get(index) else {
            break;
        };
        let endpoint = chosen.address;
        let in_flight = InFlight::start(&target.balancer.loads[index]);
        let connected = connect_one(target, chosen, certs).await;
        report(target, endpoint, connected.is_some(), members);
        if let Some(stream) = connected {
            let security = crate::tls::expected_or_refused(target.cluster, target.subset, chosen);
            return Ok(Upstream {
                stream,
                endpoint,
                workload: chosen.workload.clone(),
                mesh_mtls: matches!(security, Some(crate::tls::Security::Mesh(_))),
                in_flight,
                admission,
            });
        }
    }
    Err(if tried.is_empty() {
        Flag::NoHealthyUpstream
    } else {
        Flag::UpstreamConnectFailure
    })
}

/// TCP to `endpoint`, then TLS when Istio's rule says so (mesh mTLS, or SIMPLE/MUTUAL
/// origination without ALPN); `None` (logged) on failure. The handshake gets its own
/// connect timeout.
async fn connect_one(
    target: &Target<'_>,
    endpoint: &mesh_core::model::Endpoint,
    certs: Option<&std::sync::Arc<CertificateManager>>,
) -> Option<Box<dyn Io>> {
    let address = endpoint.address;
    let timeout = target.cluster.connect_timeout;
    let security = crate::tls::expected_or_refused(target.cluster, target.subset, endpoint);
    if security == Some(crate::tls::Security::Refused) {
        return None;
    }
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(endpoint = %address, %error, "TCP connect failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(endpoint = %address, ?timeout, "TCP connect timed out");
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let Some(security) = security else {
        return Some(Box::new(stream));
    };
    let secured = tokio::time::timeout(timeout, crate::tls::secure(stream, certs, &security, &[]));
    match secured.await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(error)) => {
            crate::tls::upstream_failure(address, &security, &error);
            None
        }
        Err(_) => {
            crate::tls::upstream_timeout(address, &security);
            None
        }
    }
}

/// The balancer's choice, or when that endpoint already failed for this connection, the
/// next one after it not tried yet: a retry must not land on the endpoint that just
/// refused, which a random or hashing balancer would often do.
fn pick(
    target: &Target<'_>,
    info: &RequestInfo,
    tried: &[usize],
    members: &[SocketAddr],
) -> Option<usize> {
    let balancer = target.balancer;
    let now = tokio::time::Instant::now();
    let outliers = &target.health.outliers;
    let ejections = target
        .cluster
        .outlier
        .as_ref()
        .is_some_and(|policy| outliers.enforced(policy, members, now));
    let ejected = |i: usize| ejections && outliers.is_ejected(members[i], now);
    let usable = |i: &usize| !tried.contains(i) && !ejected(*i);
    let load = |i: usize| {
        balancer
            .loads
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    };
    let picked = balancer.balancer.pick(info, load, &mut rand::rng())?;
    let count = balancer.balancer.endpoints().len();
    (0..count).map(|step| (picked + step) % count).find(usable)
}

/// A connect result, for outlier detection: a refused or timed-out connect is a local
/// failure, a completed one proves the endpoint reachable.
fn report(target: &Target<'_>, endpoint: SocketAddr, reachable: bool, members: &[SocketAddr]) {
    let Some(policy) = &target.cluster.outlier else {
        return;
    };
    let outcome = if reachable {
        OutlierOutcome::Response(http::StatusCode::OK)
    } else {
        OutlierOutcome::LocalFailure
    };
    let now = tokio::time::Instant::now();
    if target
        .health
        .outliers
        .report(policy, endpoint, outcome, members, now)
    {
        tracing::warn!(cluster = %target.cluster.host, %endpoint, "endpoint ejected by outlier detection");
        metrics::counter!("mesh_upstream_ejections_total", "destination_service" => target.cluster.host.clone()).increment(1);
    }
}
