//! Checks across objects: references, conflicts, duplicates.

use super::super::validate;
use super::*;

fn analyze(documents: &[String]) -> Vec<Diagnostic> {
    validate(&load(&documents.join("---\n")))
}

fn vs(namespace: &str, name: &str, spec: &str) -> String {
    document("VirtualService", namespace, name, spec)
}

fn dr(namespace: &str, name: &str, spec: &str) -> String {
    document("DestinationRule", namespace, name, spec)
}

/// A Kubernetes Service, which mesh skips but which defines a host.
fn service(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {{ports: [{{port: 9080}}]}}\n"
    )
}

fn gateway(namespace: &str, name: &str) -> String {
    document(
        "Gateway",
        namespace,
        name,
        "selector: {istio: ingressgateway}\nservers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]",
    )
}

const SUBSETS: &str =
    "subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]";

fn to(destination: &str) -> String {
    format!("hosts: [reviews]\nhttp: [{{route: [{{destination: {destination}}}]}}]")
}

#[test]
fn a_referenced_subset_must_exist() {
    let found = analyze(&[
        service("default", "reviews"),
        dr(
            "default",
            "reviews",
            &format!("host: reviews.default.svc.cluster.local\n{SUBSETS}"),
        ),
        vs("default", "reviews", &to("{host: reviews, subset: v3}")),
    ]);
    assert_error(
        &found,
        "spec.http[0].route[0].destination.subset",
        "referenced subset \"v3\" not found in any DestinationRule for host reviews; its DestinationRules define v1, v2",
    );
}

#[test]
fn short_names_resolve_in_their_own_namespace() {
    assert_clean(&analyze(&[
        service("default", "reviews"),
        dr("default", "reviews", &format!("host: reviews\n{SUBSETS}")),
        vs(
            "default",
            "reviews",
            &to("{host: reviews.default.svc.cluster.local, subset: v1}"),
        ),
    ]));
    // `reviews` in prod is another service than `reviews` in default.
    let found = analyze(&[
        service("default", "reviews"),
        dr("prod", "reviews", &format!("host: reviews\n{SUBSETS}")),
        vs("default", "reviews", &to("{host: reviews, subset: v1}")),
    ]);
    assert_error(
        &found,
        "spec.http[0].route[0].destination.subset",
        "add a DestinationRule for reviews.default.svc.cluster.local with subset \"v1\"",
    );
}

#[test]
fn a_wildcard_destination_rule_covers_its_hosts() {
    let entry = document(
        "ServiceEntry",
        "default",
        "api",
        "hosts: [api.example.com]\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]",
    );
    assert_clean(&analyze(&[
        entry,
        dr(
            "default",
            "all",
            &format!("host: '*.example.com'\n{SUBSETS}"),
        ),
        vs(
            "default",
            "api",
            "hosts: [api.example.com]\nhttp: [{route: [{destination: {host: api.example.com, subset: v2}}]}]",
        ),
    ]));
}

#[test]
fn mirrors_and_tcp_routes_name_subsets_too() {
    let found = analyze(&[
        service("default", "reviews"),
        dr("default", "reviews", &format!("host: reviews\n{SUBSETS}")),
        vs(
            "default",
            "reviews",
            "hosts: [reviews]\nhttp: [{route: [{destination: {host: reviews}}], mirror: {host: reviews, subset: shadow}}]",
        ),
        vs(
            "default",
            "mirrors",
            "hosts: [reviews-b]\nhttp: [{route: [{destination: {host: reviews}}], mirrors: [{destination: {host: reviews, subset: v9}}]}]",
        ),
        vs(
            "default",
            "tcp",
            "hosts: [reviews-c]\ntcp: [{route: [{destination: {host: reviews, subset: v8}}]}]",
        ),
    ]);
    assert_eq!(found.len(), 3, "{}", lines(&found));
    assert_has(
        &found,
        Severity::Error,
        "spec.http[0].mirror.subset",
        "referenced subset \"shadow\" not found",
    );
    assert_has(
        &found,
        Severity::Error,
        "spec.http[0].mirrors[0].destination.subset",
        "referenced subset \"v9\" not found",
    );
    assert_has(
        &found,
        Severity::Error,
        "spec.tcp[0].route[0].destination.subset",
        "referenced subset \"v8\" not found",
    );
}

