//! Generations share and reuse encodings, and a scope's delta is exactly what changed.

use std::sync::Arc;
use std::time::Instant;

use mesh_proto::discovery::v1 as pb;

use super::generation::Generation;
use super::held::Held;
use crate::index::{Index, Settings};
use crate::source::last_good::LastGood;
use crate::source::local::load_inputs;
use crate::translate::Node;

fn services(endpoint_port: u16, weight: u32) -> String {
    let mut yaml = String::new();
    for name in ["a", "b", "c"] {
        yaml.push_str(&format!(
            r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: shop}}
spec:
  hosts: [{name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http}}]
  endpoints: [{{address: 10.0.0.1, ports: {{http: {endpoint_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: shop}}
spec:
  host: {name}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: shop}}
spec:
  hosts: [{name}]
  http: [{{route: [{{destination: {{host: {name}, subset: v1}}, weight: {weight}}}, {{destination: {{host: {name}, subset: v2}}, weight: {rest}}}]}}]
---
"#,
            rest = 100 - weight
        ));
    }
    yaml
}

fn generation(number: u64, yaml: &str, previous: Option<&Generation>) -> Generation {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.yaml"), yaml).expect("write");
    let inputs = load_inputs(dir.path(), &mut LastGood::default());
    let index = Index::new(Settings::default(), Arc::new(inputs));
    Generation::new(number, index, Instant::now(), previous)
}

fn node() -> Node {
    Node {
        id: "p.shop".into(),
        namespace: "shop".into(),
        ..Node::default()
    }
}

fn changed_names(generation: &Generation) -> Vec<String> {
    let desired = generation.desired(&node());
    let delta = desired
        .scope
        .delta
        .as_ref()
        .expect("a delta from the previous generation");
    let mut names: Vec<String> = delta
        .changed
        .iter()
        .map(|r| format!("{:?}/{}", mesh_proto::convert::resource_type(r), r.name))
        .collect();
    names.sort();
    names
}

#[test]
fn an_unchanged_config_reuses_every_encoding_and_has_an_empty_delta() {
    let first = generation(1, &services(8080, 90), None);
    let before = first.desired(&node());
    let second = generation(2, &services(8080, 90), Some(&first));
    let after = second.desired(&node());
    assert_eq!(before.version, after.version);
    assert!(changed_names(&second).is_empty());
    for (key, resource) in after.scope.resources.iter() {
        let old = before.scope.resources.get(key).expect("same keys");
        assert!(Arc::ptr_eq(old, resource), "{key:?} was encoded again");
    }
}

#[test]
fn a_route_change_is_one_virtual_host_and_an_endpoint_change_one_endpoints_resource() {
    let first = generation(1, &services(8080, 90), None);
    first.desired(&node());
    let routes = generation(2, &services(8080, 80), Some(&first));
    // Every VirtualService changed weight: one virtual host per service, nothing else.
    assert_eq!(
        changed_names(&routes),
        [
            "VirtualHost/outbound/a.shop.svc.cluster.local:80",
            "VirtualHost/outbound/b.shop.svc.cluster.local:80",
            "VirtualHost/outbound/c.shop.svc.cluster.local:80",
        ]
    );
    let endpoints = generation(3, &services(9090, 80), Some(&routes));
    assert_eq!(
        changed_names(&endpoints),
        [
            "Endpoints/outbound|80||a.shop.svc.cluster.local",
            "Endpoints/outbound|80||b.shop.svc.cluster.local",
            "Endpoints/outbound|80||c.shop.svc.cluster.local",
        ]
    );
}

