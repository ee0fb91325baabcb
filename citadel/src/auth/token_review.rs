//! Kubernetes credentials: a projected service-account token, checked by the API server with
//! a TokenReview for the audience `mesh-ca`. The identity is the reviewed username,
//! `system:serviceaccount:<namespace>:<service-account>`.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::PostParams;
use kube::{Api, Client};

use super::{AuthError, AuthFuture, Authenticator};
use crate::identity::Identity;

pub struct TokenReviewer {
    api: Api<TokenReview>,
    audience: String,
}

impl TokenReviewer {
    pub fn new(client: Client, audience: &str) -> Self {
        Self {
            api: Api::all(client),
            audience: audience.to_owned(),
        }
    }

    async fn review(&self, token: &str) -> Result<Identity, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let reviewed = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("TokenReview failed: {e}")))?;
        identity(reviewed.status.as_ref(), &self.audience)
    }
}

impl Authenticator for TokenReviewer {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(self.review(token))
    }
}

/// The identity a review proves: authenticated, for `audience` (an API server that ignores
/// audiences returns none, and then the token may be meant for someone else), and a
/// service account.
pub fn identity(status: Option<&TokenReviewStatus>, audience: &str) -> Result<Identity, AuthError> {
    let status =
        status.ok_or_else(|| AuthError::Invalid("the TokenReview has no status".into()))?;
    if status.authenticated != Some(true) {
        let why = status
            .error
            .clone()
            .unwrap_or_else(|| "not authenticated".into());
        return Err(AuthError::Invalid(format!("TokenReview: {why}")));
    }
    let audiences = status.audiences.as_deref().unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err(AuthError::Invalid(format!(
            "the token is not for the audience {audience:?} (reviewed audiences: {audiences:?})"
        )));
    }
    let username = status
        .user
        .as_ref()
        .and_then(|u| u.username.clone())
        .unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    match parts.as_slice() {
        ["system", "serviceaccount", namespace, service_account] => {
            Identity::new(namespace, service_account)
                .map_err(|_| AuthError::NotWorkload(username.clone()))
        }
        _ => Err(AuthError::NotWorkload(username)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use k8s_openapi::api::authentication::v1::UserInfo;

    use super::*;

    fn status(authenticated: bool, audiences: &[&str], username: &str) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated: Some(authenticated),
            audiences: Some(audiences.iter().map(|a| (*a).to_owned()).collect()),
            user: Some(UserInfo {
                username: Some(username.to_owned()),
                ..UserInfo::default()
            }),
            error: None,
        }
    }

    #[test]
    fn a_service_account_for_mesh_ca_is_a_workload() {
        let review = status(true, &["mesh-ca"], "system:serviceaccount:shop:reviews");
        let id = identity(Some(&review), "mesh-ca").expect("workload");
        assert_eq!(id.to_string(), "shop/reviews");
    }

    #[test]
    fn unauthenticated_wrong_audience_and_users_are_refused() {
        let unauthenticated = status(false, &[], "");
        assert!(matches!(
            identity(Some(&unauthenticated), "mesh-ca"),
            Err(AuthError::Invalid(_))
        ));
        let other = status(true, &["kubernetes"], "system:serviceaccount:shop:reviews");
        assert!(matches!(
            identity(Some(&other), "mesh-ca"),
            Err(AuthError::Invalid(_))
        ));
        let admin = status(true, &["mesh-ca"], "kubernetes-admin");
        assert_eq!(
            identity(Some(&admin), "mesh-ca"),
            Err(AuthError::NotWorkload("kubernetes-admin".into()))
        );
        let nested = status(true, &["mesh-ca"], "system:serviceaccount:a:b:c");
        assert!(matches!(
            identity(Some(&nested), "mesh-ca"),
            Err(AuthError::NotWorkload(_))
        ));
        assert!(identity(None, "mesh-ca").is_err());
    }
}
