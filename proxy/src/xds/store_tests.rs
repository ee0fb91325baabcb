use super::*;

fn snapshot(upstream: &str) -> Snapshot {
    Snapshot::from_yaml(&format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - {{name: web, domains: ["*"], routes: [{{route: [{{destination: {{host: web}}}}]}}]}}
clusters:
- {{host: web, port: 80, endpoints: [{{address: "{upstream}"}}]}}
"#
    ))
    .expect("test snapshot parses")
}

fn response(resources: Vec<pb::Resource>, removed: Vec<pb::ResourceKey>) -> pb::DiscoveryResponse {
    pb::DiscoveryResponse {
        system_version_info: "v".into(),
        nonce: "n".into(),
        resources,
        removed_resources: removed,
        more: false,
    }
}

fn full(upstream: &str) -> Store {
    let resources = convert::encode_snapshot(&snapshot(upstream));
    Store::default()
        .updated(&response(resources, vec![]))
        .expect("applies")
}

#[test]
fn a_full_push_holds_every_resource_and_decodes_back() {
    let store = full("10.0.0.1:80");
    assert_eq!(
        store.len(),
        5,
        "listener, route config, virtual host, cluster, endpoints"
    );
    let decoded = store.snapshot("7").expect("decodes");
    assert_eq!(decoded.version, "7");
    assert_eq!(
        decoded.clusters[0].endpoints[0].address.to_string(),
        "10.0.0.1:80"
    );
}

#[test]
fn an_endpoints_push_changes_only_the_endpoints() {
    let before = full("10.0.0.1:80");
    let endpoints =
        convert::encode_endpoints("web", 80, &snapshot("10.0.0.2:80").clusters[0].endpoints);
    let after = before
        .updated(&response(vec![endpoints], vec![]))
        .expect("applies");
    let changed: Vec<_> = before
        .versions()
        .into_iter()
        .zip(after.versions())
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.r#type)
        .collect();
    assert_eq!(changed, vec![pb::ResourceType::Endpoints as i32]);
    let decoded = after.snapshot("2").expect("decodes");
    assert_eq!(
        decoded.clusters[0].endpoints[0].address.to_string(),
        "10.0.0.2:80"
    );
    assert_eq!(before, full("10.0.0.1:80"), "the original is untouched");
}

#[test]
fn removals_apply_and_unknown_names_are_ignored() {
    let before = full("10.0.0.1:80");
    let removed = vec![
        pb::ResourceKey {
            r#type: pb::ResourceType::Endpoints as i32,
            name: convert::cluster_name("web", 80),
        },
        pb::ResourceKey {
            r#type: pb::ResourceType::Cluster as i32,
            name: "never-sent".into(),
        },
    ];
    let after = before.updated(&response(vec![], removed)).expect("applies");
    assert_eq!(after.len(), 4);
    let decoded = after.snapshot("2").expect("decodes");
    assert!(decoded.clusters[0].endpoints.is_empty());
}

#[test]
fn malformed_responses_are_errors_that_name_the_entry() {
    let untyped = pb::Resource {
        name: "x".into(),
        version: "1".into(),
        kind: None,
    };
    let error = Store::default()
        .updated(&response(vec![untyped], vec![]))
        .expect_err("no type");
    assert!(error.to_string().contains("resources[0] (x)"), "{error}");
    let bad_type = pb::ResourceKey {
        r#type: 99,
        name: "y".into(),
    };
    let error = Store::default()
        .updated(&response(vec![], vec![bad_type]))
        .expect_err("unknown type");
    assert!(
        error.to_string().contains("removedResources[0] (y)"),
        "{error}"
    );
}

#[test]
fn versions_list_what_is_held() {
    let store = full("10.0.0.1:80");
    let versions = store.versions();
    assert_eq!(versions.len(), 5);
    assert!(versions.iter().all(|v| !v.version.is_empty()));
    assert!(Store::default().versions().is_empty());
}
