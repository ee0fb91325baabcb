//! Every query of the Grafana dashboards in charts/mesh/dashboards, run against the real
//! Prometheus with the dashboard variables set to the test's mesh: each must be accepted,
//! and the golden panels (rate, success, latency, callers) must return data.

use std::path::PathBuf;

use serde_json::Value;

use super::server::Prometheus;
use super::{RATE, SERVICE};

/// Panels that must show data for the test's traffic, by dashboard file.
const GOLDEN: [(&str, &[&str]); 3] = [
    (
        "mesh.json",
        &[
            "Request rate",
            "Success rate",
            "5xx rate",
            "Request rate by service",
            "Success rate by service",
            "P99 latency by service",
            "P50 latency by service",
        ],
    ),
    (
        "service.json",
        &[
            "Request rate",
            "Success rate",
            "P99 latency",
            "Request rate by response code",
            "Latency",
            "Request rate by source workload",
            "Success rate by source workload",
            "Request size",
            "Response size",
        ],
    ),
    (
        "workload.json",
        &[
            "Request rate",
            "Success rate",
            "P99 latency",
            "Inbound requests by source workload",
            "Inbound latency",
        ],
    ),
];

/// The dashboards' variables as Grafana would set them for the callee.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "4s")
        .replace("$__interval", "1s")
        .replace("$namespace", "shop")
        .replace("$service", SERVICE)
        .replace("$workload", "reviews")
        .replace("$reporter", "destination")
}

fn dashboards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/mesh/dashboards")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// `label_values(selector, label)`, Grafana's variable query, as PromQL.
fn variable_promql(query: &str) -> Option<String> {
    let inner = query.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some(format!("count by ({}) ({})", label.trim(), selector.trim()))
}

pub async fn check_every_panel(prometheus: &Prometheus, at: Option<f64>) {
    let mut checked = 0;
    for (file, golden) in GOLDEN {
        let path = dashboards_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let dashboard: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let Some(query) = variable["definition"].as_str() else {
                continue;
            };
            let promql = variable_promql(query)
                .unwrap_or_else(|| panic!("{file}: variable query {query:?} is not label_values"));
            let data = prometheus
                .query(&substitute(&promql), at)
                .await
                .unwrap_or_else(|e| panic!("{file}: variable {query}: {e}"));
            let values = data["result"].as_array().map_or(0, Vec::len);
            assert!(values > 0, "{file}: variable {query} has no values");
            checked += 1;
        }
        let mut shown = Vec::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = substitute(target["expr"].as_str().unwrap());
                assert!(
                    !expr.contains('$'),
                    "{file}/{title}: unset variable in {expr}"
                );
                let data = prometheus
                    .query(&expr, at)
                    .await
                    .unwrap_or_else(|e| panic!("{file}/{title}: Prometheus refused {expr}: {e}"));
                let result = data["result"].as_array().unwrap();
                if golden.contains(&title) {
                    assert!(!result.is_empty(), "{file}/{title}: no data for {expr}");
                    let first = result[0]["value"][1].as_str().unwrap_or("?");
                    shown.push(format!("{title} = {first}"));
                }
                checked += 1;
            }
        }
        for golden_title in golden {
            assert!(
                panels(&dashboard)
                    .iter()
                    .any(|p| p["title"] == *golden_title),
                "{file}: no panel {golden_title:?}"
            );
        }
        println!("{file}: {}", shown.join(", "));
    }
    println!("dashboards: {checked} queries accepted (traffic {RATE}/s)");
}
