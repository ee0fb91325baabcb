//! `meshctl proxy-status [workload]`: for every proxy connected to pilot, whether it runs
//! what pilot would send it now.
//!
//! pilot tracks one version per proxy for the whole snapshot (`/debug/syncz`: sent, ACKed,
//! the last NACK), so the overall state comes from there: NOT SENT, STALE (sent and not yet
//! ACKed, or pilot has newer config it has not sent), NACKED (the proxy refused the last
//! push and runs its previous config) or SYNCED. Per resource type, when the proxy's admin
//! port is known (local mode, or the pod named in Kubernetes), its `/config_dump` is
//! compared with what pilot would send (`/debug/config_dump?proxy=ID`): the types that are
//! equal are SYNCED, the others carry the overall state, so a NACK shows which part of the
//! config was refused.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CommandError;
use super::local::StateArgs;
use super::proxy_config::locate::{
    InspectError, NamespaceArgs, PilotPort, PilotTarget, use_kubernetes,
};
use super::proxy_config::{Output, fetch, write_document, write_table};
use crate::Status;

#[derive(Debug, Args)]
#[command(after_help = "\
Exits 0 when every proxy is SYNCED, 1 otherwise. Where pilot is, in order: --pilot ADDR (its \
monitoring address; per-type columns show the overall state); --kubernetes; the local mesh \
when one runs (pilot and the workloads' admin ports come from its state file); a cluster \
when a kubeconfig is there: a port-forward to pilot's monitoring port 15014 in mesh-system, \
and, when POD[.NAMESPACE] (or POD -n NAMESPACE) is given, to that pod's admin port for the \
per-type columns. Without a proxy named, -n NAMESPACE shows only that namespace's proxies.")]
pub struct ProxyStatusArgs {
    /// Only this proxy: a workload (`productpage-v1`) or a node id (`productpage-v1.default`)
    #[arg(value_name = "WORKLOAD[.NAMESPACE]")]
    pub workload: Option<String>,

    /// With a pod, its namespace; without, only the proxies of this namespace
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// pilot's monitoring address (`/debug/syncz`) instead of the local mesh's
    #[arg(long, value_name = "ADDR")]
    pub pilot: Option<SocketAddr>,

    /// Ask pilot in the cluster the kubeconfig names, even when a local mesh runs
    #[arg(long, conflicts_with = "pilot")]
    pub kubernetes: bool,

    /// A table, or the same rows as JSON or YAML
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(flatten)]
    pub state: StateArgs,
}

const HEADER: [&str; 8] = [
    "NAME",
    "LISTENERS",
    "ROUTES",
    "CLUSTERS",
    "ENDPOINTS",
    "POLICIES",
    "VERSION",
    "NACK",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sync {
    Synced,
    Stale,
    NotSent,
    Nacked,
    /// In the local mesh's state, but not connected to pilot.
    NotConnected,
}

impl std::fmt::Display for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sync::Synced => "SYNCED",
            Sync::Stale => "STALE",
            Sync::NotSent => "NOT SENT",
            Sync::Nacked => "NACKED",
            Sync::NotConnected => "NOT CONNECTED",
        })
    }
}

/// One entry of pilot's `/debug/syncz`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncEntry {
    pub id: String,
    pub node: NodeView,
    pub version_sent: Option<String>,
    pub version_acked: Option<String>,
    pub nonce_sent: Option<String>,
    pub last_nack: Option<Nack>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeView {
    pub workload: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Nack {
    pub nonce: String,
    pub message: String,
}

/// A proxy's state, per resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub name: String,
    pub listeners: Sync,
    pub routes: Sync,
    pub clusters: Sync,
    pub endpoints: Sync,
    pub policies: Sync,
    /// The version the proxy ACKed (what it runs, as pilot knows).
    pub version: Option<String>,
    /// The refusal's message, when NACKED.
    pub nack: Option<String>,
}

impl Row {
    fn states(&self) -> [Sync; 5] {
        [
            self.listeners,
            self.routes,
            self.clusters,
            self.endpoints,
            self.policies,
        ]
    }

    fn cells(&self) -> [String; 8] {
        let [l, r, c, e, p] = self.states().map(|s| s.to_string());
        let none = || "-".to_owned();
        [
            self.name.clone(),
            l,
            r,
            c,
            e,
            p,
            self.version.clone().unwrap_or_else(none),
            self.nack.clone().unwrap_or_else(none),
        ]
    }

    fn not_connected(name: &str) -> Row {
        let state = Sync::NotConnected;
        Row {
            name: name.to_owned(),
            listeners: state,
            routes: state,
            clusters: state,
            endpoints: state,
            policies: state,
            version: None,
            nack: None,
        }
    }
}

