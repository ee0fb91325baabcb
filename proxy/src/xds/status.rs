//! The discovery stream as `/config_dump` shows it (its `pilot` section), kept in step
//! with the `mesh_xds_*` metrics: every change goes through here.

use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::metrics::xds as metrics;

/// A response the proxy refused.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Nack {
    pub nonce: String,
    pub message: String,
    /// Unix seconds.
    pub at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PilotView {
    pub address: String,
    pub node_id: String,
    pub connected: bool,
    /// Unix seconds when the current stream opened; `null` while disconnected.
    pub connected_since: Option<u64>,
    pub last_ack_nonce: Option<String>,
    /// pilot's `system_version_info` of the config applied last.
    pub applied_version: Option<String>,
    pub last_nack: Option<Nack>,
    /// Attempts to reach pilot again after a failed or lost stream.
    pub reconnects: u64,
}

pub struct PilotStatus(Mutex<PilotView>);

impl PilotStatus {
    pub fn new(address: String, node_id: String) -> Self {
        metrics::register();
        Self(Mutex::new(PilotView {
            address,
            node_id,
            ..PilotView::default()
        }))
    }

    pub fn view(&self) -> PilotView {
        self.lock().clone()
    }

    pub fn connected(&self) {
        let mut view = self.lock();
        view.connected = true;
        view.connected_since = unix_now();
        metrics::connected(true);
    }

    pub fn disconnected(&self) {
        let mut view = self.lock();
        view.connected = false;
        view.connected_since = None;
        metrics::connected(false);
    }

    pub fn reconnecting(&self) {
        self.lock().reconnects += 1;
        metrics::reconnect();
    }

    pub fn acked(&self, nonce: &str, version: &str) {
        let mut view = self.lock();
        view.last_ack_nonce = Some(nonce.to_owned());
        view.applied_version = Some(version.to_owned());
        metrics::update(true);
    }

    pub fn nacked(&self, nonce: &str, message: &str) {
        self.lock().last_nack = Some(Nack {
            nonce: nonce.to_owned(),
            message: message.to_owned(),
            at: unix_now(),
        });
        metrics::update(false);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PilotView> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn unix_now() -> Option<u64> {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
