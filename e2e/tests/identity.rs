//! A proxy gets its workload identity from a real citadel: over TLS verified with the
//! trust bundle citadel wrote, with a bootstrap token, and only for the identity the token
//! proves.

#![allow(clippy::unwrap_used)]

mod support;

use http::StatusCode;
use support::{Citadel, Proxy, get, wait_for};

/// A proxy of `namespace/service_account` that serves nothing but asks citadel for a cert.
fn proxy(citadel: &Citadel, namespace: &str, service_account: &str, token: &str) -> Proxy {
    let snapshot = citadel.dir.path().join("snapshot.yaml");
    std::fs::write(&snapshot, "version: empty\n").unwrap();
    let mut args = vec![
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--service-account",
        service_account,
    ];
    let identity = citadel.identity_args(token);
    args.extend(identity.iter().map(String::as_str));
    Proxy::start_args(service_account, namespace, &args)
}

#[tokio::test]
async fn a_proxy_gets_its_spiffe_identity_from_citadel_and_becomes_ready() {
    let citadel = Citadel::start(&[("reviews-token", "shop", "reviews")]);
    let proxy = proxy(&citadel, "shop", "reviews", "reviews-token");
    wait_for("readiness after the first certificate", || async {
        let (status, _) = get(proxy.health, "health", "/healthz/ready").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let certs = proxy.admin_json("/certs").await;
    assert_eq!(
        certs["identity"],
        "spiffe://cluster.local/ns/shop/sa/reviews"
    );
    let leaf_issuer = certs["chain"][0]["issuer"].as_str().unwrap().to_owned();
    let roots: Vec<&str> = certs["trust_bundle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert!(
        roots.contains(&leaf_issuer.as_str()),
        "{leaf_issuer} not in {roots:?}"
    );
    let (_, metrics) = get(citadel.monitoring, "citadel", "/metrics").await;
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("citadel_cert_issued_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_for_another_identity_gets_no_certificate() {
    let citadel = Citadel::start(&[("reviews-token", "shop", "reviews")]);
    // Claims to be ratings with reviews' token.
    let proxy = proxy(&citadel, "shop", "ratings", "reviews-token");
    let error = wait_for("citadel's refusal", || async {
        let certs = proxy.admin_json("/certs").await;
        certs["renewal"]["last_error"].as_str().map(str::to_owned)
    })
    .await;
    assert!(
        error.contains("PermissionDenied") || error.contains("permission"),
        "{error}"
    );
    let (status, _) = get(proxy.health, "health", "/healthz/ready").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "never ready without a cert"
    );
    let certs = proxy.admin_json("/certs").await;
    assert!(certs["serial"].is_null());
}
