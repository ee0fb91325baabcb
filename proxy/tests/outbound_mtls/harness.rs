//! Two real proxies with certificates from one fake citadel: a client proxy whose
//! outbound listener sends to clusters, and a server proxy whose STRICT inbound listener
//! fronts an echo app.

use std::net::SocketAddr;

use http::StatusCode;

use crate::ca::TestCa;
use crate::citadel::FakeCitadel;
use crate::harness::eventually;
use crate::support::{Proxy, get};

pub const SERVER: &str = "spiffe://cluster.local/ns/shop/sa/server";
pub const CLIENT: &str = "spiffe://cluster.local/ns/shop/sa/client";

pub struct Citadel(pub FakeCitadel);

impl Citadel {
    pub async fn start() -> Self {
        let root = TestCa::root("mesh root");
        Self(FakeCitadel::start(root.intermediate("citadel")).await)
    }

    /// A proxy `shop/<service_account>` on `snapshot`, ready and holding its certificate.
    pub async fn proxy(&self, service_account: &str, snapshot: &str) -> Proxy {
        let citadel = &self.0;
        let address = citadel.address();
        let flags = [
            "--ca-addr",
            &address,
            "--trust-bundle",
            citadel.bundle_file.to_str().unwrap(),
            "--ca-token-file",
            citadel.token_file.to_str().unwrap(),
            "--namespace",
            "shop",
            "--service-account",
            service_account,
        ];
        let proxy = Proxy::start_with(snapshot, &flags);
        eventually("the proxy is ready", || async {
            get(proxy.health, "/healthz/ready", &[]).await.0 == StatusCode::OK
        })
        .await;
        proxy
    }
}

/// One cluster of the client's snapshot: `host`, one endpoint, its extra YAML.
pub struct Upstream<'a> {
    pub host: &'a str,
    pub endpoint: SocketAddr,
    /// YAML flow entries appended to the endpoint, e.g. `labels: {...}`.
    pub endpoint_extra: &'a str,
    /// A `trafficPolicy` line, or empty.
    pub policy: &'a str,
}

/// An outbound HTTP listener `out`: requests for Host `h` go to cluster `h`.
pub fn client_snapshot(upstreams: &[Upstream<'_>]) -> String {
    let mut hosts = String::new();
    let mut clusters = String::new();
    for u in upstreams {
        let host = u.host;
        hosts.push_str(&format!(
            "  - name: {host}\n    domains: [{host}]\n    routes:\n    - name: {host}\n      route: [{{destination: {{host: {host}}}}}]\n"
        ));
        clusters.push_str(&format!(
            "- host: {host}\n  port: 80\n  endpoints: [{{address: \"{}\"{}}}]\n{}",
            u.endpoint, u.endpoint_extra, u.policy
        ));
    }
    format!(
        "version: \"1\"\nlisteners:\n- {{name: out, address: \"127.0.0.1:0\", routeConfig: outbound}}\nrouteConfigs:\n- name: outbound\n  virtualHosts:\n{hosts}clusters:\n{clusters}"
    )
}

/// A TCP listener `out` forwarding to host `db`, whose one endpoint is `endpoint`.
pub fn client_tcp_snapshot(endpoint: SocketAddr, endpoint_extra: &str) -> String {
    format!(
        "version: \"1\"\nlisteners:\n- {{name: out, address: \"127.0.0.1:0\", protocol: TCP, tcpRoute: [{{destination: {{host: db}}}}]}}\nclusters:\n- host: db\n  port: 5432\n  endpoints: [{{address: \"{endpoint}\"{endpoint_extra}}}]\n"
    )
}
