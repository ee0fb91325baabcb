//! Kubernetes mode: the same metrics, read from Prometheus instead of the sidecars. Each
//! query sums the series by the labels the graph needs, over the window
//! (`increase(...[30s])`), and the answers become the [`Window`] a local scrape makes, so
//! the rest is the same code.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::ObserveError;
use super::stats::Workload;
use super::text::{Sample, number};
use super::window::{DURATION_BUCKET, REQUESTS, TCP_CLOSED, TCP_OPENED, Window};

/// What the graph and the tables group by.
const BY: &str = "reporter, source_workload, source_workload_namespace, source_principal, \
destination_workload, destination_workload_namespace, destination_principal, \
destination_service_name, destination_service_namespace, destination_version, response_code, \
connection_security_policy";

/// Pods whose sidecar reported inbound requests, per workload: the MESHED column.
pub const MESHED_QUERY: &str = "count by (destination_workload, destination_workload_namespace) \
(count by (pod, destination_workload, destination_workload_namespace) \
(mesh_requests_total{reporter=\"destination\"}))";

/// The queries of one window, each with the metric name its answers stand for and whether
/// they are increases over the window (else values now).
pub fn queries(window: Duration) -> Vec<(String, &'static str, bool)> {
    let range = format!("{}s", window.as_secs().max(1));
    vec![
        (
            format!("sum by ({BY}) (increase({REQUESTS}[{range}]))"),
            REQUESTS,
            true,
        ),
        (
            format!("sum by ({BY}, le) (increase({DURATION_BUCKET}[{range}]))"),
            DURATION_BUCKET,
            true,
        ),
        (format!("sum by ({BY}) ({REQUESTS})"), REQUESTS, false),
        (format!("sum by ({BY}) ({TCP_OPENED})"), TCP_OPENED, false),
        (format!("sum by ({BY}) ({TCP_CLOSED})"), TCP_CLOSED, false),
    ]
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    /// `[unix time, "value"]`.
    value: (f64, String),
}

/// An instant-vector answer of `/api/v1/query` as samples named `name`.
pub fn samples(name: &str, body: &str) -> Result<Vec<Sample>, String> {
    let answer: Answer =
        serde_json::from_str(body).map_err(|e| format!("the answer is not the API's JSON: {e}"))?;
    if answer.status != "success" {
        return Err(answer.error.unwrap_or(answer.status));
    }
    let data = answer.data.ok_or("the answer has no data")?;
    if data.result_type != "vector" {
        return Err(format!("a {} answer, not a vector", data.result_type));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value = number(&s.value.1)
                .ok_or_else(|| format!("the value {:?} is not a number", s.value.1))?;
            Ok(Sample {
                name: name.to_owned(),
                labels: s.metric,
                value,
            })
        })
        .collect()
}

/// The workloads whose sidecars reported the series (the reporting side's workload), with
/// the pods [`MESHED_QUERY`] counted (at least the one that reported).
pub fn workloads(window: &Window, meshed: &[Sample]) -> Vec<Workload> {
    let mut found: BTreeMap<(String, String), Workload> = BTreeMap::new();
    for sample in window.latest.iter().chain(&window.deltas) {
        let side = if sample.label("reporter") == "destination" {
            "destination"
        } else {
            "source"
        };
        let label = |field: &str| sample.label(&format!("{side}_{field}")).to_owned();
        let (name, namespace) = (label("workload"), label("workload_namespace"));
        if name.is_empty() || name == "unknown" {
            continue;
        }
        let service = if side == "destination" {
            sample.label("destination_service_name")
        } else {
            sample.label("source_app")
        };
        let service = match service {
            "" | "unknown" => name.clone(),
            service => service.to_owned(),
        };
        found
            .entry((name.clone(), namespace.clone()))
            .or_insert_with(|| Workload {
                name,
                namespace,
                service,
                version: label("version"),
                identity: label("principal"),
                // Its own sidecar reported this series: at least one pod is meshed.
                meshed: (1, 1),
            });
    }
    for sample in meshed {
        let key = (
            sample.label("destination_workload").to_owned(),
            sample.label("destination_workload_namespace").to_owned(),
        );
        if let Some(workload) = found.get_mut(&key) {
            let pods = sample.value.max(1.0) as u32;
            workload.meshed = (pods, pods);
        }
    }
    found.into_values().collect()
}

/// Asks Prometheus at `url` (`http://prometheus.istio-system:9090`) for one window.
pub async fn measure(url: &str, window: Duration) -> Result<(Window, Vec<Workload>), ObserveError> {
    let fail = |error: String| ObserveError::Prometheus {
        url: url.to_owned(),
        error,
    };
    let mut result = Window {
        seconds: window.as_secs().max(1) as f64,
        ..Window::default()
    };
    for (query, name, increase) in queries(window) {
        let body = query_text(url, &query).await.map_err(&fail)?;
        let found = samples(name, &body).map_err(|e| fail(format!("{query}: {e}")))?;
        if increase {
            result.deltas.extend(found);
        } else {
            result.latest.extend(found);
        }
    }
    let body = query_text(url, MESHED_QUERY).await.map_err(&fail)?;
    let meshed = samples("meshed", &body).map_err(|e| fail(format!("{MESHED_QUERY}: {e}")))?;
    let workloads = workloads(&result, &meshed);
    Ok((result, workloads))
}

async fn query_text(url: &str, query: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported (port-forward to Prometheus for TLS)")?;
    let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = tokio::net::lookup_host(authority_with_port(authority))
        .await
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let base = base.trim_end_matches('/');
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("/{base}")
    };
    let path = format!("{prefix}/api/v1/query?query={}", encode(query));
    super::scrape::get_text(addr, &path).await
}

fn authority_with_port(authority: &str) -> String {
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    }
}

/// Percent-encodes a query parameter (RFC 3986: only unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests;
