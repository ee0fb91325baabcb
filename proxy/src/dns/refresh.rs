//! The resolving loop: looks up every name the current config needs when it is due, and
//! swaps in a runtime with the new endpoints when an answer changed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;

use super::{Lookup, MAX_TTL};
use crate::state::{Runtime, State};

pub const RESOLUTIONS: &str = "mesh_dns_resolutions_total";

#[derive(Debug, thiserror::Error)]
#[error("the DNS resolver: {0}; pass --dns-server ADDR to name a DNS server")]
pub struct ResolverError(String);

/// A resolver asking `server` (UDP, then TCP), or the system's (`/etc/resolv.conf`) when
/// none is given. A name's cached answer is dropped before it is looked up again: the loop
/// keeps its own schedule from the answers' TTLs.
pub fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, ResolverError> {
    let builder = match server {
        Some(server) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = server.port();
                    c
                })
                .collect();
            let name_server = NameServerConfig::new(server.ip(), true, connections);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| ResolverError(e.to_string()))?,
    };
    builder.build().map_err(|e| ResolverError(e.to_string()))
}

/// Looks `hostname` up: its addresses and how long they are good for.
pub async fn lookup(resolver: &TokioResolver, hostname: &str) -> Lookup {
    resolver.clear_lookup_cache(hostname_fqdn(hostname).as_str(), RecordType::A);
    resolver.clear_lookup_cache(hostname_fqdn(hostname).as_str(), RecordType::AAAA);
    let fqdn = hostname_fqdn(hostname);
    let answer = resolver
        .lookup_ip(fqdn.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let addresses: Vec<_> = answer.iter().collect();
    if addresses.is_empty() {
        return Err("no addresses".into());
    }
    let ttl = answer
        .valid_until()
        .saturating_duration_since(Instant::now());
    Ok((addresses, ttl))
}

/// With a trailing dot: the name as written, never a search-domain guess.
fn hostname_fqdn(hostname: &str) -> String {
    if hostname.ends_with('.') {
        hostname.to_owned()
    } else {
        format!("{hostname}.")
    }
}

/// Resolves the names of `state`'s config, forever.
pub async fn run(state: Arc<State>, resolver: TokioResolver) {
    metrics::describe_counter!(
        RESOLUTIONS,
        "DNS lookups of the names of resolution: DNS ServiceEntries, by result."
    );
    metrics::counter!(RESOLUTIONS, "result" => "success").increment(0);
    metrics::counter!(RESOLUTIONS, "result" => "failure").increment(0);
    loop {
        let wanted = state
            .current()
            .map(|r| super::wanted(&r.config))
            .unwrap_or_default();
        state.dns.retain(&wanted);
        // Concurrently: one slow name must not hold the others past their TTL.
        let mut lookups = tokio::task::JoinSet::new();
        for hostname in state.dns.due(&wanted, Instant::now()) {
            let resolver = resolver.clone();
            lookups.spawn(async move {
                let outcome = lookup(&resolver, &hostname).await;
                (hostname, outcome)
            });
        }
        let mut changed = false;
        while let Some(done) = lookups.join_next().await {
            let Ok((hostname, outcome)) = done else {
                continue;
            };
            report(&hostname, &outcome);
            changed |= state.dns.record(&hostname, outcome, Instant::now());
        }
        let stale = state.current().is_some_and(|r| state.dns.stale(&r.config));
        if changed || stale {
            swap_in(&state);
        }
        let next = state
            .dns
            .next_due(&wanted)
            .unwrap_or_else(|| Instant::now() + MAX_TTL);
        tokio::select! {
            () = state.dns.wake.notified() => {}
            () = tokio::time::sleep_until(next.into()) => {}
        }
    }
}

fn report(hostname: &str, outcome: &Lookup) {
    match outcome {
        Ok((addresses, ttl)) => {
            metrics::counter!(RESOLUTIONS, "result" => "success").increment(1);
            tracing::debug!(hostname, ?addresses, ?ttl, "dns: resolved");
        }
        Err(error) => {
            metrics::counter!(RESOLUTIONS, "result" => "failure").increment(1);
            tracing::warn!(hostname, %error, "dns: lookup failed; keeping the last good addresses");
        }
    }
}

/// Rebuilds the current runtime with the table's addresses; a config applied meanwhile
/// wins (it was built from the table already).
fn swap_in(state: &State) {
    let Some(current) = state.current() else {
        return;
    };
    match Runtime::new(current.snapshot.clone(), current.config.clone(), state) {
        Ok(runtime) => {
            if state.replace(&current, runtime) {
                let endpoints: Vec<String> = super::wanted(&current.config)
                    .iter()
                    .map(|name| format!("{name}={:?}", state.dns.addresses(name)))
                    .collect();
                tracing::info!(?endpoints, "dns: endpoints updated");
            }
        }
        Err(error) => tracing::warn!(%error, "dns: the new endpoints were refused"),
    }
}
