//! RequestAuthentication on inbound HTTP: the request's JWT checked before authorization.
//! A refused token is answered 401 here; a valid one's claims go on to authorization.

use std::time::SystemTime;

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use mesh_core::authn::{Failure, Outcome};
use serde_json::Value;

use crate::http::Body;
use crate::state::State;

/// JWT checks by result (`success`, `failure`, `no_token`) and reason of failure.
pub const JWT_AUTHN: &str = "mesh_jwt_authn_total";

/// The verified claims (`None` without a token, or with no rules), or why the token is
/// refused ([`unauthorized`] answers it). On success the request's headers are rewritten as
/// the rule says.
pub fn authenticate(state: &State, parts: &mut Parts) -> Result<Option<Value>, Failure> {
    let Some(runtime) = state.current() else {
        return Ok(None);
    };
    let authn = &runtime.config.authn;
    if authn.is_empty() {
        return Ok(None);
    }
    match authn.authenticate(parts, SystemTime::now()) {
        Outcome::NoToken => {
            metrics::counter!(JWT_AUTHN, "result" => "no_token", "reason" => "").increment(1);
            Ok(None)
        }
        Outcome::Authenticated(ok) => {
            metrics::counter!(JWT_AUTHN, "result" => "success", "reason" => "").increment(1);
            Ok(Some(ok.claims))
        }
        Outcome::Refused(refusal) => {
            let reason = refusal.failure.reason();
            metrics::counter!(JWT_AUTHN, "result" => "failure", "reason" => reason).increment(1);
            tracing::debug!(
                policy = refusal.policy.as_deref().unwrap_or("none"),
                reason,
                error = %refusal.failure,
                path = %parts.uri.path(),
                "JWT refused"
            );
            Err(refusal.failure)
        }
    }
}

/// Envoy's `jwt_authn` answer: 401 with the reason and a Bearer challenge (RFC 6750).
pub fn unauthorized(failure: &Failure) -> Response<Body> {
    let text = failure.to_string();
    let mut response = crate::http::local_reply(StatusCode::UNAUTHORIZED, &text, None);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="mesh", error="invalid_token""#),
    );
    response
}
