#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use mesh_core::config::{ConfigObject, Kind};
use mesh_core::load::load_str;
use mesh_core::validate::validate;

use super::*;

const SHAPE: Shape = Shape {
    services: 25,
    endpoints: 4,
    namespaces: 3,
};

#[test]
fn a_service_file_holds_its_entry_rule_and_routes_and_validates() {
    let set = load_str(&SHAPE.service_yaml(7, Variant::default()), "svc-7.yaml");
    assert!(!set.has_errors(), "{:?}", set.diagnostics);
    let errors: Vec<_> = validate(&set)
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let kinds: Vec<Kind> = set.objects.iter().map(|o| o.object.kind()).collect();
    assert_eq!(
        kinds,
        [
            Kind::ServiceEntry,
            Kind::DestinationRule,
            Kind::VirtualService
        ]
    );
    let ConfigObject::ServiceEntry(se) = &set.objects[0].object else {
        panic!("not a ServiceEntry");
    };
    assert_eq!(se.metadata.namespace, "ns-1");
    assert_eq!(se.spec.hosts, ["svc-7.ns-1.svc.cluster.local"]);
    assert_eq!(se.spec.endpoints.len(), 4);
    assert_eq!(se.spec.ports[0].number, u32::from(PORT));
}

#[test]
fn services_spread_over_the_namespaces() {
    let namespaces: HashSet<String> = (0..SHAPE.services).map(|s| SHAPE.namespace(s)).collect();
    assert_eq!(namespaces.len(), 3);
    assert_eq!(SHAPE.host(4), "svc-4.ns-1.svc.cluster.local");
}

#[test]
fn every_endpoint_address_is_distinct_also_after_moves() {
    let mut seen = HashSet::new();
    for service in 0..2000 {
        for endpoint in 0..10 {
            assert!(seen.insert(endpoint_address(10, service, endpoint, 0)));
        }
        for moves in 1..4 {
            assert!(seen.insert(endpoint_address(10, service, 0, moves)));
        }
    }
    assert_eq!(endpoint_address(10, 0, 0, 0).to_string(), "10.0.0.1");
}

#[test]
fn weights_add_up_to_100_and_each_shift_differs() {
    let splits: HashSet<(u32, u32)> = (0..=80).map(weights).collect();
    assert_eq!(splits.len(), 81);
    assert!(splits.iter().all(|(a, b)| a + b == 100));
    assert_eq!(weights(0), (90, 10));
}

#[test]
fn a_change_rewrites_one_file_and_names_the_resource_it_should_send() {
    let temp = tempfile::tempdir().unwrap();
    let (mut dir, bytes) = ConfigDir::generate(temp.path(), SHAPE).unwrap();
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 25);
    assert!(bytes > 25 * 500, "{bytes}");

    let key = dir.move_endpoint(3).unwrap();
    assert_eq!(
        key,
        (
            ResourceType::Endpoints as i32,
            "outbound|8080||svc-3.ns-0.svc.cluster.local".to_owned()
        )
    );
    let text = std::fs::read_to_string(temp.path().join("svc-00003.yaml")).unwrap();
    assert!(text.contains(&endpoint_address(4, 3, 0, 1).to_string()));
    assert!(!text.contains("address: 10.0.0.13,"), "{text}");

    let key = dir.change_route(3).unwrap();
    assert_eq!(key.1, "outbound/svc-3.ns-0.svc.cluster.local:8080");
    let text = std::fs::read_to_string(temp.path().join("svc-00003.yaml")).unwrap();
    assert!(text.contains("weight: 89"), "{text}");
    // The route edit keeps the endpoint move.
    assert!(text.contains(&endpoint_address(4, 3, 0, 1).to_string()));
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 25);
}
