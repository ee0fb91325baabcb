//! A certificate authority for tests, made with rcgen: roots, intermediates, and workload
//! certificates issued directly or by signing a CSR, as citadel does.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_proxy::identity::{
    CertificateManager, CertificateSource, FetchError, Identity, TrustBundle, WorkloadCertificate,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// This CA's certificate.
    pub cert: CertificateDer<'static>,
    pub pem: String,
    /// The certificates between this CA and its root, nearest first (empty for a root).
    pub parents: Vec<String>,
    /// The root this CA chains to (itself for a root).
    pub root_pem: String,
}

/// When a certificate is valid, in Unix seconds.
#[derive(Clone, Copy)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// From now, for `ttl`.
    pub fn from_now(ttl: Duration) -> Self {
        let now = unix(SystemTime::now());
        Self {
            not_before: now,
            not_after: now + ttl.as_secs() as i64,
        }
    }

    pub fn expired() -> Self {
        Self {
            not_before: 946_684_800,
            not_after: 978_307_200,
        }
    }
}

impl TestCa {
    pub fn root(name: &str) -> Self {
        let (params, key) = ca_params(name);
        let cert = params.self_signed(&key).unwrap();
        let pem = cert.pem();
        Self {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            root_pem: pem.clone(),
            pem,
            parents: Vec::new(),
        }
    }

    /// An intermediate CA under this one.
    pub fn intermediate(&self, name: &str) -> Self {
        let (params, key) = ca_params(name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut parents = vec![self.pem.clone()];
        parents.extend(self.parents.iter().cloned());
        Self {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            pem: cert.pem(),
            parents,
            root_pem: self.root_pem.clone(),
        }
    }

    /// A workload certificate for `identity`, as citadel's `cert_chain`: leaf,
    /// intermediates, root.
    pub fn issue(
        &self,
        identity: &Identity,
        validity: Validity,
    ) -> (Vec<String>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(identity.to_string().try_into().unwrap())];
        let leaf = self.sign(params, &key, validity);
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (self.chain(leaf), der)
    }

    /// Signs a CSR as citadel does: its SANs, this CA's validity.
    pub fn sign_csr(&self, csr_pem: &str, validity: Validity) -> Result<Vec<String>, rcgen::Error> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        set_leaf_params(&mut csr.params, validity);
        let leaf = csr.signed_by(&self.issuer)?.pem();
        Ok(self.chain(leaf))
    }

    /// A serving certificate for names and IPs (`localhost`, `127.0.0.1`).
    pub fn server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (chain, key) = self.leaf_pem(names, Validity::from_now(Duration::from_secs(3600)));
        let chain = mesh_proxy::identity::certificate::certs_from_pem("test", &chain).unwrap();
        let der = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        (chain, der)
    }

    /// A certificate for DNS names and IPs, valid for server and client auth, as PEM: the
    /// chain (leaf, intermediates, this CA) and the PKCS#8 key.
    pub fn leaf_pem(&self, names: &[&str], validity: Validity) -> (Vec<String>, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let leaf = self.sign(params, &key, validity);
        (self.chain(leaf), key.serialize_pem())
    }

    /// A workload certificate for `identity` from this CA, trusting `roots`.
    pub fn workload(
        &self,
        identity: &Identity,
        validity: Validity,
        roots: &[&TestCa],
    ) -> WorkloadCertificate {
        let (chain, key) = self.issue(identity, validity);
        let bundle: Vec<String> = roots.iter().map(|ca| ca.root_pem.clone()).collect();
        let bundle = TrustBundle::from_pem(&bundle).unwrap();
        let chain = mesh_proxy::identity::certificate::certs_from_pem("test", &chain).unwrap();
        WorkloadCertificate::new(chain, key, bundle).unwrap()
    }

    /// A manager for `identity` holding a day's certificate from this CA, trusting `roots`.
    pub fn manager(&self, identity: &Identity, roots: &[&TestCa]) -> Arc<CertificateManager> {
        let manager = CertificateManager::new(identity.clone());
        let day = Validity::from_now(Duration::from_secs(86_400));
        manager
            .install(self.workload(identity, day, roots))
            .unwrap();
        manager
    }

    fn sign(&self, mut params: CertificateParams, key: &KeyPair, validity: Validity) -> String {
        set_leaf_params(&mut params, validity);
        params.signed_by(key, &self.issuer).unwrap().pem()
    }

    fn chain(&self, leaf: String) -> Vec<String> {
        let mut chain = vec![leaf, self.pem.clone()];
        chain.extend(self.parents.iter().cloned());
        chain
    }
}

/// Issues from a [`TestCa`] in-process, failing the calls `fail` says to: a CA without
/// sockets, for tests on tokio's paused clock.
pub struct TestSource {
    pub ca: TestCa,
    pub calls: std::sync::atomic::AtomicU32,
    pub fail: Box<dyn Fn(u32) -> bool + Send + Sync>,
    /// Issue for this identity instead of the one asked for.
    pub impostor: Option<Identity>,
    /// When each call came, on tokio's clock.
    times: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

impl TestSource {
    pub fn new(ca: TestCa) -> Self {
        Self {
            ca,
            calls: Default::default(),
            fail: Box::new(|_| false),
            impostor: None,
            times: Default::default(),
        }
    }

    /// The time between one call and the next.
    pub fn gaps(&self) -> Vec<Duration> {
        let times = self.times.lock().unwrap();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl CertificateSource for TestSource {
    fn fetch<'a>(
        &'a self,
        identity: &'a Identity,
        ttl: Duration,
    ) -> mesh_proxy::identity::source::BoxFuture<'a, Result<WorkloadCertificate, FetchError>> {
        Box::pin(async move {
            self.times.lock().unwrap().push(tokio::time::Instant::now());
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if (self.fail)(call) {
                return Err(format!("test CA unavailable (call {call})").into());
            }
            let identity = self.impostor.as_ref().unwrap_or(identity);
            Ok(self
                .ca
                .workload(identity, Validity::from_now(ttl), &[&self.ca]))
        })
    }
}

fn ca_params(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mesh tests");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(serial());
    (params, KeyPair::generate().unwrap())
}

fn set_leaf_params(params: &mut CertificateParams, validity: Validity) {
    // rcgen takes `time`'s type, which x509-parser hands out.
    let at = |unix| {
        x509_parser::time::ASN1Time::from_timestamp(unix)
            .unwrap()
            .to_datetime()
    };
    params.not_before = at(validity.not_before);
    params.not_after = at(validity.not_after);
    params.serial_number = Some(serial());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
}

/// 16 random bytes, positive and minimally encoded.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

pub fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}
