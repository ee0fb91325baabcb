//! Object names and namespaces, for every kind.

use super::*;

fn named(kind: &str, namespace: &str, name: &str, spec: &str) -> Vec<Diagnostic> {
    let set = load(&document(kind, namespace, name, spec));
    validate_object(&set.objects[0])
}

#[test]
fn names_are_dns_subdomains() {
    assert_clean(&named(
        "DestinationRule",
        "prod",
        "reviews.v1",
        "host: reviews",
    ));
    assert_error(
        &named("DestinationRule", "default", "Reviews", "host: reviews"),
        "metadata.name",
        "name \"Reviews\" is not a valid DNS-1123 subdomain",
    );
    assert_error(
        &named("DestinationRule", "default", "''", "host: reviews"),
        "metadata.name",
        "name is required",
    );
    assert_error(
        &named("DestinationRule", "Prod_1", "reviews", "host: reviews"),
        "metadata.namespace",
        "namespace \"Prod_1\" is invalid",
    );
}

#[test]
fn gateway_names_are_dns_labels() {
    let spec = "selector: {istio: ingressgateway}\nservers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]";
    assert_clean(&named("Gateway", "default", "edge", spec));
    assert_error(
        &named("Gateway", "default", "edge.v1", spec),
        "metadata.name",
        "a Gateway name must be a DNS label (no dots)",
    );
}
