//! Circuit breaking (DestinationRule `connectionPool`): bound what one cluster may take, and
//! answer the rest at once with 503 and flag UO instead of letting queues grow.
//!
//! HTTP/1.1 carries one request per connection at a time, so requests in flight stand for
//! connections: past `maxConnections` a request waits for one to free up, if fewer than
//! `http1MaxPendingRequests` already wait; past `http2MaxRequests` it is refused outright.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mesh_core::model::ConnectionLimits;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub struct Circuit {
    active: AtomicU32,
    pending: AtomicU32,
    retries: AtomicU32,
    freed: Notify,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A limit was reached: answer 503 with flag UO.
    Overflow,
    /// The request's deadline passed while it waited.
    Deadline,
}

/// A request's slot; freeing it wakes one waiting request.
pub struct Admission(Arc<Circuit>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

/// A retry in flight, counted against `maxRetries`.
pub struct RetryPermit(Arc<Circuit>);

impl Drop for RetryPermit {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Circuit {
    pub async fn admit(
        self: &Arc<Self>,
        limits: &ConnectionLimits,
        deadline: Option<Instant>,
    ) -> Result<Admission, Refused> {
        let mut waiting = false;
        let result = loop {
            let freed = self.freed.notified();
            let active = self.active.load(Ordering::Acquire);
            if active >= limits.max_requests {
                break Err(Refused::Overflow);
            }
            if active < limits.max_connections {
                let taken = self.active.compare_exchange(
                    active,
                    active + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                if taken.is_ok() {
                    break Ok(Admission(self.clone()));
                }
                continue;
            }
            if !waiting {
                if self.pending.fetch_add(1, Ordering::AcqRel) >= limits.max_pending_requests {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    break Err(Refused::Overflow);
                }
                waiting = true;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        break Err(Refused::Deadline);
                    }
                }
                None => freed.await,
            }
        };
        if waiting {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
        result
    }

    /// A permit for one more retry, unless `maxRetries` are already in flight or the retry
    /// budget is spent: retries in flight may be `retryBudget.percent` of the requests in
    /// flight, or `minRetryConcurrency`, whichever is more. A failing service then sees at
    /// most that much extra load from retries, never a multiple of its traffic.
    pub fn retry(self: &Arc<Self>, limits: &ConnectionLimits) -> Option<RetryPermit> {
        let previous = self.retries.fetch_add(1, Ordering::AcqRel);
        let permit = RetryPermit(self.clone());
        let active = u64::from(self.active.load(Ordering::Acquire));
        let budget = (active * u64::from(limits.retry_budget.per_million()) / 1_000_000)
            .max(u64::from(limits.min_retry_concurrency));
        (previous < limits.max_retries && u64::from(previous) < budget).then_some(permit)
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Acquire)
    }

    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(connections: u32, pending: u32) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: connections,
            max_pending_requests: pending,
            ..ConnectionLimits::default()
        }
    }

    #[tokio::test]
    async fn one_connection_one_pending_then_overflow() {
        let circuit = Arc::new(Circuit::default());
        let limits = limits(1, 1);
        let first = circuit
            .admit(&limits, None)
            .await
            .expect("a free connection");
        let waiter = {
            let (circuit, limits) = (circuit.clone(), limits.clone());
            tokio::spawn(async move { circuit.admit(&limits, None).await.map(|_| ()) })
        };
        while circuit.pending() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            circuit.admit(&limits, None).await.err(),
            Some(Refused::Overflow),
            "the queue is full"
        );
        drop(first);
        assert_eq!(
            waiter.await.expect("joined"),
            Ok(()),
            "the waiter got the freed connection"
        );
        assert_eq!((circuit.active(), circuit.pending()), (0, 0));
    }

    #[tokio::test]
    async fn max_requests_refuses_without_queueing() {
        let circuit = Arc::new(Circuit::default());
        let limits = ConnectionLimits {
            max_requests: 2,
            ..ConnectionLimits::default()
        };
        let _a = circuit.admit(&limits, None).await.expect("1");
        let _b = circuit.admit(&limits, None).await.expect("2");
        assert_eq!(
            circuit.admit(&limits, None).await.err(),
            Some(Refused::Overflow)
        );
        assert_eq!(circuit.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_gives_up_at_its_deadline() {
        let circuit = Arc::new(Circuit::default());
        let limits = limits(1, 10);
        let _held = circuit.admit(&limits, None).await.expect("1");
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(
            circuit.admit(&limits, Some(deadline)).await.err(),
            Some(Refused::Deadline)
        );
        assert_eq!(circuit.pending(), 0);
    }

    #[tokio::test]
    async fn the_retry_budget_is_a_share_of_requests_in_flight() {
        let circuit = Arc::new(Circuit::default());
        let limits = ConnectionLimits::default(); // 20%, at least 3
        let held: Vec<_> = (0..3)
            .map(|_| circuit.retry(&limits).expect("the floor of 3"))
            .collect();
        assert!(
            circuit.retry(&limits).is_none(),
            "3 in flight and few requests: no more"
        );
        let mut requests = Vec::new();
        for _ in 0..50 {
            requests.push(circuit.admit(&limits, None).await.expect("admitted"));
        }
        let more: Vec<_> = (0..20).filter_map(|_| circuit.retry(&limits)).collect();
        assert_eq!(held.len() + more.len(), 10, "20% of 50 requests in flight");
    }

    #[test]
    fn retries_are_bounded() {
        let circuit = Arc::new(Circuit::default());
        let limits = ConnectionLimits {
            max_retries: 1,
            ..ConnectionLimits::default()
        };
        let first = circuit.retry(&limits).expect("first retry");
        assert!(
            circuit.retry(&limits).is_none(),
            "a second concurrent retry overflows"
        );
        drop(first);
        assert!(circuit.retry(&limits).is_some());
    }
}
