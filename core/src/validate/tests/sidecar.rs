//! Sidecar: egress scope, listeners, connection pools, selectors.

use super::*;

fn sidecar(spec: &str) -> Vec<Diagnostic> {
    check("Sidecar", spec)
}

#[test]
fn complete_sidecars_are_clean() {
    assert_clean(&sidecar(
        r#"
        egress:
        - hosts: ["./*", "istio-system/*", "*/api.example.com"]
        outboundTrafficPolicy: {mode: REGISTRY_ONLY}
    "#,
    ));
    assert_clean(&sidecar(
        r#"
        workloadSelector: {labels: {app: ratings}}
        inboundConnectionPool: {tcp: {maxConnections: 100}}
        ingress:
        - port: {number: 9080, protocol: HTTP, name: http}
          defaultEndpoint: 127.0.0.1:8080
          connectionPool: {http: {http1MaxPendingRequests: 10}}
        - port: {number: 9090, protocol: TCP, name: grpc}
          defaultEndpoint: "unix:///var/run/app.sock"
        egress:
        - port: {number: 9080, protocol: HTTP, name: egresshttp}
          bind: 127.0.0.1
          captureMode: NONE
          hosts: ["prod/*"]
        - hosts: ["~/*"]
    "#,
    ));
}

#[test]
fn a_sidecar_sets_something() {
    assert_error(
        &sidecar("workloadSelector: {labels: {app: a}}"),
        "spec",
        "a Sidecar must set egress, ingress, outboundTrafficPolicy",
    );
}

#[test]
fn egress_hosts_are_namespace_slash_host() {
    let hosts = |h: &str| sidecar(&format!("egress: [{{hosts: {h}}}]"));
    assert_error(
        &hosts("[reviews.default.svc.cluster.local]"),
        "spec.egress[0].hosts[0]",
        "must be of the form namespace/dnsName",
    );
    assert_error(
        &hosts("['./reviews']"),
        "spec.egress[0].hosts[0]",
        "is a short name",
    );
    assert_error(
        &hosts("['Prod/*']"),
        "spec.egress[0].hosts[0]",
        "invalid namespace \"Prod\"",
    );
    assert_error(
        &hosts("['./*.svc.*']"),
        "spec.egress[0].hosts[0]",
        "wildcard out of place",
    );
    assert_error(
        &hosts("[]"),
        "spec.egress[0].hosts",
        "an egress listener needs at least one host",
    );
}

#[test]
fn egress_listeners() {
    let found =
        sidecar("egress: [{hosts: ['./*']}, {port: {number: 80, protocol: HTTP}, hosts: ['./*']}]");
    assert_error(
        &found,
        "spec.egress[0]",
        "an egress listener without port catches all other traffic and must be the last one",
    );
    let found = sidecar(
        "egress: [{port: {number: 80, protocol: HTTP}, hosts: ['./*']}, {port: {number: 80, protocol: HTTP}, hosts: ['*/*']}]",
    );
    assert_error(
        &found,
        "spec.egress[1].port",
        "egress[0] already listens here",
    );
    assert_error(
        &sidecar("egress: [{port: {number: 0, protocol: HTTP}, hosts: ['./*']}]"),
        "spec.egress[0].port.number",
        "port 0 needs a unix domain socket bind",
    );
    assert_error(
        &sidecar(
            "egress: [{port: {number: 0, protocol: HTTP}, bind: 'unix:///a.sock', captureMode: IPTABLES, hosts: ['./*']}]",
        ),
        "spec.egress[0].captureMode",
        "needs captureMode DEFAULT or NONE",
    );
    assert_error(
        &sidecar("egress: [{port: {number: 80, protocol: HTTP}, bind: 'not-ip', hosts: ['./*']}]"),
        "spec.egress[0].bind",
        "bind \"not-ip\" must be an IP address",
    );
    assert_error(
        &sidecar("egress: [{port: {number: 80, protocol: HTTP, targetPort: 81}, hosts: ['./*']}]"),
        "spec.egress[0].port.targetPort",
        "targetPort has no effect on Sidecars",
    );
}

#[test]
fn ingress_listeners() {
    let ingress = |i: &str| {
        sidecar(&format!(
            "workloadSelector: {{labels: {{app: a}}}}\ningress: [{i}]"
        ))
    };
    assert_error(
        &ingress("{port: {number: 0, protocol: HTTP}}"),
        "spec.ingress[0].port.number",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &ingress("{port: {number: 80, protocol: HTTP}, defaultEndpoint: '10.0.0.1:8080'}"),
        "spec.ingress[0].defaultEndpoint",
        "defaultEndpoint \"10.0.0.1:8080\" must be 127.0.0.1:PORT",
    );
    assert_error(
        &ingress("{port: {number: 80, protocol: HTTP}, defaultEndpoint: '127.0.0.1:0'}"),
        "spec.ingress[0].defaultEndpoint",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &ingress("{port: {number: 80, protocol: HTTP}}, {port: {number: 80, protocol: TCP}}"),
        "spec.ingress[1].port.number",
        "port 80 is already used by ingress[0]",
    );
    assert_error(
        &ingress("{port: {number: 80, protocol: HTTP, name: Web_1}}"),
        "spec.ingress[0].port.name",
        "port name \"Web_1\" is invalid",
    );
    assert_warning(
        &ingress("{port: {number: 5432, protocol: TCP}, connectionPool: {http: {maxRetries: 3}}}"),
        "spec.ingress[0].connectionPool.http",
        "HTTP settings apply to HTTP ports only and port 5432 is TCP",
    );
    assert_error(
        &ingress("{port: {number: 80, protocol: HTTP}, connectionPool: {}}"),
        "spec.ingress[0].connectionPool",
        "connectionPool must set tcp or http",
    );
}

#[test]
fn selectors_and_pools() {
    assert_warning(
        &sidecar("workloadSelector: {labels: {}}\negress: [{hosts: ['./*']}]"),
        "spec.workloadSelector.labels",
        "selector has no labels",
    );
    assert_error(
        &sidecar("inboundConnectionPool: {tcp: {connectTimeout: -1s}}"),
        "spec.inboundConnectionPool.tcp.connectTimeout",
        "negative",
    );
}
