#![allow(clippy::unwrap_used)]

use super::*;

fn phase(target: TargetKind, load: Load, p99_us: u32, cpu_s: f64) -> Phase {
    let (rate, max) = match load {
        Load::Rate(rate) => (
            Some(RateSummary {
                requests: u64::from(rate) * 20,
                total: u64::from(rate) * 22,
                p50_us: p99_us / 2,
                p90_us: p99_us * 3 / 4,
                p99_us,
                p999_us: p99_us * 2,
                max_us: p99_us * 3,
                ..RateSummary::default()
            }),
            None,
        ),
        Load::Max => (
            None,
            Some(H2loadSummary {
                rps: 40_000.0 - cpu_s * 1000.0,
                ..H2loadSummary::default()
            }),
        ),
    };
    Phase {
        target,
        proto: Proto::H1,
        load,
        rate,
        max,
        error: None,
        wall_s: 10.0,
        target_cpu_s: cpu_s,
        upstream_cpu_s: 1.0,
        loadgen_cpu_s: 1.0,
        other_cpu_s: 0.0,
        steal_s: 0.0,
        rss_peak: 8 * 1024 * 1024,
        attempts: 1,
    }
}

fn report() -> Report {
    let mut phases = Vec::new();
    for (target, p99, cpu) in [
        (TargetKind::Direct, 200, 0.0),
        (TargetKind::Mesh, 300, 0.88),
        (TargetKind::Haproxy, 280, 1.1),
    ] {
        phases.push(phase(target, Load::Rate(1000), p99, cpu));
        phases.push(phase(target, Load::Max, 0, cpu * 5.0));
    }
    Report {
        targets: vec![TargetKind::Direct, TargetKind::Mesh, TargetKind::Haproxy],
        rates: vec![1000],
        idle_rss: vec![(TargetKind::Mesh, 4 * 1024 * 1024)],
        phases,
        ..Report::default()
    }
}

#[test]
fn added_latency_is_over_direct_at_the_same_rate() {
    let report = report();
    let added = report
        .added_p99_ms(TargetKind::Mesh, Proto::H1, 1000)
        .unwrap();
    assert!((added - 0.1).abs() < 1e-9);
    assert_eq!(report.added_p99_ms(TargetKind::Mesh, Proto::H1, 5000), None);
}

#[test]
fn cpu_per_thousand_rps_is_cpu_seconds_per_thousand_requests() {
    // 0.88 CPU s over 22,000 requests: 0.04 vCPU at 1000 rps.
    let cpu = report()
        .vcpu_per_krps(TargetKind::Mesh, Proto::H1, 1000)
        .unwrap();
    assert!((cpu - 0.04).abs() < 1e-9);
}

#[test]
fn rps_per_core_divides_by_the_proxys_own_cpu() {
    // 40,000 - 4,400 rps with 4.4 CPU s over 10 s.
    let per_core = report().rps_per_core(TargetKind::Mesh, Proto::H1).unwrap();
    assert!((per_core - 35_600.0 / 0.44).abs() < 1e-6);
}

#[test]
fn aims_are_judged_from_the_same_run() {
    let report = report();
    let met: Vec<Option<bool>> = report.aims(Proto::H1).iter().map(|a| a.met).collect();
    // +0.1 ms, 0.04 vCPU, 8 MB, and more rps per core than HAProxy (less CPU per request).
    assert_eq!(met, [Some(true), Some(true), Some(true), Some(true)]);
}

#[test]
fn the_rendered_tables_name_every_target() {
    let text = report().render();
    for expected in [
        "| direct | 1000 |",
        "| mesh-proxy | 1000 |",
        "mesh ÷ haproxy",
        "+0.100",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
}

#[test]
fn the_doc_section_is_replaced_in_place() {
    let doc = format!("# Benchmarks\n\nintro\n\n{DOC_BEGIN}\nold\n{DOC_END}\n\n## Notes\n");
    let updated = replace_doc_section(&doc, "new\n");
    assert_eq!(
        updated,
        format!("# Benchmarks\n\nintro\n\n{DOC_BEGIN}\nnew\n{DOC_END}\n\n## Notes\n")
    );
}

#[test]
fn the_doc_section_is_appended_when_absent() {
    let updated = replace_doc_section("# Benchmarks\n", "new");
    assert_eq!(
        updated,
        format!("# Benchmarks\n\n{DOC_BEGIN}\nnew\n{DOC_END}\n")
    );
    assert_eq!(
        replace_doc_section("", "new"),
        format!("{DOC_BEGIN}\nnew\n{DOC_END}\n")
    );
}

#[test]
fn noise_and_a_busy_client_are_flagged() {
    let mut quiet = phase(TargetKind::Mesh, Load::Max, 0, 4.0);
    assert!(!quiet.noisy());
    assert!(!quiet.client_bound());
    quiet.other_cpu_s = 2.0;
    quiet.loadgen_cpu_s = 9.0;
    assert!(quiet.noisy());
    assert!(quiet.client_bound());
    let mut report = report();
    report.phases.push(quiet);
    assert!(report.render().contains("**Noisy:**"));
}
