//! The workload's identity and its certificate.
//!
//! [`Identity`] is the SPIFFE ID (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`). A
//! [`CertificateSource`] issues certificates for it: [`CaClient`] sends a CSR ([`csr`]) to
//! citadel. The [`CertificateManager`] holds the current [`WorkloadCertificate`] (chain, key
//! and trust bundle) for TLS handshakes to read, and its renewal task ([`renewal`]) replaces
//! it at half-life. [`crate::tls`] builds rustls configs on top of it.

pub mod caclient;
pub mod certificate;
pub mod csr;
pub mod manager;
pub mod renewal;
pub mod source;
pub mod spiffe;
pub mod x509;

pub use caclient::{CaClient, CaError};
pub use certificate::{CertError, TrustBundle, WorkloadCertificate};
pub use manager::{CertificateManager, RenewalStatus, WrongIdentity};
pub use renewal::Policy;
pub use source::{CertificateSource, FetchError};
pub use spiffe::{Identity, IdentityError};
pub use x509::CertInfo;
