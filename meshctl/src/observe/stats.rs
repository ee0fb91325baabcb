//! The golden metrics of a mesh over a [`Window`]: per workload (as its own sidecar sees
//! its inbound requests, `reporter="destination"`), per service, and per edge of the
//! service graph (as the caller's sidecar sees its outbound requests, `reporter="source"`).
//!
//! An edge goes from the calling workload to the called one. The caller's sidecar names
//! the called workload in `destination_workload` when it knows it; when it says `unknown`
//! the edge goes to the workload of that service (and version, when the route picked a
//! subset), and to the service itself when several workloads serve it. Requests that no
//! scraped sidecar sent (a client outside the mesh, the ingress gateway) are edges from
//! their source as the called sidecar saw it: its workload, else its service account, else
//! `unknown`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::text::Sample;
use super::window::{Accumulator, Golden, REQUESTS, TCP_CLOSED, TCP_OPENED, Window};

/// The label meshctl adds to every sample of a local scrape: the workload whose sidecar
/// served it.
pub const PROXY_LABEL: &str = "mesh_proxy";

const UNKNOWN: &str = "unknown";

/// A workload meshctl knows of (from the local mesh's state, or Prometheus's series).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub version: String,
    /// Its SPIFFE ID.
    pub identity: String,
    /// Sidecars that answered the scrape, and sidecars it should have.
    pub meshed: (u32, u32),
}

impl Workload {
    pub fn id(&self) -> String {
        node_id(&self.name, &self.namespace)
    }
}

/// A graph node's id: `name.namespace`, as pilot names proxies.
pub fn node_id(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}")
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStats {
    #[serde(flatten)]
    pub workload: Workload,
    /// Its inbound requests.
    pub golden: Golden,
    /// TCP connections its sidecar holds open now (opened - closed).
    pub tcp_conn: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStats {
    pub name: String,
    pub namespace: String,
    pub workloads: Vec<String>,
    pub golden: Golden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Workload,
    /// A service whose calls could not be told apart by workload.
    Service,
    /// A caller no scraped sidecar represents.
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub source: String,
    pub target: String,
    /// Over the window.
    pub golden: Golden,
    /// Requests since the sidecars started.
    pub total_requests: f64,
    /// Every request (in the window, else ever) went over mutual TLS.
    pub mtls: bool,
}

/// Everything `stat`, `top` and the dashboard show.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub window_seconds: f64,
    pub workloads: Vec<WorkloadStats>,
    pub services: Vec<ServiceStats>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The golden metrics of `workloads` over `window`.
pub fn compute(window: &Window, workloads: &[Workload]) -> Stats {
    let graph = Graph { workloads };
    let mut stats = Stats {
        window_seconds: window.seconds,
        workloads: workload_stats(window, workloads),
        services: service_stats(window, workloads),
        ..Stats::default()
    };
    let (nodes, edges) = graph.edges(window);
    stats.nodes = nodes;
    stats.edges = edges;
    stats
}

fn is_request(sample: &Sample) -> bool {
    sample.name == REQUESTS || sample.name == super::window::DURATION_BUCKET
}

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

/// Every workload's requests over the window: those its sidecar received; for a workload
/// that never received any (a gateway, which reports what it forwards, or a pure client),
/// those it sent.
fn requests_by_workload(window: &Window, workloads: &[Workload]) -> Vec<Accumulator> {
    let mut inbound: BTreeMap<String, Accumulator> = BTreeMap::new();
    let mut outbound: BTreeMap<String, Accumulator> = BTreeMap::new();
    for sample in window.deltas.iter().filter(|s| is_request(s)) {
        let (side, map) = if sample.label("reporter") == "destination" {
            ("destination", &mut inbound)
        } else {
            ("source", &mut outbound)
        };
        let id = node_id(
            sample.label(&format!("{side}_workload")),
            sample.label(&format!("{side}_workload_namespace")),
        );
        map.entry(id).or_default().add(sample);
    }
    workloads
        .iter()
        .map(|w| {
            let id = w.id();
            inbound
                .remove(&id)
                .or_else(|| outbound.remove(&id))
                .unwrap_or_default()
        })
        .collect()
}

fn workload_stats(window: &Window, workloads: &[Workload]) -> Vec<WorkloadStats> {
    let mut tcp: BTreeMap<String, f64> = BTreeMap::new();
    for sample in &window.latest {
        let sign = match sample.name.as_str() {
            TCP_OPENED => 1.0,
            TCP_CLOSED => -1.0,
            _ => continue,
        };
        let (name, namespace) = if sample.label("reporter") == "destination" {
            ("destination_workload", "destination_workload_namespace")
        } else {
            ("source_workload", "source_workload_namespace")
        };
        let id = node_id(sample.label(name), sample.label(namespace));
        *tcp.entry(id).or_default() += sign * sample.value;
    }
    workloads
        .iter()
        .zip(requests_by_workload(window, workloads))
        .map(|(w, requests)| WorkloadStats {
            workload: w.clone(),
            golden: requests.golden(window.seconds),
            tcp_conn: tcp.get(&w.id()).copied().unwrap_or(0.0).max(0.0),
        })
        .collect()
}

/// Each service's workloads, and their requests summed.
fn service_stats(window: &Window, workloads: &[Workload]) -> Vec<ServiceStats> {
    let mut services: BTreeMap<(String, String), (Vec<String>, Accumulator)> = BTreeMap::new();
    for (w, requests) in workloads
        .iter()
        .zip(requests_by_workload(window, workloads))
    {
        let entry = services
            .entry((w.service.clone(), w.namespace.clone()))
            .or_default();
        entry.0.push(w.name.clone());
        entry.1.merge(&requests);
    }
    services
        .into_iter()
        .map(|((name, namespace), (workloads, acc))| ServiceStats {
            name,
            namespace,
            workloads,
            golden: acc.golden(window.seconds),
        })
        .collect()
}

/// A node id and its kind.
type End = (String, NodeKind);

struct Graph<'a> {
    workloads: &'a [Workload],
}

