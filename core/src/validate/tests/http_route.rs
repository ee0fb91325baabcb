//! HTTP routes: what they do, redirects, rewrites, timeouts, retries, faults, mirrors,
//! CORS and header operations.

use super::*;

/// A VirtualService for `r` with one HTTP route, written as the YAML of its fields.
fn route(fields: &str) -> Vec<Diagnostic> {
    let fields: String = dedent(fields).lines().map(|l| format!("  {l}\n")).collect();
    check(
        "VirtualService",
        &format!("hosts: [r]\nhttp:\n- name: main\n{fields}"),
    )
}

const TO_R: &str = "route: [{destination: {host: r}}]";

#[test]
fn a_route_needs_route_redirect_or_direct_response() {
    assert_error(
        &route("timeout: 1s"),
        "spec.http[0]",
        "HTTP route or redirect or directResponse is required",
    );
    assert_error(
        &route(&format!("{TO_R}\nredirect: {{uri: /new}}")),
        "spec.http[0].redirect",
        "both route and redirect",
    );
    assert_error(
        &route(&format!("{TO_R}\ndirectResponse: {{status: 503}}")),
        "spec.http[0].directResponse",
        "both route and directResponse",
    );
    assert_error(
        &route("redirect: {uri: /new}\ndirectResponse: {status: 503}"),
        "spec.http[0].directResponse",
        "both redirect and directResponse",
    );
    assert_error(
        &route("redirect: {uri: /new}\nfault: {abort: {httpStatus: 500}}"),
        "spec.http[0].fault",
        "both fault and redirect",
    );
    assert_error(
        &route("redirect: {uri: /new}\nrewrite: {uri: /x}"),
        "spec.http[0].rewrite",
        "both rewrite and redirect",
    );
    assert_clean(&route("redirect: {uri: /new, redirectCode: 308}"));
    assert_clean(&route(
        "directResponse: {status: 503, body: {string: unavailable}}",
    ));
}

#[test]
fn redirects() {
    assert_error(
        &route("redirect: {redirectCode: 301}"),
        "spec.http[0].redirect",
        "redirect must set uri, authority, scheme or port",
    );
    assert_error(
        &route("redirect: {uri: /a, redirectCode: 200}"),
        "spec.http[0].redirect.redirectCode",
        "redirectCode 200 is not a redirect",
    );
    assert_error(
        &route("redirect: {scheme: ftp}"),
        "spec.http[0].redirect.scheme",
        "redirect scheme \"ftp\" is invalid",
    );
    assert_error(
        &route("redirect: {port: 0}"),
        "spec.http[0].redirect.port",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &route("redirect: {port: 8443, derivePort: FROM_REQUEST_PORT}"),
        "spec.http[0].redirect.derivePort",
        "set only one of port and derivePort",
    );
}

#[test]
fn direct_responses() {
    assert_error(
        &route("directResponse: {status: 700}"),
        "spec.http[0].directResponse.status",
        "HTTP status 700 is not in 100..599",
    );
    assert_error(
        &route("directResponse: {status: 200, body: {string: a, bytes: YQ==}}"),
        "spec.http[0].directResponse.body",
        "set only one of string and bytes",
    );
    assert_error(
        &route("directResponse: {status: 200, body: {}}"),
        "spec.http[0].directResponse.body",
        "body must set string or bytes",
    );
}

#[test]
fn large_direct_response_bodies() {
    let body = |kb: usize| {
        route(&format!(
            "directResponse: {{status: 200, body: {{string: {}}}}}",
            "x".repeat(kb * 1024)
        ))
    };
    assert_clean(&body(100));
    assert_warning(
        &body(101),
        "spec.http[0].directResponse.body",
        "larger than 100KB",
    );
    assert_error(
        &body(1025),
        "spec.http[0].directResponse.body",
        "must be smaller than 1MB",
    );
}

#[test]
fn rewrites() {
    assert_error(
        &route(&format!("{TO_R}\nrewrite: {{}}")),
        "spec.http[0].rewrite",
        "rewrite must set uri, uriRegexRewrite or authority",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nrewrite: {{uri: /a, uriRegexRewrite: {{match: a, rewrite: b}}}}"
        )),
        "spec.http[0].rewrite",
        "set only one of uri and uriRegexRewrite",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nrewrite: {{uriRegexRewrite: {{match: '(a', rewrite: b}}}}"
        )),
        "spec.http[0].rewrite.uriRegexRewrite.match",
        "invalid regex \"(a\"",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nrewrite: {{uriRegexRewrite: {{match: a, rewrite: ''}}}}"
        )),
        "spec.http[0].rewrite.uriRegexRewrite.rewrite",
        "rewrite must not be empty",
    );
    assert_clean(&route(&format!(
        "{TO_R}\nrewrite: {{uriRegexRewrite: {{match: '^/v1/(.*)', rewrite: '/v2/\\1'}}}}"
    )));
}

