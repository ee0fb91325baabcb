//! AUTO_PASSTHROUGH: the SNI itself names the cluster, as Istio's sidecars write it when
//! they reach a service through a gateway (multi-network): `outbound_.<port>_.<subset>_.<host>`,
//! the subset empty for none. The gateway forwards the TLS bytes untouched to that
//! cluster's endpoints, so the client's mTLS ends at the destination's own sidecar; no
//! VirtualService is needed, and a name that is no cluster of the gateway is closed.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::state::Runtime;

/// Connections of AUTO_PASSTHROUGH servers, by `listener` and `result` (`forwarded`,
/// `unknown_sni`, `no_cluster`, `no_endpoint`, `connect_failed`).
pub const FORWARDED: &str = "mesh_gateway_auto_passthrough_total";

/// The cluster an AUTO_PASSTHROUGH SNI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSni {
    pub host: String,
    pub port: u16,
    pub subset: Option<String>,
}

impl ClusterSni {
    /// Istio's cluster name form; `None` for any other name.
    pub fn parse(sni: &str) -> Option<Self> {
        let rest = sni.strip_prefix("outbound_.")?;
        let (port, rest) = rest.split_once("_.")?;
        let (subset, host) = rest.split_once("_.")?;
        let port = port.parse().ok().filter(|p| *p != 0)?;
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_owned(),
            port,
            subset: (!subset.is_empty()).then(|| subset.to_owned()),
        })
    }
}

/// Connects to an endpoint of `target`'s cluster (a random one first, then the others),
/// and copies both ways until both sides close. Nothing is added: no mTLS of the gateway's
/// own, since the client's TLS is meant for the destination.
pub async fn forward(
    runtime: &Runtime,
    target: &ClusterSni,
    mut downstream: TcpStream,
) -> Result<(), &'static str> {
    let cluster = runtime
        .config
        .cluster(&target.host, target.port)
        .ok_or("no_cluster")?;
    let balancer = runtime
        .balancer(cluster, target.subset.as_deref())
        .ok_or("no_cluster")?;
    let addresses: &[SocketAddr] = &balancer.addresses;
    if addresses.is_empty() {
        return Err("no_endpoint");
    }
    let first = rand::random_range(0..addresses.len());
    for offset in 0..addresses.len() {
        let address = addresses[(first + offset) % addresses.len()];
        let connect = TcpStream::connect(address);
        let Ok(Ok(mut upstream)) = tokio::time::timeout(cluster.connect_timeout, connect).await
        else {
            tracing::debug!(endpoint = %address, "AUTO_PASSTHROUGH: connect failed");
            continue;
        };
        let _ = upstream.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
        return Ok(());
    }
    Err("connect_failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_cluster_names_parse_and_other_names_do_not() {
        assert_eq!(
            ClusterSni::parse("outbound_.9080_.v2_.reviews.shop.svc.cluster.local"),
            Some(ClusterSni {
                host: "reviews.shop.svc.cluster.local".into(),
                port: 9080,
                subset: Some("v2".into()),
            })
        );
        let plain = ClusterSni::parse("outbound_.443_._.api.shop.svc.cluster.local");
        assert_eq!(plain.map(|c| c.subset), Some(None));
        for other in [
            "reviews.shop.svc.cluster.local",
            "outbound_.http_._.reviews",
            "outbound_.0_._.reviews",
            "outbound_.80_._.",
            "outbound_.80_.reviews",
            "inbound_.80_._.reviews",
        ] {
            assert_eq!(ClusterSni::parse(other), None, "{other}");
        }
    }
}
