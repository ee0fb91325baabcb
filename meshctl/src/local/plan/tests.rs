#![allow(clippy::unwrap_used)]

use mesh_core::load::load_str;
use mesh_core::validate::validate;

use super::*;

const TOPOLOGY: &str = r#"
namespace: shop
services:
  - name: productpage
    ports: [{number: 9080}]
  - name: reviews
    ports: [{number: 9080, name: http}, {number: 9443, name: grpc, protocol: GRPC}]
workloads:
  - {service: productpage}
  - {service: reviews, version: v2, replicas: 2}
  - service: reviews
    version: v3
    command: ["bin/reviews", "--listen={listen}", "--port", "{port}", "--host", "{host}"]
    env: {PEER: "{workload}@{namespace}"}
"#;

fn topology() -> Topology {
    Topology::parse(TOPOLOGY, Path::new("topology.yaml")).unwrap()
}

fn instances() -> Vec<Instance> {
    plan(
        &topology(),
        Ipv4Addr::new(127, 0, 0, 2),
        20000,
        Path::new("/bin/mesh-echo"),
    )
    .unwrap()
}

#[test]
fn each_instance_gets_the_next_address_and_the_standard_sidecar_ports() {
    let all = instances();
    let names: Vec<(&str, Ipv4Addr)> = all.iter().map(|i| (i.name.as_str(), i.ip)).collect();
    assert_eq!(
        names,
        [
            ("productpage-v1", Ipv4Addr::new(127, 0, 0, 2)),
            ("reviews-v2-1", Ipv4Addr::new(127, 0, 0, 3)),
            ("reviews-v2-2", Ipv4Addr::new(127, 0, 0, 4)),
            ("reviews-v3", Ipv4Addr::new(127, 0, 0, 5)),
        ]
    );
    let reviews = &all[1];
    assert_eq!(reviews.outbound().to_string(), "127.0.0.3:15001");
    assert_eq!(reviews.admin().to_string(), "127.0.0.3:15000");
    assert_eq!(reviews.health().to_string(), "127.0.0.3:15021");
    assert_eq!(reviews.app_addr().to_string(), "127.0.0.1:20001");
    assert_eq!(
        all[2].app_addr().to_string(),
        "127.0.0.1:20003",
        "two ports each"
    );
    let inbound: Vec<String> = reviews.inbound().iter().map(|a| a.to_string()).collect();
    assert_eq!(inbound, ["127.0.0.3:9080", "127.0.0.3:9443"]);
    assert_eq!(reviews.node_id(), "reviews-v2-1.shop");
    assert_eq!(reviews.labels()[WORKLOAD_LABEL], "reviews-v2-1");
}

#[test]
fn commands_and_env_are_expanded_and_the_sidecar_is_the_http_proxy() {
    let all = instances();
    assert_eq!(
        all[0].command,
        [
            "/bin/mesh-echo",
            "--listen",
            "127.0.0.1:20000",
            "--name",
            "productpage",
            "--version-label",
            "v1"
        ]
    );
    assert_eq!(all[0].env["HTTP_PROXY"], "http://127.0.0.2:15001");
    let v3 = &all[3];
    assert_eq!(
        v3.command,
        [
            "bin/reviews",
            "--listen=127.0.0.1:20005",
            "--port",
            "20005",
            "--host",
            "reviews.shop.svc.cluster.local"
        ]
    );
    assert_eq!(v3.env["PEER"], "reviews-v3@shop");
}

#[test]
fn addresses_stay_in_loopback() {
    let topology = topology();
    let echo = Path::new("echo");
    assert!(matches!(
        plan(&topology, Ipv4Addr::new(10, 0, 0, 2), 20000, echo),
        Err(PlanError::NotLoopback(_))
    ));
    let err = plan(&topology, Ipv4Addr::new(127, 255, 255, 252), 20000, echo).unwrap_err();
    assert!(
        matches!(err, PlanError::OutOfAddresses { count: 4, .. }),
        "{err}"
    );
    assert!(plan(&topology, Ipv4Addr::new(127, 255, 255, 251), 20000, echo).is_ok());
    // 7 app ports: 65529..=65535 fit, one more does not.
    assert!(plan(&topology, Ipv4Addr::new(127, 0, 0, 2), 65529, echo).is_ok());
    let err = plan(&topology, Ipv4Addr::new(127, 0, 0, 2), 65530, echo).unwrap_err();
    assert!(
        matches!(err, PlanError::OutOfPorts { count: 7, .. }),
        "{err}"
    );
}

#[test]
fn the_generated_config_is_valid_and_describes_every_instance() {
    let all = instances();
    let text = generated_config(&topology(), &all);
    let set = load_str(&text, "generated.yaml");
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    let errors: Vec<String> = validate(&set)
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{text}");
    let count = |kind: &str| set.objects.iter().filter(|o| o.origin.kind == kind).count();
    assert_eq!(count("ServiceEntry"), 2);
    assert_eq!(count("WorkloadEntry"), 4);
    assert_eq!(count("Sidecar"), 4);
    assert!(text.contains("defaultEndpoint: 127.0.0.1:20006"), "{text}");
    assert!(text.contains("bind: 127.0.0.5"), "{text}");
    assert!(text.contains("security.istio.io/tlsMode: istio"), "{text}");
}
