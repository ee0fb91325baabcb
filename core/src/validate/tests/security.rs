//! PeerAuthentication and RequestAuthentication.

use super::*;

fn pa(spec: &str) -> Vec<Diagnostic> {
    check("PeerAuthentication", spec)
}

fn ra(spec: &str) -> Vec<Diagnostic> {
    check("RequestAuthentication", spec)
}

#[test]
fn peer_authentication() {
    assert_clean(&pa("mtls: {mode: STRICT}"));
    assert_clean(&pa(
        "selector: {matchLabels: {app: db}}\nmtls: {mode: STRICT}\nportLevelMtls: {5432: {mode: DISABLE}}",
    ));
    assert_error(
        &pa("mtls: {mode: STRICT}\nportLevelMtls: {'8080': {mode: DISABLE}}"),
        "spec.portLevelMtls",
        "portLevelMtls needs a selector with labels",
    );
    let found = pa("selector: {matchLabels: {}}\nportLevelMtls: {'8080': {mode: DISABLE}}");
    assert_has(
        &found,
        Severity::Error,
        "spec.portLevelMtls",
        "portLevelMtls needs a selector with labels",
    );
    assert_has(
        &found,
        Severity::Warning,
        "spec.selector.matchLabels",
        "selector has no labels",
    );
    assert_error(
        &pa("selector: {matchLabels: {app: db}}\nportLevelMtls: {http: {mode: DISABLE}}"),
        "spec.portLevelMtls[http]",
        "port \"http\" is not a number",
    );
    assert_error(
        &pa("selector: {matchLabels: {app: db}}\nportLevelMtls: {0: {mode: DISABLE}}"),
        "spec.portLevelMtls[0]",
        "port 0 is not in 1..65535",
    );
}

const JWKS: &str = r#"{"keys": [{"kty": "RSA", "e": "AQAB", "n": "AQAB"}]}"#;

#[test]
fn request_authentication() {
    assert_clean(&ra(r#"
        selector: {matchLabels: {app: api}}
        jwtRules:
        - issuer: https://accounts.example.com
          audiences: [api]
          jwksUri: https://accounts.example.com/.well-known/jwks.json
          fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
          fromParams: [token]
          outputClaimToHeaders: [{header: x-sub, claim: sub}]
          timeout: 5s
    "#));
    assert_clean(&ra(&format!("jwtRules: [{{issuer: a, jwks: '{JWKS}'}}]")));
    assert_error(
        &ra("jwtRules: [{issuer: ''}]"),
        "spec.jwtRules[0].issuer",
        "issuer is required",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, jwksUri: 'ftp://example.com/jwks'}]"),
        "spec.jwtRules[0].jwksUri",
        "jwksUri \"ftp://example.com/jwks\" must be an http or https URL",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, jwksUri: '/jwks'}]"),
        "spec.jwtRules[0].jwksUri",
        "must be an http or https URL",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, jwks: 'not json'}]"),
        "spec.jwtRules[0].jwks",
        "jwks: not a JSON Web Key Set",
    );
    assert_error(
        &ra(r#"jwtRules: [{issuer: a, jwks: '{"keys": [{"kty": "RSA", "e": "AQAB"}]}'}]"#),
        "spec.jwtRules[0].jwks",
        "keys[0]: RSA key without \"n\"",
    );
    assert_clean(&ra(
        "jwtRules: [{issuer: a, jwksUri: 'file:///etc/mesh/jwks.json'}]",
    ));
    assert_error(
        &ra("jwtRules: [{issuer: a, jwks: '{\"kty\": \"RSA\"}'}]"),
        "spec.jwtRules[0].jwks",
        "expected {\"keys\": [...]}",
    );
    assert_warning(
        &ra(&format!(
            "jwtRules: [{{issuer: a, jwksUri: 'https://a.com/jwks', jwks: '{JWKS}'}}]"
        )),
        "spec.jwtRules[0].jwks",
        "both jwks and jwksUri are set",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, audiences: ['']}]"),
        "spec.jwtRules[0].audiences[0]",
        "audience must not be empty",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, fromHeaders: [{name: ''}]}]"),
        "spec.jwtRules[0].fromHeaders[0].name",
        "header name must not be empty",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, fromCookies: ['']}]"),
        "spec.jwtRules[0].fromCookies[0]",
        "name must not be empty",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, outputClaimToHeaders: [{header: x-sub, claim: ''}]}]"),
        "spec.jwtRules[0].outputClaimToHeaders[0].claim",
        "claim must not be empty",
    );
    assert_has(
        &ra("jwtRules: [{issuer: a, outputClaimToHeaders: [{header: 'x sub', claim: sub}]}]"),
        Severity::Error,
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
        "header name \"x sub\" is not a valid HTTP header name",
    );
    assert_error(
        &ra("jwtRules: [{issuer: a, timeout: 0s}]"),
        "spec.jwtRules[0].timeout",
        "duration must be greater than 0",
    );
}
