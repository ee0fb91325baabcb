//! `when`: every condition key Istio defines.

use serde_json::json;

use super::Want::*;
use super::*;

/// An ALLOW policy `foo/p` with one rule whose only condition is `condition` (flow YAML).
fn allow_when(condition: &str) -> [(&'static str, String); 1] {
    [("foo/p", format!("{{rules: [{{when: [{condition}]}}]}}"))]
}

#[test]
fn headers() {
    check(vec![
        row(
            "header, name in any case",
            &allow_when("{key: 'request.headers[X-Tenant]', values: [acme]}"),
            get().header("x-tenant", "acme"),
            AllowedBy("foo/p"),
        ),
        row(
            "header absent",
            &allow_when("{key: 'request.headers[x-tenant]', values: [acme]}"),
            get(),
            NotAllowed,
        ),
        row(
            "header prefix",
            &allow_when("{key: 'request.headers[User-Agent]', values: [Mozilla/*]}"),
            get().header("user-agent", "Mozilla/5.0"),
            AllowedBy("foo/p"),
        ),
        row(
            "header presence holds for an empty value",
            &allow_when("{key: 'request.headers[x-debug]', values: ['*']}"),
            get().header("x-debug", ""),
            AllowedBy("foo/p"),
        ),
        row(
            "header notValues excludes",
            &allow_when("{key: 'request.headers[x-tenant]', notValues: [blocked]}"),
            get().header("x-tenant", "blocked"),
            NotAllowed,
        ),
        row(
            "header notValues admits an absent header",
            &allow_when("{key: 'request.headers[x-tenant]', notValues: [blocked]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "repeated header joined with commas",
            &allow_when("{key: 'request.headers[x-a]', values: ['1,2']}"),
            get().header("x-a", "1").header("x-a", "2"),
            AllowedBy("foo/p"),
        ),
        row(
            "header :authority",
            &allow_when("{key: 'request.headers[:authority]', values: ['web.*']}"),
            get(),
            AllowedBy("foo/p"),
        ),
    ]);
}

#[test]
fn jwt() {
    let token = json!({
        "iss": "https://accounts.example.com",
        "sub": "alice",
        "aud": ["api.example.com", "web.example.com"],
        "azp": "client-1",
        "groups": ["dev", "admins"],
        "tier": "gold",
        "level": 42,
        "realm_access": {"roles": ["viewer", "editor"]},
    });
    let jwt = || get().jwt(token.clone());
    check(vec![
        row(
            "claim in a list",
            &allow_when("{key: 'request.auth.claims[groups]', values: [admins]}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "claim not in a list",
            &allow_when("{key: 'request.auth.claims[groups]', values: [ops]}"),
            jwt(),
            NotAllowed,
        ),
        row(
            "string claim",
            &allow_when("{key: 'request.auth.claims[tier]', values: [gold]}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "string claim prefix",
            &allow_when("{key: 'request.auth.claims[iss]', values: ['https://accounts.*']}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "nested claim",
            &allow_when("{key: 'request.auth.claims[realm_access][roles]', values: [editor]}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "nested claim, missing level",
            &allow_when("{key: 'request.auth.claims[realm][roles]', values: [editor]}"),
            jwt(),
            NotAllowed,
        ),
        row(
            "a number claim is not a string",
            &allow_when("{key: 'request.auth.claims[level]', values: ['42']}"),
            jwt(),
            NotAllowed,
        ),
        row(
            "claim presence needs a non-empty value",
            &allow_when("{key: 'request.auth.claims[tier]', values: ['*']}"),
            get().jwt(json!({"tier": ""})),
            NotAllowed,
        ),
        row(
            "claim without a token",
            &allow_when("{key: 'request.auth.claims[groups]', values: [admins]}"),
            get(),
            NotAllowed,
        ),
        row(
            "claim notValues without a token",
            &allow_when("{key: 'request.auth.claims[groups]', notValues: [admins]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "claim notValues in a list",
            &allow_when("{key: 'request.auth.claims[groups]', notValues: [admins]}"),
            jwt(),
            NotAllowed,
        ),
        row(
            "audiences from a list",
            &allow_when("{key: request.auth.audiences, values: [web.example.com]}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "audiences from a string",
            &allow_when("{key: request.auth.audiences, values: [api]}"),
            get().jwt(json!({"aud": "api"})),
            AllowedBy("foo/p"),
        ),
        row(
            "presenter",
            &allow_when("{key: request.auth.presenter, values: [client-1]}"),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "request principal",
            &allow_when(
                "{key: request.auth.principal, values: ['https://accounts.example.com/alice']}",
            ),
            jwt(),
            AllowedBy("foo/p"),
        ),
        row(
            "request principal, other",
            &allow_when(
                "{key: request.auth.principal, values: ['https://accounts.example.com/bob']}",
            ),
            jwt(),
            NotAllowed,
        ),
    ]);
}

#[test]
fn connection() {
    check(vec![
        row(
            "source.ip",
            &allow_when("{key: source.ip, values: [10.0.0.0/24]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "source.ip notValues",
            &allow_when("{key: source.ip, notValues: [10.0.0.5]}"),
            get(),
            NotAllowed,
        ),
        row(
            "remote.ip",
            &allow_when("{key: remote.ip, values: [203.0.113.0/24]}"),
            get().remote("203.0.113.7"),
            AllowedBy("foo/p"),
        ),
        row(
            "source.namespace",
            &allow_when("{key: source.namespace, values: [default]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "source.namespace needs mTLS",
            &allow_when("{key: source.namespace, values: [default]}"),
            get().plaintext(),
            NotAllowed,
        ),
        row(
            "source.principal",
            &allow_when("{key: source.principal, values: [cluster.local/ns/default/sa/sleep]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "destination.ip",
            &allow_when("{key: destination.ip, values: [10.0.1.1]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "destination.ip IPv6",
            &allow_when("{key: destination.ip, values: ['fd00::/8']}"),
            get().to("[fd00::1]:8080"),
            AllowedBy("foo/p"),
        ),
        row(
            "destination.port",
            &allow_when("{key: destination.port, values: ['8080']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "destination.port notValues",
            &allow_when("{key: destination.port, notValues: ['8080']}"),
            get(),
            NotAllowed,
        ),
        row(
            "connection.sni",
            &allow_when("{key: connection.sni, values: ['*.example.com']}"),
            get().sni("web.example.com"),
            AllowedBy("foo/p"),
        ),
        row(
            "connection.sni without TLS",
            &allow_when("{key: connection.sni, values: ['*']}"),
            get(),
            NotAllowed,
        ),
    ]);
}
