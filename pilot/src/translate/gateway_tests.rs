use mesh_core::compile::compile;
use mesh_core::config::ServerTlsMode;
use mesh_core::snapshot::{ListenerProtocol, Snapshot};

use super::super::{Node, snapshot};
use super::*;
use crate::index::Index;
use crate::translate::tests::index_of_yaml;

fn gateway_node(labels: &[(&str, &str)]) -> Node {
    Node {
        id: "gateway.ingress".into(),
        namespace: "ingress".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        metadata: [(PROXY_MODE.to_owned(), GATEWAY_MODE.to_owned())].into(),
        ..Node::default()
    }
}

fn example() -> Index {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/config/ingress-gateway.yaml"
    );
    index_of_yaml(&std::fs::read_to_string(path).expect("example"))
}

fn route_config<'a>(snapshot: &'a Snapshot, name: &str) -> &'a RouteConfigSpec {
    snapshot
        .route_configs
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route config {name}: {:?}", snapshot.route_configs))
}

fn vhost<'a>(config: &'a RouteConfigSpec, name: &str) -> &'a VirtualHostSpec {
    config
        .virtual_hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no virtual host {name}"))
}

#[test]
fn the_bookinfo_gateway_gets_a_listener_per_port_and_no_sidecar_listeners() {
    let index = example();
    let snapshot = snapshot(&index, &gateway_node(&[("istio", "ingressgateway")]));
    let names: Vec<_> = snapshot.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["0.0.0.0_80", "0.0.0.0_443"]);

    let http = route_config(&snapshot, "http.80");
    let stable = vhost(http, "bookinfo.example.com");
    assert_eq!(
        stable.domains,
        ["bookinfo.example.com", "bookinfo.example.com:*"]
    );
    assert_eq!(
        stable.routes[0].route[0].destination.subset.as_deref(),
        Some("v1")
    );
    // The canary host: only the rule for this gateway and the one for every caller stay,
    // the `mesh`-only rule is gone, and no match names a gateway any more.
    let canary = vhost(http, "canary.bookinfo.example.com");
    let rules: Vec<_> = canary.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, ["canary-host", "mesh-default"]);
    assert!(canary.routes[0].matches[0].gateways.is_empty());
    // httpsRedirect: the secure host on port 80 answers with a 301 to https.
    let secure = vhost(http, "secure.bookinfo.example.com");
    let redirect = secure.routes[0].redirect.as_ref().expect("a redirect");
    assert_eq!(redirect.scheme.as_deref(), Some("https"));
    assert_eq!(redirect.redirect_code, Some(301));

    let https = snapshot
        .listeners
        .iter()
        .find(|l| l.name == "0.0.0.0_443")
        .expect("port 443");
    let tls = https.tls.as_ref().expect("port 443 serves TLS");
    assert_eq!(tls.servers[0].hosts, ["secure.bookinfo.example.com"]);
    assert_eq!(tls.servers[0].tls.mode, ServerTlsMode::Simple);
    // Each HTTPS server has routes of its own, for its hosts only.
    assert_eq!(https.route_config, None);
    assert_eq!(tls.servers[0].route_config.as_deref(), Some("https.443.0"));
    let own = route_config(&snapshot, "https.443.0");
    assert_eq!(own.virtual_hosts.len(), 1, "{own:?}");
    let secure = vhost(own, "secure.bookinfo.example.com");
    assert_eq!(
        secure.routes[0].route[0].destination.host,
        "productpage.ingress.svc.cluster.local"
    );
    // credentialName is left to the proxy, which reads the mounted Secret.
    assert_eq!(
        tls.servers[0].tls.credential_name.as_deref(),
        Some("secure-bookinfo-credential")
    );
    compile(&snapshot).expect("the proxy accepts it");
}

#[test]
fn a_proxy_the_selector_does_not_match_gets_no_gateway_listeners() {
    let index = example();
    let snapshot = snapshot(&index, &gateway_node(&[("istio", "egressgateway")]));
    assert!(snapshot.listeners.is_empty(), "{:?}", snapshot.listeners);
}

const HOSTS: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {mesh: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: http}
    hosts: ["shop/*.example.com", "*/api.example.org"]
  - port: {number: 8443, name: tls, protocol: Tls}
    hosts: ["*.secure.example.com"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: shop}
