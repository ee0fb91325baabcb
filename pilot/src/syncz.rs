//! Per-proxy push status, for `/debug/syncz` and `meshctl proxy-status`: who is connected,
//! since when, what was sent, what was ACKed, and the last NACK with its message.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::translate::Node;

#[derive(Default)]
pub struct Syncz {
    proxies: Mutex<BTreeMap<u64, ProxyStatus>>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    pub id: String,
    pub namespace: String,
    pub node: Node,
    /// Seconds since the Unix epoch.
    pub connected_since: u64,
    pub generation: u64,
    pub version_sent: Option<String>,
    pub nonce_sent: Option<String>,
    pub version_acked: Option<String>,
    pub nonce_acked: Option<String>,
    pub resources: usize,
    pub last_nack: Option<Nack>,
    pub nacks: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nack {
    pub nonce: String,
    pub version: String,
    pub message: String,
    pub at: u64,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Syncz {
    pub fn connected(&self, connection: u64, node: &Node) {
        let status = ProxyStatus {
            id: node.id.clone(),
            namespace: node.namespace.clone(),
            node: node.clone(),
            connected_since: now(),
            generation: 0,
            version_sent: None,
            nonce_sent: None,
            version_acked: None,
            nonce_acked: None,
            resources: 0,
            last_nack: None,
            nacks: 0,
        };
        self.lock().insert(connection, status);
    }

    pub fn disconnected(&self, connection: u64) {
        self.lock().remove(&connection);
    }

    pub fn update(&self, connection: u64, change: impl FnOnce(&mut ProxyStatus)) {
        if let Some(status) = self.lock().get_mut(&connection) {
            change(status);
        }
    }

    pub fn all(&self) -> Vec<ProxyStatus> {
        self.lock().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ProxyStatus>> {
        crate::lock::lock(&self.proxies)
    }
}
