//! TokenReview: the API server decides, citadel checks the audience and the username.

use mesh_citadel::auth::token_review::TokenReviewer;
use mesh_citadel::auth::{AuthError, Authenticator};
use serde_json::json;

use crate::fake_api::FakeApi;

fn reviewed(audiences: &[&str], username: &str) -> serde_json::Value {
    json!({"authenticated": true, "audiences": audiences,
           "user": {"username": username, "uid": "u-1", "groups": ["system:serviceaccounts"]}})
}

#[tokio::test]
async fn a_projected_token_for_mesh_ca_proves_its_service_account() {
    let api = FakeApi::start().await;
    api.review(
        "good",
        reviewed(&["mesh-ca"], "system:serviceaccount:shop:reviews"),
    );
    let reviewer = TokenReviewer::new(api.client.clone(), "mesh-ca");
    let identity = reviewer.authenticate("good").await.expect("authenticated");
    assert_eq!(identity.to_string(), "shop/reviews");

    let sent = api.requests().pop().expect("a review");
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/apis/authentication.k8s.io/v1/tokenreviews");
    assert_eq!(
        sent.body["spec"],
        json!({"token": "good", "audiences": ["mesh-ca"]})
    );
}

#[tokio::test]
async fn unauthenticated_wrong_audience_and_user_tokens_are_refused() {
    let api = FakeApi::start().await;
    api.review(
        "other-audience",
        reviewed(
            &["https://kubernetes.default.svc"],
            "system:serviceaccount:shop:reviews",
        ),
    );
    api.review("admin", reviewed(&["mesh-ca"], "kubernetes-admin"));
    let reviewer = TokenReviewer::new(api.client.clone(), "mesh-ca");

    let error = reviewer.authenticate("expired").await.unwrap_err();
    assert_eq!(
        error,
        AuthError::Invalid("TokenReview: invalid bearer token".into())
    );
    let error = reviewer.authenticate("other-audience").await.unwrap_err();
    assert!(
        matches!(&error, AuthError::Invalid(m) if m.contains("\"mesh-ca\"")),
        "{error}"
    );
    let error = reviewer.authenticate("admin").await.unwrap_err();
    assert_eq!(error, AuthError::NotWorkload("kubernetes-admin".into()));
}

#[tokio::test]
async fn an_unreachable_api_server_is_unavailable_not_unauthenticated() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let error = TokenReviewer::new(client, "mesh-ca")
        .authenticate("t")
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::Unavailable(_)), "{error}");
}
