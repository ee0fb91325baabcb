//! The Grafana dashboards (charts/mesh/dashboards: mesh, service, workload) as one
//! ConfigMap labelled `grafana_dashboard: "1"`, the label Grafana's dashboard sidecar
//! (kube-prometheus-stack, the grafana chart) loads dashboards from. Built on the proxies'
//! `mesh_*` metrics; e2e/tests/prometheus.rs runs every panel's query against a real
//! Prometheus.

use serde_json::{Value, json};

use super::manifest::{NAMESPACE, part_of};

pub const NAME: &str = "mesh-grafana-dashboards";

/// `(file name, JSON)`, compiled in so the binary and the chart ship the same dashboards.
pub const DASHBOARDS: [(&str, &str); 3] = [
    (
        "mesh.json",
        include_str!("../../../../charts/mesh/dashboards/mesh.json"),
    ),
    (
        "service.json",
        include_str!("../../../../charts/mesh/dashboards/service.json"),
    ),
    (
        "workload.json",
        include_str!("../../../../charts/mesh/dashboards/workload.json"),
    ),
];

pub fn config_map() -> Value {
    let mut labels = part_of("grafana-dashboards");
    labels["grafana_dashboard"] = json!("1");
    let data: serde_json::Map<String, Value> = DASHBOARDS
        .iter()
        .map(|(name, text)| ((*name).to_owned(), json!(text)))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_map_carries_every_dashboard_for_grafanas_sidecar() {
        let map = config_map();
        assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
        for (name, _) in DASHBOARDS {
            let text = map["data"][name].as_str().expect("dashboard");
            let dashboard: Value = serde_json::from_str(text).expect("JSON");
            assert!(dashboard["uid"].is_string(), "{name}");
            let variables = dashboard["templating"]["list"]
                .as_array()
                .expect("variables");
            assert!(variables.iter().any(|v| v["name"] == "namespace"), "{name}");
            // Helm would take `{{` for a template action once the chart ships the file.
            assert!(!text.contains("{{"), "{name}");
        }
    }
}
