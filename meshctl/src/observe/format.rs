//! The terminal tables of `stat` and `top`: Linkerd's columns (`95.00%`, `2.3rps`,
//! `12ms`), `-` where there were no requests to measure.

use super::stats::{Edge, Stats, WorkloadStats};
use super::window::Golden;

pub const WORKLOAD_COLUMNS: [&str; 8] = [
    "NAME",
    "MESHED",
    "SUCCESS",
    "RPS",
    "LATENCY_P50",
    "LATENCY_P95",
    "LATENCY_P99",
    "TCP_CONN",
];

pub const EDGE_COLUMNS: [&str; 7] = [
    "FROM",
    "TO",
    "SUCCESS",
    "RPS",
    "LATENCY_P99",
    "MTLS",
    "REQUESTS",
];

pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.2}%", s * 100.0))
}

pub fn rps(rps: f64) -> String {
    format!("{rps:.1}rps")
}

/// Milliseconds: one decimal below 10 ms, whole above.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 10.0 => format!("{ms:.1}ms"),
        Some(ms) => format!("{ms:.0}ms"),
    }
}

fn golden_cells(golden: &Golden) -> [String; 5] {
    [
        percent(golden.success),
        rps(golden.rps),
        millis(golden.p50),
        millis(golden.p95),
        millis(golden.p99),
    ]
}

pub fn workload_row(w: &WorkloadStats) -> [String; 8] {
    let [success, rps, p50, p95, p99] = golden_cells(&w.golden);
    [
        w.workload.name.clone(),
        format!("{}/{}", w.workload.meshed.0, w.workload.meshed.1),
        success,
        rps,
        p50,
        p95,
        p99,
        format!("{}", w.tcp_conn.round()),
    ]
}

pub fn edge_row(stats: &Stats, edge: &Edge) -> [String; 7] {
    let name = |id: &str| {
        stats
            .nodes
            .iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.to_owned(), |n| n.name.clone())
    };
    [
        name(&edge.source),
        name(&edge.target),
        percent(edge.golden.success),
        rps(edge.golden.rps),
        millis(edge.golden.p99),
        if edge.mtls { "yes" } else { "no" }.to_owned(),
        format!("{}", edge.total_requests.round()),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(percent(Some(0.95)), "95.00%");
        assert_eq!(percent(None), "-");
        assert_eq!(rps(2.345), "2.3rps");
        assert_eq!(millis(Some(4.96)), "5.0ms");
        assert_eq!(millis(Some(24.7)), "25ms");
        assert_eq!(millis(None), "-");
    }
}
