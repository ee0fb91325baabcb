//! The app's HTTP probes, rewritten to go through the proxy's health port: with STRICT
//! mTLS the kubelet's plaintext probe would be refused by the inbound listener, so it asks
//! the proxy (`/app-health/<container>/livez|readyz|startupz` on 15021, a port that is
//! never captured) and the proxy asks the app over loopback.
//!
//! The original probes travel to the proxy in `MESH_KUBE_APP_PROBERS`, a JSON object from
//! the rewritten path to `{"httpGet": {path, port, scheme, host?, httpHeaders?},
//! "timeoutSeconds": n}` with the port always a number, as Istio's
//! `ISTIO_KUBE_APP_PROBERS` does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::sidecar::HEALTH_PORT;

pub const PROBERS_ENV: &str = "MESH_KUBE_APP_PROBERS";

/// One probe to replace: `spec.containers[container].<field>.httpGet` becomes `http_get`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub container: usize,
    /// `livenessProbe`, `readinessProbe` or `startupProbe`.
    pub field: &'static str,
    pub http_get: Value,
}

#[derive(Debug, Default)]
pub struct Rewrites {
    pub rewrites: Vec<Rewrite>,
    /// Rewritten path -> the original probe; the env var's value.
    pub probers: BTreeMap<String, Value>,
}

impl Rewrites {
    pub fn probers_json(&self) -> Option<String> {
        if self.probers.is_empty() {
            None
        } else {
            serde_json::to_string(&self.probers).ok()
        }
    }
}

/// The rewrites for the app's containers. HTTPS probes, and probes on a named port the
/// container does not declare, are left as they are.
pub fn rewrite(containers: &[Container]) -> Rewrites {
    let mut out = Rewrites::default();
    for (index, container) in containers.iter().enumerate() {
        let probes = [
            ("livenessProbe", "livez", &container.liveness_probe),
            ("readinessProbe", "readyz", &container.readiness_probe),
            ("startupProbe", "startupz", &container.startup_probe),
        ];
        for (field, kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let Some(original) = prober(container, probe) else {
                continue;
            };
            let path = format!("/app-health/{}/{kind}", container.name);
            out.rewrites.push(Rewrite {
                container: index,
                field,
                http_get: json!({"path": path, "port": HEALTH_PORT, "scheme": "HTTP"}),
            });
            out.probers.insert(path, original);
        }
    }
    out
}

fn prober(container: &Container, probe: &Probe) -> Option<Value> {
    let get: &HTTPGetAction = probe.http_get.as_ref()?;
    let scheme = get.scheme.as_deref().unwrap_or("HTTP");
    if !scheme.eq_ignore_ascii_case("HTTP") {
        return None;
    }
    let port = match &get.port {
        IntOrString::Int(port) => *port,
        IntOrString::String(name) => named_port(container, name)?,
    };
    let mut http_get = json!({
        "path": get.path.clone().unwrap_or_else(|| "/".to_owned()),
        "port": port,
        "scheme": "HTTP",
    });
    if let Some(host) = &get.host {
        http_get["host"] = json!(host);
    }
    if let Some(headers) = &get.http_headers {
        http_get["httpHeaders"] = json!(headers);
    }
    Some(json!({"httpGet": http_get, "timeoutSeconds": probe.timeout_seconds.unwrap_or(1)}))
}

fn named_port(container: &Container, name: &str) -> Option<i32> {
    // A numeric string is a port too; the API server accepts `port: "8080"`.
    if let Ok(port) = name.parse::<i32>() {
        return Some(port);
    }
    container
        .ports
        .iter()
        .flatten()
        .find(|port| port.name.as_deref() == Some(name))
        .map(|port| port.container_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(value: Value) -> Container {
        serde_json::from_value(value).expect("a container")
    }

    #[test]
    fn http_probes_are_rewritten_and_kept_for_the_proxy() {
        let app = container(json!({
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}, "timeoutSeconds": 3},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
            "startupProbe": {"tcpSocket": {"port": 8080}},
        }));
        let rewrites = rewrite(&[app]);
        assert_eq!(
            rewrites.rewrites,
            vec![
                Rewrite {
                    container: 0,
                    field: "livenessProbe",
                    http_get: json!({"path": "/app-health/app/livez", "port": 15021, "scheme": "HTTP"}),
                },
                Rewrite {
                    container: 0,
                    field: "readinessProbe",
                    http_get: json!({"path": "/app-health/app/readyz", "port": 15021, "scheme": "HTTP"}),
                },
            ]
        );
        assert_eq!(
            json!(rewrites.probers),
            json!({
                "/app-health/app/livez": {"httpGet": {"path": "/live", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 3},
                "/app-health/app/readyz": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "timeoutSeconds": 1},
            })
        );
    }

    #[test]
    fn https_and_unknown_named_ports_are_left_alone() {
        let app = container(json!({
            "name": "app",
            "livenessProbe": {"httpGet": {"path": "/", "port": 8443, "scheme": "HTTPS"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "nope"}},
        }));
        let rewrites = rewrite(&[app]);
        assert!(rewrites.rewrites.is_empty());
        assert_eq!(rewrites.probers_json(), None);
    }
}
