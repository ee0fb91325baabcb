//! Where workload certificates come from: citadel ([`super::CaClient`]) in a mesh; a test CA
//! in tests; files (e.g. cert-manager's) in a mode to come.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::certificate::WorkloadCertificate;
use super::spiffe::Identity;

/// Why a source could not deliver; the manager logs it and retries.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Issues a certificate, key included, for an identity.
pub trait CertificateSource: Send + Sync + 'static {
    /// A new certificate for `identity`, valid for about `ttl` (the issuer may shorten it).
    fn fetch<'a>(
        &'a self,
        identity: &'a Identity,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<WorkloadCertificate, FetchError>>;
}