#[test]
fn an_unknown_host_is_a_warning_once_per_virtual_service() {
    let found = analyze(&[vs(
        "default",
        "ratings",
        "hosts: [ratings]\nhttp:\n- match: [{uri: {prefix: /a}}]\n  route: [{destination: {host: ratings}}]\n- route: [{destination: {host: ratings}}]",
    )]);
    assert_warning(
        &found,
        "spec.http[0].route[0].destination.host",
        "referenced host \"ratings\" (ratings.default.svc.cluster.local) not found in any ServiceEntry or Kubernetes Service",
    );
}

#[test]
fn hosts_are_known_from_service_entries_and_services() {
    let route = vs(
        "default",
        "ratings",
        "hosts: [ratings]\nhttp: [{route: [{destination: {host: ratings}}]}]",
    );
    assert_clean(&analyze(&[service("default", "ratings"), route.clone()]));
    let short = document(
        "ServiceEntry",
        "default",
        "ratings",
        "hosts: [ratings]\nresolution: STATIC\nendpoints: [{address: 127.0.0.1}]\nports: [{number: 9080, name: http, protocol: HTTP}]",
    );
    assert_clean(&analyze(&[short, route.clone()]));
    let wildcard = document(
        "ServiceEntry",
        "default",
        "cluster",
        "hosts: ['*.svc.cluster.local']\nports: [{number: 9080, name: http, protocol: HTTP}]",
    );
    assert_clean(&analyze(&[wildcard, route.clone()]));
    // A Service in another namespace is another host.
    assert_eq!(analyze(&[service("prod", "ratings"), route]).len(), 1);
}

#[test]
fn a_bound_gateway_must_exist() {
    let bound = |gateways: &str| {
        vs(
            "default",
            "site",
            &format!(
                "hosts: [site.example.com]\ngateways: {gateways}\nhttp: [{{route: [{{destination: {{host: site}}}}]}}]"
            ),
        )
    };
    let site = service("default", "site");
    assert_clean(&analyze(&[
        site.clone(),
        gateway("default", "edge"),
        bound("[edge]"),
    ]));
    assert_clean(&analyze(&[
        site.clone(),
        gateway("istio-system", "edge"),
        bound("[istio-system/edge, mesh]"),
    ]));
    assert_error(
        &analyze(&[
            site.clone(),
            gateway("istio-system", "edge"),
            bound("[edge]"),
        ]),
        "spec.gateways[0]",
        "referenced gateway \"default/edge\" not found; define a Gateway named edge in namespace default",
    );
    let legacy = analyze(&[
        site.clone(),
        gateway("istio-system", "edge"),
        bound("[edge.istio-system.svc.cluster.local]"),
    ]);
    assert_warning(&legacy, "spec.gateways[0]", "legacy FQDN form");
    let in_match = vs(
        "default",
        "site",
        "hosts: [site.example.com]\ngateways: [edge]\nhttp: [{match: [{gateways: [internal]}], route: [{destination: {host: site}}]}]",
    );
    assert_error(
        &analyze(&[site, gateway("default", "edge"), in_match]),
        "spec.http[0].match[0].gateways[0]",
        "referenced gateway \"default/internal\" not found",
    );
}

