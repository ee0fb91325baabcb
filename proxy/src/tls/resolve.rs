//! The proxy's own certificate in each handshake, as the manager holds it at that moment:
//! a renewal needs no new config, and connections already open keep theirs.

use std::fmt;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::identity::CertificateManager;

pub struct ManagerResolver(pub Arc<CertificateManager>);

impl ManagerResolver {
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let cert = self.0.current();
        if cert.is_none() {
            tracing::warn!("mTLS handshake before the workload certificate arrived");
        }
        cert.map(|cert| cert.certified_key().clone())
    }
}

impl ResolvesServerCert for ManagerResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl ResolvesClientCert for ManagerResolver {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl fmt::Debug for ManagerResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManagerResolver")
            .field(self.0.identity())
            .finish()
    }
}
