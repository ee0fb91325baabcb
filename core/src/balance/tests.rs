#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use http::HeaderName;
use http::request::Parts;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::model::{
    Destination, Downstream, Endpoint, Labels, RequestInfo, Subset, WeightedDestination,
};

fn dest(host: &str, weight: u32) -> WeightedDestination {
    WeightedDestination {
        destination: Destination::new(host),
        weight,
        ..Default::default()
    }
}

fn endpoints(n: u16) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint::new(SocketAddr::from(([10, 0, 1, 1], 9000 + i))))
        .collect()
}

fn parts(uri: &str, headers: &[(&'static str, &'static str)]) -> Parts {
    let mut builder = http::Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

#[test]
fn weighted_choice_follows_the_runs_of_points() {
    let dests = [dest("a", 20), dest("b", 0), dest("c", 80)];
    assert_eq!(total_weight(&dests), 100);
    assert_eq!(choose_weighted(&dests, 0), Some(0));
    assert_eq!(choose_weighted(&dests, 19), Some(0));
    assert_eq!(choose_weighted(&dests, 20), Some(2));
    assert_eq!(choose_weighted(&dests, 99), Some(2));
    assert_eq!(choose_weighted(&dests, 100), Some(0), "wraps");
}

#[test]
fn weighted_choice_edge_cases() {
    let none: [WeightedDestination; 0] = [];
    assert_eq!(choose_weighted(&none, 3), None);
    assert_eq!(pick_weighted(&none, &mut StdRng::seed_from_u64(1)), None);
    // A lone destination takes everything, even with weight 0 (Istio's omitted weight).
    assert_eq!(choose_weighted(&[dest("a", 0)], 12345), Some(0));
    // All zero: share equally rather than drop traffic.
    let zeros = [dest("a", 0), dest("b", 0), dest("c", 0)];
    let chosen: BTreeSet<_> = (0..3).map(|r| choose_weighted(&zeros, r)).collect();
    assert_eq!(chosen.len(), 3);
    // A zero weight beside others is never chosen.
    let mut rng = StdRng::seed_from_u64(2);
    let picks: BTreeSet<_> = (0..1000)
        .map(|_| pick_weighted(&[dest("a", 0), dest("b", 1)], &mut rng))
        .collect();
    assert_eq!(picks, BTreeSet::from([Some(1)]));
    // Weights near u32::MAX do not overflow.
    let huge = [dest("a", u32::MAX), dest("b", u32::MAX)];
    assert_eq!(choose_weighted(&huge, u64::from(u32::MAX)), Some(1));
}

#[test]
fn round_robin_cycles() {
    let rr = RoundRobin::new();
    let picks: Vec<_> = (0..7).map(|_| rr.pick(3).unwrap()).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(rr.pick(0), None);
    assert_eq!(RoundRobin::starting_at(5).pick(3), Some(2));
    let wrapping = RoundRobin::starting_at(usize::MAX);
    assert_eq!(wrapping.pick(2), Some(1));
    assert_eq!(wrapping.pick(2), Some(0));
}

#[test]
fn least_request_edge_cases() {
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(pick_least_request(0, |_| 0, &mut rng), None);
    assert_eq!(pick_least_request(1, |_| 99, &mut rng), Some(0));
    // Equal loads: every endpoint gets picked eventually.
    let picks: BTreeSet<_> = (0..200)
        .map(|_| pick_least_request(4, |_| 1, &mut rng).unwrap())
        .collect();
    assert_eq!(picks.len(), 4);
}

#[test]
fn random_honours_weights_and_handles_empty() {
    let mut rng = StdRng::seed_from_u64(4);
    assert_eq!(pick_random(&[], &mut rng), None);
    let mut eps = endpoints(2);
    eps[0].weight = 9;
    let first = (0..10_000)
        .filter(|_| pick_random(&eps, &mut rng) == Some(0))
        .count();
    assert!((8_700..9_300).contains(&first), "{first}");
}

#[test]
fn hash_keys_from_each_source() {
    let p = parts(
        "/?user=u1&other=x",
        &[
            ("x-user", "u1"),
            ("cookie", "a=1; session=\"s1\""),
            ("cookie", "session=ignored"),
        ],
    );
    let downstream = Downstream {
        source_ip: Some(IpAddr::from([192, 168, 0, 7])),
        ..Downstream::sidecar(80)
    };
    let req = RequestInfo::new(&p, &downstream);
    let header = HashPolicy::Header(HeaderName::from_static("x-user"));
    let cookie = HashPolicy::Cookie(HashCookie {
        name: "session".to_owned(),
        path: None,
        ttl: None,
    });
    let query = HashPolicy::QueryParameter("user".to_owned());
    assert_eq!(header.key(&req), Some(stable_hash(b"u1")));
    assert_eq!(cookie.key(&req), Some(stable_hash(b"s1")));
    assert_eq!(query.key(&req), Some(stable_hash(b"u1")));
    assert_eq!(
        HashPolicy::SourceIp.key(&req),
        Some(stable_hash(&[192, 168, 0, 7]))
    );

    let bare = parts("/", &[("cookie", "sessionx=1; other")]);
    let anonymous = Downstream::sidecar(80);
    let bare = RequestInfo::new(&bare, &anonymous);
    for policy in [header, cookie, query, HashPolicy::SourceIp] {
        assert_eq!(policy.key(&bare), None, "{policy:?}");
    }
}

#[test]
fn consistent_hash_balancer_is_sticky_and_falls_back_to_random() {
    let policy = LbPolicy::ConsistentHash(ConsistentHash::new(HashPolicy::Header(
        HeaderName::from_static("x-user"),
    )));
    let balancer = Balancer::new(&policy, endpoints(10)).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let downstream = Downstream::sidecar(80);

    let keyed = parts("/", &[("x-user", "alice")]);
    let keyed = RequestInfo::new(&keyed, &downstream);
    let sticky: BTreeSet<_> = (0..100)
        .map(|_| balancer.pick(&keyed, |_| 0, &mut rng))
        .collect();
    assert_eq!(sticky.len(), 1);

    let unkeyed = parts("/", &[]);
    let unkeyed = RequestInfo::new(&unkeyed, &downstream);
    let spread: BTreeSet<_> = (0..200)
        .map(|_| balancer.pick(&unkeyed, |_| 0, &mut rng))
        .collect();
    assert!(spread.len() > 5, "{spread:?}");
}

#[test]
fn balancer_policies_and_errors() {
    let downstream = Downstream::sidecar(80);
    let p = parts("/", &[]);
    let req = RequestInfo::new(&p, &downstream);
    let mut rng = StdRng::seed_from_u64(6);

    let rr = Balancer::new(&LbPolicy::RoundRobin, endpoints(3))
        .unwrap()
        .with_round_robin_start(1);
    let picks: Vec<_> = (0..3)
        .map(|_| rr.pick(&req, |_| 0, &mut rng).unwrap())
        .collect();
    assert_eq!(picks, [1, 2, 0]);

    let loads = [5, 0];
    let lr = Balancer::new(&LbPolicy::default(), endpoints(2)).unwrap();
    assert_eq!(lr.pick(&req, |i| loads[i], &mut rng), Some(1));

    let empty = Balancer::new(&LbPolicy::Random, Vec::new()).unwrap();
    assert_eq!(empty.pick(&req, |_| 0, &mut rng), None);

    let bad = LbPolicy::ConsistentHash(ConsistentHash {
        key: HashPolicy::SourceIp,
        table_size: 1000,
    });
    let err = Balancer::new(&bad, endpoints(2)).unwrap_err();
    assert_eq!(err, BalanceError::TableSizeNotPrime(1000));
    assert!(err.to_string().contains("65537"));
}

#[test]
fn subset_selects_label_supersets() {
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut eps = endpoints(3);
    eps[0].labels = labels(&[("app", "reviews"), ("version", "v1")]);
    eps[1].labels = labels(&[("app", "reviews"), ("version", "v2")]);
    eps[2].labels = labels(&[("app", "reviews"), ("version", "v1"), ("zone", "a")]);
    let v1 = Subset {
        name: "v1".to_owned(),
        labels: labels(&[("version", "v1")]),
    };
    let picked: Vec<_> = select_subset(&eps, &v1).map(|e| e.address.port()).collect();
    assert_eq!(picked, [9000, 9002]);
    let all = Subset {
        name: "all".to_owned(),
        labels: Labels::new(),
    };
    assert_eq!(select_subset(&eps, &all).count(), 3);
    let none = Subset {
        name: "v3".to_owned(),
        labels: labels(&[("version", "v3")]),
    };
    assert_eq!(select_subset(&eps, &none).count(), 0);
}
