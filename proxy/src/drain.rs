//! Graceful shutdown: stop accepting, let in-flight work finish, up to a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Clone)]
pub struct Drain {
    signal: watch::Sender<bool>,
    active: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Held by every open connection; dropping it counts the connection closed.
pub struct ConnectionGuard(Drain);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            signal: watch::channel(false).0,
            active: Arc::default(),
            idle: Arc::default(),
        }
    }
}

impl Drain {
    pub fn connection(&self) -> ConnectionGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    /// Resolves once draining has started.
    pub async fn started(&self) {
        let mut rx = self.signal.subscribe();
        // An error means the sender is gone, which only happens at exit: treat as started.
        let _ = rx.wait_for(|draining| *draining).await;
    }

    pub fn is_draining(&self) -> bool {
        *self.signal.borrow()
    }

    /// Starts draining and waits until every connection has closed or `timeout` passed.
    /// Returns the connections still open at the deadline.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.signal.send_replace(true);
        let all_closed = async {
            loop {
                let notified = self.idle.notified();
                if self.active.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, all_closed).await;
        self.active.load(Ordering::Acquire)
    }
}
