//! The proxy's current certificate. Readers (TLS handshakes) load it lock-free; a renewal
//! swaps it whole, so new handshakes present the new certificate while connections made
//! with the old one carry on.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::certificate::WorkloadCertificate;
use super::renewal::{self, Policy};
use super::source::CertificateSource;
use super::spiffe::Identity;

#[derive(Debug, thiserror::Error)]
#[error("the certificate is for {presented}, but this proxy is {expected}")]
pub struct WrongIdentity {
    pub expected: Box<Identity>,
    pub presented: Box<Identity>,
}

/// What the renewal loop last did, for `/certs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RenewalStatus {
    /// Failed attempts since the last certificate arrived.
    pub failures: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due (RFC 3339).
    pub next_attempt: Option<String>,
}

pub type Current = Option<Arc<WorkloadCertificate>>;

pub struct CertificateManager {
    identity: Identity,
    current: ArcSwapOption<WorkloadCertificate>,
    updates: watch::Sender<Current>,
    status: Mutex<RenewalStatus>,
}

impl CertificateManager {
    /// A manager holding no certificate yet; [`install`](Self::install) or
    /// [`spawn_renewal`](Self::spawn_renewal) gives it one.
    pub fn new(identity: Identity) -> Arc<Self> {
        Arc::new(Self {
            identity,
            current: ArcSwapOption::empty(),
            updates: watch::Sender::new(None),
            status: Mutex::default(),
        })
    }

    /// A manager that fetches its first certificate from `source` now, and renews it at
    /// half-life for as long as the returned task runs.
    pub fn start(
        identity: Identity,
        source: Arc<dyn CertificateSource>,
        policy: Policy,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let manager = Self::new(identity);
        let task = manager.spawn_renewal(source, policy);
        (manager, task)
    }

    pub fn spawn_renewal(
        self: &Arc<Self>,
        source: Arc<dyn CertificateSource>,
        policy: Policy,
    ) -> JoinHandle<()> {
        tokio::spawn(renewal::run(self.clone(), source, policy))
    }

    /// Who this proxy is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The certificate to present now; `None` until the first one arrives.
    pub fn current(&self) -> Current {
        self.current.load_full()
    }

    /// Changes with every new certificate.
    pub fn watch(&self) -> watch::Receiver<Current> {
        self.updates.subscribe()
    }

    /// Waits for the first certificate.
    pub async fn ready(&self) -> Arc<WorkloadCertificate> {
        let mut updates = self.watch();
        loop {
            if let Some(cert) = updates.borrow_and_update().clone() {
                return cert;
            }
            // The sender lives in `self`, which outlives this borrow.
            let _ = updates.changed().await;
        }
    }

    /// Makes `cert` the one presented from the next handshake on.
    pub fn install(
        &self,
        cert: WorkloadCertificate,
    ) -> Result<Arc<WorkloadCertificate>, WrongIdentity> {
        if cert.identity() != &self.identity {
            return Err(WrongIdentity {
                expected: Box::new(self.identity.clone()),
                presented: Box::new(cert.identity().clone()),
            });
        }
        let cert = Arc::new(cert);
        self.current.store(Some(cert.clone()));
        self.updates.send_replace(Some(cert.clone()));
        crate::metrics::certs::expiry(cert.leaf().not_after);
        Ok(cert)
    }

    pub fn status(&self) -> RenewalStatus {
        self.lock_status().clone()
    }

    pub(super) fn update_status(&self, change: impl FnOnce(&mut RenewalStatus)) {
        change(&mut self.lock_status());
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, RenewalStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}
