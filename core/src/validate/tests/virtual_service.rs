//! VirtualService: hosts, gateways, weights, destinations, TLS and TCP routes.

use super::*;

fn vs(spec: &str) -> Vec<Diagnostic> {
    check("VirtualService", spec)
}

#[test]
fn a_complete_virtual_service_is_clean() {
    assert_clean(&vs(r#"
        hosts: [reviews, reviews.prod.svc.cluster.local]
        exportTo: [".", istio-system]
        http:
        - match:
          - headers: {end-user: {exact: jason}}
          route:
          - destination: {host: reviews, subset: v2, port: {number: 9080}}
            weight: 25
          - destination: {host: reviews, subset: v1}
            weight: 75
        - route:
          - destination: {host: reviews}
          - destination: {host: reviews-canary}
        tcp:
        - match: [{port: 27017, destinationSubnets: [10.0.0.0/8]}]
          route:
          - destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}
    "#));
}

#[test]
fn weights_must_add_up_to_100() {
    let found = vs(r#"
        hosts: [reviews]
        http:
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 60
          - destination: {host: reviews, subset: v2}
            weight: 60
    "#);
    assert_error(
        &found,
        "spec.http[0].route",
        "total destination weight 120 != 100",
    );
    // Weights on some destinations only: the missing ones count as 0.
    let found = vs(r#"
        hosts: [reviews]
        http:
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 50
          - destination: {host: reviews, subset: v2}
    "#);
    assert_error(
        &found,
        "spec.http[0].route",
        "total destination weight 50 != 100",
    );
    assert_clean(&vs(r#"
        hosts: [reviews]
        http:
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 100
          - destination: {host: reviews, subset: v2}
    "#));
}

#[test]
fn a_weight_above_100_is_an_error_even_alone() {
    let found = vs(r#"
        hosts: [reviews]
        http:
        - route:
          - destination: {host: reviews}
            weight: 120
    "#);
    assert_error(
        &found,
        "spec.http[0].route[0].weight",
        "weight 120 is more than 100",
    );
}

#[test]
fn tcp_and_tls_weights_are_checked_too() {
    let found = vs(r#"
        hosts: [mongo]
        tcp:
        - route:
          - destination: {host: mongo, subset: a}
            weight: 30
          - destination: {host: mongo, subset: b}
            weight: 30
    "#);
    assert_error(
        &found,
        "spec.tcp[0].route",
        "total destination weight 60 != 100",
    );
    let found = vs(r#"
        hosts: ["*.example.com"]
        gateways: [edge]
        tls:
        - match: [{sniHosts: [a.example.com]}]
          route:
          - destination: {host: a.example.com}
            weight: 10
          - destination: {host: b.example.com}
            weight: 10
    "#);
    assert_error(
        &found,
        "spec.tls[0].route",
        "total destination weight 20 != 100",
    );
}

#[test]
fn hosts_are_required_and_well_formed() {
    assert_error(
        &vs("http: [{route: [{destination: {host: r}}]}]"),
        "spec.hosts",
        "hosts must not be empty",
    );
    let cases = [
        ("reviews:9080", "must not include a port"),
        ("foo.*.com", "wildcard out of place"),
        ("example.com/api", "must not include a path"),
        ("re views", "contains whitespace"),
        ("''", "must not be empty"),
    ];
    for (host, message) in cases {
        let found = vs(&format!(
            "hosts: [{host}]\nhttp: [{{route: [{{destination: {{host: r}}}}]}}]"
        ));
        assert_error(&found, "spec.hosts[0]", message);
    }
    assert_clean(&vs(
        "hosts: [10.0.0.1]\nhttp: [{route: [{destination: {host: r}}]}]",
    ));
}

#[test]
fn the_wildcard_host_needs_a_gateway() {
    let found = vs(r#"
        hosts: ["*"]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(
        &found,
        "spec.hosts[0]",
        "wildcard host * is allowed only for VirtualServices bound to gateways",
    );
    let found = vs(r#"
        hosts: ["*"]
        gateways: [edge, mesh]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(&found, "spec.hosts[0]", "bound to gateways (not mesh)");
    assert_clean(&vs(r#"
        hosts: ["*"]
        gateways: [istio-system/edge]
        http: [{route: [{destination: {host: r}}]}]
    "#));
}

#[test]
fn overlapping_hosts_in_one_virtual_service() {
    let found = vs(r#"
        hosts: ["*.example.com", api.example.com]
        gateways: [edge]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(&found, "spec.hosts[1]", "overlaps host \"*.example.com\"");
}

#[test]
fn some_route_is_required() {
    assert_error(
        &vs("hosts: [reviews]"),
        "spec",
        "http, tcp or tls routes are required",
    );
}

#[test]
fn gateway_names() {
    let found = vs(r#"
        hosts: [reviews]
        gateways: [Bad_Name, prod/edge, mesh]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(
        &found,
        "spec.gateways[0]",
        "gateway \"Bad_Name\" is invalid",
    );
    let found = vs(r#"
        hosts: [reviews]
        gateways: [edge/Bad]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(&found, "spec.gateways[0]", "write namespace/name");
    let found = vs(r#"
        hosts: [reviews]
        gateways: [edge.istio-system.svc.cluster.local]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_warning(&found, "spec.gateways[0]", "write it as istio-system/edge");
}

#[test]
fn destinations_name_one_service() {
    let route = |destination: &str| {
        vs(&format!(
            "hosts: [r]\nhttp: [{{route: [{{destination: {destination}}}]}}]"
        ))
    };
    assert_error(
        &route("{host: '*.example.com'}"),
        "spec.http[0].route[0].destination.host",
        "is a wildcard; a destination must name one service",
    );
    assert_error(
        &route("{host: '*'}"),
        "spec.http[0].route[0].destination.host",
        "is a wildcard",
    );
    assert_error(
        &route("{host: 'r:80'}"),
        "spec.http[0].route[0].destination.host",
        "must not include a port",
    );
    assert_error(
        &route("{host: r, subset: v_1}"),
        "spec.http[0].route[0].destination.subset",
        "subset name \"v_1\" is invalid",
    );
    assert_error(
        &route("{host: r, port: {number: 0}}"),
        "spec.http[0].route[0].destination.port.number",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &route("{host: r, port: {number: 65536}}"),
        "spec.http[0].route[0].destination.port.number",
        "port 65536 is not in 1..65535",
    );
}

#[test]
fn tls_routes_match_sni_hosts_of_the_virtual_service() {
    let tls = |route: &str| {
        vs(&format!(
            "hosts: ['*.example.com']\ngateways: [edge]\ntls:\n- {route}"
        ))
    };
    assert_clean(&tls(
        "{match: [{sniHosts: [a.example.com], port: 443}], route: [{destination: {host: a.example.com}}]}",
    ));
    assert_error(
        &tls("{route: [{destination: {host: a.example.com}}]}"),
        "spec.tls[0]",
        "a TLS route needs at least one match with sniHosts",
    );
    assert_error(
        &tls("{match: [{port: 443}], route: [{destination: {host: a.example.com}}]}"),
        "spec.tls[0].match[0].sniHosts",
        "sniHosts must not be empty",
    );
    assert_error(
        &tls("{match: [{sniHosts: [other.com]}], route: [{destination: {host: a.example.com}}]}"),
        "spec.tls[0].match[0].sniHosts[0]",
        "SNI host \"other.com\" is not covered by any host of this VirtualService",
    );
    assert_warning(
        &tls("{match: [{sniHosts: [10.0.0.1]}], route: [{destination: {host: a.example.com}}]}"),
        "spec.tls[0].match[0].sniHosts[0]",
        "is an IP address",
    );
    assert_error(
        &tls("{match: [{sniHosts: [a.example.com]}], route: []}"),
        "spec.tls[0].route",
        "a TLS route needs at least one destination",
    );
}

#[test]
fn tcp_routes_and_matches() {
    let tcp = |route: &str| vs(&format!("hosts: [mongo]\ntcp:\n- {route}"));
    assert_error(
        &tcp("{route: []}"),
        "spec.tcp[0].route",
        "a TCP route needs at least one destination",
    );
    assert_error(
        &tcp(
            "{match: [{destinationSubnets: [10.0.0.0/40]}], route: [{destination: {host: mongo}}]}",
        ),
        "spec.tcp[0].match[0].destinationSubnets[0]",
        "is not an IP address or CIDR block",
    );
    assert_error(
        &tcp("{match: [{port: 70000}], route: [{destination: {host: mongo}}]}"),
        "spec.tcp[0].match[0].port",
        "port 70000 is not in 1..65535",
    );
    assert_error(
        &tcp("{match: [{sourceNamespace: Prod}], route: [{destination: {host: mongo}}]}"),
        "spec.tcp[0].match[0].sourceNamespace",
        "sourceNamespace \"Prod\" is not a valid namespace name",
    );
    assert_error(
        &tcp("{match: [{sourceLabels: {'bad key': x}}], route: [{destination: {host: mongo}}]}"),
        "spec.tcp[0].match[0].sourceLabels[bad key]",
        "label key \"bad key\" is invalid",
    );
}

#[test]
fn routes_after_a_catch_all_are_unreachable() {
    let found = vs(r#"
        hosts: [reviews]
        http:
        - route: [{destination: {host: reviews, subset: v1}}]
        - match: [{uri: {prefix: /api}}]
          route: [{destination: {host: reviews, subset: v2}}]
    "#);
    assert_warning(
        &found,
        "spec.http[1]",
        "this route is never used: route http[0] before it has no match",
    );
}

#[test]
fn export_to() {
    let found = vs(r#"
        hosts: [reviews]
        exportTo: ["*", "."]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(
        &found,
        "spec.exportTo[0]",
        "exportTo \"*\" cannot be combined with other entries",
    );
    let found = vs(r#"
        hosts: [reviews]
        exportTo: [".", default]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(
        &found,
        "spec.exportTo[1]",
        "is a duplicate ('.' is namespace default)",
    );
    let found = vs(r#"
        hosts: [reviews]
        exportTo: ["~"]
        http: [{route: [{destination: {host: r}}]}]
    "#);
    assert_error(
        &found,
        "spec.exportTo[0]",
        "exportTo entry \"~\" is invalid; use '.', '*' or a namespace name",
    );
}
