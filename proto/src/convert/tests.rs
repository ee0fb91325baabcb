use super::*;

fn example(name: &str) -> Snapshot {
    let path = format!("{}/../examples/snapshot/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example snapshot");
    Snapshot::from_yaml(&text).expect("example snapshot parses")
}

/// Decoding sorts by name; sort the original the same way to compare.
fn sorted(mut snapshot: Snapshot) -> Snapshot {
    snapshot.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    snapshot.route_configs.sort_by(|a, b| a.name.cmp(&b.name));
    snapshot
        .clusters
        .sort_by_key(|c| cluster_name(&c.host, c.port));
    snapshot
}

#[test]
fn example_snapshots_survive_the_wire() {
    for name in ["reviews.yaml", "auto-and-tcp.yaml", "gateway.yaml"] {
        let original = example(name);
        let resources = encode_snapshot(&original);
        let decoded = decode_snapshot(&original.version, &resources).expect("decodes");
        assert_eq!(decoded, sorted(original), "{name}");
    }
}

#[test]
fn equal_content_has_equal_versions_and_a_change_a_new_one() {
    let snapshot = example("reviews.yaml");
    let first = encode_snapshot(&snapshot);
    let again = encode_snapshot(&snapshot);
    assert_eq!(first, again);

    let mut changed = snapshot.clone();
    changed.clusters[0].endpoints.pop();
    let after = encode_snapshot(&changed);
    let differing: Vec<_> = first
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.version != b.version)
        .map(|(a, _)| (resource_type(a), a.name.clone()))
        .collect();
    // Only the endpoints of that cluster changed: the cluster itself keeps its version.
    assert_eq!(
        differing,
        vec![(
            pb::ResourceType::Endpoints,
            cluster_name(&snapshot.clusters[0].host, snapshot.clusters[0].port)
        )]
    );
}

#[test]
fn bad_routes_name_the_resource_and_the_field() {
    let bad = pb::Resource {
        name: "outbound".into(),
        version: "1".into(),
        kind: Some(Kind::RouteConfiguration(pb::RouteConfiguration {
            virtual_hosts: vec![pb::VirtualHost {
                name: "reviews:9080".into(),
                domains: vec!["reviews".into()],
                routes_json: r#"[{"route":[{"destination":{"host":"r"},"wieght":1}]}]"#.into(),
                ..Default::default()
            }],
        })),
    };
    let err = decode_snapshot("v", [&bad])
        .expect_err("refused")
        .to_string();
    assert!(
        err.starts_with(
            "route configuration outbound: virtualHosts[0] (reviews:9080): routes[0].route[0]"
        ),
        "{err}"
    );
    assert!(err.contains("wieght"), "{err}");
}

#[test]
fn bad_addresses_and_ports_are_errors_not_panics() {
    let listener = resource(
        "l".into(),
        Kind::Listener(pb::Listener {
            address: "not-an-address".into(),
            ..Default::default()
        }),
    );
    let err = decode_snapshot("v", [&listener])
        .expect_err("refused")
        .to_string();
    assert!(
        err.starts_with("listener l: address: \"not-an-address\""),
        "{err}"
    );

    let cluster = resource(
        "c".into(),
        Kind::Cluster(pb::Cluster {
            host: "h".into(),
            port: 70000,
            ..Default::default()
        }),
    );
    let err = decode_snapshot("v", [&cluster])
        .expect_err("refused")
        .to_string();
    assert_eq!(err, "cluster c: port: 70000 is not a port");

    let empty = pb::Resource::default();
    assert!(decode_snapshot("v", [&empty]).is_err());
}

#[test]
fn virtual_hosts_travel_apart_and_a_route_change_resends_one() {
    let snapshot = example("reviews.yaml");
    let before = encode_snapshot(&snapshot);
    let hosts: Vec<_> = before
        .iter()
        .filter(|r| resource_type(r) == pb::ResourceType::VirtualHost)
        .map(|r| r.name.clone())
        .collect();
    let route_config = &snapshot.route_configs[0];
    assert_eq!(hosts.len(), route_config.virtual_hosts.len());
    assert!(hosts[0].starts_with(&format!("{}/", route_config.name)));

    let mut changed = snapshot.clone();
    changed.route_configs[0].virtual_hosts[0].routes.pop();
    let after = encode_snapshot(&changed);
    let differing: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.version != b.version)
        .map(|(a, _)| a.name.clone())
        .collect();
    assert_eq!(differing, [hosts[0].clone()]);
}

