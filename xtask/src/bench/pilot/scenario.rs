//! What the simulated proxies saw: how long until each had its first config, and, for one
//! change, how long from the file's rename until each received the update carrying it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::config::Key;
use super::fleet::{Event, Fleet};
use super::stats::Spread;

/// After the last proxy got a change, responses are still read this long: a second push
/// for the same change would show here.
const AFTERMATH: Duration = Duration::from_millis(300);

/// Every proxy's first config.
#[derive(Clone, Debug, Default)]
pub struct SyncResult {
    pub proxies: usize,
    pub synced: usize,
    /// From opening the streams to the last proxy's first config, if all got one.
    pub all_after: Option<Duration>,
    /// Each proxy's time to its first config.
    pub spread: Spread,
    /// The largest first response: resources and encoded bytes.
    pub first_resources: usize,
    pub first_bytes: usize,
    pub errors: Vec<String>,
}

/// One change, as the proxies received it.
#[derive(Clone, Debug, Default)]
pub struct RoundResult {
    pub service: usize,
    /// From the rename to each proxy receiving the update that carries the change.
    pub spread: Spread,
    /// Fewest and most resources in those updates.
    pub resources: (usize, usize),
    pub removed: usize,
    /// Responses that did not carry the change.
    pub other_responses: usize,
    pub errors: Vec<String>,
}

/// Reads events until `done` holds or `deadline` passes.
async fn gather(
    fleet: &mut Fleet,
    deadline: Instant,
    mut done: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::from_std(deadline);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, fleet.events.recv()).await {
        let finished = done(&event);
        events.push(event);
        if finished {
            break;
        }
    }
    events
}

/// Drops events until none came for `quiet`: what is left over from the last phase.
pub async fn settle(fleet: &mut Fleet, quiet: Duration) -> Vec<Event> {
    let mut left = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(quiet, fleet.events.recv()).await {
        left.push(event);
    }
    left
}

/// Waits (at most `timeout`) until all `proxies` streams got a first config or ended.
pub async fn initial_sync(
    fleet: &mut Fleet,
    proxies: usize,
    started: Instant,
    timeout: Duration,
) -> SyncResult {
    let mut finished = HashSet::new();
    let events = gather(fleet, started + timeout, |e| {
        finished.insert(e.proxy);
        finished.len() == proxies
    })
    .await;
    judge_sync(&events, proxies, started)
}

pub fn judge_sync(events: &[Event], proxies: usize, started: Instant) -> SyncResult {
    let mut seen = HashSet::new();
    let mut result = SyncResult {
        proxies,
        ..SyncResult::default()
    };
    let mut times = Vec::new();
    for event in events {
        if let Some(error) = &event.error {
            result
                .errors
                .push(format!("proxy {}: {error}", event.proxy));
        } else if let Some(at) = event.at
            && seen.insert(event.proxy)
        {
            times.push(at.saturating_duration_since(started));
            result.first_resources = result.first_resources.max(event.resources);
            result.first_bytes = result.first_bytes.max(event.bytes);
        }
    }
    result.synced = seen.len();
    result.spread = Spread::of(times);
    result.all_after = (result.synced == proxies).then_some(result.spread.max);
    result
}

/// Waits (at most `timeout`) until every proxy received `target`, then a little longer
/// for anything else that comes.
pub async fn round(
    fleet: &mut Fleet,
    target: &Key,
    changed_at: Instant,
    proxies: usize,
    timeout: Duration,
) -> Vec<Event> {
    let mut reached = HashSet::new();
    let mut events = gather(fleet, changed_at + timeout, |e| {
        if e.error.is_some() || e.keys.contains(target) {
            reached.insert(e.proxy);
        }
        reached.len() == proxies
    })
    .await;
    events.extend(gather(fleet, Instant::now() + AFTERMATH, |_| false).await);
    events
}

pub fn judge_round(events: &[Event], target: &Key, changed_at: Instant) -> RoundResult {
    let mut result = RoundResult::default();
    let mut reached = HashSet::new();
    let mut latencies = Vec::new();
    let mut sizes = Vec::new();
    for event in events {
        if let Some(error) = &event.error {
            result
                .errors
                .push(format!("proxy {}: {error}", event.proxy));
            continue;
        }
        let Some(at) = event.at.filter(|at| *at >= changed_at) else {
            continue;
        };
        if event.keys.contains(target) && reached.insert(event.proxy) {
            latencies.push(at - changed_at);
            sizes.push(event.resources);
            result.removed = result.removed.max(event.removed);
        } else {
            result.other_responses += 1;
        }
    }
    result.spread = Spread::of(latencies);
    result.resources = (
        sizes.iter().copied().min().unwrap_or(0),
        sizes.iter().copied().max().unwrap_or(0),
    );
    result
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
