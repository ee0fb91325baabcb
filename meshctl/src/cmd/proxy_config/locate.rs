//! Where a proxy's admin port and pilot's monitoring port are: the seam between "which
//! proxy" and "what it says". Local mode finds them in the local mesh's state file;
//! `--admin ADDR` / `--pilot ADDR` name them. In Kubernetes ([`super::kubernetes`]) they are
//! port-forwards to the pod's admin port and to pilot in `mesh-system`, held open by the
//! [`AdminPort`] / [`PilotPort`] returned; nothing else changes.
//!
//! Which mode, in order: an address given; `--kubernetes`; a running local mesh; a
//! kubeconfig (or an in-cluster account); else the local mesh's "not running" error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::fetch::{self, FetchError};
use super::kubernetes::{self, ADMIN_PORT, Forward, KubeError, MONITORING_PORT};
use crate::cmd::local::StateArgs;
use crate::local::{LocalError, State};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(
        "no local mesh runs with state in {}: start one with `meshctl local up <dir>` (with the same --state-dir), or give {flag} ADDR",
        root.display()
    )]
    NotRunning { root: PathBuf, flag: &'static str },
    #[error("no workload {name:?} in the local mesh; its workloads: {known}")]
    UnknownWorkload { name: String, known: String },
    #[error(
        "the local mesh runs namespace {mesh:?}, not {namespace:?}; name the workload alone: {name}"
    )]
    OtherNamespace {
        name: String,
        namespace: String,
        mesh: String,
    },
    #[error("name a workload (`meshctl proxy-config routes productpage-v1`) or give --admin ADDR")]
    NoTarget,
    #[error("the local mesh in {} has no pilot in its state; restart it with `meshctl local up`", .0.display())]
    NoPilot(PathBuf),
    #[error("admin port unreachable: {addr}{}: {error}; {hint}", of(label))]
    AdminUnreachable {
        label: Option<String>,
        addr: SocketAddr,
        error: String,
        hint: &'static str,
    },
    #[error("admin port {addr}{}: {error}", of(label))]
    Admin {
        label: Option<String>,
        addr: SocketAddr,
        error: FetchError,
    },
    #[error("control plane unreachable: pilot's monitoring port {addr}: {error}; {hint}")]
    PilotUnreachable {
        addr: SocketAddr,
        error: String,
        hint: &'static str,
    },
    #[error("pilot's monitoring port {addr}: {error}")]
    Pilot { addr: SocketAddr, error: FetchError },
    #[error("no proxy {name:?} is connected to pilot; connected: {known}")]
    UnknownProxy { name: String, known: String },
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Kube(#[from] KubeError),
}

fn of(workload: &Option<String>) -> String {
    workload
        .as_ref()
        .map(|w| format!(" (of {w})"))
        .unwrap_or_default()
}

/// `-n/--namespace NAMESPACE`, as kubectl and istioctl take it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NamespaceArgs {
    /// The pod's namespace [default: the kubeconfig context's, else `default`];
    /// `POD.NAMESPACE` says the same and wins, as in istioctl
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

impl NamespaceArgs {
    /// `name` as `name.namespace` when `-n` was given and `name` names no namespace itself.
    pub fn qualify(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) if !has_namespace(name) => format!("{name}.{namespace}"),
            _ => name.to_owned(),
        }
    }
}

/// Whether `name` is `pod.namespace` (as [`kubernetes::split_pod`] reads it).
fn has_namespace(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(pod, namespace)| !pod.is_empty() && !namespace.is_empty())
}

/// Which proxy's admin port to read.
#[derive(Debug, Clone)]
pub enum AdminTarget {
    /// A workload of the local mesh (`productpage-v1`, or `productpage-v1.default`).
    Local { state: StateArgs, workload: String },
    /// `--admin ADDR`.
    Address(SocketAddr),
    /// A pod (`name` or `name.namespace`) of the cluster the kubeconfig names.
    Kubernetes { pod: String },
}

/// An admin port to talk to, for as long as this value lives (a Kubernetes port-forward
/// lives in here).
#[derive(Debug, Clone)]
pub struct AdminPort {
    pub addr: SocketAddr,
    /// The workload, when it was named.
    pub label: Option<String>,
    hint: &'static str,
    _forward: Option<Arc<Forward>>,
}

