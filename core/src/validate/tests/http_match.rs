//! HTTP match conditions: string matches, regexes, header names, ports and sources.

use super::*;

/// A VirtualService for `r` whose only route has this one match condition.
fn matching(condition: &str) -> Vec<Diagnostic> {
    check(
        "VirtualService",
        &format!(
            "hosts: [r]\nhttp:\n- match: [{condition}]\n  route: [{{destination: {{host: r}}}}]"
        ),
    )
}

#[test]
fn every_kind_of_match_is_clean_when_valid() {
    assert_clean(&matching(
        "{uri: {prefix: /api}, method: {exact: GET}, scheme: {exact: https}, authority: {regex: '.*\\.example\\.com'}, \
         headers: {x-user: {exact: a}, x-present: {}, x-any: {regex: '*'}}, withoutHeaders: {x-debug: {}}, \
         queryParams: {v: {exact: '2'}, flag: {}}, port: 9080, sourceLabels: {app: web}, sourceNamespace: prod, \
         gateways: [mesh], ignoreUriCase: true}",
    ));
}

#[test]
fn a_string_match_sets_exactly_one_of_exact_prefix_regex() {
    assert_error(
        &matching("{uri: {}}"),
        "spec.http[0].match[0].uri",
        "empty match; set one of exact, prefix or regex",
    );
    assert_error(
        &matching("{uri: {exact: /a, prefix: /b}}"),
        "spec.http[0].match[0].uri",
        "set only one of exact, prefix or regex (found exact and prefix)",
    );
    assert_error(
        &matching("{method: {exact: GET, prefix: G, regex: G.*}}"),
        "spec.http[0].match[0].method",
        "(found exact and prefix and regex)",
    );
    assert_error(
        &matching("{scheme: {}}"),
        "spec.http[0].match[0].scheme",
        "empty match",
    );
    assert_error(
        &matching("{headers: {x-a: {exact: a, regex: b}}}"),
        "spec.http[0].match[0].headers[x-a]",
        "set only one of exact, prefix or regex",
    );
}

#[test]
fn regexes_compile_as_re2() {
    assert_error(
        &matching("{uri: {regex: '/api/(v1'}}"),
        "spec.http[0].match[0].uri.regex",
        "invalid regex \"/api/(v1\": unclosed group",
    );
    assert_error(
        &matching("{authority: {regex: ''}}"),
        "spec.http[0].match[0].authority.regex",
        "regex must not be empty",
    );
    // In headers, `regex: "*"` is Istio's way to write "present".
    assert_clean(&matching("{headers: {x-a: {regex: '*'}}}"));
    let found = matching("{uri: {regex: '*'}}");
    assert_error(
        &found,
        "spec.http[0].match[0].uri.regex",
        "invalid regex \"*\"",
    );
    assert_error(
        &matching("{queryParams: {q: {regex: '+'}}}"),
        "spec.http[0].match[0].queryParams[q].regex",
        "invalid regex",
    );
    assert_error(
        &matching("{withoutHeaders: {x-a: {regex: '(?<'}}}"),
        "spec.http[0].match[0].withoutHeaders[x-a].regex",
        "invalid regex",
    );
    let long = "a".repeat(1025);
    assert_error(
        &matching(&format!("{{uri: {{regex: '{long}'}}}}")),
        "spec.http[0].match[0].uri.regex",
        "at most 1024 are allowed",
    );
}

#[test]
fn header_names_in_matches() {
    assert_error(
        &matching("{headers: {'x user': {exact: a}}}"),
        "spec.http[0].match[0].headers[x user]",
        "header name \"x user\" is invalid",
    );
    assert_error(
        &matching("{withoutHeaders: {':authority': {exact: a}}}"),
        "spec.http[0].match[0].withoutHeaders[:authority]",
        "is invalid; use letters, digits, '-' and '_' only",
    );
    assert_warning(
        &matching("{headers: {X-User: {exact: a}}}"),
        "spec.http[0].match[0].headers[X-User]",
        "write \"x-user\"",
    );
    assert_error(
        &matching("{headers: {'@request.auth.claims.group': {exact: admin}}}"),
        "spec.http[0].match[0].headers[@request.auth.claims.group]",
        "routing on JWT claims is not supported by mesh yet",
    );
}

#[test]
fn ports_sources_and_gateways() {
    assert_error(
        &matching("{port: 0}"),
        "spec.http[0].match[0].port",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &matching("{sourceNamespace: my_ns}"),
        "spec.http[0].match[0].sourceNamespace",
        "is not a valid namespace name",
    );
    assert_error(
        &matching("{sourceLabels: {app: 'a b'}}"),
        "spec.http[0].match[0].sourceLabels[app]",
        "label value \"a b\" is invalid",
    );
    assert_error(
        &matching("{gateways: ['a/b/c']}"),
        "spec.http[0].match[0].gateways[0]",
        "gateway \"a/b/c\" is invalid",
    );
    assert_error(
        &matching("{queryParams: {'': {exact: a}}}"),
        "spec.http[0].match[0].queryParams[]",
        "query parameter name must not be empty",
    );
}
