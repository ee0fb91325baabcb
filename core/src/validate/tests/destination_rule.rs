//! DestinationRule: host, subsets and traffic policies.

use super::*;

fn dr(spec: &str) -> Vec<Diagnostic> {
    check("DestinationRule", spec)
}

/// A rule for `reviews` with this top-level traffic policy.
fn policy(policy: &str) -> Vec<Diagnostic> {
    dr(&format!("host: reviews\ntrafficPolicy: {policy}"))
}

#[test]
fn a_complete_destination_rule_is_clean() {
    assert_clean(&dr(r#"
        host: reviews.default.svc.cluster.local
        exportTo: ["."]
        trafficPolicy:
          loadBalancer: {simple: LEAST_REQUEST}
          connectionPool:
            tcp: {maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}}
            http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 1, idleTimeout: 1h}
          outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100}
          tls: {mode: ISTIO_MUTUAL}
          portLevelSettings:
          - port: {number: 9080}
            loadBalancer:
              consistentHash:
                httpCookie: {name: user, ttl: 0s}
                maglev: {tableSize: 65537}
        subsets:
        - name: v1
          labels: {version: v1}
        - name: v2
          labels: {version: v2}
          trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
    "#));
    assert_clean(&dr("host: '*.example.com'"));
}

#[test]
fn host_is_checked() {
    assert_error(
        &dr("host: 'reviews:9080'"),
        "spec.host",
        "must not include a port",
    );
    assert_error(&dr("host: ''"), "spec.host", "host must not be empty");
}

#[test]
fn subsets_have_unique_valid_names() {
    let found = dr(
        "host: r\nsubsets: [{name: v1, labels: {version: v1}}, {name: v1, labels: {version: v2}}]",
    );
    assert_error(
        &found,
        "spec.subsets[1].name",
        "duplicate subset name \"v1\" (also subsets[0])",
    );
    assert_error(
        &dr("host: r\nsubsets: [{name: v1.0}]"),
        "spec.subsets[0].name",
        "subset name \"v1.0\" is invalid",
    );
    assert_error(
        &dr("host: r\nsubsets: [{name: ''}]"),
        "spec.subsets[0].name",
        "subset name must not be empty",
    );
    assert_error(
        &dr("host: r\nsubsets: [{name: v1, labels: {'-bad': x}}]"),
        "spec.subsets[0].labels[-bad]",
        "label key \"-bad\" is invalid",
    );
    assert_error(
        &dr("host: r\nsubsets: [{name: v1, trafficPolicy: {loadBalancer: {}}}]"),
        "spec.subsets[0].trafficPolicy.loadBalancer",
        "loadBalancer needs simple or consistentHash",
    );
}

#[test]
fn a_traffic_policy_sets_something() {
    assert_error(
        &policy("{}"),
        "spec.trafficPolicy",
        "trafficPolicy must set at least one field",
    );
}

