//! Checking peers. Workload certificates name a SPIFFE ID in a URI SAN and no DNS names, so
//! rustls' name checks cannot apply; the chain, validity and key usage checks do, against
//! the trust bundle current at each handshake (during a root rotation it holds both roots).
//! Clients must prove some mesh identity; servers must prove one the destination may have.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{Error, SignatureScheme};

use crate::identity::{CertificateManager, Identity, TrustBundle, x509};

/// The server's certificate proves an identity the client did not expect.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the peer presented {presented}, expected {}", list(.expected))]
pub struct UnexpectedIdentity {
    pub expected: Vec<Identity>,
    pub presented: Identity,
}

/// rustls shows certificate errors of its own kinds with `Debug`: make that readable too.
impl fmt::Debug for UnexpectedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn list(identities: &[Identity]) -> String {
    match identities {
        [] => "no identity at all".to_owned(),
        [one] => one.to_string(),
        many => {
            let names: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("one of [{}]", names.join(", "))
        }
    }
}

/// Inbound: a client chain to one of the bundle's roots, valid now, for client auth, with a
/// SPIFFE ID. Whether a certificate is required at all is `mandatory`.
pub struct ClientVerifier {
    pub manager: Arc<CertificateManager>,
    pub mandatory: bool,
    pub provider: Arc<CryptoProvider>,
}

/// Outbound: a server chain to one of the bundle's roots, valid now, for server auth, whose
/// SPIFFE ID is one of `expected`.
pub struct ServerVerifier {
    pub manager: Arc<CertificateManager>,
    pub expected: Vec<Identity>,
    pub provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// None: the bundle may change between handshakes, and mesh clients have one
    /// certificate to offer anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let bundle = bundle(&self.manager)?;
        // Building it per handshake is cheap (a few roots) and follows the bundle.
        let webpki = WebPkiClientVerifier::builder_with_provider(
            bundle.roots().clone(),
            self.provider.clone(),
        )
        .build()
        .map_err(|error| Error::General(format!("trust bundle: {error}")))?;
        webpki.verify_client_cert(end_entity, intermediates, now)?;
        spiffe_id(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let bundle = bundle(&self.manager)?;
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            bundle.roots(),
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let presented = spiffe_id(end_entity)?;
        if !self.expected.contains(&presented) {
            let error = UnexpectedIdentity {
                expected: self.expected.clone(),
                presented,
            };
            return Err(CertificateError::Other(OtherError(Arc::new(error))).into());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn bundle(manager: &CertificateManager) -> Result<TrustBundle, Error> {
    match manager.current() {
        Some(cert) => Ok(cert.bundle().clone()),
        None => Err(Error::General(
            "no trust bundle yet: the workload certificate has not arrived".into(),
        )),
    }
}

fn spiffe_id(der: &CertificateDer<'_>) -> Result<Identity, Error> {
    x509::spiffe_id(der)
        .map_err(|error| CertificateError::Other(OtherError(Arc::new(error))).into())
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("identity", self.manager.identity())
            .field("mandatory", &self.mandatory)
            .finish()
    }
}

impl fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerVerifier")
            .field("expected", &list(&self.expected))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sa: &str) -> Identity {
        Identity::new("td", "ns", sa).expect("valid")
    }

    #[test]
    fn the_refusal_names_both_sides() {
        let one = UnexpectedIdentity {
            expected: vec![id("a")],
            presented: id("x"),
        };
        assert_eq!(
            one.to_string(),
            "the peer presented spiffe://td/ns/ns/sa/x, expected spiffe://td/ns/ns/sa/a"
        );
        let many = UnexpectedIdentity {
            expected: vec![id("a"), id("b")],
            presented: id("x"),
        };
        assert!(
            many.to_string()
                .ends_with("expected one of [spiffe://td/ns/ns/sa/a, spiffe://td/ns/ns/sa/b]")
        );
        assert_eq!(format!("{many:?}"), many.to_string());
    }
}
