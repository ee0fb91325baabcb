//! Checking servers outside the mesh (SIMPLE, MUTUAL) beyond rustls' own name check:
//! `subjectAltNames`, which replace the SNI name as what the certificate must name, and
//! `insecureSkipVerify`.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme,
};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The server's certificate names none of the DestinationRule's `subjectAltNames`.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's certificate names [{}], none of subjectAltNames [{}]", .presented.join(", "), .expected.join(", "))]
pub struct SanMismatch {
    pub expected: Vec<String>,
    pub presented: Vec<String>,
}

/// rustls shows certificate errors with `Debug`: make that readable.
impl fmt::Debug for SanMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A chain to `roots`, valid now, for server auth, naming one of `names`: DNS names
/// (wildcards in the certificate match as usual) and IPs by rustls' rules, URIs
/// (`spiffe://...`) exactly.
pub struct SubjectAltNames {
    roots: Arc<RootCertStore>,
    names: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl SubjectAltNames {
    pub fn new(
        roots: Arc<RootCertStore>,
        names: Vec<String>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            roots,
            names,
            provider,
        }
    }

    fn names_one(&self, parsed: &ParsedCertificate<'_>, der: &[u8]) -> bool {
        self.names.iter().any(|name| {
            if name.contains("://") {
                return presented(der).iter().any(|p| p == &format!("URI:{name}"));
            }
            ServerName::try_from(name.as_str())
                .is_ok_and(|server| verify_server_name(parsed, &server).is_ok())
        })
    }
}

impl ServerCertVerifier for SubjectAltNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.names_one(&parsed, end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = SanMismatch {
            expected: self.names.clone(),
            presented: presented(end_entity),
        };
        Err(CertificateError::Other(OtherError(Arc::new(mismatch))).into())
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

/// `insecureSkipVerify: true`: any certificate is accepted. The handshake's signatures are
/// still checked, so the peer holds the key of the certificate it showed.
pub struct SkipVerify(pub Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate's SANs as `DNS:name`, `URI:uri`, `IP:addr`, for messages and URI
/// matching; empty when it does not parse.
fn presented(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
            GeneralName::URI(uri) => Some(format!("URI:{uri}")),
            GeneralName::IPAddress(ip) => ip_text(ip).map(|ip| format!("IP:{ip}")),
            _ => None,
        })
        .collect()
}

/// An IP SAN's 4 or 16 bytes as an address; `None` for any other length.
pub(crate) fn ip_text(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

impl fmt::Debug for SubjectAltNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectAltNames")
            .field("names", &self.names)
            .finish()
    }
}

impl fmt::Debug for SkipVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SkipVerify")
    }
}