/// The whole snapshot's state from syncz, and the version pilot would send this proxy now.
pub fn overall(entry: &SyncEntry, desired_version: Option<&str>) -> Sync {
    let Some(sent) = entry.version_sent.as_deref() else {
        return Sync::NotSent;
    };
    let acked = entry.version_acked.as_deref();
    // After a refused push is reverted, pilot finds nothing to send and records the ACK of
    // the version the proxy still runs, leaving "sent" at the refused one.
    if desired_version.is_some() && acked == desired_version {
        return Sync::Synced;
    }
    let refused = entry
        .last_nack
        .as_ref()
        .is_some_and(|nack| entry.nonce_sent.as_deref() == Some(nack.nonce.as_str()));
    let still_wanted = desired_version.is_none_or(|desired| desired == sent);
    if acked != Some(sent) {
        return if refused && still_wanted {
            Sync::Nacked
        } else {
            Sync::Stale
        };
    }
    if still_wanted {
        Sync::Synced
    } else {
        Sync::Stale
    }
}

/// The row of one proxy: `desired` is pilot's `/debug/config_dump?proxy=ID`, `applied` the
/// proxy's own `/config_dump`, each when it could be read.
pub fn row(entry: &SyncEntry, desired: Option<&Value>, applied: Option<&Value>) -> Row {
    let desired_version = desired.and_then(|d| d["version"].as_str());
    let state = overall(entry, desired_version);
    let parts = |dump: &Value| parts(&dump["snapshot"]);
    let per_type = match (state, desired, applied) {
        (Sync::Stale | Sync::Nacked, Some(desired), Some(applied)) => {
            let (want, have) = (parts(desired), parts(applied));
            let equal = [0, 1, 2, 3, 4].map(|i| want[i] == have[i]);
            // Equal everywhere yet not synced: the difference is not one a column shows.
            if equal.iter().all(|e| *e) {
                [state; 5]
            } else {
                equal.map(|e| if e { Sync::Synced } else { state })
            }
        }
        _ => [state; 5],
    };
    let [listeners, routes, clusters, endpoints, policies] = per_type;
    Row {
        name: entry.id.clone(),
        listeners,
        routes,
        clusters,
        endpoints,
        policies,
        version: entry.version_acked.clone(),
        nack: entry
            .last_nack
            .as_ref()
            .filter(|_| state == Sync::Nacked)
            .map(|n| n.message.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}

/// A snapshot's listeners, routes, clusters (without endpoints), endpoints and policies.
fn parts(snapshot: &Value) -> [Value; 5] {
    let clusters = snapshot["clusters"].as_array().cloned().unwrap_or_default();
    let without_endpoints: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(c) = c.as_object_mut() {
                c.remove("endpoints");
            }
            c
        })
        .collect();
    let endpoints: Vec<Value> = clusters
        .iter()
        .map(|c| serde_json::json!([c["host"], c["port"], c["endpoints"]]))
        .collect();
    [
        snapshot["listeners"].clone(),
        snapshot["routeConfigs"].clone(),
        Value::Array(without_endpoints),
        Value::Array(endpoints),
        serde_json::json!([
            snapshot["authorizationPolicies"],
            snapshot["requestAuthentications"]
        ]),
    ]
}

pub fn run(args: &ProxyStatusArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Write)?;
    let namespace = NamespaceArgs {
        namespace: args.namespace.clone(),
    };
    let workload = args.workload.as_deref().map(|w| namespace.qualify(w));
    // Without a proxy named, `-n` keeps the rows of that namespace's proxies.
    let in_namespace = args.namespace.as_deref().filter(|_| workload.is_none());
    let target = match args.pilot {
        Some(addr) => PilotTarget::Address(addr),
        None if use_kubernetes(args.kubernetes, &args.state) => PilotTarget::Kubernetes {
            pod: workload.clone(),
        },
        None => PilotTarget::Local(args.state.clone()),
    };
    let rows = runtime.block_on(async {
        let pilot = target.locate().await?;
        // In Kubernetes the pod was resolved to its node id (`pod.namespace`).
        let only = match &target {
            PilotTarget::Kubernetes { pod: Some(_) } => {
                pilot.workloads.first().map(|w| w.0.clone())
            }
            _ => workload.clone(),
        };
        rows(&pilot, only.as_deref(), in_namespace).await
    })?;
    match args.output {
        Output::Table => {
            let cells: Vec<[String; 8]> = rows.iter().map(Row::cells).collect();
            write_table(HEADER, &cells, out)?;
        }
        output => write_document(&serde_json::to_value(&rows)?, output, out)?,
    }
    let synced = rows
        .iter()
        .all(|r| r.states().iter().all(|s| *s == Sync::Synced));
    Ok(if synced {
        Status::Success
    } else {
        Status::Failed
    })
}

