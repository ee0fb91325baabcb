//! `from`: principals, namespaces, service accounts, IP blocks and request principals.

use serde_json::json;

use super::Want::*;
use super::*;

/// An ALLOW policy `foo/p` with one rule whose only source is `source` (flow YAML).
fn allow_from(source: &str) -> [(&'static str, String); 1] {
    [(
        "foo/p",
        format!("{{rules: [{{from: [{{source: {source}}}]}}]}}"),
    )]
}

const ALICE: &str = "https://accounts.example.com/alice";

fn alice() -> serde_json::Value {
    json!({"iss": "https://accounts.example.com", "sub": "alice"})
}

#[test]
fn principals_namespaces_service_accounts() {
    check(vec![
        row(
            "principal exact",
            &allow_from("{principals: [cluster.local/ns/default/sa/sleep]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "principal exact, other account",
            &allow_from("{principals: [cluster.local/ns/default/sa/web]}"),
            get(),
            NotAllowed,
        ),
        row(
            "principal written with spiffe:// never matches",
            &allow_from("{principals: ['spiffe://cluster.local/ns/default/sa/sleep']}"),
            get(),
            NotAllowed,
        ),
        row(
            "principal prefix",
            &allow_from("{principals: [cluster.local/ns/default/*]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "principal suffix",
            &allow_from("{principals: ['*/sa/sleep']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "principal presence with mTLS",
            &allow_from("{principals: ['*']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "principal presence without mTLS",
            &allow_from("{principals: ['*']}"),
            get().plaintext(),
            NotAllowed,
        ),
        row(
            "notPrincipals excludes the peer",
            &allow_from("{notPrincipals: [cluster.local/ns/default/sa/sleep]}"),
            get(),
            NotAllowed,
        ),
        row(
            "notPrincipals admits another peer",
            &allow_from("{notPrincipals: [cluster.local/ns/default/sa/sleep]}"),
            get().peer("spiffe://cluster.local/ns/default/sa/web"),
            AllowedBy("foo/p"),
        ),
        row(
            "notPrincipals admits plaintext (ISTIO-SECURITY-2021-004)",
            &allow_from("{notPrincipals: ['*']}"),
            get().plaintext(),
            AllowedBy("foo/p"),
        ),
        row(
            "a non-SPIFFE identity has no principal",
            &allow_from("{principals: ['*']}"),
            get().peer("cluster.local/ns/default/sa/sleep"),
            NotAllowed,
        ),
        row(
            "namespace exact",
            &allow_from("{namespaces: [default]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "namespace other",
            &allow_from("{namespaces: [prod]}"),
            get(),
            NotAllowed,
        ),
        row(
            "namespace prefix",
            &allow_from("{namespaces: ['def*']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "namespace needs mTLS",
            &allow_from("{namespaces: [default]}"),
            get().plaintext(),
            NotAllowed,
        ),
        row(
            "notNamespaces excludes",
            &allow_from("{notNamespaces: [default]}"),
            get(),
            NotAllowed,
        ),
        row(
            "notNamespaces admits plaintext",
            &allow_from("{notNamespaces: [default]}"),
            get().plaintext(),
            AllowedBy("foo/p"),
        ),
        row(
            "service account ns/sa",
            &allow_from("{serviceAccounts: [default/sleep]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "bare service account is in the policy's namespace",
            &allow_from("{serviceAccounts: [sleep]}"),
            get(),
            NotAllowed,
        ),
        row(
            "bare service account, policy in default",
            &[(
                "default/p",
                "{rules: [{from: [{source: {serviceAccounts: [sleep]}}]}]}",
            )],
            get(),
            AllowedBy("default/p"),
        ),
        row(
            "service account in another namespace",
            &allow_from("{serviceAccounts: [prod/sleep]}"),
            get(),
            NotAllowed,
        ),
        row(
            "notServiceAccounts",
            &allow_from("{notServiceAccounts: [default/sleep]}"),
            get(),
            NotAllowed,
        ),
        row(
            "source fields are ANDed",
            &allow_from("{principals: ['*'], namespaces: [prod]}"),
            get(),
            NotAllowed,
        ),
        row(
            "sources are ORed",
            &[(
                "foo/p",
                "{rules: [{from: [{source: {namespaces: [prod]}}, {source: {namespaces: [default]}}]}]}",
            )],
            get(),
            AllowedBy("foo/p"),
        ),
    ]);
}

#[test]
fn ip_blocks() {
    check(vec![
        row(
            "ipBlocks CIDR",
            &allow_from("{ipBlocks: [10.0.0.0/24]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "ipBlocks /32",
            &allow_from("{ipBlocks: [10.0.0.5/32]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "ipBlocks bare address",
            &allow_from("{ipBlocks: [10.0.0.6]}"),
            get(),
            NotAllowed,
        ),
        row(
            "ipBlocks /0",
            &allow_from("{ipBlocks: [0.0.0.0/0]}"),
            get().source_ip("203.0.113.9"),
            AllowedBy("foo/p"),
        ),
        row(
            "IPv6 /0 does not hold IPv4",
            &allow_from("{ipBlocks: ['::/0']}"),
            get(),
            NotAllowed,
        ),
        row(
            "IPv6 block",
            &allow_from("{ipBlocks: ['2001:db8::/64']}"),
            get().source_ip("2001:db8::5"),
            AllowedBy("foo/p"),
        ),
        row(
            "IPv4-mapped IPv6 peer",
            &allow_from("{ipBlocks: [10.0.0.0/24]}"),
            get().source_ip("::ffff:10.0.0.5"),
            AllowedBy("foo/p"),
        ),
        row(
            "notIpBlocks",
            &allow_from("{notIpBlocks: [10.0.0.0/8]}"),
            get(),
            NotAllowed,
        ),
        row(
            "remoteIpBlocks reads X-Forwarded-For",
            &allow_from("{remoteIpBlocks: [203.0.113.0/24]}"),
            get().remote("203.0.113.7"),
            AllowedBy("foo/p"),
        ),
        row(
            "ipBlocks read the peer, not X-Forwarded-For",
            &allow_from("{ipBlocks: [203.0.113.0/24]}"),
            get().remote("203.0.113.7"),
            NotAllowed,
        ),
        row(
            "remoteIpBlocks without XFF read the peer",
            &allow_from("{remoteIpBlocks: [10.0.0.0/24]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "notRemoteIpBlocks",
            &allow_from("{notRemoteIpBlocks: [203.0.113.7]}"),
            get().remote("203.0.113.7"),
            NotAllowed,
        ),
    ]);
}

#[test]
fn request_principals() {
    check(vec![
        row(
            "request principal exact",
            &allow_from(&format!("{{requestPrincipals: ['{ALICE}']}}")),
            get().jwt(alice()),
            AllowedBy("foo/p"),
        ),
        row(
            "request principal, other subject",
            &allow_from("{requestPrincipals: ['https://accounts.example.com/bob']}"),
            get().jwt(alice()),
            NotAllowed,
        ),
        row(
            "request principal, any subject of an issuer",
            &allow_from("{requestPrincipals: ['https://accounts.example.com/*']}"),
            get().jwt(alice()),
            AllowedBy("foo/p"),
        ),
        row(
            "require a JWT: present",
            &allow_from("{requestPrincipals: ['*']}"),
            get().jwt(alice()),
            AllowedBy("foo/p"),
        ),
        row(
            "require a JWT: absent",
            &allow_from("{requestPrincipals: ['*']}"),
            get(),
            NotAllowed,
        ),
        row(
            "DENY requests without a JWT",
            &[(
                "foo/d",
                "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}",
            )],
            get(),
            DeniedBy("foo/d"),
        ),
        row(
            "DENY requests without a JWT, one given",
            &[(
                "foo/d",
                "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}",
            )],
            get().jwt(alice()),
            Open,
        ),
        row(
            "a token with an empty sub has no principal",
            &allow_from("{requestPrincipals: ['*']}"),
            get().jwt(json!({"iss": "https://accounts.example.com", "sub": ""})),
            NotAllowed,
        ),
        row(
            "a token without sub has no principal",
            &allow_from("{requestPrincipals: ['*']}"),
            get().jwt(json!({"iss": "https://accounts.example.com"})),
            NotAllowed,
        ),
    ]);
}