#[test]
fn the_authority_is_rewritten_in_one_place() {
    let found = route(&format!(
        "{TO_R}\nrewrite: {{authority: a.example.com}}\nheaders: {{request: {{set: {{host: b.example.com}}}}}}"
    ));
    assert_error(
        &found,
        "spec.http[0].headers.request.set[host]",
        "the authority is already rewritten at spec.http[0].rewrite.authority",
    );
    assert_clean(&route(&format!(
        "{TO_R}\nheaders: {{request: {{set: {{host: b.example.com}}}}}}"
    )));
}

#[test]
fn timeouts() {
    assert_clean(&route(&format!("{TO_R}\ntimeout: 0s")));
    assert_error(
        &route(&format!("{TO_R}\ntimeout: -1s")),
        "spec.http[0].timeout",
        "duration -1s is negative",
    );
    assert_error(
        &route(&format!("{TO_R}\ntimeout: 100us")),
        "spec.http[0].timeout",
        "below 1ms",
    );
}

#[test]
fn retries() {
    assert_clean(&route(&format!(
        "{TO_R}\nretries: {{attempts: 3, perTryTimeout: 2s, retryOn: 'gateway-error,503,cancelled'}}"
    )));
    assert_clean(&route(&format!(
        "{TO_R}\nretries: {{attempts: 3, perTryTimeout: 0s}}"
    )));
    assert_error(
        &route(&format!("{TO_R}\nretries: {{perTryTimeout: 2s}}")),
        "spec.http[0].retries.attempts",
        "retries are disabled (attempts is 0) but perTryTimeout or retryOn is set",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nretries: {{attempts: 2, retryOn: '5xx,sometimes'}}"
        )),
        "spec.http[0].retries.retryOn",
        "\"sometimes\" is not a retryOn condition",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nretries: {{attempts: 2, perTryTimeout: -2s}}"
        )),
        "spec.http[0].retries.perTryTimeout",
        "negative",
    );
    assert_error(
        &route(&format!("{TO_R}\nretries: {{attempts: 2, backoff: 0s}}")),
        "spec.http[0].retries.backoff",
        "duration must be greater than 0",
    );
    assert_warning(
        &route(&format!(
            "{TO_R}\ntimeout: 1s\nretries: {{attempts: 2, perTryTimeout: 5s}}"
        )),
        "spec.http[0].retries.perTryTimeout",
        "perTryTimeout 5s is longer than the route timeout 1s",
    );
}

#[test]
fn faults() {
    let fault = |f: &str| route(&format!("{TO_R}\nfault: {f}"));
    assert_clean(&fault(
        "{delay: {fixedDelay: 7s, percentage: {value: 100}}, abort: {httpStatus: 500, percentage: {value: 0.5}}}",
    ));
    assert_clean(&fault("{delay: {fixedDelay: 5s, percent: 10}}"));
    assert_clean(&fault("{abort: {grpcStatus: UNAVAILABLE}}"));
    assert_error(
        &fault("{}"),
        "spec.http[0].fault",
        "fault needs a delay, an abort, or both",
    );
    assert_error(
        &fault("{delay: {percentage: {value: 10}}}"),
        "spec.http[0].fault.delay",
        "delay needs fixedDelay",
    );
    assert_error(
        &fault("{delay: {fixedDelay: 0s}}"),
        "spec.http[0].fault.delay.fixedDelay",
        "duration must be greater than 0",
    );
    assert_error(
        &fault("{delay: {fixedDelay: 1s, percent: 10, percentage: {value: 10}}}"),
        "spec.http[0].fault.delay.percent",
        "set only one of percent and percentage",
    );
    assert_error(
        &fault("{delay: {fixedDelay: 1s, percent: 120}}"),
        "spec.http[0].fault.delay.percent",
        "percentage 120 is not in 0..100",
    );
    assert_error(
        &fault("{delay: {fixedDelay: 1s, percentage: {value: 150}}}"),
        "spec.http[0].fault.delay.percentage.value",
        "percentage 150 is not in 0..100",
    );
    assert_error(
        &fault("{abort: {percentage: {value: 10}}}"),
        "spec.http[0].fault.abort",
        "abort needs httpStatus or grpcStatus",
    );
    assert_error(
        &fault("{abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}"),
        "spec.http[0].fault.abort",
        "set only one of httpStatus and grpcStatus",
    );
    assert_error(
        &fault("{abort: {httpStatus: 99}}"),
        "spec.http[0].fault.abort.httpStatus",
        "HTTP status 99 is not in 100..599",
    );
    assert_error(
        &fault("{abort: {grpcStatus: unavailable}}"),
        "spec.http[0].fault.abort.grpcStatus",
        "gRPC status \"unavailable\" is not valid",
    );
    assert_error(
        &fault("{abort: {httpStatus: 503, percentage: {value: -1}}}"),
        "spec.http[0].fault.abort.percentage.value",
        "percentage -1 is not in 0..100",
    );
}

