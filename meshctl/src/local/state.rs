//! The state directory of a local mesh and its state file, `local.json`: what runs, where,
//! and with which process ids. `up` writes it as it starts each process (so `down` can stop
//! a half-started mesh), `down` and `status` read it, and so do the inspection commands:
//! each workload's admin address and pilot's monitoring address are in it.
//!
//! ```text
//! <state>/local.json        this file
//! <state>/logs/<name>.log   one log per process (pilot, citadel, <workload>, <workload>.sidecar),
//!                           emptied by `up`
//! <state>/generated/        the ServiceEntries, WorkloadEntries and Sidecars of the topology
//! <state>/applied/          objects `meshctl apply` wrote, one file per object (emptied by `up`)
//! <state>/ca/               citadel's root (kept between runs)
//! <state>/tokens/           citadel's bootstrap tokens and one token file per service account
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "local.json";

/// `$XDG_STATE_HOME/mesh/local`, else `~/.local/state/mesh/local`.
pub fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("mesh").join("local"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".local/state/mesh/local"))
}

/// The layout of a state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn file(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }

    pub fn generated(&self) -> PathBuf {
        self.root.join("generated")
    }

    pub fn applied(&self) -> PathBuf {
        self.root.join("applied")
    }

    pub fn ca(&self) -> PathBuf {
        self.root.join("ca")
    }

    pub fn tokens(&self) -> PathBuf {
        self.root.join("tokens")
    }

    /// The state file, if a mesh was started here.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Parse { path, source })
    }

    /// Writes the state file atomically (aside, then renamed over).
    pub fn write(&self, state: &State) -> Result<(), StateError> {
        let path = self.file();
        let aside = self.root.join(".local.json.tmp");
        let text = serde_json::to_string_pretty(state).unwrap_or_default();
        std::fs::write(&aside, text + "\n")
            .and_then(|()| std::fs::rename(&aside, &path))
            .map_err(|source| StateError::Write { path, source })
    }

    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_file(self.file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::Write {
                path: self.file(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the local mesh state {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the local mesh state {} is not readable JSON; if no mesh runs, remove it",
        path.display()
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything about a running local mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The directory `up` was given (its topology.yaml and config/).
    pub topology_dir: PathBuf,
    pub state_dir: PathBuf,
    pub namespace: String,
    /// What pilot reads, merged: the user's config/, generated/, applied/.
    pub config_dirs: Vec<PathBuf>,
    pub applied_dir: PathBuf,
    pub pilot: Option<ControlPlane>,
    pub citadel: Option<ControlPlane>,
    pub workloads: Vec<WorkloadState>,
    /// The ingress gateway, when the topology has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayState>,
    /// Every process started, in start order: what `down` stops.
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    pub pid: u32,
    /// pilot: config discovery; citadel: certificate signing.
    pub grpc: SocketAddr,
    /// pilot: `/debug/*` and `/metrics`; citadel: `/ready`, `/metrics`.
    pub monitoring: SocketAddr,
    pub log: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    pub name: String,
    pub service: String,
    pub version: String,
    pub service_account: String,
    /// `spiffe://cluster.local/ns/<ns>/sa/<sa>`.
    pub identity: String,
    pub ip: Ipv4Addr,
    /// The node id the sidecar gives pilot (`<name>.<namespace>`), as in `/debug/syncz`.
    pub node_id: String,
    pub app: AppState,
    pub sidecar: SidecarState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    pub pid: u32,
    /// Where the app listens (its first port); reachable by peers only through the sidecar.
    pub addr: SocketAddr,
    pub command: Vec<String>,
    pub log: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarState {
    pub pid: u32,
    /// The app's way out: `HTTP_PROXY=http://<outbound>`, or a request to it with `Host`.
    pub outbound: SocketAddr,
    /// Where peers reach the app: one listener per service port.
    pub inbound: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    pub health: SocketAddr,
    pub log: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayState {
    pub pid: u32,
    pub ip: Ipv4Addr,
    /// As pilot's `/debug/syncz` shows it: `ingressgateway.<namespace>`.
    pub node_id: String,
    /// Where its Gateway servers listen: `curl http://<listener>/productpage`.
    pub listeners: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub health: SocketAddr,
    pub log: PathBuf,
}

/// A started process: the leader of its own process group (pgid = pid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub name: String,
    pub pid: u32,
    /// When it started, as `ps -o lstart=` shows it: a pid reused by another program after
    /// a reboot is never signalled.
    pub started: String,
    pub log: PathBuf,
}

impl State {
    pub fn workload(&self, name: &str) -> Option<&WorkloadState> {
        self.workloads.iter().find(|w| w.name == name)
    }
}
