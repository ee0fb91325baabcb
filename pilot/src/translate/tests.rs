use std::path::Path;
use std::sync::Arc;

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;

use super::*;
use crate::index::{Index, Settings};
use crate::source::last_good::LastGood;
use crate::source::local::load_inputs;

fn index_of(path: &Path) -> Index {
    index_in(path, Settings::default())
}

fn index_in(path: &Path, settings: Settings) -> Index {
    let inputs = load_inputs(path, &mut LastGood::default());
    Index::new(settings, Arc::new(inputs))
}

/// The index of one config file holding `yaml`, under `settings`; the other test modules
/// of `translate` build theirs with it too.
pub(super) fn index_with(yaml: &str, settings: Settings) -> Index {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.yaml"), yaml).expect("write config");
    index_in(dir.path(), settings)
}

pub(super) fn index_of_yaml(yaml: &str) -> Index {
    index_with(yaml, Settings::default())
}

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config")
}

fn node(namespace: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        id: format!("test.{namespace}"),
        namespace: namespace.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        outbound_address: Some("127.0.0.1:15001".parse().expect("address")),
        ..Node::default()
    }
}

const VS_REVIEWS: &str = "canary/reviews";
const DR_REVIEWS: &str = "canary/reviews";

fn vhost<'a>(snapshot: &'a Snapshot, name: &str) -> &'a mesh_core::snapshot::VirtualHostSpec {
    snapshot.route_configs[0]
        .virtual_hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no virtual host {name}"))
}

#[test]
fn every_example_namespace_translates_to_a_snapshot_the_proxy_accepts() {
    let index = index_of(&examples());
    let namespaces: std::collections::BTreeSet<String> = index
        .registry()
        .services
        .keys()
        .map(|(ns, _)| ns.clone())
        .collect();
    assert!(namespaces.len() >= 8, "{namespaces:?}");
    for namespace in &namespaces {
        let snapshot = snapshot(&index, &node(namespace, &[]));
        assert!(!snapshot.clusters.is_empty(), "{namespace}");
        if let Err(errors) = compile(&snapshot) {
            panic!("namespace {namespace}: the proxy would refuse this: {errors}");
        }
    }
}

#[test]
fn canary_routes_carry_the_virtual_service_and_every_short_name() {
    let index = index_of(&examples().join("weighted-canary.yaml"));
    let snapshot = snapshot(&index, &node("canary", &[]));
    let reviews = vhost(&snapshot, "reviews.canary.svc.cluster.local:9080");
    for domain in [
        "reviews.canary.svc.cluster.local:9080",
        "reviews.canary:9080",
        "reviews:9080",
        // The service's only HTTP port: reachable without naming it.
        "reviews",
    ] {
        assert!(
            reviews.domains.iter().any(|d| d == domain),
            "{domain} not in {:?}",
            reviews.domains
        );
    }
    let names: Vec<_> = reviews.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["beta-group-3-way", "canary-90-10"]);
    assert_eq!(reviews.virtual_service.as_deref(), Some(VS_REVIEWS));
    let weights: Vec<_> = reviews.routes[1].route.iter().map(|d| d.weight).collect();
    assert_eq!(weights, [Some(90), Some(10)]);

    let cluster = snapshot
        .clusters
        .iter()
        .find(|c| c.host == "reviews.canary.svc.cluster.local")
        .expect("reviews cluster");
    let subsets: Vec<_> = cluster.subsets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(subsets, ["v1", "v2", "v3"]);
    assert_eq!(cluster.destination_rule.as_deref(), Some(DR_REVIEWS));
    // What the rule and the routes came from survives the wire, for proxy-config.
    let wire = mesh_proto::convert::encode_snapshot(&snapshot);
    let decoded = mesh_proto::convert::decode_snapshot("v", &wire).expect("decodes");
    assert_eq!(
        vhost(&decoded, "reviews.canary.svc.cluster.local:9080")
            .virtual_service
            .as_deref(),
        Some(VS_REVIEWS)
    );
    let ports: Vec<_> = cluster.endpoints.iter().map(|e| e.address.port()).collect();
    assert_eq!(ports, [9081, 9082, 9083]);
    assert_eq!(
        cluster.endpoints[0].identity.as_deref(),
        Some("spiffe://cluster.local/ns/canary/sa/bookinfo-reviews"),
        "the identity mTLS to the endpoint must verify"
    );
    let config = compile(&snapshot).expect("compiles");
    assert_eq!(config.clusters().count(), 3);
}

