//! Counters a test reads to see what the upstream saw: whether a request reached it, on how
//! many connections, and whether they are still open.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Distinct paths counted one by one; more are summed under [`OTHER_PATHS`], so a client
/// walking random paths cannot grow the map without bound.
pub const MAX_PATHS: usize = 1024;
/// The key that counts requests to paths beyond the first [`MAX_PATHS`].
pub const OTHER_PATHS: &str = "<other>";

/// Server counters. Every change wakes [`Stats::wait_until`].
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    connections: AtomicU64,
    open_connections: AtomicU64,
    upgrades: AtomicU64,
    echoed_bytes: AtomicU64,
    paths: Mutex<HashMap<String, u64>>,
    changed: Notify,
}

impl Stats {
    /// HTTP requests received, counted on arrival (before any delay).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received for one path (without the query).
    pub fn path_requests(&self, path: &str) -> u64 {
        self.lock_paths().get(path).copied().unwrap_or(0)
    }

    /// Requests per path.
    pub fn paths(&self) -> BTreeMap<String, u64> {
        self.lock_paths()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Connections accepted, in either protocol mode.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed, counting upgraded ones until their echo ends.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::SeqCst)
    }

    /// HTTP/1.1 upgrades answered with 101.
    pub fn upgrades(&self) -> u64 {
        self.upgrades.load(Ordering::SeqCst)
    }

    /// Bytes echoed back on TCP connections and upgraded HTTP connections.
    pub fn echoed_bytes(&self) -> u64 {
        self.echoed_bytes.load(Ordering::SeqCst)
    }

    /// Waits until `condition` holds, re-checking after every change, for at most `timeout`.
    /// Returns whether it held. Lets a test wait for "the connection closed" without sleeping.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&Stats) -> bool) -> bool {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                // Registered before checking, so a change between the check and the await
                // still wakes us.
                changed.as_mut().enable();
                if condition(self) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    pub(crate) fn record_request(&self, path: &str) {
        {
            let mut paths = self.lock_paths();
            // Known paths are counted without allocating: this runs on every request.
            if let Some(count) = paths.get_mut(path) {
                *count += 1;
            } else {
                let key = if paths.len() < MAX_PATHS {
                    path
                } else {
                    OTHER_PATHS
                };
                *paths.entry(key.to_owned()).or_default() += 1;
            }
        }
        self.bump(&self.requests, 1);
    }

    /// Counts an accepted connection; dropping the guard marks it closed.
    pub(crate) fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.bump(&self.connections, 1);
        self.bump(&self.open_connections, 1);
        ConnectionGuard {
            stats: Arc::clone(self),
        }
    }

    pub(crate) fn record_upgrade(&self) {
        self.bump(&self.upgrades, 1);
    }

    pub(crate) fn record_echoed(&self, bytes: u64) {
        self.bump(&self.echoed_bytes, bytes);
    }

    fn bump(&self, counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn lock_paths(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Counters stay meaningful even if a holder panicked mid-increment.
        self.paths.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks a connection open for as long as it lives, so every exit path closes it once.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    stats: Arc<Stats>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.stats.open_connections.fetch_sub(1, Ordering::SeqCst);
        self.stats.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_capped() {
        let stats = Stats::default();
        for i in 0..MAX_PATHS + 5 {
            stats.record_request(&format!("/{i}"));
        }
        stats.record_request("/0");
        assert_eq!(stats.requests(), MAX_PATHS as u64 + 6);
        assert_eq!(stats.path_requests("/0"), 2);
        assert_eq!(stats.path_requests(OTHER_PATHS), 5);
        assert_eq!(stats.paths().len(), MAX_PATHS + 1);
    }

    #[tokio::test]
    async fn guards_track_open_connections_and_wake_waiters() {
        let stats = Arc::new(Stats::default());
        let guard = stats.open_connection();
        assert_eq!((stats.connections(), stats.open_connections()), (1, 1));
        assert!(
            !stats
                .wait_until(Duration::from_millis(1), |s| s.open_connections() == 0)
                .await
        );

        let waiter = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                stats
                    .wait_until(Duration::from_secs(10), |s| s.open_connections() == 0)
                    .await
            })
        };
        drop(guard);
        assert!(waiter.await.expect("waiter task"));
        assert_eq!(stats.connections(), 1);
    }
}
