//! DNS clusters: a `resolution: DNS` ServiceEntry reaches the proxy as names
//! ([`mesh_core::snapshot::DnsSpec`]), which the proxy resolves itself, as Envoy's
//! STRICT_DNS and LOGICAL_DNS clusters do.
//!
//! [`DnsTable`] holds the last good answer of every name; [`Runtime::new`] turns it into the
//! DNS clusters' endpoints, so balancers, outlier detection and `/clusters` see resolved
//! addresses as they see any others. [`refresh::run`] re-resolves each name as its TTL runs
//! out (clamped to [`MIN_TTL`]..[`MAX_TTL`]) and swaps in a runtime with the new addresses
//! when an answer changes. A failed lookup keeps the last good addresses.
//!
//! [`Runtime::new`]: crate::state::Runtime::new

pub mod refresh;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use mesh_core::model::{Endpoint, ProxyConfig};
use mesh_core::snapshot::{DnsLookup, DnsSpec};
use serde::Serialize;
use tokio::sync::Notify;

/// Re-resolution bounds: an answer's TTL is clamped into them, so a TTL of 0 does not
/// hammer the DNS server and a TTL of a day does not hide a move for a day.
pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(30);
/// How soon a failed lookup is retried.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The last answer for every name the current config names.
#[derive(Default)]
pub struct DnsTable {
    names: Mutex<HashMap<String, Resolved>>,
    /// Woken when a new config is applied: it may name hosts not resolved yet.
    pub(crate) wake: Notify,
}

/// What is known of one name.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    /// The last good answer, in the order the server gave it when its addresses last
    /// changed (a reordering alone is no change).
    pub addresses: Vec<IpAddr>,
    /// When the last good answer came (seconds since the epoch).
    pub resolved_at: Option<u64>,
    /// Failed lookups since the last good one, and the last failure.
    pub failures: u64,
    pub last_error: Option<String>,
    #[serde(skip)]
    next_at: Option<Instant>,
}

/// A lookup's outcome: addresses and how long they may be kept, or why it failed.
pub type Lookup = Result<(Vec<IpAddr>, Duration), String>;

impl DnsTable {
    /// The addresses `hostname` stands for now: itself when it is an IP literal, else the
    /// last good answer (none before the first).
    pub fn addresses(&self, hostname: &str) -> Vec<IpAddr> {
        if let Ok(ip) = hostname.parse::<IpAddr>() {
            return vec![ip];
        }
        self.lock()
            .get(hostname)
            .map(|r| r.addresses.clone())
            .unwrap_or_default()
    }

    pub fn view(&self, hostname: &str) -> Option<Resolved> {
        self.lock().get(hostname).cloned()
    }

    /// Writes every DNS cluster's endpoints from the table. Endpoints carry the name's
    /// labels and weight; LOGICAL takes only each name's first address.
    pub fn fill(&self, config: &mut ProxyConfig) {
        for cluster in config.clusters_mut() {
            if let Some(dns) = &cluster.dns {
                cluster.endpoints = self.endpoints(dns);
            }
        }
    }

    /// Whether a DNS cluster of `config` has other endpoints than the table gives now: a
    /// config built just before an answer changed, and applied just after.
    pub fn stale(&self, config: &ProxyConfig) -> bool {
        config.clusters().any(|cluster| {
            cluster.dns.as_ref().is_some_and(|dns| {
                let now: Vec<SocketAddr> = self.endpoints(dns).iter().map(|e| e.address).collect();
                let held: Vec<SocketAddr> = cluster.endpoints.iter().map(|e| e.address).collect();
                now != held
            })
        })
    }

    fn endpoints(&self, dns: &DnsSpec) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        for target in &dns.endpoints {
            let addresses = self.addresses(&target.hostname);
            let take = match dns.lookup {
                DnsLookup::Strict => addresses.len(),
                DnsLookup::Logical => 1,
            };
            for ip in addresses.into_iter().take(take) {
                let mut endpoint = Endpoint::new(SocketAddr::new(ip, target.port));
                endpoint.labels = target.labels.clone();
                endpoint.weight = target.weight.unwrap_or(1);
                endpoints.push(endpoint);
            }
        }
        endpoints
    }

    /// The name `address` of a DNS cluster was resolved from.
    pub fn hostname_of(&self, dns: &DnsSpec, address: SocketAddr) -> Option<String> {
        dns.endpoints
            .iter()
            .filter(|t| t.port == address.port())
            .find(|t| self.addresses(&t.hostname).contains(&address.ip()))
            .map(|t| t.hostname.clone())
    }

    /// Records a lookup of `hostname` at `now`; true when its addresses changed.
    pub fn record(&self, hostname: &str, lookup: Lookup, now: Instant) -> bool {
        let mut names = self.lock();
        let entry = names.entry(hostname.to_owned()).or_default();
        match lookup {
            Ok((addresses, ttl)) => {
                // Servers rotate the order of their answers (round-robin DNS): the same
                // addresses in another order are no change, or every refresh would rebuild
                // the runtime (and reset its balancers) for nothing.
                let changed = !same_set(&entry.addresses, &addresses);
                if changed {
                    entry.addresses = addresses;
                }
                entry.resolved_at = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs());
                entry.failures = 0;
                entry.last_error = None;
                entry.next_at = Some(now + ttl.clamp(MIN_TTL, MAX_TTL));
                changed
            }
            Err(error) => {
                entry.failures += 1;
                entry.last_error = Some(error);
                entry.next_at = Some(now + RETRY_AFTER_FAILURE);
                false
            }
        }
    }

    /// Of `wanted`, the names to look up at `now`: never resolved, or due.
    pub fn due(&self, wanted: &BTreeSet<String>, now: Instant) -> Vec<String> {
        let names = self.lock();
        wanted
            .iter()
            .filter(|name| {
                names
                    .get(*name)
                    .and_then(|r| r.next_at)
                    .is_none_or(|at| at <= now)
            })
            .cloned()
            .collect()
    }

    /// When the next of `wanted` is due; `None` when nothing is wanted.
    pub fn next_due(&self, wanted: &BTreeSet<String>) -> Option<Instant> {
        let names = self.lock();
        wanted
            .iter()
            .filter_map(|name| names.get(name).and_then(|r| r.next_at))
            .min()
    }

    /// Drops names no config names any more.
    pub fn retain(&self, wanted: &BTreeSet<String>) {
        self.lock().retain(|name, _| wanted.contains(name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resolved>> {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// The names `config`'s DNS clusters need resolved (IP literals need no lookup).
pub fn wanted(config: &ProxyConfig) -> BTreeSet<String> {
    config
        .clusters()
        .filter_map(|c| c.dns.as_ref())
        .flat_map(|dns| &dns.endpoints)
        .filter(|t| t.hostname.parse::<IpAddr>().is_err())
        .map(|t| t.hostname.clone())
        .collect()
}

#[cfg(test)]
mod tests;
