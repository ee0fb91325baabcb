use super::super::process::Usage;
use super::super::scenario::{RoundResult, SyncResult};
use super::super::stats::{Spread, Summary};
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn scenario(change: Change, flags: &str, p99: u64) -> ScenarioResult {
    let spread = Spread {
        count: 200,
        p50: ms(p99 / 2),
        p99: ms(p99),
        max: ms(p99 + 5),
    };
    let rounds = vec![
        RoundResult {
            service: 5,
            spread,
            resources: (1, 1),
            ..RoundResult::default()
        };
        3
    ];
    ScenarioResult {
        change,
        flags: flags.to_owned(),
        idle_cpu_per_s: 0.01,
        summary: Summary::of(&[spread; 3]),
        rounds,
        cost: Cost {
            pilot_cpu_s: 0.33,
            wall: Duration::from_secs(3),
            rss_peak: 90 << 20,
            after: Usage {
                hwm: 120 << 20,
                ..Usage::default()
            },
            ..Cost::default()
        },
    }
}

fn report(sync_after: Option<Duration>) -> PilotReport {
    PilotReport {
        info: RunInfo {
            command: "cargo xtask bench pilot --proxies 200".into(),
            date: "2026-11-21 06:00 UTC".into(),
            ..RunInfo::default()
        },
        shape: Some(Shape {
            services: 1000,
            endpoints: 10,
            namespaces: 10,
        }),
        proxies: 200,
        connections: 2,
        config_bytes: 3 << 20,
        syncs: vec![SyncPhase {
            flags: String::new(),
            result: SyncResult {
                proxies: 200,
                synced: if sync_after.is_some() { 200 } else { 150 },
                all_after: sync_after,
                ..SyncResult::default()
            },
            cost: Cost::default(),
        }],
        scenarios: vec![
            scenario(Change::Route, "", 210),
            scenario(Change::Endpoint, "", 190),
            scenario(Change::Endpoint, "--debounce 10ms --config-poll 10ms", 45),
        ],
        ..PilotReport::default()
    }
}

#[test]
fn the_aims_say_plainly_what_is_met() {
    let aims = report(Some(ms(800))).aims();
    let met: Vec<(&str, bool)> = aims.iter().map(|a| (a.name, a.met)).collect();
    assert_eq!(
        met,
        [
            ("full convergence under 1 s", true),
            ("pilot under 150 MB RSS", true),
            (
                "one endpoint change at every affected proxy under 100 ms p99",
                false
            ),
        ]
    );
    assert_eq!(aims[1].measured, "peak 120 MB (VmHWM) with 200 proxies");
    let unsynced = report(None).aims();
    assert!(!unsynced[0].met);
    assert_eq!(unsynced[0].measured, "only 150 of 200 proxies synced");
}

#[test]
fn the_section_has_the_command_the_tables_and_the_debounces_share() {
    let text = report(Some(ms(800))).render();
    assert!(text.starts_with("## pilot at scale\n"));
    assert!(text.contains("```sh\ncargo xtask bench pilot --proxies 200\n```"));
    assert!(text.contains(
        "| B: one endpoint's address | defaults (poll 100ms, debounce 100ms) | 200 of 200 | \
         95.0 | 190 | 195 | 1 | 0 | 0.100 | 90.0 | – | – | 0.00 |"
    ));
    assert!(text.contains("| `--debounce 10ms --config-poll 10ms` |"));
    assert!(text.contains("- pilot under 150 MB RSS: met: peak 120 MB"));
    assert!(text.contains("under 100 ms p99: **not met**: p99 190 ms"));
    assert!(text.contains("takes p99 45.0 ms"), "{text}");
    assert!(text.contains("about 25.0 ms or more at p99, within the 100 ms aim"));
    assert!(text.contains("| A: route weights of one VirtualService | defaults"));
}

#[test]
fn the_doc_section_is_replaced_and_the_rest_kept() {
    let proxy = "# Benchmarks\n\n## mesh-proxy\n\nproxy numbers\n";
    let first = replace_doc_section(proxy, "## pilot at scale\n\nold\n");
    assert!(first.starts_with(proxy.trim_end()));
    assert!(first.ends_with(&format!(
        "{DOC_BEGIN}\n## pilot at scale\n\nold\n{DOC_END}\n"
    )));
    let notes = format!("{first}\n### Reading\n\nhand notes\n");
    let second = replace_doc_section(&notes, "## pilot at scale\n\nnew");
    assert!(second.contains("proxy numbers"));
    assert!(second.contains("new\n<!-- END"));
    assert!(!second.contains("old"));
    assert!(second.ends_with("### Reading\n\nhand notes\n"));
}
