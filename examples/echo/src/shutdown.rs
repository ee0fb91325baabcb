//! Graceful shutdown: one signal to every task, and a way to wait until all of them are gone.
//!
//! Every task that must finish before the server counts as stopped (the accept loop, each
//! connection, each upgraded echo) holds a [`Signal`]. [`Drain::drained`] resolves when the
//! last one is dropped, so there is no task list to keep and no task can be forgotten.

use tokio::sync::watch;

/// The server's side: starts the shutdown and waits for it to finish.
#[derive(Debug)]
pub(crate) struct Drain {
    tx: watch::Sender<bool>,
}

/// A task's side: tells it to stop, and keeps the server's shutdown waiting while it lives.
#[derive(Clone, Debug)]
pub(crate) struct Signal {
    rx: watch::Receiver<bool>,
}

pub(crate) fn channel() -> (Drain, Signal) {
    let (tx, rx) = watch::channel(false);
    (Drain { tx }, Signal { rx })
}

impl Drain {
    /// Tells every task to stop. Idempotent.
    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Waits until every [`Signal`] has been dropped.
    pub(crate) async fn drained(&self) {
        self.tx.closed().await;
    }
}

impl Signal {
    /// Resolves once shutdown has been triggered (or the server handle is gone).
    pub(crate) async fn signalled(&mut self) {
        // An error means the sender is gone, which is a shutdown too. The returned guard is
        // dropped here, never held across an await.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn drains_once_every_signal_is_dropped() {
        let (drain, signal) = channel();
        let mut task_signal = signal.clone();
        drop(signal);
        let task = tokio::spawn(async move {
            task_signal.signalled().await;
            // Holding the signal a little past the trigger is what `drained` must wait out.
            tokio::task::yield_now().await;
        });
        drain.trigger();
        tokio::time::timeout(Duration::from_secs(10), drain.drained())
            .await
            .expect("drained");
        task.await.expect("task");
    }
}