#[test]
fn short_names_from_another_namespace_need_the_namespace() {
    let index = index_of(&examples().join("weighted-canary.yaml"));
    let snapshot = snapshot(&index, &node("elsewhere", &[]));
    let reviews = vhost(&snapshot, "reviews.canary.svc.cluster.local:9080");
    assert!(reviews.domains.iter().any(|d| d == "reviews.canary:9080"));
    assert!(!reviews.domains.iter().any(|d| d == "reviews:9080"));
}

const TWO_NAMESPACES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: a}
spec:
  hosts: [api.a.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}, {number: 8080, name: http-admin}, {number: 5432, name: tcp-db, protocol: TCP}]
  endpoints: [{address: 10.0.0.1, ports: {http: 8000}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: b}
spec:
  hosts: [private.b.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  exportTo: ["."]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-everywhere, namespace: a}
spec:
  host: api
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-for-b, namespace: b}
spec:
  host: api.a.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: a}
spec:
  hosts: [api]
  http:
  - name: admin-only
    match: [{port: 8080}]
    route: [{destination: {host: api}}]
  - name: rest
    route: [{destination: {host: api}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: narrow, namespace: c}
spec:
  egress: [{hosts: ["./*"]}]
"#;

#[test]
fn exported_services_sidecar_imports_and_destination_rule_precedence() {
    let index = index_of_yaml(TWO_NAMESPACES);
    let hosts = |snapshot: &Snapshot| -> Vec<String> {
        let mut hosts: Vec<_> = snapshot.clusters.iter().map(|c| c.host.clone()).collect();
        hosts.dedup();
        hosts
    };
    let from_a = snapshot(&index, &node("a", &[]));
    let from_b = snapshot(&index, &node("b", &[]));
    let from_c = snapshot(&index, &node("c", &[]));
    assert_eq!(hosts(&from_a), ["api.a.svc.cluster.local"]);
    assert_eq!(
        hosts(&from_b),
        ["api.a.svc.cluster.local", "private.b.svc.cluster.local"]
    );
    // c's Sidecar imports only its own namespace, which defines nothing.
    assert!(from_c.clusters.is_empty());

    let lb = |snapshot: &Snapshot| {
        let policy = snapshot.clusters[0].traffic_policy.clone().expect("policy");
        serde_json::to_value(policy.load_balancer).expect("json")["simple"].clone()
    };
    // b's own rule for api beats the rule in api's namespace.
    assert_eq!(lb(&from_a), "ROUND_ROBIN");
    assert_eq!(lb(&from_b), "RANDOM");
}

#[test]
fn routes_follow_the_port_the_request_came_in_on() {
    let index = index_of_yaml(TWO_NAMESPACES);
    let from_a = snapshot(&index, &node("a", &[]));
    let virtual_hosts: Vec<_> = from_a.route_configs[0]
        .virtual_hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    // The TCP port gets no virtual host.
    assert_eq!(
        virtual_hosts,
        ["api.a.svc.cluster.local:80", "api.a.svc.cluster.local:8080"]
    );
    let on_80 = vhost(&from_a, "api.a.svc.cluster.local:80");
    let names: Vec<_> = on_80.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["rest"], "the port-8080 match is dropped on 80");
    let destination = &on_80.routes[0].route[0].destination;
    assert_eq!(destination.host, "api.a.svc.cluster.local");
    assert_eq!(destination.port.as_ref().map(|p| p.number), Some(80));
    // Port 80 is reachable by the bare name; 8080, one of several ports, is not.
    assert!(on_80.domains.iter().any(|d| d == "api"));
    let on_8080 = vhost(&from_a, "api.a.svc.cluster.local:8080");
    assert!(!on_8080.domains.iter().any(|d| d == "api"));
    assert_eq!(on_8080.routes[0].name, "admin-only");

    let endpoints = &from_a
        .clusters
        .iter()
        .find(|c| c.port == 80)
        .expect("port 80")
        .endpoints;
    assert_eq!(endpoints[0].address.to_string(), "10.0.0.1:8000");
    compile(&from_a).expect("compiles");
}

