//! The description of bookinfo's productpage from the fixtures `proxy-config` reads, plus
//! policies of each scope.

use serde_json::{Value, json};

use super::pod::{describe, write};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/proxy-config/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
}

fn productpage() -> Value {
    let mut dump = fixture("pilot-productpage-nacked.json");
    dump["inbound"] = json!({
        "peerAuthentications": [
            {"name": "mesh-system/default", "spec": {"mtls": {"mode": "STRICT"}}},
            {"name": "default/productpage", "spec": {
                "selector": {"matchLabels": {"app": "productpage"}},
                "mtls": {"mode": "PERMISSIVE"}, "portLevelMtls": {"9080": {"mode": "DISABLE"}}}},
        ],
        "authorizationPolicies": [
            {"name": "default/deny-all", "spec": {}},
            {"name": "default/get-only", "spec": {"action": "ALLOW", "rules": [{}]}},
        ],
        "requestAuthentications": [],
    });
    dump
}

#[test]
fn the_service_and_its_scope_of_each_policy() {
    let d = describe(&productpage(), None);
    assert_eq!(d.node, "productpage-v1.default");
    let services: Vec<&str> = d.services.iter().map(|s| s.host.as_str()).collect();
    assert_eq!(services, ["productpage.default.svc.cluster.local"]);
    let peer: Vec<(String, String, String)> = d
        .peer_authentications
        .iter()
        .map(|p| (p.name.clone(), p.scope.clone(), p.summary.clone()))
        .collect();
    assert_eq!(
        peer,
        [
            (
                "mesh-system/default".to_owned(),
                "mesh-wide (root namespace mesh-system)".to_owned(),
                "mode STRICT".to_owned()
            ),
            (
                "default/productpage".to_owned(),
                "selector app=productpage".to_owned(),
                "mode PERMISSIVE, port 9080: DISABLE".to_owned()
            ),
        ]
    );
    let authz: Vec<(&str, &str)> = d
        .authorization_policies
        .iter()
        .map(|p| (p.scope.as_str(), p.summary.as_str()))
        .collect();
    assert_eq!(
        authz,
        [
            ("namespace default", "ALLOW, no rules: denies every request"),
            ("namespace default", "ALLOW, 1 rule"),
        ]
    );
    let ports: Vec<(&str, &str)> = d
        .inbound_ports
        .iter()
        .map(|p| (p.address.as_str(), p.mtls.as_str()))
        .collect();
    assert_eq!(ports, [("127.55.0.2:9080", "PERMISSIVE")]);
}

/// reviews-v2 seen from productpage's snapshot: its subset, and the VirtualService routes.
#[test]
fn a_subset_and_the_virtual_service_routes_to_the_service() {
    let mut dump = productpage();
    dump["proxy"] = json!({"id": "reviews-v2.default", "workload": "reviews-v2",
        "namespace": "default", "labels": {"app": "reviews", "version": "v2"},
        "metadata": {"ipAddresses": "127.55.0.6"}});
    let clusters = dump["snapshot"]["clusters"]
        .as_array_mut()
        .expect("clusters");
    let reviews = clusters
        .iter_mut()
        .find(|c| c["host"] == "reviews.default.svc.cluster.local")
        .expect("reviews");
    reviews["endpoints"] = json!([{"address": "127.55.0.6:9080",
        "labels": {"app": "reviews", "version": "v2"}}]);
    let d = describe(&dump, None);
    assert_eq!(d.destination_rules.len(), 1, "{:?}", d.destination_rules);
    assert_eq!(d.destination_rules[0].subsets, ["v2 (version=v2)"]);
    assert_eq!(d.destination_rules[0].other_subsets, ["v1", "v3"]);
    assert_eq!(d.virtual_services.len(), 1);
    let routes: Vec<(&str, &str, &str)> = d.virtual_services[0]
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.conditions.as_str(), r.to.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            (
                "jason",
                "/reviews* end-user=jason",
                "reviews.default.svc.cluster.local subset v2"
            ),
            (
                "-",
                "/*",
                "90% reviews.default.svc.cluster.local subset v1, 10% reviews.default.svc.cluster.local subset v3"
            ),
        ]
    );
    let mut text = Vec::new();
    write(&d, &mut text).expect("written");
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("Matching subsets: v2 (version=v2)"), "{text}");
    assert!(text.contains("No RequestAuthentication applies"), "{text}");
}

#[test]
fn a_document_of_another_shape_describes_nothing() {
    let d = describe(&json!({"unexpected": true}), Some(&json!([])));
    assert!(d.services.is_empty() && d.proxy_version.is_none());
}