#[derive(Default)]
struct EdgeAcc {
    window: Accumulator,
    total: Accumulator,
}

impl Graph<'_> {
    fn scraped(&self, id: &str) -> bool {
        self.workloads
            .iter()
            .any(|w| w.id() == id && w.meshed.0 > 0)
    }

    /// The node a caller's sidecar sent a request to.
    fn target(&self, sample: &Sample) -> (String, NodeKind) {
        let namespace = known(sample.label("destination_workload_namespace"))
            .or(known(sample.label("destination_service_namespace")));
        if let Some(workload) = known(sample.label("destination_workload")) {
            let namespace = namespace.unwrap_or(sample.label("source_workload_namespace"));
            return (node_id(workload, namespace), NodeKind::Workload);
        }
        let service = sample.label("destination_service_name");
        let namespace = namespace.unwrap_or(sample.label("source_workload_namespace"));
        let version = known(sample.label("destination_version"));
        let serving: Vec<&Workload> = self
            .workloads
            .iter()
            .filter(|w| w.service == service && w.namespace == namespace)
            .filter(|w| version.is_none_or(|v| w.version == v))
            .collect();
        match serving.as_slice() {
            [one] => (one.id(), NodeKind::Workload),
            _ => (node_id(service, namespace), NodeKind::Service),
        }
    }

    /// The node a request came from, as the called sidecar saw it; None when a scraped
    /// sidecar sent it (its own report is the edge).
    fn source(&self, sample: &Sample) -> Option<(String, NodeKind)> {
        let principal = sample.label("source_principal");
        let namespace = known(sample.label("source_workload_namespace"))
            .or_else(|| principal.split("/ns/").nth(1)?.split('/').next())
            .unwrap_or(UNKNOWN);
        if let Some(workload) = known(sample.label("source_workload")) {
            let id = node_id(workload, namespace);
            return (!self.scraped(&id)).then_some((id, NodeKind::External));
        }
        if self
            .workloads
            .iter()
            .any(|w| w.identity == principal && w.meshed.0 > 0)
        {
            return None;
        }
        let account = known(principal)
            .and_then(|p| p.rsplit_once("/sa/"))
            .map(|(_, sa)| sa);
        Some(match account {
            Some(account) => (node_id(account, namespace), NodeKind::External),
            None => (UNKNOWN.to_owned(), NodeKind::External),
        })
    }

    /// Where a request sample's edge goes: from the caller's report, or from the called
    /// sidecar's when no scraped sidecar sent it.
    fn ends(&self, sample: &Sample) -> Option<(End, End)> {
        if sample.label("reporter") == "source" {
            let source = node_id(
                sample.label("source_workload"),
                sample.label("source_workload_namespace"),
            );
            Some(((source, NodeKind::Workload), self.target(sample)))
        } else {
            let target = node_id(
                sample.label("destination_workload"),
                sample.label("destination_workload_namespace"),
            );
            let source = self.source(sample)?;
            Some((source, (target, NodeKind::Workload)))
        }
    }

    fn edges(&self, window: &Window) -> (Vec<Node>, Vec<Edge>) {
        let mut found: BTreeMap<(End, End), EdgeAcc> = BTreeMap::new();
        for (samples, in_window) in [(&window.deltas, true), (&window.latest, false)] {
            for sample in samples.iter().filter(|s| is_request(s)) {
                let Some(ends) = self.ends(sample) else {
                    continue;
                };
                let edge = found.entry(ends).or_default();
                let acc = if in_window {
                    &mut edge.window
                } else {
                    &mut edge.total
                };
                acc.add(sample);
            }
        }
        let mut nodes: BTreeMap<String, NodeKind> = self
            .workloads
            .iter()
            .map(|w| (w.id(), NodeKind::Workload))
            .collect();
        let mut edges = Vec::new();
        for ((source, target), acc) in found {
            if acc.total.requests() <= 0.0 && acc.window.requests() <= 0.0 {
                continue;
            }
            nodes.entry(source.0.clone()).or_insert(source.1);
            nodes.entry(target.0.clone()).or_insert(target.1);
            // The lock shows the window's requests, or when it had none, all of them.
            let mtls = if acc.window.requests() > 0.0 {
                acc.window.all_mtls()
            } else {
                acc.total.all_mtls()
            };
            edges.push(Edge {
                source: source.0,
                target: target.0,
                golden: acc.window.golden(window.seconds),
                total_requests: acc.total.requests(),
                mtls,
            });
        }
        let nodes = nodes
            .into_iter()
            .map(|(id, kind)| self.node(id, kind))
            .collect();
        (nodes, edges)
    }

    fn node(&self, id: String, kind: NodeKind) -> Node {
        let (name, namespace) = match self.workloads.iter().find(|w| w.id() == id) {
            Some(w) => (w.name.clone(), w.namespace.clone()),
            None => match id.rsplit_once('.') {
                Some((name, namespace)) => (name.to_owned(), namespace.to_owned()),
                None => (id.clone(), String::new()),
            },
        };
        Node {
            id,
            name,
            namespace,
            kind,
        }
    }
}

#[cfg(test)]
mod tests;
