//! `CreateCertificate`: authenticate the caller, check the CSR against the identity the
//! credential proves, sign. Refusals say what was wrong and count by reason.

use std::sync::Arc;
use std::time::SystemTime;

use mesh_proto::ca::v1::certificate_service_server::{
    CertificateService, CertificateServiceServer,
};
use mesh_proto::ca::v1::{CertificateRequest, CertificateResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::auth::{self, AuthError, Authenticator};
use crate::ca::authority::IssueError;
use crate::ca::ttl::TtlError;
use crate::ca::{Authority, LeafKind, TtlPolicy};
use crate::cert;
use crate::csr::{self, CsrError};
use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error(transparent)]
    Ttl(#[from] TtlError),
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Auth(e) => e.reason(),
            Refusal::Csr(e) => e.reason(),
            Refusal::Ttl(_) => "bad_ttl",
            Refusal::Issue(IssueError::Ttl(_)) => "ca_unavailable",
            Refusal::Issue(_) => "internal",
        }
    }

    fn status(&self) -> Status {
        let message = self.to_string();
        match self {
            Refusal::Auth(AuthError::NotWorkload(_)) => Status::permission_denied(message),
            Refusal::Auth(AuthError::Unavailable(_)) => Status::unavailable(message),
            Refusal::Auth(_) => Status::unauthenticated(message),
            Refusal::Csr(CsrError::IdentityMismatch { .. }) => Status::permission_denied(message),
            Refusal::Csr(_) | Refusal::Ttl(_) => Status::invalid_argument(message),
            Refusal::Issue(IssueError::Ttl(_)) => Status::unavailable(message),
            Refusal::Issue(_) => Status::internal(message),
        }
    }
}

pub struct CaService {
    authority: watch::Receiver<Arc<Authority>>,
    authenticator: Arc<dyn Authenticator>,
    trust_domain: String,
    ttl: TtlPolicy,
}

impl CaService {
    pub fn new(
        authority: watch::Receiver<Arc<Authority>>,
        authenticator: Arc<dyn Authenticator>,
        trust_domain: &str,
        ttl: TtlPolicy,
    ) -> Self {
        Self {
            authority,
            authenticator,
            trust_domain: trust_domain.to_owned(),
            ttl,
        }
    }

    pub fn into_server(self) -> CertificateServiceServer<Self> {
        CertificateServiceServer::new(self)
    }

    async fn sign(&self, request: &Request<CertificateRequest>) -> Result<Signed, Refusal> {
        let header = request.metadata().get("authorization");
        let token = auth::bearer(header.and_then(|v| v.to_str().ok()))?;
        let identity = self.authenticator.authenticate(token).await?;
        let proven = identity.spiffe_id(&self.trust_domain);
        let body = request.get_ref();
        let checked = csr::parse(&body.csr, &proven)?;
        checked.check_identity(&proven)?;
        let lifetime = self.ttl.lifetime(body.validity_duration_seconds)?;
        let authority = self.authority.borrow().clone();
        let kind = LeafKind::Workload { spiffe_id: proven };
        let issued = authority.issue(&checked.public_key, &kind, lifetime, SystemTime::now())?;
        Ok(Signed {
            response: CertificateResponse {
                cert_chain: issued.chain,
                trust_bundle: authority.bundle().pems(),
            },
            spiffe_id: checked.uri,
            not_after: issued.not_after,
        })
    }
}

struct Signed {
    response: CertificateResponse,
    spiffe_id: String,
    not_after: SystemTime,
}

#[tonic::async_trait]
impl CertificateService for CaService {
    async fn create_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        match self.sign(&request).await {
            Ok(signed) => {
                let expiry = cert::seconds(signed.not_after);
                metrics::issued(expiry);
                tracing::info!(identity = %signed.spiffe_id, expires = expiry, "issued");
                Ok(Response::new(signed.response))
            }
            Err(refusal) => {
                metrics::refused(refusal.reason());
                let peer = request.remote_addr();
                tracing::warn!(reason = refusal.reason(), ?peer, "refused: {refusal}");
                Err(refusal.status())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_grpc_codes_proxies_act_on() {
        use tonic::Code;
        let mismatch = CsrError::IdentityMismatch {
            requested: "a".into(),
            proven: "b".into(),
        };
        let cases = [
            (Refusal::Auth(AuthError::Missing), Code::Unauthenticated),
            (
                Refusal::Auth(AuthError::Invalid("x".into())),
                Code::Unauthenticated,
            ),
            (
                Refusal::Auth(AuthError::NotWorkload("u".into())),
                Code::PermissionDenied,
            ),
            (
                Refusal::Auth(AuthError::Unavailable("x".into())),
                Code::Unavailable,
            ),
            (Refusal::Csr(mismatch), Code::PermissionDenied),
            (Refusal::Csr(CsrError::Signature), Code::InvalidArgument),
            (
                Refusal::Csr(CsrError::NotUri("DNS:x".into())),
                Code::InvalidArgument,
            ),
            (Refusal::Ttl(TtlError::Negative(-1)), Code::InvalidArgument),
            (
                Refusal::Issue(IssueError::Ttl(TtlError::SignerExpired)),
                Code::Unavailable,
            ),
        ];
        for (refusal, code) in cases {
            let status = refusal.status();
            assert_eq!(status.code(), code, "{refusal}");
            assert_eq!(status.message(), refusal.to_string());
        }
    }
}
