//! What the proxy reads out of certificates: the SPIFFE ID in the URI SAN, and the subject,
//! issuer, serial and validity that `/certs` shows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::spiffe::{Identity, IdentityError};
pub use crate::time_text::format_rfc3339;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("not a parseable X.509 certificate: {0}")]
    Parse(String),
    #[error("the certificate has no SPIFFE ID (no URI SAN)")]
    NoSpiffeId,
    #[error("the certificate has {0} URI SANs; a workload certificate carries exactly one")]
    ManyUris(usize),
    #[error("the certificate's URI SAN: {0}")]
    BadSpiffeId(#[from] IdentityError),
}

/// One certificate, as `/certs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    #[serde(serialize_with = "rfc3339")]
    pub not_before: i64,
    #[serde(serialize_with = "rfc3339")]
    pub not_after: i64,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<Self, X509Error> {
        let cert = parse(der)?;
        let validity = cert.validity();
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    pub fn not_before(&self) -> SystemTime {
        system_time(self.not_before)
    }

    pub fn not_after(&self) -> SystemTime {
        system_time(self.not_after)
    }
}

/// The SPIFFE ID of a certificate: its one URI SAN.
pub fn spiffe_id(der: &[u8]) -> Result<Identity, X509Error> {
    let cert = parse(der)?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.clone(),
        Ok(None) => Vec::new(),
        Err(error) => return Err(X509Error::Parse(error.to_string())),
    };
    let uris: Vec<&str> = names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris[..] {
        [] => Err(X509Error::NoSpiffeId),
        [uri] => Ok(uri.parse()?),
        _ => Err(X509Error::ManyUris(uris.len())),
    }
}

/// Whether the certificate signed itself (a root), by its names.
pub fn is_self_issued(der: &[u8]) -> Result<bool, X509Error> {
    let cert = parse(der)?;
    Ok(cert.subject().as_raw() == cert.issuer().as_raw())
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|error| X509Error::Parse(error.to_string()))
}

fn system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs()),
    }
}

fn rfc3339<S: Serializer>(unix: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_rfc3339(*unix))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn cert(uris: &[&str], dns: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "leaf");
        for uri in uris {
            let uri = (*uri).try_into().expect("ascii");
            params.subject_alt_names.push(SanType::URI(uri));
        }
        for name in dns {
            let name = (*name).try_into().expect("ascii");
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("signs").der().to_vec()
    }

    #[test]
    fn reads_the_one_spiffe_id() {
        let id = "spiffe://cluster.local/ns/shop/sa/cart";
        let der = cert(&[id], &["cart.shop.svc"]);
        assert_eq!(spiffe_id(&der).map(|i| i.to_string()), Ok(id.to_owned()));
    }

    #[test]
    fn refuses_missing_extra_and_foreign_uris() {
        assert_eq!(spiffe_id(&cert(&[], &["a"])), Err(X509Error::NoSpiffeId));
        let two = cert(&["spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"], &[]);
        assert_eq!(spiffe_id(&two), Err(X509Error::ManyUris(2)));
        let foreign = cert(&["https://example.com/"], &[]);
        assert!(matches!(
            spiffe_id(&foreign),
            Err(X509Error::BadSpiffeId(_))
        ));
        assert!(matches!(spiffe_id(b"junk"), Err(X509Error::Parse(_))));
    }

    #[test]
    fn describes_a_certificate() {
        let der = cert(&["spiffe://td/ns/a/sa/b"], &[]);
        let info = CertInfo::parse(&der).expect("parses");
        assert_eq!(info.subject, "CN=leaf");
        assert_eq!(info.issuer, "CN=leaf");
        assert!(!info.serial.is_empty() && !info.serial.contains(':'));
        // rcgen's defaults: 1975-01-01 to 4096-01-01.
        assert_eq!(format_rfc3339(info.not_before), "1975-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(info.not_after), "4096-01-01T00:00:00Z");
        assert!(is_self_issued(&der).expect("parses"));
        let json = serde_json::to_value(&info).expect("serializes");
        assert_eq!(json["not_after"], "4096-01-01T00:00:00Z");
    }

    #[test]
    fn formats_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            CertInfo {
                not_before: 10,
                ..info_at(0)
            }
            .not_before(),
            UNIX_EPOCH + Duration::from_secs(10)
        );
    }

    fn info_at(unix: i64) -> CertInfo {
        CertInfo {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            not_before: unix,
            not_after: unix,
        }
    }
}
