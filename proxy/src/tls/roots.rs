//! The system's CA bundle: what SIMPLE and MUTUAL verify servers against without
//! `caCertificates`, as Envoy in Istio's image does. Read once, from `SSL_CERT_FILE` or
//! the first of the distributions' usual places.

use std::sync::{Arc, LazyLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, older RHEL, macOS/BSD.
const BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

static SYSTEM: LazyLock<Result<Arc<RootCertStore>, String>> = LazyLock::new(load);

/// The system's roots, or the places looked at when there were none.
pub fn system() -> Result<Arc<RootCertStore>, String> {
    SYSTEM.clone()
}

fn load() -> Result<Arc<RootCertStore>, String> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let candidates: Vec<String> = from_env
        .into_iter()
        .chain(BUNDLES.iter().map(|p| (*p).to_owned()))
        .collect();
    for path in &candidates {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        // A bundle may carry a certificate webpki cannot use; the rest still count.
        let (added, _) =
            roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).flatten());
        if added > 0 {
            tracing::debug!(bundle = %path, roots = added, "system CA bundle loaded");
            return Ok(Arc::new(roots));
        }
    }
    Err(candidates.join(", "))
}
