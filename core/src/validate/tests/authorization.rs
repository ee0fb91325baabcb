//! AuthorizationPolicy.

use super::*;

fn ap(spec: &str) -> Vec<Diagnostic> {
    check("AuthorizationPolicy", spec)
}

/// An ALLOW policy with this one rule.
fn rule(rule: &str) -> Vec<Diagnostic> {
    ap(&format!("action: ALLOW\nrules: [{rule}]"))
}

#[test]
fn complete_policies_are_clean() {
    assert_clean(&ap("{}"));
    assert_clean(&ap(r#"
        selector: {matchLabels: {app: httpbin}}
        action: ALLOW
        rules:
        - from:
          - source: {principals: ["cluster.local/ns/default/sa/sleep"], namespaces: [prod], ipBlocks: [10.0.0.0/8]}
          to:
          - operation: {methods: [GET, PROPFIND], paths: ["/info*", "*/health"], ports: ["8080"]}
          when:
          - {key: 'request.auth.claims[iss]', values: ["https://accounts.example.com"]}
          - {key: 'request.headers[x-version]', notValues: [v1]}
          - {key: source.ip, values: [10.1.0.0/16]}
          - {key: destination.port, values: ["8080"]}
    "#));
    assert_clean(&ap("action: DENY\nrules: [{}]"));
}

#[test]
fn actions() {
    assert_error(
        &ap("action: CUSTOM\nrules: [{}]"),
        "spec.action",
        "action CUSTOM is not supported by mesh yet",
    );
    assert_warning(
        &ap("action: DENY"),
        "spec.rules",
        "a DENY policy without rules never matches",
    );
}

#[test]
fn sources_and_operations_set_something() {
    assert_error(
        &rule("{from: [{source: {}}]}"),
        "spec.rules[0].from[0].source",
        "source must set at least one field",
    );
    assert_error(
        &rule("{to: [{operation: {}}]}"),
        "spec.rules[0].to[0].operation",
        "operation must set at least one field",
    );
}

#[test]
fn values() {
    assert_error(
        &rule("{from: [{source: {principals: ['']}}]}"),
        "spec.rules[0].from[0].source.principals[0]",
        "value must not be empty",
    );
    assert_error(
        &rule("{from: [{source: {ipBlocks: [10.0.0.300]}}]}"),
        "spec.rules[0].from[0].source.ipBlocks[0]",
        "\"10.0.0.300\" is not an IP address or CIDR block",
    );
    assert_error(
        &rule("{from: [{source: {notRemoteIpBlocks: [10.0.0.0/64]}}]}"),
        "spec.rules[0].from[0].source.notRemoteIpBlocks[0]",
        "is not an IP address or CIDR block",
    );
    assert_error(
        &rule("{to: [{operation: {ports: [http]}}]}"),
        "spec.rules[0].to[0].operation.ports[0]",
        "port \"http\" is not a number",
    );
    assert_error(
        &rule("{to: [{operation: {notPorts: ['0']}}]}"),
        "spec.rules[0].to[0].operation.notPorts[0]",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &rule("{to: [{operation: {paths: ['']}}]}"),
        "spec.rules[0].to[0].operation.paths[0]",
        "value must not be empty",
    );
    assert_warning(
        &rule("{to: [{operation: {paths: ['/api/*/users']}}]}"),
        "spec.rules[0].to[0].operation.paths[0]",
        "has '*' in the middle",
    );
}

#[test]
fn methods() {
    assert_warning(
        &rule("{to: [{operation: {methods: [get]}}]}"),
        "spec.rules[0].to[0].operation.methods[0]",
        "methods are case-sensitive and \"get\" is lower-case, so it matches no standard request; write GET",
    );
    assert_error(
        &rule("{to: [{operation: {notMethods: ['GET /']}}]}"),
        "spec.rules[0].to[0].operation.notMethods[0]",
        "\"GET /\" is not an HTTP method",
    );
}

#[test]
fn conditions() {
    let when = |c: &str| rule(&format!("{{when: [{c}]}}"));
    assert_error(
        &when("{key: source.ip}"),
        "spec.rules[0].when[0]",
        "set values or notValues for key source.ip",
    );
    assert_error(
        &when("{key: '', values: [a]}"),
        "spec.rules[0].when[0].key",
        "key must not be empty",
    );
    assert_error(
        &when("{key: source.app, values: [a]}"),
        "spec.rules[0].when[0].key",
        "key \"source.app\" is not a supported condition",
    );
    assert_error(
        &when("{key: request.headers, values: [a]}"),
        "spec.rules[0].when[0].key",
        "must name an entry in brackets, e.g. request.headers[name]",
    );
    assert_error(
        &when("{key: 'request.headers[]', values: [a]}"),
        "spec.rules[0].when[0].key",
        "must name an entry in brackets",
    );
    assert_error(
        &when("{key: destination.namespace, values: [a]}"),
        "spec.rules[0].when[0].key",
        "select workloads with metadata.namespace and selector instead",
    );
    assert_error(
        &when("{key: remote.ip, values: [nope]}"),
        "spec.rules[0].when[0].values[0]",
        "is not an IP address or CIDR block",
    );
    assert_error(
        &when("{key: destination.port, notValues: ['99999']}"),
        "spec.rules[0].when[0].notValues[0]",
        "port 99999 is not in 1..65535",
    );
    assert_error(
        &when("{key: source.principal, values: ['']}"),
        "spec.rules[0].when[0].values[0]",
        "value must not be empty",
    );
}

#[test]
fn what_the_proxies_cannot_enforce_is_refused_here_too() {
    let found = rule(
        "{when: [{key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: [a]}]}",
    );
    assert_error(
        &found,
        "spec.rules[0].when[0].key",
        "is not supported by mesh",
    );
}
