#![allow(clippy::unwrap_used)]

use super::*;

const PAGE: &str = r#"# TYPE mesh_requests_total counter
mesh_requests_total{reporter="source",source_workload="reviews",response_code="200",connection_security_policy="mutual_tls"} 120
mesh_requests_total{reporter="source",source_workload="reviews",response_code="503",connection_security_policy="mutual_tls"} 3
mesh_requests_total{reporter="source",source_workload="reviews",response_code="200",connection_security_policy="none"} 2
mesh_request_duration_milliseconds_bucket{connection_security_policy="none",le="1"} 99
mesh_requests_total{reporter="source",connection_security_policy="unknown"} 1e1
mesh_requests_total{reporter="source",response_code="0",connection_security_policy="unknown"} 16
"#;

#[test]
fn requests_are_summed_by_security_policy() {
    let counts = security_counts(PAGE);
    assert_eq!(
        counts,
        Counts {
            mtls: 123,
            other: 12,
            dropped: 16,
        }
    );
    assert_eq!(counts.total(), 135);
    assert_eq!(security_counts(""), Counts::default());
}

fn security(caller: (u64, u64), callee: (u64, u64)) -> Security {
    Security {
        caller: Counts {
            mtls: caller.0,
            other: caller.1,
            dropped: 0,
        },
        callee: Counts {
            mtls: callee.0,
            other: callee.1,
            dropped: 0,
        },
        connections: 16,
    }
}

#[test]
fn a_variant_holds_only_when_every_request_matches_it() {
    let mtls = security((500, 0), (500, 0));
    let plain = security((0, 500), (0, 500));
    assert_eq!(mtls.contradiction(Variant::Mtls, false), None);
    assert_eq!(plain.contradiction(Variant::Plaintext, false), None);
    assert!(
        mtls.contradiction(Variant::Plaintext, false)
            .unwrap()
            .contains("callee 500 mutual_tls")
    );
    assert!(plain.contradiction(Variant::Mtls, false).is_some());
    // One plaintext request in an mTLS phase is enough to fail it.
    assert!(
        security((500, 0), (499, 1))
            .contradiction(Variant::Mtls, false)
            .is_some()
    );
    assert!(
        security((0, 0), (0, 0))
            .contradiction(Variant::Mtls, false)
            .unwrap()
            .contains("no requests")
    );
}

#[test]
fn counts_since_an_earlier_reading() {
    let before = security((1, 0), (1, 0));
    let after = Security {
        connections: 40,
        ..security((101, 0), (101, 2))
    };
    assert_eq!(
        after.since(&before),
        Security {
            connections: 24,
            ..security((100, 0), (100, 2))
        }
    );
}

#[test]
fn a_new_connection_per_request_is_checked() {
    // 16 connections opened meanwhile for 500 requests: kept alive.
    let kept = security((500, 0), (500, 0));
    assert_eq!(kept.contradiction(Variant::Mtls, false), None);
    assert!(
        kept.contradiction(Variant::Mtls, true)
            .unwrap()
            .contains("reused: 16 opened for 500 requests")
    );
    let fresh = Security {
        connections: 530,
        ..kept
    };
    assert_eq!(fresh.contradiction(Variant::Mtls, true), None);
}

const SNMP: &str = "Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails
Tcp: 1 200 120000 -1 311202 305663 5395
Udp: InDatagrams NoPorts
Udp: 10 0
";

#[test]
fn active_opens_from_proc_net_snmp() {
    assert_eq!(tcp_active_opens(SNMP), Some(311_202));
    assert_eq!(tcp_active_opens("Tcp: ActiveOpens\n"), None);
    assert_eq!(tcp_active_opens(""), None);
}
