use mesh_core::snapshot::Snapshot;
use mesh_proto::convert::encode_snapshot;

use super::*;

fn snapshot(subset: &str) -> Snapshot {
    Snapshot::from_yaml(&format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: web
    domains: ["*"]
    routes: [{{route: [{{destination: {{host: web, subset: {subset}}}}}]}}]
clusters:
- host: web
  port: 80
  endpoints: [{{address: "10.0.0.1:80", labels: {{version: v1}}}}]
  subsets: [{{name: v1, labels: {{version: v1}}}}]
"#
    ))
    .expect("test snapshot parses")
}

fn response(snapshot: &Snapshot, version: &str) -> pb::DiscoveryResponse {
    pb::DiscoveryResponse {
        system_version_info: version.into(),
        nonce: format!("nonce-{version}"),
        resources: encode_snapshot(snapshot),
        removed_resources: vec![],
        more: false,
    }
}

#[test]
fn a_good_response_prepares_a_runtime_at_pilots_version() {
    let state = State::default();
    let (store, runtime) =
        prepare(&Store::default(), &response(&snapshot("v1"), "p1"), &state).expect("applies");
    assert_eq!(runtime.config.version, "p1");
    assert_eq!(store.len(), 5);
    assert!(
        state.current().is_none(),
        "nothing applied yet: the caller does that"
    );
}

#[test]
fn a_route_to_a_missing_subset_is_refused_naming_the_field() {
    let state = State::default();
    let Err(error) = prepare(&Store::default(), &response(&snapshot("v9"), "p2"), &state) else {
        panic!("a route to subset v9 must be refused");
    };
    let message = error.to_string();
    assert!(message.contains("route config \"outbound\""), "{message}");
    assert!(message.contains("no subset \"v9\""), "{message}");
}

#[test]
fn an_unknown_route_field_is_refused_naming_it() {
    let mut bad = response(&snapshot("v1"), "p3");
    let route = bad
        .resources
        .iter_mut()
        .find_map(|r| match &mut r.kind {
            Some(pb::resource::Kind::VirtualHost(host)) => Some(host),
            _ => None,
        })
        .expect("a virtual host");
    route.routes_json = r#"[{"rout": []}]"#.into();
    let Err(error) = prepare(&Store::default(), &bad, &State::default()) else {
        panic!("an unknown field must be refused");
    };
    let message = error.to_string();
    assert!(
        message.contains("outbound"),
        "names the resource: {message}"
    );
    assert!(message.contains("rout"), "names the field: {message}");
}

#[test]
fn requests_carry_the_node_first_and_nonces_after() {
    let node = pb::Node {
        id: "a.b".into(),
        ..Default::default()
    };
    let (store, _) = prepare(
        &Store::default(),
        &response(&snapshot("v1"), "p1"),
        &State::default(),
    )
    .expect("applies");
    let first = first_request(&node, &store);
    assert_eq!(first.node.as_ref().map(|n| n.id.as_str()), Some("a.b"));
    assert_eq!(first.initial_resource_versions, store.versions());
    assert!(first.response_nonce.is_empty());

    let acked = ack("n1");
    assert_eq!(
        (acked.response_nonce.as_str(), acked.error_detail),
        ("n1", None)
    );
    let nacked = nack("n2", "bad".into());
    assert_eq!(nacked.response_nonce, "n2");
    assert_eq!(
        nacked.error_detail.map(|e| e.message).as_deref(),
        Some("bad")
    );
    assert!(nacked.node.is_none());
}

#[test]
fn error_chains_show_every_cause_once() {
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);
    let error = Outer(Inner(std::io::Error::other("refused")));
    assert_eq!(chain(&error), "outer: inner: refused");
}

#[test]
fn pieces_are_gathered_and_answered_as_one_update() {
    let whole = response(&snapshot("v1"), "p9");
    let mut pieces = None;
    let split = whole.resources.len() / 2;
    let first = pb::DiscoveryResponse {
        resources: whole.resources[..split].to_vec(),
        more: true,
        ..whole.clone()
    };
    let last = pb::DiscoveryResponse {
        resources: whole.resources[split..].to_vec(),
        ..whole.clone()
    };
    assert!(
        gather(&mut pieces, first).is_none(),
        "held until the last piece"
    );
    let gathered = gather(&mut pieces, last).expect("the whole update");
    assert_eq!(gathered, whole);
    assert!(pieces.is_none());
    let (store, _) = prepare(&Store::default(), &gathered, &State::default()).expect("applies");
    assert_eq!(store.len(), 5);
}
