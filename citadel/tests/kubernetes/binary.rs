//! The real binary with `--kubernetes` against the fake API server: it creates the CA
//! Secret, publishes the bundle ConfigMap, and signs for TokenReview-proven identities; its
//! serving certificate verifies for citadel.mesh-system.svc with the ConfigMap's bundle.

use serde_json::json;
use tonic::Code;

use crate::fake_api::{FakeApi, namespace};
use crate::support::client::{connect_as, request};
use crate::support::{
    Citadel, REVIEWS, assert_no_secret, base64_decode, csr_for, ders, eventually, verify,
};

#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_mode_end_to_end() {
    let api = FakeApi::start().await;
    api.put(
        "/api/v1/namespaces/shop",
        namespace("shop", json!({"mesh-injection": "enabled"})),
    );
    api.review(
        "projected-reviews",
        json!({"authenticated": true, "audiences": ["mesh-ca"],
        "user": {"username": "system:serviceaccount:shop:reviews"}}),
    );
    api.review(
        "projected-ratings",
        json!({"authenticated": true, "audiences": ["mesh-ca"],
        "user": {"username": "system:serviceaccount:shop:ratings"}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let kubeconfig = kubeconfig.display().to_string();
    let citadel =
        Citadel::start_with_env(&["--kubernetes".to_owned()], &[("KUBECONFIG", &kubeconfig)]);

    let config_map = "/api/v1/namespaces/shop/configmaps/mesh-ca-root-cert";
    eventually("the bundle ConfigMap", || {
        let found = api.get(config_map).is_some();
        async move { found }
    })
    .await;
    let bundle = api.get(config_map).unwrap()["data"]["root-cert.pem"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = api
        .get("/api/v1/namespaces/mesh-system/secrets/mesh-ca")
        .expect("CA Secret");
    let key_b64 = secret["data"]["root-key.pem"].as_str().unwrap().to_owned();
    let key = String::from_utf8(base64_decode(&key_b64)).unwrap();
    assert!(key.contains("BEGIN PRIVATE KEY"));

    let mut client = connect_as(citadel.grpc, &bundle, "citadel.mesh-system.svc")
        .await
        .expect("serving certificate verifies for the Service name");
    let csr = csr_for(&[REVIEWS]);
    let answer = request(&mut client, &csr, 0, Some("projected-reviews"))
        .await
        .expect("signed");
    verify(&answer.cert_chain, &ders(std::slice::from_ref(&bundle)))
        .expect("verifies with the ConfigMap");
    let mismatch = request(&mut client, &csr, 0, Some("projected-ratings"))
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), Code::PermissionDenied, "{mismatch:?}");
    let unknown = request(&mut client, &csr, 0, Some("stolen"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");

    let answers = format!("{answer:?}{mismatch:?}{unknown:?}");
    let logs = citadel.stop();
    let secrets = [key, key_b64, "projected-reviews".to_owned()];
    assert_no_secret(&secrets, &logs, "citadel's output");
    assert_no_secret(&secrets, &answers, "citadel's answers");
}
