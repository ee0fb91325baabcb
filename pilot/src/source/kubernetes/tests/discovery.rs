//! Which (group, version, kind) to watch, given what API discovery reports.

use mesh_core::config::Kind;

use super::api_resource;
use crate::source::kubernetes::{ServedGroup, choose_resources, config_groups};

const NETWORKING: [(Kind, &str); 6] = [
    (Kind::VirtualService, "virtualservices"),
    (Kind::DestinationRule, "destinationrules"),
    (Kind::Gateway, "gateways"),
    (Kind::ServiceEntry, "serviceentries"),
    (Kind::WorkloadEntry, "workloadentries"),
    (Kind::Sidecar, "sidecars"),
];

const SECURITY: [(Kind, &str); 3] = [
    (Kind::PeerAuthentication, "peerauthentications"),
    (Kind::AuthorizationPolicy, "authorizationpolicies"),
    (Kind::RequestAuthentication, "requestauthentications"),
];

const TELEMETRY: [(Kind, &str); 1] = [(Kind::Telemetry, "telemetries")];

/// A group serving `kinds` at every one of `versions`.
fn group(name: &str, preferred: &str, versions: &[&str], kinds: &[(Kind, &str)]) -> ServedGroup {
    let resources = versions
        .iter()
        .flat_map(|version| {
            kinds.iter().map(move |(kind, plural)| {
                api_resource(&format!("{name}/{version}"), *kind, plural)
            })
        })
        .collect();
    ServedGroup {
        name: name.to_owned(),
        preferred: Some(preferred.to_owned()),
        resources,
    }
}

/// `apiVersion kind` of each chosen resource.
fn chosen(groups: &[ServedGroup]) -> Vec<String> {
    choose_resources(groups)
        .iter()
        .map(|c| format!("{} {}", c.resource.api_version, c.kind))
        .collect()
}

#[test]
fn the_config_groups_are_meshs_and_istios() {
    let mut groups = config_groups();
    groups.sort_unstable();
    assert_eq!(
        groups,
        [
            "networking.istio.io",
            "networking.mesh.io",
            "security.istio.io",
            "security.mesh.io",
            "telemetry.istio.io",
            "telemetry.mesh.io"
        ]
    );
}

#[test]
fn one_version_per_group_and_kind_the_preferred_one() {
    let istio = [
        group(
            "networking.istio.io",
            "v1",
            &["v1alpha3", "v1beta1", "v1"],
            &NETWORKING,
        ),
        group(
            "security.istio.io",
            "v1beta1",
            &["v1beta1", "v1"],
            &SECURITY,
        ),
        group(
            "telemetry.istio.io",
            "v1alpha1",
            &["v1alpha1", "v1"],
            &TELEMETRY,
        ),
    ];
    let chosen = chosen(&istio);
    assert_eq!(chosen.len(), 10, "{chosen:#?}");
    assert!(chosen.contains(&"telemetry.istio.io/v1alpha1 Telemetry".to_owned()));
    assert!(chosen.contains(&"networking.istio.io/v1 VirtualService".to_owned()));
    assert!(chosen.contains(&"networking.istio.io/v1 Sidecar".to_owned()));
    // The API server's preference wins even when a more stable version is served.
    assert!(chosen.contains(&"security.istio.io/v1beta1 AuthorizationPolicy".to_owned()));
    assert!(!chosen.iter().any(|c| c.contains("v1alpha3")));
}

#[test]
fn mesh_and_istio_groups_are_watched_side_by_side() {
    let groups = [
        group("networking.mesh.io", "v1", &["v1"], &NETWORKING[..2]),
        group(
            "networking.istio.io",
            "v1beta1",
            &["v1alpha3", "v1beta1"],
            &NETWORKING[..1],
        ),
    ];
    assert_eq!(
        chosen(&groups),
        [
            "networking.istio.io/v1beta1 VirtualService",
            "networking.mesh.io/v1 VirtualService",
            "networking.mesh.io/v1 DestinationRule",
        ]
    );
}

#[test]
fn without_a_usable_preferred_version_the_most_stable_accepted_one_is_chosen() {
    // A future Istio preferring a version mesh does not accept yet.
    let future = group(
        "networking.istio.io",
        "v2",
        &["v1alpha3", "v1", "v2"],
        &NETWORKING[..1],
    );
    assert_eq!(chosen(&[future]), ["networking.istio.io/v1 VirtualService"]);

    // A kind the preferred version does not serve (an old CRD left at v1alpha3).
    let mut mixed = group(
        "networking.istio.io",
        "v1beta1",
        &["v1beta1"],
        &NETWORKING[..1],
    );
    let old = group(
        "networking.istio.io",
        "v1beta1",
        &["v1alpha3"],
        &NETWORKING[4..5],
    );
    mixed.resources.extend(old.resources);
    assert_eq!(
        chosen(&[mixed]),
        [
            "networking.istio.io/v1beta1 VirtualService",
            "networking.istio.io/v1alpha3 WorkloadEntry",
        ]
    );
}

#[test]
fn other_groups_kinds_and_versions_are_ignored() {
    let apps = group("apps", "v1", &["v1"], &[(Kind::Gateway, "deployments")]);
    // EnvoyFilter is served by Istio but not something mesh reads; a security kind served
    // under the networking group is not one mesh accepts there.
    let mut istio = group("networking.istio.io", "v1alpha3", &["v1alpha3"], &[]);
    istio.resources.push(kube::api::ApiResource {
        kind: "EnvoyFilter".to_owned(),
        ..api_resource(
            "networking.istio.io/v1alpha3",
            Kind::Gateway,
            "envoyfilters",
        )
    });
    istio.resources.push(api_resource(
        "networking.istio.io/v1alpha3",
        Kind::PeerAuthentication,
        "peerauthentications",
    ));
    let unaccepted = group("security.istio.io", "v1alpha1", &["v1alpha1"], &SECURITY);
    assert!(chosen(&[apps, istio, unaccepted]).is_empty());
    assert!(chosen(&[]).is_empty(), "a cluster without any config CRD");
}
