#![allow(clippy::unwrap_used)]

use super::*;
use crate::bench::mtls::policy::Counts;

fn spec(variant: Variant, proto: Proto, load: Load, fresh: bool) -> Spec {
    Spec {
        variant,
        proto,
        load,
        fresh,
    }
}

/// A fixed-rate phase with this p99.
fn at_rate(variant: Variant, proto: Proto, p99_us: u32) -> Phase {
    Phase {
        rate: Some(RateSummary {
            requests: 20_000,
            total: 22_000,
            p50_us: p99_us / 2,
            p90_us: p99_us * 3 / 4,
            p99_us,
            p999_us: p99_us * 2,
            max_us: p99_us * 4,
            ..RateSummary::default()
        }),
        wall_s: 22.0,
        ..Phase::new(spec(variant, proto, Load::Rate(1000), false))
    }
}

/// A closed-loop phase: this rate, these sidecar CPU seconds, these connections.
fn at_max(spec: Spec, rps: f64, cpu_s: (f64, f64), connections: u64) -> Phase {
    let requests = (rps * 12.0) as u64;
    let (mtls, other) = match spec.variant {
        Variant::Mtls => (requests, 0),
        _ => (0, requests),
    };
    let counts = Counts {
        mtls,
        other,
        dropped: 0,
    };
    Phase {
        max: Some(H2loadSummary {
            rps,
            ..H2loadSummary::default()
        }),
        wall_s: 12.0,
        caller_cpu_s: cpu_s.0,
        callee_cpu_s: cpu_s.1,
        security: (spec.variant != Variant::Direct).then_some(Security {
            caller: counts,
            callee: counts,
            connections,
        }),
        ..Phase::new(spec)
    }
}

fn report() -> MtlsReport {
    let h1 = Proto::H1;
    let max = |variant| spec(variant, h1, Load::Max, false);
    let fresh = |variant| spec(variant, h1, Load::Max, true);
    MtlsReport {
        rate: 1000,
        phases: vec![
            at_rate(Variant::Direct, h1, 150),
            at_rate(Variant::Plaintext, h1, 400),
            at_rate(Variant::Mtls, h1, 480),
            at_max(max(Variant::Direct), 100_000.0, (0.0, 0.0), 0),
            at_max(max(Variant::Plaintext), 20_000.0, (4.0, 4.0), 16),
            at_max(max(Variant::Mtls), 17_000.0, (4.5, 4.5), 16),
            // 24,000 and 9,600 requests, each on a new connection: 100 µs (caller) and
            // 125 µs (callee) per plaintext connection, 300 and 375 µs with mTLS.
            at_max(fresh(Variant::Plaintext), 2000.0, (2.4, 3.0), 24_100),
            at_max(fresh(Variant::Mtls), 800.0, (2.88, 3.6), 9_700),
        ],
        ..MtlsReport::default()
    }
}

#[test]
fn mtls_is_compared_with_plaintext() {
    let report = report();
    let added = report.mtls_added_p99_ms(Proto::H1).unwrap();
    assert!((added - 0.08).abs() < 1e-9, "{added}");
    let ratio = report.mtls_throughput_ratio(Proto::H1).unwrap();
    assert!((ratio - 0.85).abs() < 1e-9, "{ratio}");
    assert_eq!(report.mtls_added_p99_ms(Proto::H2), None);
}

#[test]
fn aims_are_met_or_not_with_what_was_measured() {
    let report = report();
    let aims = report.aims(Proto::H1);
    assert_eq!(aims.len(), 2);
    assert_eq!(aims[0].measured, "85.0%");
    assert_eq!(aims[0].met, Some(false));
    assert_eq!(aims[1].measured, "+0.080 ms");
    assert_eq!(aims[1].met, Some(false));

    let mut close = report;
    close.phases[2] = at_rate(Variant::Mtls, Proto::H1, 440);
    close.phases[5] = at_max(
        spec(Variant::Mtls, Proto::H1, Load::Max, false),
        19_000.0,
        (4.0, 4.0),
        16,
    );
    let aims = close.aims(Proto::H1);
    assert_eq!(aims[0].met, Some(true));
    assert_eq!(aims[1].met, Some(true));
    assert!(close.aims(Proto::H2).iter().all(|a| a.met.is_none()));
}

#[test]
fn a_handshake_costs_the_difference_per_new_connection() {
    let report = report();
    let caller = report.handshake_us(Side::Caller).unwrap();
    let callee = report.handshake_us(Side::Callee).unwrap();
    assert!((caller - 200.0).abs() < 1e-6, "{caller}");
    assert!((callee - 250.0).abs() < 1e-6, "{callee}");
    let text = report.render();
    // 1 s / 200 µs and 1 s / 250 µs; everything included, 1 s / 300 µs and 1 s / 375 µs.
    assert!(
        text.contains("| caller (client handshake) | 3333 | 200.0 | 5000 |"),
        "{text}"
    );
    assert!(
        text.contains("| callee (server handshake) | 2667 | 250.0 | 4000 |"),
        "{text}"
    );
}

#[test]
fn a_failed_phase_is_shown_and_left_out_of_the_comparisons() {
    let mut report = report();
    report.phases[2].error = Some("not sidecars, mTLS: caller 0 mutual_tls".to_owned());
    assert_eq!(report.mtls_added_p99_ms(Proto::H1), None);
    let text = report.render();
    assert!(
        text.contains("| HTTP/1.1 | sidecars, mTLS | failed: not sidecars, mTLS"),
        "{text}"
    );
    assert!(text.contains("| mTLS p99 at 1000 rps ≤ plaintext's + 0.05 ms | HTTP/1.1 | – | – |"));
}

#[test]
fn the_tables_show_ratios_against_direct_and_plaintext() {
    let text = report().render();
    assert!(text.starts_with("## mTLS between two sidecars\n"));
    assert!(
        text.contains("| HTTP/1.1 | sidecars, mTLS | 0.240 | 0.360 | 0.480 | 0.960 | 1.920 | +0.330 | +0.080 | 0 |"),
        "{text}"
    );
    assert!(
        text.contains(
            "| HTTP/1.1 | sidecars, mTLS | 17000 | 0.17× | 0.85× | 0.38 | 0.38 | 0.00 | 44.1 |"
        ),
        "{text}"
    );
    assert!(
        text.contains("| mTLS max rps ≥ 90% of plaintext's | HTTP/1.1 | 85.0% | **not met** |")
    );
}

#[test]
fn the_doc_section_is_replaced_in_place_or_appended() {
    let doc = "# Benchmarks\n\nproxy\n";
    let first = replace_doc_section(doc, "## mTLS\n\nold\n");
    assert_eq!(
        first,
        format!("# Benchmarks\n\nproxy\n\n{DOC_BEGIN}\n## mTLS\n\nold\n{DOC_END}\n")
    );
    let edited = format!("{first}\n### Reading, by hand\n");
    let second = replace_doc_section(&edited, "## mTLS\n\nnew");
    assert_eq!(
        second,
        format!(
            "# Benchmarks\n\nproxy\n\n{DOC_BEGIN}\n## mTLS\n\nnew\n{DOC_END}\n\n### Reading, by hand\n"
        )
    );
}
