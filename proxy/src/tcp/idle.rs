//! Copying both ways until both sides are done, or until nothing has moved for the idle
//! timeout. Istio's `connectionPool.tcp.idleTimeout`: no bytes sent or received on either
//! connection for that long closes both (default 1h, `0s` disables it).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mesh_core::config::{ConnectionPoolSettings, TrafficPolicy};
use mesh_core::model::Cluster;
use mesh_core::snapshot::Snapshot;
use metrics::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::record::ConnectionRecord;

/// Istio's default TCP idle timeout.
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How a forwarded connection ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Both sides closed; bytes from the client, bytes to it.
    Closed { received: u64, sent: u64 },
    /// One side reset or failed; the other was closed.
    Failed(std::io::Error),
    /// Nothing moved for the idle timeout.
    Idle,
}

/// Copies between the client and the upstream, honouring half-close (a side that finished
/// sending gets its peer's write side shut down, and the other direction goes on).
pub(super) async fn copy<D: AsyncRead + AsyncWrite + Unpin, U: AsyncRead + AsyncWrite + Unpin>(
    downstream: D,
    upstream: U,
    record: &ConnectionRecord,
    idle_timeout: Option<Duration>,
) -> Outcome {
    let activity = Arc::new(Activity::new());
    let mut downstream = Metered::new(downstream, record.received(), activity.clone());
    let mut upstream = Metered::new(upstream, record.sent(), activity.clone());
    let copy = tokio::io::copy_bidirectional(&mut downstream, &mut upstream);
    let Some(idle_timeout) = idle_timeout else {
        return finished(copy.await);
    };
    tokio::select! {
        result = copy => finished(result),
        () = activity.idle_for(idle_timeout) => Outcome::Idle,
    }
}

fn finished(result: std::io::Result<(u64, u64)>) -> Outcome {
    match result {
        Ok((received, sent)) => Outcome::Closed { received, sent },
        Err(error) => Outcome::Failed(error),
    }
}

/// When bytes last moved, shared by both directions of one connection.
struct Activity {
    start: Instant,
    /// Nanoseconds after `start` (enough for 584 years); an atomic so reads on either side
    /// can note it cheaply.
    last_nanos: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_nanos: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.store(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed))
    }

    /// Resolves once nothing has moved for `timeout`. Wakes once per timeout period at
    /// most, rather than resetting a timer on every read.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let deadline = self.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One side of a forwarded connection: what is read from it is counted in `bytes` as it
/// arrives (so long-lived connections show up in metrics before they close) and marks the
/// connection active.
struct Metered<S> {
    inner: S,
    bytes: Counter,
    activity: Arc<Activity>,
}

impl<S> Metered<S> {
    fn new(inner: S, bytes: Counter, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            bytes,
            activity,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.bytes.increment(read as u64);
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The idle timeout of connections to `cluster` (or its subset), from the connection pool
/// settings that apply: the subset's, else the cluster's, each with its `portLevelSettings`
/// entry for the cluster's port taking precedence. Istio merges by whole section, so a
/// `connectionPool` without `idleTimeout` means the default, not the outer one's value.
/// `None` when set to `0s` (no timeout).
///
/// Read from the snapshot rather than the compiled cluster: only TCP forwarding uses it.
pub(super) fn idle_timeout(
    snapshot: &Snapshot,
    cluster: &Cluster,
    subset: Option<&str>,
) -> Option<Duration> {
    let spec = snapshot
        .clusters
        .iter()
        .find(|c| c.host == cluster.host && c.port == cluster.port);
    let subset_policy = spec
        .zip(subset)
        .and_then(|(spec, name)| spec.subsets.iter().find(|s| s.name == name))
        .and_then(|s| s.traffic_policy.as_ref());
    let cluster_policy = spec.and_then(|s| s.traffic_policy.as_ref());
    let configured = [subset_policy, cluster_policy]
        .into_iter()
        .flatten()
        .find_map(|policy| connection_pool(policy, cluster.port))
        .and_then(|pool| pool.tcp.as_ref()?.idle_timeout?.to_std());
    match configured {
        None => Some(DEFAULT_IDLE_TIMEOUT),
        Some(timeout) if timeout.is_zero() => None,
        Some(timeout) => Some(timeout),
    }
}

fn connection_pool(policy: &TrafficPolicy, port: u16) -> Option<&ConnectionPoolSettings> {
    policy
        .port_level_settings
        .iter()
        .find(|s| s.port.number == u32::from(port))
        .and_then(|s| s.connection_pool.as_ref())
        .or(policy.connection_pool.as_ref())
}

#[cfg(test)]
mod tests;
