//! ServiceEntry and WorkloadEntry.

use super::*;

fn se(spec: &str) -> Vec<Diagnostic> {
    check("ServiceEntry", spec)
}

fn we(spec: &str) -> Vec<Diagnostic> {
    check("WorkloadEntry", spec)
}

const PORTS: &str = "ports: [{number: 443, name: https, protocol: TLS}]";

#[test]
fn complete_service_entries_are_clean() {
    assert_clean(&se(r#"
        hosts: [api.example.com]
        location: MESH_EXTERNAL
        resolution: DNS
        ports: [{number: 443, name: https, protocol: TLS}, {number: 80, name: http, protocol: HTTP, targetPort: 8080}]
    "#));
    assert_clean(&se(r#"
        hosts: [reviews.default.svc.cluster.local]
        addresses: [240.0.0.1]
        location: MESH_INTERNAL
        resolution: STATIC
        ports: [{number: 9080, name: http, protocol: HTTP}]
        endpoints:
        - {address: 127.0.0.1, ports: {http: 9081}, labels: {version: v1}}
        - {address: "unix:///var/run/reviews.sock", labels: {version: v2}}
    "#));
    assert_clean(&se(&format!(
        "hosts: ['*.example.com']\nresolution: NONE\naddresses: [10.0.0.0/8]\nexportTo: ['~']\n{PORTS}"
    )));
}

#[test]
fn hosts() {
    assert_error(
        &se(&format!("resolution: DNS\n{PORTS}")),
        "spec.hosts",
        "a ServiceEntry needs at least one host",
    );
    assert_error(
        &se(&format!("hosts: ['*']\n{PORTS}")),
        "spec.hosts[0]",
        "host * is not allowed in a ServiceEntry",
    );
    assert_error(
        &se(&format!("hosts: ['api.example.com:443']\n{PORTS}")),
        "spec.hosts[0]",
        "must not include a port",
    );
    assert_warning(
        &se(&format!("hosts: ['*api.example.com']\n{PORTS}")),
        "spec.hosts[0]",
        "partial wildcard",
    );
}

#[test]
fn addresses_are_ips_or_cidrs() {
    assert_error(
        &se(&format!("hosts: [a.com]\naddresses: [a.com]\n{PORTS}")),
        "spec.addresses[0]",
        "\"a.com\" is not an IP address or CIDR block",
    );
    assert_error(
        &se(&format!(
            "hosts: [a.com]\naddresses: [10.0.0.0/8]\nresolution: DNS\n{PORTS}"
        )),
        "spec.addresses[0]",
        "CIDR address 10.0.0.0/8 needs resolution NONE or STATIC",
    );
}

#[test]
fn ports_are_unique_and_named() {
    let ports = |p: &str| se(&format!("hosts: [a.com]\nports: {p}"));
    assert_error(
        &ports("[{number: 80, name: a, protocol: HTTP}, {number: 80, name: b, protocol: HTTP}]"),
        "spec.ports[1].number",
        "port 80 is already defined by ports[0]",
    );
    assert_error(
        &ports("[{number: 80, name: a, protocol: HTTP}, {number: 81, name: a, protocol: HTTP}]"),
        "spec.ports[1].name",
        "port name \"a\" is already defined by ports[0]",
    );
    assert_error(
        &ports("[{number: 80, protocol: HTTP}]"),
        "spec.ports[0].name",
        "port name is required",
    );
    assert_error(
        &ports("[{number: 80, name: web_1, protocol: HTTP}]"),
        "spec.ports[0].name",
        "port name \"web_1\" is invalid",
    );
    assert_error(
        &ports("[{number: 80, name: a, protocol: QUIC}]"),
        "spec.ports[0].protocol",
        "protocol \"QUIC\" is not supported",
    );
    assert_error(
        &ports("[{number: 99999, name: a, protocol: HTTP}]"),
        "spec.ports[0].number",
        "port 99999 is not in 1..65535",
    );
    assert_error(
        &se("hosts: [a.com]\nresolution: DNS\nports: [{number: 80, name: a, targetPort: 0}]"),
        "spec.ports[0].targetPort",
        "port 0 is not in 1..65535",
    );
    assert_warning(
        &se(
            "hosts: [a.com]\nresolution: NONE\nports: [{number: 80, name: a, protocol: HTTP, targetPort: 8080}]",
        ),
        "spec.ports[0].targetPort",
        "targetPort has no effect with resolution NONE",
    );
    assert_error(
        &se(
            "hosts: [a.com, b.com]\nresolution: DNS\nports: [{number: 5432, name: pg, protocol: TCP}]",
        ),
        "spec.ports[0].protocol",
        "with several hosts, a TCP port cannot tell them apart",
    );
}

#[test]
fn resolution_rules() {
    assert_error(
        &se(&format!(
            "hosts: [a.com]\nresolution: NONE\nendpoints: [{{address: 10.0.0.1}}]\n{PORTS}"
        )),
        "spec.endpoints",
        "resolution NONE forwards to the address the caller used",
    );
    assert_error(
        &se(&format!("hosts: [a.com]\nresolution: STATIC\n{PORTS}")),
        "spec.resolution",
        "resolution STATIC needs endpoints or a workloadSelector",
    );
    assert_error(
        &se(&format!(
            "hosts: [a.com]\nresolution: STATIC\nendpoints: [{{address: db.example.com}}]\n{PORTS}"
        )),
        "spec.endpoints[0].address",
        "must be an IP address with resolution STATIC",
    );
    assert_error(
        &se(&format!(
            "hosts: ['*.example.com']\nresolution: DNS\n{PORTS}"
        )),
        "spec.hosts[0]",
        "resolution DNS cannot resolve the wildcard host \"*.example.com\"",
    );
    assert_clean(&se(&format!(
        "hosts: ['*.example.com']\nresolution: DNS\nendpoints: [{{address: proxy.example.com}}]\n{PORTS}"
    )));
    assert_error(
        &se(&format!(
            "hosts: [a.com]\nresolution: DNS_ROUND_ROBIN\nendpoints: [{{address: a.com}}, {{address: b.com}}]\n{PORTS}"
        )),
        "spec.endpoints",
        "resolution DNS_ROUND_ROBIN allows at most one endpoint",
    );
    assert_warning(
        &se(&format!(
            "hosts: [a.com]\nresolution: DNS\nworkloadSelector: {{labels: {{app: a}}}}\n{PORTS}"
        )),
        "spec.workloadSelector",
        "workloadSelector has no effect with resolution DNS",
    );
}

#[test]
fn endpoints_or_a_selector() {
    let found = se(&format!(
        "hosts: [a.com]\nresolution: STATIC\nendpoints: [{{address: 10.0.0.1}}]\nworkloadSelector: {{labels: {{app: a}}}}\n{PORTS}"
    ));
    assert_error(
        &found,
        "spec.workloadSelector",
        "set only one of endpoints and workloadSelector",
    );
    assert_warning(
        &se(&format!(
            "hosts: [a.com]\nresolution: STATIC\nworkloadSelector: {{labels: {{}}}}\n{PORTS}"
        )),
        "spec.workloadSelector.labels",
        "selector has no labels",
    );
    assert_error(
        &se(&format!(
            "hosts: [a.com]\nresolution: STATIC\nworkloadSelector: {{labels: {{app: '*'}}}}\n{PORTS}"
        )),
        "spec.workloadSelector.labels[app]",
        "wildcards are not supported in selectors",
    );
}

#[test]
fn endpoint_ports_name_service_ports() {
    let found = se(&format!(
        "hosts: [a.com]\nresolution: STATIC\nendpoints: [{{address: 10.0.0.1, ports: {{http: 8080}}}}]\n{PORTS}"
    ));
    assert_error(
        &found,
        "spec.endpoints[0].ports[http]",
        "port name \"http\" is not a port of this ServiceEntry (https)",
    );
    let found = se(&format!(
        "hosts: [a.com]\nresolution: STATIC\nendpoints: [{{address: 10.0.0.1, ports: {{https: 0}}}}]\n{PORTS}"
    ));
    assert_error(
        &found,
        "spec.endpoints[0].ports[https]",
        "port 0 is not in 1..65535",
    );
    let found = se(&format!(
        "hosts: [a.com]\nresolution: STATIC\nendpoints: [{{address: 'unix:///s.sock', ports: {{https: 8443}}}}]\n{PORTS}"
    ));
    assert_error(
        &found,
        "spec.endpoints[0].address",
        "a unix socket endpoint cannot have ports",
    );
}

#[test]
fn workload_entries() {
    assert_clean(&we(
        "address: 10.1.2.3\nports: {http: 8080}\nlabels: {app: reviews}\nserviceAccount: reviews",
    ));
    assert_clean(&we("address: vm1.example.com"));
    assert_error(
        &we("ports: {http: 8080}"),
        "spec.address",
        "address is required",
    );
    assert_error(
        &we("address: 'not an address'"),
        "spec.address",
        "address \"not an address\" is not an IP address or a DNS name",
    );
    assert_error(
        &we("address: 'unix://relative.sock'"),
        "spec.address",
        "must be an absolute path",
    );
    assert_error(
        &we("address: 10.1.2.3\nports: {http: 70000}"),
        "spec.ports[http]",
        "port 70000 is not in 1..65535",
    );
    assert_error(
        &we("address: 10.1.2.3\nports: {Web_1: 80}"),
        "spec.ports[Web_1]",
        "port name \"Web_1\" is invalid",
    );
    assert_error(
        &we("address: 10.1.2.3\nlabels: {app: 'x y'}"),
        "spec.labels[app]",
        "label value \"x y\" is invalid",
    );
}