/// Kubernetes mode when forced, or when no local mesh runs and a kubeconfig is there.
pub fn use_kubernetes(forced: bool, state: &StateArgs) -> bool {
    forced || (local_state(state).is_none() && kubernetes::kubeconfig_available())
}

fn local_state(state: &StateArgs) -> Option<State> {
    state.dir().ok()?.read().ok()?
}

impl AdminTarget {
    pub fn new(
        workload: Option<&str>,
        admin: Option<SocketAddr>,
        kubernetes: bool,
        state: &StateArgs,
    ) -> Result<Self, InspectError> {
        match (admin, workload) {
            (Some(addr), _) => Ok(AdminTarget::Address(addr)),
            (None, Some(name)) if use_kubernetes(kubernetes, state) => {
                Ok(AdminTarget::Kubernetes {
                    pod: name.to_owned(),
                })
            }
            (None, Some(name)) => Ok(AdminTarget::Local {
                state: state.clone(),
                workload: name.to_owned(),
            }),
            (None, None) => Err(InspectError::NoTarget),
        }
    }

    pub async fn locate(&self) -> Result<AdminPort, InspectError> {
        match self {
            AdminTarget::Address(addr) => Ok(AdminPort {
                addr: *addr,
                label: None,
                hint: "is a mesh-proxy admin port listening there?",
                _forward: None,
            }),
            AdminTarget::Kubernetes { pod } => {
                let client = kubernetes::client().await?;
                kubernetes_admin(&client, pod).await
            }
            AdminTarget::Local { state, workload } => {
                let state = running(state, "--admin")?;
                let name = workload_name(&state, workload)?;
                let admin = state
                    .workload(&name)
                    .map(|w| w.sidecar.admin)
                    .ok_or_else(|| unknown_workload(&state, workload))?;
                Ok(AdminPort {
                    addr: admin,
                    label: Some(name),
                    hint: "is its sidecar running? `meshctl local status` shows it",
                    _forward: None,
                })
            }
        }
    }
}

/// The admin port of `pod` (`name` or `name.namespace`) through a port-forward, after
/// checking the pod runs the sidecar.
pub async fn kubernetes_admin(client: &kube::Client, pod: &str) -> Result<AdminPort, InspectError> {
    Ok(kubernetes_proxy(client, pod).await?.0)
}

/// The admin port and the proxy's node id.
async fn kubernetes_proxy(
    client: &kube::Client,
    pod: &str,
) -> Result<(AdminPort, String), InspectError> {
    let (pod, namespace) = kubernetes::split_pod(pod, client.default_namespace());
    let found = kubernetes::sidecar_pod(client, &pod, &namespace).await?;
    let forward = kubernetes::forward(client, &pod, &namespace, ADMIN_PORT).await?;
    let port = AdminPort {
        addr: forward.addr,
        label: Some(format!("{pod}.{namespace}")),
        hint: "is its mesh-proxy container running? `kubectl logs POD -c mesh-proxy` says why",
        _forward: Some(Arc::new(forward)),
    };
    Ok((port, kubernetes::node_id(&found, &namespace)))
}

impl AdminPort {
    /// `GET <path>` as JSON; a port that does not answer is "admin port unreachable".
    pub async fn json(&self, path: &str) -> Result<Value, InspectError> {
        fetch::json(self.addr, path)
            .await
            .map_err(|error| self.error(error))
    }

    pub fn error(&self, error: FetchError) -> InspectError {
        match error {
            FetchError::Unreachable(error) => InspectError::AdminUnreachable {
                label: self.label.clone(),
                addr: self.addr,
                error,
                hint: self.hint,
            },
            error => InspectError::Admin {
                label: self.label.clone(),
                addr: self.addr,
                error,
            },
        }
    }
}

/// Where pilot's monitoring port (`/debug/syncz`) is.
#[derive(Debug, Clone)]
pub enum PilotTarget {
    /// The local mesh's pilot; its workloads' admin ports come with it.
    Local(StateArgs),
    /// `--pilot ADDR`.
    Address(SocketAddr),
    /// pilot in `mesh-system`; with a pod, that pod's admin port too.
    Kubernetes { pod: Option<String> },
}

/// pilot's monitoring port and, when known, each proxy's admin port by node id.
#[derive(Debug, Clone)]
pub struct PilotPort {
    pub addr: SocketAddr,
    /// `(node id, workload, admin address)` of every workload the local mesh started, or
    /// of the pod named in Kubernetes.
    pub workloads: Vec<(String, String, SocketAddr)>,
    /// The port-forwards behind `addr` and `workloads`, open while this lives.
    _forwards: Vec<Arc<Forward>>,
    hint: &'static str,
}