#[test]
fn a_proxy_holding_the_previous_scope_gets_the_delta_and_one_behind_gets_a_full_comparison() {
    let first = generation(1, &services(8080, 90), None);
    let one = first.desired(&node());
    let mut current = Held::default();
    let full = current.update_for(&one);
    assert_eq!(
        full.resources.len(),
        one.len(),
        "a new proxy gets everything"
    );
    current.acked(&one);

    let second = generation(2, &services(9090, 90), Some(&first));
    let two = second.desired(&node());
    let update = current.update_for(&two);
    assert_eq!(update.resources.len(), 3, "the three endpoints resources");
    assert!(update.removed.is_empty());
    current.acked(&two);
    assert!(current.update_for(&two).is_empty());

    // A proxy still on generation 1 (it NACKed 2) is compared resource by resource.
    let mut behind = Held::default();
    behind.acked(&one);
    let third = generation(3, &services(9090, 80), Some(&second));
    let three = third.desired(&node());
    let catch_up = behind.update_for(&three);
    let kinds: std::collections::BTreeSet<pb::ResourceType> = catch_up
        .resources
        .iter()
        .map(|r| mesh_proto::convert::resource_type(r))
        .collect();
    assert_eq!(
        kinds,
        [pb::ResourceType::VirtualHost, pb::ResourceType::Endpoints].into()
    );
    assert_eq!(catch_up.resources.len(), 6);
}

#[test]
fn a_proxys_own_resources_are_reused_until_the_security_config_changes() {
    let first = generation(1, &services(8080, 90), None);
    let mut cache = None;
    let one = first.desired_reusing(&node(), &mut cache);
    let second = generation(2, &services(9090, 90), Some(&first));
    let two = second.desired_reusing(&node(), &mut cache);
    for (key, resource) in &two.own {
        assert!(
            Arc::ptr_eq(resource, &one.own[key]),
            "{key:?} encoded again"
        );
    }
    let strict = format!(
        "{}\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: shop}}\nspec: {{mtls: {{mode: STRICT}}}}\n",
        services(9090, 90)
    );
    let third = generation(3, &strict, Some(&second));
    let three = third.desired_reusing(&node(), &mut cache);
    let inbound = (pb::ResourceType::InboundPolicy, "inbound".to_owned());
    assert_ne!(three.own[&inbound].version, two.own[&inbound].version);
    assert_eq!(
        three.own[&inbound].version,
        third.desired(&node()).own[&inbound].version
    );
}

#[test]
fn a_capture_mode_proxy_sees_a_new_virtual_ip_without_a_security_change() {
    let mut captured = node();
    captured.metadata.insert(
        crate::translate::INTERCEPTION_MODE.into(),
        "REDIRECT".into(),
    );
    captured
        .metadata
        .insert("ipAddresses".into(), "10.0.0.9".into());
    let vip_entry = |vip: &str| {
        format!(
            "{}apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: d, namespace: shop}}\nspec:\n  hosts: [d.shop.svc.cluster.local]\n  addresses: [{vip}]\n  resolution: STATIC\n  ports: [{{number: 80, name: http}}]\n  endpoints: [{{address: 10.0.0.2}}]\n",
            services(8080, 90)
        )
    };
    let first = generation(1, &vip_entry("10.96.0.1"), None);
    let mut cache = None;
    let one = first.desired_reusing(&captured, &mut cache);
    let vip_listener = |desired: &super::generation::Desired, vip: &str| {
        desired
            .own
            .keys()
            .any(|(kind, name)| *kind == pb::ResourceType::Listener && name.contains(vip))
    };
    assert!(vip_listener(&one, "10.96.0.1"), "{:?}", one.own.keys());
    let second = generation(2, &vip_entry("10.96.0.2"), Some(&first));
    let two = second.desired_reusing(&captured, &mut cache);
    assert!(vip_listener(&two, "10.96.0.2"), "{:?}", two.own.keys());
    assert!(!vip_listener(&two, "10.96.0.1"));
    // A proxy not in capture mode keeps its cached own resources.
    let mut plain_cache = None;
    let plain_one = first.desired_reusing(&node(), &mut plain_cache);
    let plain_two = second.desired_reusing(&node(), &mut plain_cache);
    for (key, resource) in &plain_two.own {
        assert!(
            Arc::ptr_eq(resource, &plain_one.own[key]),
            "{key:?} encoded again"
        );
    }
}