#[test]
fn load_balancer_has_one_algorithm_and_one_hash_key() {
    assert_error(
        &policy("{loadBalancer: {}}"),
        "spec.trafficPolicy.loadBalancer",
        "loadBalancer needs simple or consistentHash",
    );
    assert_error(
        &policy("{loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}"),
        "spec.trafficPolicy.loadBalancer",
        "set only one of simple and consistentHash",
    );
    let hash = |h: &str| policy(&format!("{{loadBalancer: {{consistentHash: {h}}}}}"));
    let at = "spec.trafficPolicy.loadBalancer.consistentHash";
    assert_error(&hash("{}"), at, "consistentHash needs one hash key");
    assert_error(
        &hash("{useSourceIp: false}"),
        at,
        "consistentHash needs one hash key",
    );
    assert_error(
        &hash("{httpHeaderName: x-user, useSourceIp: true}"),
        at,
        "set only one hash key (found httpHeaderName and useSourceIp)",
    );
    assert_error(
        &hash("{useSourceIp: true, ringHash: {minimumRingSize: 1024}, maglev: {tableSize: 65537}}"),
        at,
        "set only one of ringHash and maglev",
    );
    assert_error(
        &hash("{useSourceIp: true, maglev: {tableSize: 1000}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "maglev tableSize 1000 is not a prime number",
    );
    assert_error(
        &hash("{useSourceIp: true, maglev: {tableSize: 5000011}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "must be a prime below 5000011",
    );
    assert_warning(
        &hash("{useSourceIp: true, minimumRingSize: 1024}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "minimumRingSize is deprecated",
    );
    let found =
        hash("{useSourceIp: true, minimumRingSize: 1024, ringHash: {minimumRingSize: 1024}}");
    assert_has(
        &found,
        Severity::Error,
        "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "set only one of minimumRingSize and ringHash or maglev",
    );
    assert_error(
        &hash("{httpCookie: {name: '', ttl: 1s}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
        "cookie name must not be empty",
    );
    assert_error(
        &hash("{httpHeaderName: 'x user'}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName",
        "header name \"x user\" is invalid",
    );
}

#[test]
fn connection_pools() {
    let at = "spec.trafficPolicy.connectionPool";
    assert_error(
        &policy("{connectionPool: {}}"),
        at,
        "connectionPool must set tcp or http",
    );
    assert_warning(
        &policy("{connectionPool: {tcp: {maxConnections: 0}}}"),
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
        "0 means unset here",
    );
    assert_error(
        &policy("{connectionPool: {tcp: {connectTimeout: 0s}}}"),
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        "duration must be greater than 0",
    );
    assert_error(
        &policy("{connectionPool: {tcp: {tcpKeepalive: {interval: -5s}}}}"),
        "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
        "negative",
    );
    assert_error(
        &policy("{connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}"),
        "spec.trafficPolicy.connectionPool.http.useClientProtocol",
        "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE",
    );
    assert_warning(
        &policy("{connectionPool: {http: {http2MaxRequests: 0}}}"),
        "spec.trafficPolicy.connectionPool.http.http2MaxRequests",
        "0 means unset here",
    );
}

#[test]
fn outlier_detection() {
    assert_error(
        &policy("{outlierDetection: {maxEjectionPercent: 150}}"),
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
        "percentage 150 is not in 0..100",
    );
    assert_error(
        &policy("{outlierDetection: {interval: 0s}}"),
        "spec.trafficPolicy.outlierDetection.interval",
        "duration must be greater than 0",
    );
    assert_warning(
        &policy("{outlierDetection: {consecutiveErrors: 5}}"),
        "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        "consecutiveErrors is deprecated",
    );
}

#[test]
fn client_tls() {
    let at = "spec.trafficPolicy.tls";
    assert_clean(&policy(
        "{tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}}",
    ));
    // Valid Istio, which mesh's proxies cannot honour yet: said, not silently refused.
    assert_warning(
        &policy("{tls: {mode: MUTUAL, credentialName: client-cert}}"),
        "spec.trafficPolicy.tls.credentialName",
        "not supported by mesh's proxies yet",
    );
    assert_clean(&policy("{tls: {mode: SIMPLE, sni: a.example.com}}"));
    assert_error(
        &policy("{tls: {mode: MUTUAL, clientCertificate: /c.pem}}"),
        at,
        "MUTUAL TLS needs clientCertificate and privateKey, or credentialName (missing privateKey)",
    );
    assert_error(
        &policy("{tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}}"),
        "spec.trafficPolicy.tls.credentialName",
        "credentialName holds the certificates; remove caCertificates",
    );
    assert_error(
        &policy("{tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}}"),
        "spec.trafficPolicy.tls.insecureSkipVerify",
        "insecureSkipVerify turns verification off",
    );
    assert_warning(
        &policy("{tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem}}"),
        at,
        "mode ISTIO_MUTUAL does not use clientCertificate",
    );
    assert_warning(
        &policy("{tls: {mode: MUTUAL, credentialName: egress-certs}}"),
        "spec.trafficPolicy.tls.credentialName",
        "credentialName \"egress-certs\": certificates from a Kubernetes Secret are not supported",
    );
    assert_warning(
        &policy("{tls: {mode: SIMPLE, clientCertificate: /c.pem, privateKey: /k.pem}}"),
        at,
        "SIMPLE presents no client certificate",
    );
    assert_clean(&policy(
        "{tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, subjectAltNames: [api.example.com]}}",
    ));
}

#[test]
fn port_level_settings() {
    let at = "spec.trafficPolicy.portLevelSettings";
    assert_error(
        &policy("{portLevelSettings: [{port: {number: 0}, loadBalancer: {simple: RANDOM}}]}"),
        &format!("{at}[0].port.number"),
        "port 0 is not in 1..65535",
    );
    assert_error(
        &policy("{portLevelSettings: [{port: {number: 80}}]}"),
        &format!("{at}[0]"),
        "port traffic policy must set at least one of",
    );
    assert_warning(
        &policy(
            "{portLevelSettings: [{port: {number: 80}, tls: {mode: SIMPLE}}, {port: {number: 80}, tls: {mode: DISABLE}}]}",
        ),
        &format!("{at}[1].port.number"),
        "port 80 already has settings in portLevelSettings[0]",
    );
}

#[test]
fn export_to_has_no_none_entry() {
    assert_error(
        &dr("host: r\nexportTo: ['~']"),
        "spec.exportTo[0]",
        "exportTo entry \"~\" is invalid",
    );
}
