//! RequestAuthentication with the real binary: JWTs on an inbound listener, refused with
//! 401 when invalid, passed on when absent, and their claims feeding AuthorizationPolicy.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[allow(dead_code)]
#[path = "mtls/citadel.rs"]
mod citadel;
#[allow(dead_code)]
#[path = "inbound/harness.rs"]
mod harness;

use http::StatusCode;
use mesh_core::authn::issuer::{Issuer, unix_time};
use mesh_echo::EchoReply;
use serde_json::json;

use harness::{Mesh, eventually, http_snapshot, plain_get_with};
use support::{echo, metric_value};

const ISS: &str = "https://accounts.example.com";

/// A RequestAuthentication `shop/jwt` trusting `issuer`, then `more` (YAML list items).
fn policies(issuer: &Issuer, rule: &str, more: &str) -> String {
    format!(
        "requestAuthentications:\n- name: shop/jwt\n  spec:\n    jwtRules:\n    - issuer: {ISS}\n      jwks: '{}'\n{rule}{more}",
        issuer.jwks()
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_get_401_valid_ones_and_none_reach_the_app() {
    let issuer = Issuer::es256(ISS, "k1").unwrap();
    let app = echo("v1").await;
    let rule = "      outputClaimToHeaders: [{header: x-user, claim: sub}]\n";
    let mesh = Mesh::start(&http_snapshot(
        "PERMISSIVE",
        app.addr(),
        &policies(&issuer, rule, ""),
    ))
    .await;
    let addr = mesh.proxy.listener("in").await;

    let good = issuer.token(&json!({"sub": "alice", "exp": unix_time(600)}));
    let (status, body) = plain_get_with(addr, "/", &[("authorization", &bearer(&good))])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert!(
        !reply.headers.contains_key("authorization"),
        "the token is not forwarded: {:?}",
        reply.headers
    );
    assert_eq!(
        reply.headers.get("x-user").map(String::as_str),
        Some("alice")
    );

    let (status, _) = plain_get_with(addr, "/", &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK, "no token goes on to authorization");

    let expired = issuer.token(&json!({"sub": "alice", "exp": unix_time(-600)}));
    let forged = Issuer::es256(ISS, "k1")
        .unwrap()
        .token(&json!({"sub": "admin"}));
    let stranger = Issuer::es256("https://evil.example.com", "k1")
        .unwrap()
        .token(&json!({"sub": "x"}));
    for (token, text) in [
        (expired.as_str(), "Jwt is expired"),
        (forged.as_str(), "Jwt verification fails"),
        (stranger.as_str(), "Jwt issuer is not configured"),
        (
            "garbage",
            "Jwt is not in the form of Header.Payload.Signature",
        ),
    ] {
        let (status, body) = plain_get_with(addr, "/", &[("authorization", &bearer(token))])
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.starts_with(text), "{body:?} should say {text:?}");
    }
    assert_eq!(
        app.stats().requests(),
        2,
        "no refused request reached the app"
    );

    let proxy = &mesh.proxy;
    for (result, reason, count) in [
        ("success", "", 1.0),
        ("no_token", "", 1.0),
        ("failure", "expired", 1.0),
        ("failure", "bad_signature", 1.0),
        ("failure", "unknown_issuer", 1.0),
        ("failure", "malformed", 1.0),
    ] {
        let labels = [("result", result), ("reason", reason)];
        assert_eq!(
            metric_value(proxy, "mesh_jwt_authn_total", &labels).await,
            count,
            "{result} {reason}"
        );
    }
    eventually("the 401s are counted as responses", || async {
        metric_value(proxy, "mesh_requests_total", &[("response_code", "401")]).await == 4.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_request_principals_feed_authorization() {
    let issuer = Issuer::rs256_test_key(ISS, "r1").unwrap();
    let app = echo("v1").await;
    // Istio's "require a JWT" pattern, and claims deciding a path.
    let authz = format!(
        r#"authorizationPolicies:
- name: shop/require-jwt
  spec:
    action: ALLOW
    rules:
    - from: [{{source: {{requestPrincipals: ["{ISS}/*"]}}}}]
      to: [{{operation: {{notPaths: ["/admin*"]}}}}]
    - to: [{{operation: {{paths: ["/admin*"]}}}}]
      when: [{{key: "request.auth.claims[groups]", values: [admins]}}]
"#
    );
    let mesh = Mesh::start(&http_snapshot(
        "PERMISSIVE",
        app.addr(),
        &policies(&issuer, "", &authz),
    ))
    .await;
    let addr = mesh.proxy.listener("in").await;
    let alice = issuer.token(&json!({"sub": "alice", "groups": ["admins", "dev"]}));
    let bob = issuer.token(&json!({"sub": "bob", "groups": ["dev"]}));
    let get = |path: &'static str, token: Option<String>| async move {
        let header = token.map(|t| bearer(&t));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        plain_get_with(addr, path, &headers).await.unwrap().0
    };
    assert_eq!(get("/products", None).await, StatusCode::FORBIDDEN);
    assert_eq!(get("/products", Some(bob.clone())).await, StatusCode::OK);
    assert_eq!(get("/admin", Some(bob)).await, StatusCode::FORBIDDEN);
    assert_eq!(get("/admin", Some(alice.clone())).await, StatusCode::OK);
    assert_eq!(get("/products", Some(alice)).await, StatusCode::OK);
    assert_eq!(app.stats().requests(), 3);
    let none = ("policy", "none-allowed");
    assert_eq!(
        metric_value(&mesh.proxy, "mesh_authz_denied_total", &[none]).await,
        2.0
    );
}