#[test]
fn two_virtual_services_for_one_host_on_the_mesh_conflict() {
    let found = analyze(&[
        service("default", "reviews"),
        vs("default", "reviews-a", &to("{host: reviews}")),
        vs("default", "reviews-b", &to("{host: reviews}")),
    ]);
    assert_error(
        &found,
        "spec.hosts[0]",
        "host reviews.default.svc.cluster.local is also routed for the mesh by VirtualService default/reviews-a (test.yaml[1]); sidecars would use only one of them",
    );
    assert_eq!(found[0].origin.name, "reviews-b");
    // The same host written as an FQDN from another namespace.
    let found = analyze(&[
        service("default", "reviews"),
        vs("default", "reviews-a", &to("{host: reviews}")),
        vs(
            "prod",
            "reviews-b",
            "hosts: [reviews.default.svc.cluster.local]\nhttp: [{route: [{destination: {host: reviews.default.svc.cluster.local}}]}]",
        ),
    ]);
    assert_error(
        &found,
        "spec.hosts[0]",
        "is also routed for the mesh by VirtualService default/reviews-a",
    );
    // Visible in their own namespaces only: no namespace sees both.
    assert_clean(&analyze(&[
        service("default", "reviews"),
        vs(
            "default",
            "reviews-a",
            &format!("{}\nexportTo: ['.']", to("{host: reviews}")),
        ),
        vs(
            "prod",
            "reviews-b",
            "hosts: [reviews.default.svc.cluster.local]\nexportTo: ['.']\nhttp: [{route: [{destination: {host: reviews.default.svc.cluster.local}}]}]",
        ),
    ]));
}

#[test]
fn two_virtual_services_for_one_host_on_a_gateway_are_a_warning() {
    let on = |name: &str, gateway: &str| {
        vs(
            "default",
            name,
            &format!(
                "hosts: [site.example.com]\ngateways: [{gateway}]\nhttp: [{{route: [{{destination: {{host: site}}}}]}}]"
            ),
        )
    };
    let found = analyze(&[
        service("default", "site"),
        gateway("default", "edge"),
        on("a", "edge"),
        on("b", "edge"),
    ]);
    assert_warning(
        &found,
        "spec.hosts[0]",
        "host site.example.com is also routed on gateway default/edge by VirtualService default/a",
    );
    assert_clean(&analyze(&[
        service("default", "site"),
        gateway("default", "edge"),
        gateway("default", "internal"),
        on("a", "edge"),
        on("b", "internal"),
    ]));
}

#[test]
fn two_destination_rules_for_one_host_in_a_namespace() {
    let found = analyze(&[
        dr("default", "a", "host: reviews"),
        dr("default", "b", "host: reviews.default.svc.cluster.local"),
    ]);
    assert_warning(
        &found,
        "spec.host",
        "host reviews.default.svc.cluster.local already has a DestinationRule in namespace default: DestinationRule default/a (test.yaml[0])",
    );
    assert_clean(&analyze(&[
        dr("default", "a", "host: reviews.default.svc.cluster.local"),
        dr("prod", "b", "host: reviews.default.svc.cluster.local"),
    ]));
}

#[test]
fn one_namespace_wide_sidecar_per_namespace() {
    let sidecar =
        |namespace: &str, name: &str, spec: &str| document("Sidecar", namespace, name, spec);
    let found = analyze(&[
        sidecar("default", "a", "egress: [{hosts: ['./*']}]"),
        sidecar("default", "b", "egress: [{hosts: ['istio-system/*']}]"),
        sidecar(
            "default",
            "c",
            "workloadSelector: {labels: {app: x}}\negress: [{hosts: ['./*']}]",
        ),
        sidecar("prod", "d", "egress: [{hosts: ['./*']}]"),
    ]);
    assert_error(
        &found,
        "spec",
        "namespace default already has a Sidecar without workloadSelector: Sidecar default/a (test.yaml[0])",
    );
}

#[test]
fn an_object_defined_twice() {
    let found = analyze(&[
        service("default", "reviews"),
        vs("default", "reviews", &to("{host: reviews}")),
        vs("default", "reviews", &to("{host: reviews}")),
    ]);
    assert_error(
        &found,
        "metadata.name",
        "VirtualService default/reviews is also defined at test.yaml[1]; applying both keeps only the last",
    );
}