const LOCAL_PILOT_HINT: &str =
    "is the mesh running? `meshctl local status` shows it (or give --pilot ADDR)";

impl PilotTarget {
    pub async fn locate(&self) -> Result<PilotPort, InspectError> {
        match self {
            PilotTarget::Address(addr) => Ok(PilotPort {
                addr: *addr,
                workloads: Vec::new(),
                _forwards: Vec::new(),
                hint: "is pilot's monitoring port listening there?",
            }),
            PilotTarget::Kubernetes { pod } => {
                let client = kubernetes::client().await?;
                kubernetes_pilot(&client, pod.as_deref()).await
            }
            PilotTarget::Local(args) => {
                let state = running(args, "--pilot")?;
                let pilot = state
                    .pilot
                    .as_ref()
                    .ok_or_else(|| InspectError::NoPilot(state.state_dir.clone()))?;
                Ok(PilotPort {
                    addr: pilot.monitoring,
                    // The workloads' sidecars, and the ingress gateway when one runs.
                    workloads: state
                        .workloads
                        .iter()
                        .map(|w| (w.node_id.clone(), w.name.clone(), w.sidecar.admin))
                        .chain(
                            state
                                .gateway
                                .iter()
                                .map(|g| (g.node_id.clone(), "ingressgateway".to_owned(), g.admin)),
                        )
                        .collect(),
                    _forwards: Vec::new(),
                    hint: LOCAL_PILOT_HINT,
                })
            }
        }
    }
}

/// pilot's monitoring port through a port-forward to a running pilot pod; with `pod`, that
/// pod's admin port too, under the node id its sidecar gives pilot.
pub async fn kubernetes_pilot(
    client: &kube::Client,
    pod: Option<&str>,
) -> Result<PilotPort, InspectError> {
    let pilot = kubernetes::pilot_pod(client).await?;
    let namespace = crate::cmd::install::manifest::NAMESPACE;
    let monitoring = kubernetes::forward(client, &pilot, namespace, MONITORING_PORT).await?;
    let mut port = PilotPort {
        addr: monitoring.addr,
        workloads: Vec::new(),
        _forwards: vec![Arc::new(monitoring)],
        hint: "port-forwarded to pilot's 15014; is pilot ready? `kubectl -n mesh-system logs deploy/pilot`",
    };
    if let Some(pod) = pod {
        let (admin, id) = kubernetes_proxy(client, pod).await?;
        let name = admin.label.clone().unwrap_or_default();
        port.workloads.push((id, name, admin.addr));
        port._forwards.extend(admin._forward);
    }
    Ok(port)
}

impl PilotPort {
    pub async fn json(&self, path: &str) -> Result<Value, InspectError> {
        fetch::json(self.addr, path)
            .await
            .map_err(|error| match error {
                FetchError::Unreachable(error) => InspectError::PilotUnreachable {
                    addr: self.addr,
                    error,
                    hint: self.hint,
                },
                error => InspectError::Pilot {
                    addr: self.addr,
                    error,
                },
            })
    }
}

fn running(args: &StateArgs, flag: &'static str) -> Result<State, InspectError> {
    let dir = args.dir()?;
    match dir.read().map_err(LocalError::from)? {
        Some(state) => Ok(state),
        None => Err(InspectError::NotRunning {
            root: dir.root,
            flag,
        }),
    }
}

/// `name` or `name.namespace` (a node id) as a workload of the local mesh.
fn workload_name(state: &State, given: &str) -> Result<String, InspectError> {
    if state.workload(given).is_some() {
        return Ok(given.to_owned());
    }
    match given.rsplit_once('.') {
        Some((name, namespace)) if state.workload(name).is_some() => {
            if namespace == state.namespace {
                Ok(name.to_owned())
            } else {
                Err(InspectError::OtherNamespace {
                    name: name.to_owned(),
                    namespace: namespace.to_owned(),
                    mesh: state.namespace.clone(),
                })
            }
        }
        _ => Err(unknown_workload(state, given)),
    }
}

fn unknown_workload(state: &State, given: &str) -> InspectError {
    let known: Vec<&str> = state.workloads.iter().map(|w| w.name.as_str()).collect();
    InspectError::UnknownWorkload {
        name: given.to_owned(),
        known: if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    }
}
