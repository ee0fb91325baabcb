//! Who is asking: the bearer token in the request's metadata proves a workload identity, by
//! a bootstrap token file (local mode) or a Kubernetes TokenReview.

pub mod token_file;
pub mod token_review;

use std::future::Future;
use std::pin::Pin;

use crate::identity::Identity;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no credential: send the metadata `authorization: Bearer <token>`")]
    Missing,
    #[error("the authorization metadata is not `Bearer <token>`")]
    Malformed,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token belongs to {0:?}, which is not a workload's service account")]
    NotWorkload(String),
    #[error("cannot check the token now: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// A short, bounded label for `citadel_csr_refused_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::Malformed | AuthError::Invalid(_) => "unauthenticated",
            AuthError::NotWorkload(_) => "not_workload",
            AuthError::Unavailable(_) => "auth_unavailable",
        }
    }
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send + 'a>>;

/// Turns a bearer token into the identity it proves.
pub trait Authenticator: Send + Sync {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;
}

/// The token in an `authorization` metadata value.
pub fn bearer(value: Option<&str>) -> Result<&str, AuthError> {
    let value = value.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Bearer ")), Err(AuthError::Malformed));
    }
}