#[test]
fn inbound_policy_selects_mesh_wide_namespace_and_workload_policies() {
    let index = index_of(&examples().join("mtls-strict.yaml"));
    let names = |policy: &InboundPolicy| -> Vec<String> {
        policy
            .peer_authentications
            .iter()
            .map(|p| p.name.clone())
            .collect()
    };
    let all: Vec<_> = index
        .peer_authentications
        .iter()
        .map(|p| {
            (
                p.metadata.namespace.clone(),
                p.metadata.name.clone(),
                p.spec.selector.clone(),
            )
        })
        .collect();
    let (workload_ns, workload_labels) = all
        .iter()
        .find_map(|(ns, _, sel)| sel.as_ref().map(|s| (ns.clone(), s.match_labels.clone())))
        .expect("a workload-selected PeerAuthentication in the example");
    let labels: Vec<(&str, &str)> = workload_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let selected = inbound_policy(&index, &node(&workload_ns, &labels));
    let unselected = inbound_policy(&index, &node(&workload_ns, &[]));
    assert_eq!(names(&selected).len(), names(&unselected).len() + 1);
    assert!(
        names(&unselected)
            .iter()
            .any(|n| n.starts_with("mesh-system/")),
        "mesh-wide policy applies everywhere: {:?}",
        names(&unselected)
    );
}

#[test]
fn a_sidecar_ingress_becomes_an_inbound_listener_to_the_app() {
    let index = index_of(&examples().join("sidecar-scope.yaml"));
    let ratings = node("sidecar-scope", &[("app", "ratings")]);
    let snapshot = snapshot(&index, &ratings);
    let listener = snapshot
        .listeners
        .iter()
        .find(|l| l.name == "inbound|9080")
        .expect("an inbound listener for the ingress port");
    assert_eq!(listener.address.port(), 9080);
    assert_eq!(
        listener.inbound.map(|i| i.mtls),
        Some(mesh_core::snapshot::PeerMode::Permissive)
    );
    let app = snapshot
        .clusters
        .iter()
        .find(|c| c.host == "inbound|9080")
        .expect("the local app's cluster");
    assert_eq!(app.endpoints[0].address.to_string(), "127.0.0.1:8080");
    let routes = snapshot
        .route_configs
        .iter()
        .find(|r| r.name == "inbound|9080")
        .expect("the inbound routes");
    assert_eq!(
        routes.virtual_hosts[0].routes[0]
            .retries
            .as_ref()
            .map(|r| r.attempts),
        Some(0),
        "the inbound side never retries"
    );
    let config = compile(&snapshot).expect("compiles");
    assert!(config.listeners.iter().any(|l| l.inbound.is_some()));
    // A workload the Sidecar does not select gets no inbound listener.
    let other = snapshot_of_other(&index);
    assert!(other.listeners.iter().all(|l| l.inbound.is_none()));
}

fn snapshot_of_other(index: &Index) -> Snapshot {
    snapshot(index, &node("sidecar-scope", &[("app", "reviews")]))
}

const PEER_AUTHENTICATIONS: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: mesh-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: a}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: x, namespace: a}
spec:
  selector: {matchLabels: {app: x}}
  mtls: {mode: UNSET}
  portLevelMtls: {"8080": {mode: DISABLE}}
"#;

#[test]
fn peer_authentication_inherits_from_port_to_workload_to_namespace_to_mesh() {
    use mesh_core::snapshot::PeerMode;
    let index = index_of_yaml(PEER_AUTHENTICATIONS);
    let x = node("a", &[("app", "x")]);
    assert_eq!(peer_mode(&index, &x, 8080), PeerMode::Disable, "port level");
    assert_eq!(
        peer_mode(&index, &x, 9090),
        PeerMode::Permissive,
        "UNSET defers to the namespace"
    );
    assert_eq!(
        peer_mode(&index, &node("a", &[]), 8080),
        PeerMode::Permissive
    );
    assert_eq!(
        peer_mode(&index, &node("b", &[]), 8080),
        PeerMode::Strict,
        "mesh-wide"
    );
    let none = index_of_yaml("");
    assert_eq!(peer_mode(&none, &node("b", &[]), 80), PeerMode::Permissive);
}