#[test]
fn mirrors() {
    assert_clean(&route(&format!(
        "{TO_R}\nmirror: {{host: r2}}\nmirrorPercentage: {{value: 10}}"
    )));
    assert_clean(&route(&format!(
        "{TO_R}\nmirrors: [{{destination: {{host: r2}}, percentage: {{value: 5}}}}]"
    )));
    let found = route(&format!("{TO_R}\nmirror: {{host: r2}}\nmirrorPercent: 120"));
    assert_has(
        &found,
        Severity::Error,
        "spec.http[0].mirrorPercent",
        "percentage 120 is not in 0..100",
    );
    assert_has(
        &found,
        Severity::Warning,
        "spec.http[0].mirrorPercent",
        "mirrorPercent is deprecated",
    );
    let found = route(&format!(
        "{TO_R}\nmirror: {{host: r2}}\nmirrorPercent: 5\nmirrorPercentage: {{value: 5}}"
    ));
    assert_has(
        &found,
        Severity::Error,
        "spec.http[0].mirrorPercent",
        "set only one of mirrorPercent and mirrorPercentage",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nmirror: {{host: r2}}\nmirrorPercentage: {{value: 200}}"
        )),
        "spec.http[0].mirrorPercentage.value",
        "percentage 200 is not in 0..100",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nmirror: {{host: r2}}\nmirrors: [{{destination: {{host: r3}}}}]"
        )),
        "spec.http[0].mirrors",
        "set only one of mirror and mirrors",
    );
    assert_error(
        &route(&format!(
            "{TO_R}\nmirrors: [{{destination: {{host: r2}}, percentage: {{value: 101}}}}]"
        )),
        "spec.http[0].mirrors[0].percentage.value",
        "percentage 101 is not in 0..100",
    );
    assert_error(
        &route(&format!("{TO_R}\nmirror: {{host: '*.r'}}")),
        "spec.http[0].mirror.host",
        "is a wildcard",
    );
    assert_warning(
        &route(&format!("{TO_R}\nmirrorPercentage: {{value: 10}}")),
        "spec.http[0].mirrorPercentage",
        "a mirror percentage without mirror has no effect",
    );
}

#[test]
fn cors() {
    let cors = |c: &str| route(&format!("{TO_R}\ncorsPolicy: {c}"));
    assert_clean(&cors(
        "{allowOrigins: [{exact: 'https://a.com'}, {regex: 'https://.*\\.b\\.com'}], allowMethods: [GET, POST], allowHeaders: ['*', x-user], maxAge: 24h}",
    ));
    assert_error(
        &cors("{allowOrigins: [{}]}"),
        "spec.http[0].corsPolicy.allowOrigins[0]",
        "empty match; set one of exact, prefix or regex",
    );
    assert_error(
        &cors("{allowOrigins: [{regex: '['}]}"),
        "spec.http[0].corsPolicy.allowOrigins[0].regex",
        "invalid regex \"[\"",
    );
    assert_error(
        &cors("{allowMethods: [get]}"),
        "spec.http[0].corsPolicy.allowMethods[0]",
        "\"get\" is not an HTTP method",
    );
    assert_error(
        &cors("{exposeHeaders: ['x user']}"),
        "spec.http[0].corsPolicy.exposeHeaders[0]",
        "header name \"x user\" is invalid",
    );
    assert_error(
        &cors("{maxAge: 1500ms}"),
        "spec.http[0].corsPolicy.maxAge",
        "maxAge 1.5s is sent in whole seconds",
    );
    assert_warning(
        &cors("{allowOrigin: ['https://a.com']}"),
        "spec.http[0].corsPolicy.allowOrigin",
        "allowOrigin is deprecated",
    );
}

#[test]
fn header_operations() {
    let headers = |h: &str| route(&format!("{TO_R}\nheaders: {h}"));
    assert_clean(&headers(
        "{request: {set: {x-a: '1', host: b.com}, add: {x-b: '2'}, remove: [x-c]}, response: {set: {x-d: '4'}, remove: [server]}}",
    ));
    assert_error(
        &headers("{request: {set: {':path': /x}}}"),
        "spec.http[0].headers.request.set[:path]",
        "is a pseudo-header",
    );
    assert_error(
        &headers("{response: {set: {host: x}}}"),
        "spec.http[0].headers.response.set[host]",
        "cannot be changed here",
    );
    assert_error(
        &headers("{request: {remove: [host]}}"),
        "spec.http[0].headers.request.remove[0]",
        "cannot be changed here",
    );
    assert_error(
        &headers("{request: {add: {'x a': v}}}"),
        "spec.http[0].headers.request.add[x a]",
        "is not a valid HTTP header name",
    );
    assert_error(
        &headers("{request: {set: {x-a: \"a\\nb\"}}}"),
        "spec.http[0].headers.request.set[x-a]",
        "contains control characters",
    );
    assert_error(
        &headers("{request: {set: {'': v}}}"),
        "spec.http[0].headers.request.set[]",
        "header name must not be empty",
    );
    let found =
        route("route: [{destination: {host: r}, headers: {response: {remove: [':status']}}}]");
    assert_error(
        &found,
        "spec.http[0].route[0].headers.response.remove[0]",
        "is a pseudo-header",
    );
}
