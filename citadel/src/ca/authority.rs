//! The signing authority: a CA key, its certificate chain up to a root, and the trust bundle.
//! Built once from the stored material (checked: the key matches, every link verifies, the
//! root is trusted), then it only signs.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::CertificateDer;

use super::keys::{self, KeyError, KeyPem};
use super::ttl::{self, TtlError};
use crate::bundle::TrustBundle;
use crate::cert::{self, CertError, CertInfo};
use crate::pem;

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("the CA certificate chain is empty")]
    EmptyChain,
    #[error("CA certificate {index}: {source}")]
    Cert { index: usize, source: CertError },
    #[error(
        "CA certificate {index} ({subject}) is not a CA certificate (basicConstraints CA:true)"
    )]
    NotCa { index: usize, subject: String },
    #[error("CA certificate {index} ({subject}) is not signed by the certificate after it")]
    BrokenChain { index: usize, subject: String },
    #[error("the chain's root ({subject}) is not in the trust bundle; add it to the bundle")]
    RootNotTrusted { subject: String },
    #[error("CA key: {0}")]
    Key(#[from] KeyError),
    #[error("reading the signing certificate: {0}")]
    Issuer(rcgen::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Ttl(#[from] TtlError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("{name:?} cannot be a subject alternative name")]
    BadName { name: String },
    #[error("signing the certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// What a CA is made of, as a store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningMaterial {
    pub key: KeyPem,
    /// The signing certificate first, then each issuer, ending with a root.
    pub chain: Vec<Vec<u8>>,
    pub bundle: TrustBundle,
}

/// What a new certificate is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// A workload: one URI SAN, usable as TLS client and server.
    Workload { spiffe_id: String },
    /// citadel's own gRPC server: DNS names and IP addresses.
    Serving { names: Vec<String> },
}

/// An issued certificate: the chain to send (leaf first, root last) and when it expires.
#[derive(Clone, Debug)]
pub struct Issued {
    pub chain: Vec<String>,
    pub leaf_der: Vec<u8>,
    pub not_after: SystemTime,
}

pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    chain_pems: Vec<String>,
    signer: CertInfo,
    root: CertInfo,
    bundle: TrustBundle,
    material: SigningMaterial,
}

impl Authority {
    pub fn new(material: SigningMaterial) -> Result<Self, AuthorityError> {
        let infos = check_chain(&material.chain, &material.bundle)?;
        let key = material.key.key_pair()?;
        let (signer, root) = match (infos.first(), infos.last()) {
            (Some(signer), Some(root)) => (signer.clone(), root.clone()),
            _ => return Err(AuthorityError::EmptyChain),
        };
        keys::check_matches(&key, &signer.public_key)?;
        let signer_der = CertificateDer::from(material.chain[0].clone());
        let issuer = Issuer::from_ca_cert_der(&signer_der, key).map_err(AuthorityError::Issuer)?;
        Ok(Self {
            issuer,
            chain_pems: material
                .chain
                .iter()
                .map(|d| pem::encode("CERTIFICATE", d))
                .collect(),
            signer,
            root,
            bundle: material.bundle.clone(),
            material,
        })
    }

    /// Signs `public_key` for `kind`, living `lifetime` from `now` (clamped to the signer).
    pub fn issue(
        &self,
        public_key: &impl PublicKeyData,
        kind: &LeafKind,
        lifetime: std::time::Duration,
        now: SystemTime,
    ) -> Result<Issued, IssueError> {
        let (not_before, not_after) = ttl::validity(now, lifetime, self.signer.not_after)?;
        let mut params = CertificateParams::default();
        // An empty subject: the identity is the SAN, which rcgen then marks critical.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = sans(kind)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match kind {
            LeafKind::Workload { .. } => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            LeafKind::Serving { .. } => vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(keys::random_serial()?);
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let leaf = params.signed_by(public_key, &self.issuer)?;
        let mut chain = vec![leaf.pem()];
        chain.extend(self.chain_pems.iter().cloned());
        Ok(Issued {
            chain,
            leaf_der: leaf.der().to_vec(),
            not_after,
        })
    }

    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    /// The root at the top of the signing chain.
    pub fn root(&self) -> &CertInfo {
        &self.root
    }

    pub fn signer(&self) -> &CertInfo {
        &self.signer
    }

    /// The signing certificate's chain as PEM (signer first, root last).
    pub fn chain_pems(&self) -> &[String] {
        &self.chain_pems
    }

    /// What this authority was built from, to notice when the store changes.
    pub fn material(&self) -> &SigningMaterial {
        &self.material
    }

    /// Whether it can sign now: the signing certificate is within its validity.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.signer.not_before <= now && now < self.signer.not_after
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("signer", &self.signer.subject)
            .field("root", &self.root.subject)
            .field("bundle", &self.bundle)
            .finish_non_exhaustive()
    }
}

/// Every certificate a CA, each signed by the next, the last one in the bundle.
fn check_chain(chain: &[Vec<u8>], bundle: &TrustBundle) -> Result<Vec<CertInfo>, AuthorityError> {
    let mut infos = Vec::with_capacity(chain.len());
    for (index, der) in chain.iter().enumerate() {
        let info = CertInfo::parse(der).map_err(|source| AuthorityError::Cert { index, source })?;
        if !info.is_ca {
            let subject = info.subject;
            return Err(AuthorityError::NotCa { index, subject });
        }
        if let Some(parent) = chain.get(index + 1)
            && !cert::signed_by(der, parent)
        {
            let subject = info.subject;
            return Err(AuthorityError::BrokenChain { index, subject });
        }
        infos.push(info);
    }
    match (chain.last(), infos.last()) {
        (Some(root), Some(info)) if !bundle.contains(root) => Err(AuthorityError::RootNotTrusted {
            subject: info.subject.clone(),
        }),
        (Some(_), Some(_)) => Ok(infos),
        _ => Err(AuthorityError::EmptyChain),
    }
}

fn sans(kind: &LeafKind) -> Result<Vec<SanType>, IssueError> {
    let bad = |name: &str| IssueError::BadName {
        name: name.to_owned(),
    };
    match kind {
        LeafKind::Workload { spiffe_id } => {
            let uri = Ia5String::try_from(spiffe_id.as_str()).map_err(|_| bad(spiffe_id))?;
            Ok(vec![SanType::URI(uri)])
        }
        LeafKind::Serving { names } => names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ia5String::try_from(name.as_str())
                    .map(SanType::DnsName)
                    .map_err(|_| bad(name)),
            })
            .collect(),
    }
}
