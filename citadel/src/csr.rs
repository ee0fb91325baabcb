//! A workload's certificate signing request, parsed and checked: the signature verifies with
//! the request's own key, and it names exactly one thing, a SPIFFE URI. Everything else in
//! the request (subject, other extensions) is ignored: citadel decides those.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;
use x509_parser::prelude::FromDer;

use crate::pem::{self, PemError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("the CSR is not PEM with one CERTIFICATE REQUEST block: {0}")]
    Pem(PemError),
    #[error("the CSR is not a valid PKCS#10 request: {0}")]
    Der(String),
    #[error("the CSR's signature does not verify with its own public key")]
    Signature,
    #[error("the CSR's public key is not supported (use ECDSA P-256 or P-384, Ed25519 or RSA)")]
    UnsupportedKey,
    #[error("the CSR's subjectAltName extension cannot be parsed")]
    BadSanExtension,
    #[error("the CSR has no subject alternative name; it needs exactly one, the URI {expected}")]
    NoSan { expected: String },
    #[error("the CSR has {} subject alternative names ({}); it needs exactly one URI", .0.len(), .0.join(", "))]
    TooManySans(Vec<String>),
    #[error("the CSR's subject alternative name {0} is not allowed; it needs exactly one URI")]
    NotUri(String),
    #[error("the CSR's URI {0:?} is not a SPIFFE ID (spiffe://<trust-domain>/ns/<ns>/sa/<sa>)")]
    NotSpiffe(String),
    #[error("the CSR asks for {requested} but the credential proves {proven}")]
    IdentityMismatch { requested: String, proven: String },
}

impl CsrError {
    /// A short, bounded label for `citadel_csr_refused_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            CsrError::Pem(_) | CsrError::Der(_) => "malformed",
            CsrError::Signature => "bad_signature",
            CsrError::UnsupportedKey => "unsupported_key",
            CsrError::BadSanExtension
            | CsrError::NoSan { .. }
            | CsrError::TooManySans(_)
            | CsrError::NotUri(_)
            | CsrError::NotSpiffe(_) => "bad_san",
            CsrError::IdentityMismatch { .. } => "identity_mismatch",
        }
    }
}

/// A request that passed every check but the identity one.
#[derive(Debug)]
pub struct CheckedCsr {
    pub uri: String,
    pub public_key: rcgen::SubjectPublicKeyInfo,
}

impl CheckedCsr {
    /// Refuses the request unless its URI is exactly `proven`.
    pub fn check_identity(&self, proven: &str) -> Result<(), CsrError> {
        if self.uri == proven {
            Ok(())
        } else {
            Err(CsrError::IdentityMismatch {
                requested: self.uri.clone(),
                proven: proven.to_owned(),
            })
        }
    }
}

/// Parses and checks a PEM CSR; `expected` only words the message for a CSR without a SAN.
pub fn parse(text: &str, expected: &str) -> Result<CheckedCsr, CsrError> {
    let der = pem::decode_one(text, "CERTIFICATE REQUEST").map_err(CsrError::Pem)?;
    let (rest, csr) =
        X509CertificationRequest::from_der(&der).map_err(|e| CsrError::Der(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Der("trailing bytes after the request".into()));
    }
    csr.verify_signature().map_err(|_| CsrError::Signature)?;
    let public_key =
        rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
            .map_err(|_| CsrError::UnsupportedKey)?;
    let uri = only_uri(san_names(&csr)?, expected)?;
    Ok(CheckedCsr { uri, public_key })
}

/// Every name in every subjectAltName extension the request asks for.
fn san_names<'a>(csr: &'a X509CertificationRequest<'a>) -> Result<Vec<GeneralName<'a>>, CsrError> {
    let mut names = Vec::new();
    for attribute in csr.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
            continue;
        };
        for extension in &request.extensions {
            if extension.oid != OID_X509_EXT_SUBJECT_ALT_NAME {
                continue;
            }
            match extension.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    names.extend(san.general_names.iter().cloned());
                }
                _ => return Err(CsrError::BadSanExtension),
            }
        }
    }
    Ok(names)
}

fn only_uri(names: Vec<GeneralName<'_>>, expected: &str) -> Result<String, CsrError> {
    match names.as_slice() {
        [] => Err(CsrError::NoSan {
            expected: expected.to_owned(),
        }),
        [GeneralName::URI(uri)] if uri.starts_with("spiffe://") => Ok((*uri).to_owned()),
        [GeneralName::URI(uri)] => Err(CsrError::NotSpiffe((*uri).to_owned())),
        [other] => Err(CsrError::NotUri(describe(other))),
        many => Err(CsrError::TooManySans(many.iter().map(describe).collect())),
    }
}

fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::IPAddress(bytes) => match ip(bytes) {
            Some(ip) => format!("IP:{ip}"),
            None => "IP:<malformed>".to_owned(),
        },
        other => other.to_string(),
    }
}

fn ip(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