/// The rows of `only` (a workload or node id) or, with `namespace`, of the proxies whose node
/// id (`workload.namespace`) is in it, else of every proxy.
async fn rows(
    pilot: &PilotPort,
    only: Option<&str>,
    namespace: Option<&str>,
) -> Result<Vec<Row>, InspectError> {
    let syncz = pilot.json("/debug/syncz").await?;
    let entries: Vec<SyncEntry> = super::proxy_config::view::read(&syncz);
    let wanted = |id: &str, workload: &str| {
        only.is_none_or(|o| o == id || o == workload) && namespace.is_none_or(|ns| in_ns(id, ns))
    };
    let mut rows = Vec::new();
    for entry in entries.iter().filter(|e| wanted(&e.id, &e.node.workload)) {
        let desired = pilot
            .json(&format!("/debug/config_dump?proxy={}", entry.id))
            .await
            .ok();
        let admin = pilot.workloads.iter().find(|(id, ..)| *id == entry.id);
        let applied = match admin {
            Some((_, _, addr)) => fetch::json(*addr, "/config_dump").await.ok(),
            None => None,
        };
        rows.push(row(entry, desired.as_ref(), applied.as_ref()));
    }
    // Workloads the local mesh started that pilot does not see.
    for (id, workload, _) in &pilot.workloads {
        if wanted(id, workload) && !entries.iter().any(|e| e.id == *id) {
            rows.push(Row::not_connected(id));
        }
    }
    if rows.is_empty()
        && let Some(name) = only
    {
        let known: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        return Err(InspectError::UnknownProxy {
            name: name.to_owned(),
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        });
    }
    Ok(rows)
}

/// Whether the node id `workload.namespace` is in `namespace`.
pub fn in_ns(id: &str, namespace: &str) -> bool {
    id.rsplit_once('.').is_some_and(|(_, ns)| ns == namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/proxy-config/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
    }

    fn entries(name: &str) -> Vec<SyncEntry> {
        super::super::proxy_config::view::read(&fixture(name))
    }

    #[test]
    fn a_synced_mesh_is_synced_everywhere() {
        let entries = entries("syncz-synced.json");
        assert_eq!(entries.len(), 7);
        for entry in &entries {
            let row = row(entry, None, None);
            assert_eq!(row.states(), [Sync::Synced; 5], "{}", entry.id);
            assert_eq!(row.nack, None);
        }
    }

    #[test]
    fn a_nack_names_the_refused_type_and_the_message() {
        let entries = entries("syncz-nacked.json");
        let productpage = entries
            .iter()
            .find(|e| e.id == "productpage-v1.default")
            .expect("in the fixture");
        let desired = fixture("pilot-productpage-nacked.json");
        let applied = fixture("productpage-config_dump-nacked.json");
        let row = row(productpage, Some(&desired), Some(&applied));
        assert_eq!(
            row.states(),
            [
                Sync::Synced,
                Sync::Synced,
                Sync::Nacked,
                Sync::Synced,
                Sync::Synced
            ]
        );
        let nack = row.nack.unwrap_or_default();
        assert!(nack.contains("tls.caCertificates: cannot read"), "{nack}");
        // Without the proxy's side, every type carries the overall state.
        for entry in &entries {
            assert_eq!(row_states(entry), [Sync::Nacked; 5], "{}", entry.id);
        }
    }

    #[test]
    fn dash_n_keeps_the_proxies_of_its_namespace() {
        let entries = entries("syncz-synced.json");
        let kept: Vec<&str> = entries
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| in_ns(id, "default"))
            .collect();
        assert_eq!(
            kept.len(),
            entries.len(),
            "the fixture's mesh is in default"
        );
        assert!(entries.iter().all(|e| !in_ns(&e.id, "shop")));
        assert!(in_ns("reviews-v1.shop", "shop"));
        assert!(!in_ns("reviews-v1", "shop"), "no namespace in the id");
    }

    fn row_states(entry: &SyncEntry) -> [Sync; 5] {
        row(entry, None, None).states()
    }

    #[test]
    fn overall_states() {
        let mut entry = SyncEntry::default();
        assert_eq!(overall(&entry, None), Sync::NotSent);
        entry.version_sent = Some("b".into());
        entry.nonce_sent = Some("2".into());
        entry.version_acked = Some("a".into());
        assert_eq!(overall(&entry, None), Sync::Stale);
        entry.last_nack = Some(Nack {
            nonce: "1".into(),
            message: "old".into(),
        });
        assert_eq!(overall(&entry, None), Sync::Stale, "an older NACK");
        entry.last_nack = Some(Nack {
            nonce: "2".into(),
            message: "no".into(),
        });
        assert_eq!(overall(&entry, None), Sync::Nacked);
        assert_eq!(
            overall(&entry, Some("b")),
            Sync::Nacked,
            "pilot still wants it"
        );
        assert_eq!(
            overall(&entry, Some("a")),
            Sync::Synced,
            "the refused change reverted"
        );
        assert_eq!(overall(&entry, Some("c")), Sync::Stale, "pilot has newer");
        entry.version_acked = Some("b".into());
        assert_eq!(overall(&entry, Some("b")), Sync::Synced);
        assert_eq!(overall(&entry, Some("c")), Sync::Stale, "pilot has newer");
    }
}