#[test]
fn request_authentications_select_like_policies_and_file_jwks_are_inlined() {
    let keys = tempfile::tempdir().expect("temp dir");
    let jwks_path = keys.path().join("jwks.json");
    let jwks = r#"{"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}"#;
    std::fs::write(&jwks_path, jwks).expect("write jwks");
    let index = index_of_yaml(&format!(
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: api, namespace: a}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  jwtRules:
  - issuer: https://accounts.example.com
    jwksUri: file://{}
  - issuer: https://gone.example.com
    jwksUri: file:///nonexistent/jwks.json
"#,
        jwks_path.display()
    ));
    let selected = inbound_policy(&index, &node("a", &[("app", "api")]));
    assert_eq!(selected.request_authentications.len(), 1);
    let rules = &selected.request_authentications[0].spec.jwt_rules;
    assert_eq!(rules[0].jwks.as_deref(), Some(jwks), "read from the file");
    assert_eq!(
        rules[1].jwks, None,
        "an unreadable file leaves the rule without keys"
    );
    assert!(
        inbound_policy(&index, &node("a", &[("app", "web")]))
            .request_authentications
            .is_empty()
    );
}

const CAPTURED: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  addresses: [10.96.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 5432, name: tcp-db, protocol: TCP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-1, namespace: shop}
spec:
  address: 10.1.0.3
  ports: {http: 8080}
  labels: {app: reviews}
  serviceAccount: reviews
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
"#;

fn captured_node(ip: &str) -> Node {
    let mut node = node("shop", &[("app", "reviews")]);
    node.metadata
        .insert(INTERCEPTION_MODE.into(), REDIRECT.into());
    node.metadata.insert("ipAddresses".into(), ip.into());
    node
}

#[test]
fn capture_mode_adds_inbound_by_workload_port_and_outbound_by_vip() {
    let index = index_of_yaml(CAPTURED);
    let snapshot = snapshot(&index, &captured_node("10.1.0.3"));
    let inbound = snapshot
        .listeners
        .iter()
        .find(|l| l.name == "inbound|8080")
        .expect("an inbound listener for the workload's port");
    assert_eq!(inbound.address.to_string(), "0.0.0.0:8080");
    assert_eq!(
        inbound.inbound.map(|i| i.mtls),
        Some(mesh_core::snapshot::PeerMode::Strict)
    );
    let app = snapshot
        .clusters
        .iter()
        .find(|c| c.host == "inbound|8080")
        .expect("the app's cluster");
    assert_eq!(app.endpoints[0].address.to_string(), "127.0.0.1:8080");
    let http = snapshot
        .listeners
        .iter()
        .find(|l| l.address.to_string() == "10.96.0.10:9080")
        .expect("the VIP's HTTP port");
    assert_eq!(http.route_config.as_deref(), Some(OUTBOUND_ROUTE_CONFIG));
    let tcp = snapshot
        .listeners
        .iter()
        .find(|l| l.address.to_string() == "10.96.0.10:5432")
        .expect("the VIP's TCP port");
    assert_eq!(
        tcp.tcp_route[0].destination.host,
        "reviews.shop.svc.cluster.local"
    );
    let reviews = vhost(&snapshot, "reviews.shop.svc.cluster.local:9080");
    assert!(
        reviews.domains.iter().any(|d| d == "10.96.0.10:9080"),
        "{:?}",
        reviews.domains
    );
    if let Err(errors) = compile(&snapshot) {
        panic!("the proxy would refuse this: {errors}");
    }
}

#[test]
fn without_capture_or_at_another_ip_nothing_is_added() {
    let index = index_of_yaml(CAPTURED);
    let mut plain = captured_node("10.1.0.3");
    plain.metadata.remove(INTERCEPTION_MODE);
    let other = captured_node("10.1.0.9");
    for (node, vip_listeners) in [(plain, 0), (other, 2)] {
        let snapshot = snapshot(&index, &node);
        assert!(
            !snapshot.listeners.iter().any(|l| l.inbound.is_some()),
            "{:?}",
            snapshot.listeners
        );
        let vips = snapshot
            .listeners
            .iter()
            .filter(|l| l.name.starts_with("outbound|"))
            .count();
        assert_eq!(vips, vip_listeners);
    }
}
