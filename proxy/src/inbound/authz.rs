//! AuthorizationPolicy on inbound traffic: one decision per HTTP request or TCP connection,
//! logged when audited and counted when denied.

use std::net::SocketAddr;

use http::StatusCode;
use http::request::Parts;
use mesh_core::authz::{Decision, DenyReason, HttpRequest, Request};

use super::Peer;
use crate::http::{Body, Flag};
use crate::state::State;

/// Denials, by the DENY policy that matched or `none-allowed`.
pub const AUTHZ_DENIED: &str = "mesh_authz_denied_total";

/// The decision for one request (`http`, with the claims of its verified JWT) or
/// connection (`None`); with no config yet, nothing is known to deny.
pub fn decide(
    state: &State,
    peer: &Peer,
    http: Option<&Parts>,
    jwt_claims: Option<&serde_json::Value>,
) -> Decision {
    let Some(runtime) = state.current() else {
        return Decision::Allow {
            policy: None,
            audit: None,
        };
    };
    let request = Request {
        peer_identity: peer.identity.as_deref(),
        jwt_claims,
        source_ip: peer.address.ip(),
        remote_ip: None,
        destination: peer.local,
        sni: None,
        http: http.map(HttpRequest::from_parts),
    };
    let decision = runtime.config.authz.evaluate(&request);
    report(&decision, peer.address);
    decision
}

fn report(decision: &Decision, address: SocketAddr) {
    if let Some(audit) = decision.audit() {
        tracing::info!(policy = %audit.policy, rule = audit.rule, peer = %address, allowed = decision.is_allowed(), "authorization audited");
    }
    if let Decision::Deny { reason, .. } = decision {
        let policy = match reason {
            DenyReason::Denied(matched) => matched.policy.to_string(),
            DenyReason::NotAllowed => "none-allowed".to_owned(),
        };
        tracing::debug!(peer = %address, %decision, "authorization denied");
        metrics::counter!(AUTHZ_DENIED, "policy" => policy).increment(1);
    }
}

/// Envoy's RBAC filter answer.
pub fn denied_response() -> http::Response<Body> {
    crate::http::local_reply(
        StatusCode::FORBIDDEN,
        "RBAC: access denied",
        Some(Flag::Rbac),
    )
}
