//! Policies mesh refuses, and the field each error names.

use super::*;

/// `(spec, field the error names, words the message holds)`.
const CASES: &[(&str, &str, &str)] = &[
    ("{action: CUSTOM, rules: [{}]}", "spec.action", "CUSTOM"),
    (
        "{rules: [{from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0/8]}}]}]}",
        "spec.rules[0].from[0].source.ipBlocks[1]",
        "\"10.0.0/8\" is not an IP address",
    ),
    (
        "{rules: [{}, {from: [{source: {notRemoteIpBlocks: [10.0.0.0/33]}}]}]}",
        "spec.rules[1].from[0].source.notRemoteIpBlocks[0]",
        "not an IP address",
    ),
    (
        "{rules: [{to: [{operation: {ports: [http]}}]}]}",
        "spec.rules[0].to[0].operation.ports[0]",
        "\"http\" is not a port",
    ),
    (
        "{rules: [{to: [{operation: {ports: ['1']}}, {operation: {notPorts: ['0']}}]}]}",
        "spec.rules[0].to[1].operation.notPorts[0]",
        "not a port",
    ),
    (
        "{rules: [{to: [{operation: {ports: ['70000']}}]}]}",
        "spec.rules[0].to[0].operation.ports[0]",
        "not a port",
    ),
    (
        "{rules: [{to: [{operation: {paths: ['/{**}/x/{*}']}}]}]}",
        "spec.rules[0].to[0].operation.paths[0]",
        "{**} must be the last operator",
    ),
    (
        "{rules: [{to: [{operation: {notPaths: ['/a/{*}.txt']}}]}]}",
        "spec.rules[0].to[0].operation.notPaths[0]",
        "whole {*} or {**} segment",
    ),
    (
        "{rules: [{from: [{source: {principals: ['']}}]}]}",
        "spec.rules[0].from[0].source.principals[0]",
        "must not be empty",
    ),
    (
        "{rules: [{from: [{source: {serviceAccounts: ['default/*']}}]}]}",
        "spec.rules[0].from[0].source.serviceAccounts[0]",
        "without wildcards",
    ),
    (
        "{rules: [{from: [{source: {notServiceAccounts: [a/b/c]}}]}]}",
        "spec.rules[0].from[0].source.notServiceAccounts[0]",
        "not a service account",
    ),
    (
        "{rules: [{when: [{key: destination.labels, values: [x]}]}]}",
        "spec.rules[0].when[0].key",
        "not a condition mesh knows",
    ),
    (
        "{rules: [{when: [{key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]']}]}]}",
        "spec.rules[0].when[0].key",
        "not supported by mesh",
    ),
    (
        "{rules: [{when: [{key: 'request.headers[bad header]', values: [x]}]}]}",
        "spec.rules[0].when[0].key",
        "not a valid HTTP header name",
    ),
    (
        "{rules: [{when: [{key: 'request.auth.claims[]', values: [x]}]}]}",
        "spec.rules[0].when[0].key",
        "must name claims in brackets",
    ),
    (
        "{rules: [{when: [{key: 'request.auth.claims[a]b', values: [x]}]}]}",
        "spec.rules[0].when[0].key",
        "must name claims in brackets",
    ),
    (
        "{rules: [{when: [{key: source.ip, values: [10.0.0.1], notValues: [bad]}]}]}",
        "spec.rules[0].when[0].notValues[0]",
        "not an IP address",
    ),
    (
        "{rules: [{when: [{key: destination.port, values: ['8080', '-1']}]}]}",
        "spec.rules[0].when[0].values[1]",
        "not a port",
    ),
    (
        "{rules: [{when: [{key: request.auth.audiences, values: ['']}]}]}",
        "spec.rules[0].when[0].values[0]",
        "must not be empty",
    ),
];

#[test]
fn errors_name_the_policy_and_field() {
    for (spec, field, words) in CASES {
        let error = compile(&[("ops", "{rules: [{}]}"), ("foo/bad", spec)]).expect_err(spec);
        assert_eq!(error.policy, "foo/bad", "{spec}");
        assert_eq!(error.field.as_str(), *field, "{spec}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("AuthorizationPolicy foo/bad: {field}: ")),
            "{message}"
        );
        assert!(message.contains(words), "{spec}: {message}");
    }
}

#[test]
fn the_whole_message() {
    let error =
        compile(&[("foo/p", "{rules: [{to: [{operation: {ports: [http]}}]}]}")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "AuthorizationPolicy foo/p: spec.rules[0].to[0].operation.ports[0]: \"http\" is not a port; write a number in 1..65535"
    );
}

#[test]
fn what_validation_refuses_still_compiles_to_istio_semantics() {
    // Empty sources, operations and conditions constrain nothing, as in Istio's model.
    for spec in [
        "{rules: [{from: [{source: {}}]}]}",
        "{rules: [{to: [{operation: {}}]}]}",
        "{rules: [{when: [{key: source.ip}]}]}",
    ] {
        let policies = compile(&[("foo/p", spec)]).unwrap();
        assert!(policies.evaluate(&get().request()).is_allowed(), "{spec}");
    }
}