spec:
  hosts: [web.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: 9001}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: ["*"]
  gateways: [edge/gw]
  http:
  - route: [{destination: {host: web}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: elsewhere, namespace: other}
spec:
  hosts: [www.example.com, api.example.org]
  gateways: [edge/gw]
  http:
  - route: [{destination: {host: web.shop.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: shop}
spec:
  hosts: [db.secure.example.com]
  gateways: [edge/gw]
  tls:
  - match: [{sniHosts: [db.secure.example.com]}]
    route: [{destination: {host: web}}]
"#;

#[test]
fn hosts_meet_by_namespace_and_overlap_and_passthrough_routes_by_sni() {
    let index = index_of_yaml(HOSTS);
    let snapshot = snapshot(&index, &gateway_node(&[("mesh", "ingressgateway")]));
    let http = route_config(&snapshot, "http.8080");
    let names: Vec<_> = http.virtual_hosts.iter().map(|h| h.name.as_str()).collect();
    // shop's `*` narrows to the server's `*.example.com`; other's www.example.com is not
    // admitted (the server host is for shop only) but api.example.org is (`*/`).
    assert_eq!(names, ["*.example.com", "api.example.org"]);
    assert_eq!(
        vhost(http, "*.example.com").routes[0].route[0]
            .destination
            .host,
        "web.shop.svc.cluster.local"
    );

    let tls = snapshot
        .listeners
        .iter()
        .find(|l| l.name == "0.0.0.0_8443")
        .expect("port 8443");
    assert_eq!(tls.protocol, ListenerProtocol::Http);
    assert!(tls.route_config.is_none());
    let spec = tls.tls.as_ref().expect("TLS servers");
    assert_eq!(spec.tls_routes.len(), 1);
    assert_eq!(
        spec.tls_routes[0].route[0].destination.host,
        "web.shop.svc.cluster.local"
    );
    compile(&snapshot).expect("the proxy accepts it");
}

#[test]
fn a_local_gateway_binds_its_own_address() {
    let index = index_of_yaml(HOSTS);
    let mut node = gateway_node(&[("mesh", "ingressgateway")]);
    node.outbound_address = Some("127.0.0.7:15001".parse().expect("address"));
    let snapshot = snapshot(&index, &node);
    let addresses: Vec<String> = snapshot
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    assert_eq!(addresses, ["127.0.0.7:8080", "127.0.0.7:8443"]);
}

const TCP: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: data}
spec:
  selector: {mesh: ingressgateway}
  servers:
  - port: {number: 5432, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 6443, name: tls, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec:
  hosts: [db.data.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 127.0.0.1, ports: {tcp: 15432}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: data}
spec:
  hosts: ["*"]
  gateways: [gw]
  tcp:
  - match: [{gateways: [mesh]}]
    route: [{destination: {host: elsewhere}}]
  - route: [{destination: {host: db}}]
"#;

#[test]
fn tcp_ports_forward_by_the_first_tcp_route_for_this_gateway_and_tls_ones_after_terminating() {
    let index = index_of_yaml(TCP);
    let snapshot = snapshot(&index, &gateway_node(&[("mesh", "ingressgateway")]));
    let by_name = |name: &str| {
        snapshot
            .listeners
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    };
    let tcp = by_name("0.0.0.0_5432");
    assert_eq!(tcp.protocol, ListenerProtocol::Tcp);
    assert_eq!(
        tcp.tcp_route[0].destination.host,
        "db.data.svc.cluster.local"
    );
    let tls = by_name("0.0.0.0_6443");
    assert!(tls.route_config.is_none());
    assert_eq!(
        tls.tcp_route[0].destination.host,
        "db.data.svc.cluster.local"
    );
    let servers = &tls.tls.as_ref().expect("TLS servers").servers;
    assert_eq!(servers[0].hosts, ["db.example.com"]);
    compile(&snapshot).expect("the proxy accepts it");
}

#[test]
fn an_auto_passthrough_server_is_sent_as_it_is_with_the_clusters_it_may_name() {
    let index = index_of_yaml(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network, namespace: ingress}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.local"]
    tls: {mode: AUTO_PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.7}]
"#,
    );
    let snapshot = snapshot(&index, &gateway_node(&[("istio", "eastwestgateway")]));
    let listener = &snapshot.listeners[0];
    let tls = listener.tls.as_ref().expect("a TLS listener");
    assert_eq!(tls.servers[0].tls.mode, ServerTlsMode::AutoPassthrough);
    assert_eq!(tls.servers[0].hosts, ["*.local"]);
    assert!(
        snapshot
            .clusters
            .iter()
            .any(|c| c.host == "reviews.shop.svc.cluster.local" && c.port == 9080)
    );
    compile(&snapshot).expect("the gateway takes it");
}