#[test]
fn a_virtual_host_without_its_route_configuration_is_refused_by_name() {
    let host = encode_virtual_host(
        "gone",
        &mesh_core::snapshot::VirtualHostSpec {
            name: "reviews:9080".into(),
            domains: vec!["reviews".into()],
            routes: Vec::new(),
            virtual_service: None,
        },
    );
    let err = decode_snapshot("v", [&host])
        .expect_err("refused")
        .to_string();
    assert_eq!(
        err,
        "virtual host gone/reviews:9080: names route configuration \"gone\", which is not held"
    );
}

#[test]
fn inbound_listeners_and_authorization_policies_survive_the_wire() {
    let snapshot = Snapshot::from_yaml(
        r#"
version: "1"
listeners:
- name: inbound|9080
  address: 127.0.0.2:9080
  protocol: TCP
  tcpRoute: [{destination: {host: app, port: {number: 8080}}}]
  inbound: {mtls: STRICT}
clusters:
- host: app
  port: 8080
  endpoints:
  - address: 127.0.0.1:8080
  - address: 127.0.0.3:8080
    labels: {security.istio.io/tlsMode: istio}
    weight: 2
    identity: spiffe://cluster.local/ns/shop/sa/app
authorizationPolicies:
- name: shop/allow-frontend
  spec:
    action: ALLOW
    rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]}]
"#,
    )
    .expect("parses");
    let decoded = decode_snapshot("1", &encode_snapshot(&snapshot)).expect("decodes");
    let identities: Vec<_> = decoded.clusters[0]
        .endpoints
        .iter()
        .map(|e| e.identity.as_deref())
        .collect();
    assert_eq!(
        identities,
        [None, Some("spiffe://cluster.local/ns/shop/sa/app")]
    );
    assert_eq!(decoded, sorted(snapshot));
}

#[test]
fn telemetry_survives_the_wire_and_a_bad_one_is_named() {
    let mut original = example("reviews.yaml");
    original.telemetry = Some(TelemetrySpec {
        access_logging: true,
        tracing: Some(mesh_core::snapshot::TracingSpec {
            sampling_percentage: 12.5,
            collector: "127.0.0.1:4317".into(),
            custom_tags: [("team".to_owned(), "shop".to_owned())].into(),
        }),
        sources: vec!["mesh-system/default".into()],
    });
    let resources = encode_snapshot(&original);
    let decoded = decode_snapshot(&original.version, &resources).expect("decodes");
    assert_eq!(decoded, sorted(original));

    let bad = resource(
        "telemetry".into(),
        Kind::Telemetry(pb::Telemetry {
            telemetry_json: r#"{"accessLogging": "yes"}"#.into(),
        }),
    );
    let error = decode_snapshot("v", &[bad])
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("telemetry") && error.contains("accessLogging"),
        "{error}"
    );
}

#[test]
fn a_dns_cluster_survives_the_wire_and_a_bad_one_is_named() {
    let snapshot = Snapshot::from_yaml(
        r#"
version: "1"
clusters:
- host: api.external.com
  port: 80
  dns:
    lookup: LOGICAL
    endpoints:
    - {hostname: us.api.external.com, port: 8080, labels: {region: us}}
    - {hostname: eu.api.external.com, port: 80, weight: 3}
"#,
    )
    .expect("parses");
    let decoded = decode_snapshot("1", &encode_snapshot(&snapshot)).expect("decodes");
    assert_eq!(decoded, sorted(snapshot));

    let bad = resource(
        cluster_name("api.external.com", 80),
        Kind::Cluster(pb::Cluster {
            host: "api.external.com".into(),
            port: 80,
            dns_json: r#"{"lookup": "SOMETIMES"}"#.into(),
            ..pb::Cluster::default()
        }),
    );
    let error = decode_snapshot("v", &[bad])
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("api.external.com") && error.contains("dns.lookup"),
        "{error}"
    );
}
