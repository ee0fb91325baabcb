use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mesh_core::compile::compile;
use mesh_core::snapshot::{ClusterSpec, DnsEndpointSpec, DnsLookup, DnsSpec, Snapshot};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

fn config(lookup: DnsLookup, hostnames: &[&str]) -> ProxyConfig {
    let snapshot = Snapshot {
        clusters: vec![ClusterSpec {
            host: "api.example.com".into(),
            port: 80,
            dns: Some(DnsSpec {
                lookup,
                endpoints: hostnames
                    .iter()
                    .map(|h| DnsEndpointSpec {
                        hostname: (*h).into(),
                        port: 8080,
                        labels: Default::default(),
                        weight: None,
                    })
                    .collect(),
            }),
            ..ClusterSpec::default()
        }],
        ..Snapshot::default()
    };
    compile(&snapshot).expect("compiles")
}

fn endpoints(config: &ProxyConfig) -> Vec<SocketAddr> {
    let cluster = config.cluster("api.example.com", 80).expect("cluster");
    cluster.endpoints.iter().map(|e| e.address).collect()
}

#[test]
fn strict_takes_every_address_logical_the_first_and_literals_need_no_lookup() {
    let table = DnsTable::default();
    let now = Instant::now();
    let two = vec![ip("127.0.20.1"), ip("127.0.20.2")];
    table.record("a.example.com", Ok((two, Duration::from_secs(5))), now);

    let mut strict = config(DnsLookup::Strict, &["a.example.com", "10.0.0.9"]);
    table.fill(&mut strict);
    let addresses: Vec<String> = endpoints(&strict).iter().map(ToString::to_string).collect();
    assert_eq!(
        addresses,
        ["127.0.20.1:8080", "127.0.20.2:8080", "10.0.0.9:8080"]
    );
    let dns = strict
        .cluster("api.example.com", 80)
        .and_then(|c| c.dns.clone());
    let dns = dns.expect("dns spec");
    let second = "127.0.20.2:8080".parse().expect("addr");
    assert_eq!(
        table.hostname_of(&dns, second).as_deref(),
        Some("a.example.com")
    );

    let mut logical = config(DnsLookup::Logical, &["a.example.com"]);
    table.fill(&mut logical);
    assert_eq!(
        endpoints(&logical),
        ["127.0.20.1:8080".parse().expect("addr")]
    );

    // The literal is not a name to look up.
    assert_eq!(
        wanted(&strict),
        BTreeSet::from(["a.example.com".to_owned()])
    );
}

#[test]
fn a_failed_lookup_keeps_the_last_good_addresses_and_is_retried_soon() {
    let table = DnsTable::default();
    let now = Instant::now();
    let name = "a.example.com";
    assert!(table.record(name, Ok((vec![ip("127.0.20.1")], Duration::ZERO)), now));
    assert!(!table.record(name, Err("timed out".into()), now));
    let view = table.view(name).expect("known");
    assert_eq!(view.addresses, [ip("127.0.20.1")]);
    assert_eq!(
        (view.failures, view.last_error.as_deref()),
        (1, Some("timed out"))
    );
    let wanted = BTreeSet::from([name.to_owned()]);
    assert!(table.due(&wanted, now).is_empty());
    assert_eq!(table.next_due(&wanted), Some(now + RETRY_AFTER_FAILURE));
    assert_eq!(table.due(&wanted, now + RETRY_AFTER_FAILURE), [name]);
}

#[test]
fn ttls_are_clamped_and_an_unchanged_answer_is_no_change() {
    let table = DnsTable::default();
    let now = Instant::now();
    let wanted = BTreeSet::from(["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        table.due(&wanted, now).len(),
        2,
        "never resolved: due at once"
    );
    table.record("a", Ok((vec![ip("10.0.0.1")], Duration::ZERO)), now);
    table.record(
        "b",
        Ok((vec![ip("10.0.0.2")], Duration::from_secs(86_400))),
        now,
    );
    assert_eq!(table.next_due(&wanted), Some(now + MIN_TTL));
    assert_eq!(table.due(&wanted, now + MAX_TTL), ["a", "b"]);
    assert!(!table.record("b", Ok((vec![ip("10.0.0.2")], MAX_TTL)), now));
    table.retain(&BTreeSet::from(["a".to_owned()]));
    assert!(table.view("b").is_none());
}

#[test]
fn a_config_filled_before_an_answer_changed_is_stale() {
    let table = DnsTable::default();
    let now = Instant::now();
    table.record("a.example.com", Ok((vec![ip("127.0.20.1")], MIN_TTL)), now);
    let mut config = config(DnsLookup::Strict, &["a.example.com"]);
    table.fill(&mut config);
    assert!(!table.stale(&config));
    table.record("a.example.com", Ok((vec![ip("127.0.20.2")], MIN_TTL)), now);
    assert!(table.stale(&config));
    table.fill(&mut config);
    assert!(!table.stale(&config));
}

/// Round-robin DNS: the same addresses in a rotated order are no change (no runtime
/// rebuilt each refresh), and the table keeps the order it had; a new address is one.
#[test]
fn a_reordered_answer_is_no_change() {
    let table = DnsTable::default();
    let now = Instant::now();
    let ttl = Duration::from_secs(5);
    let (a, b, c) = (ip("127.0.21.1"), ip("127.0.21.2"), ip("127.0.21.3"));
    assert!(table.record("rr.example.com", Ok((vec![a, b], ttl)), now));
    assert!(!table.record("rr.example.com", Ok((vec![b, a], ttl)), now));
    assert_eq!(table.addresses("rr.example.com"), [a, b]);
    let mut logical = config(DnsLookup::Logical, &["rr.example.com"]);
    table.fill(&mut logical);
    assert!(!table.stale(&logical));
    assert!(table.record("rr.example.com", Ok((vec![b, c], ttl)), now));
    assert_eq!(table.addresses("rr.example.com"), [b, c]);
}
