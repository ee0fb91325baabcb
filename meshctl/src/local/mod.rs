//! Local mode: a whole mesh on one machine, no Kubernetes. Each workload instance gets its
//! own loopback address (127.0.0.2, .3, ... by default); on it, its sidecar takes the
//! standard ports (15001 outbound, 15000 admin, 15020 metrics, 15021 health) and the
//! service ports (the inbound listeners peers reach). The app listens on 127.0.0.1 on a
//! port of its own (20000, 20001, ... by default), as it would inside a pod, where its
//! sidecar's inbound listener forwards. pilot and citadel run on 127.0.0.1. Apps reach
//! other services through their sidecar (`HTTP_PROXY`).
//!
//! [`up`] starts what a topology directory describes ([`topology`]) and returns a
//! [`LocalMesh`] that knows every address and stops everything on [`LocalMesh::down`] or
//! drop; `meshctl local up` detaches it and leaves the [`state`] file for `down`/`status`.
//!
//! ```ignore
//! let binaries = Binaries::find(None)?; // or each path given
//! let mut mesh = meshctl::local::up(
//!     Path::new("examples/bookinfo"), &binaries, state_dir, &Options::default(),
//!     &mut |line| println!("{line}"),
//! ).await?;
//! let productpage = mesh.workload("productpage-v1").expect("in the topology");
//! // productpage.sidecar.outbound, .admin, .inbound; mesh.state().pilot.monitoring ...
//! mesh.down(); // or drop it; a process killed before either leaves `meshctl local down`
//!              // (with the same state directory) to stop what it started
//! ```

pub mod binaries;
pub mod gateway;
mod launch;
pub mod plan;
pub mod probe;
pub mod process;
mod ready;
pub mod state;
pub mod topology;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

pub use binaries::{Binaries, MissingBinary};
pub use launch::up;
pub use state::{State, StateDir, WorkloadState};

/// Where the control plane listens and how long `up` waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The first workload's address; the others follow.
    pub base_ip: Ipv4Addr,
    /// The first app's port on 127.0.0.1; the others follow.
    pub app_port_base: u16,
    /// Port 0 picks a free port (tests); the state file has the one bound.
    pub pilot_grpc: SocketAddr,
    pub pilot_monitoring: SocketAddr,
    pub citadel_grpc: SocketAddr,
    pub citadel_monitoring: SocketAddr,
    /// How long `up` waits for everything to be ready.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Self {
            base_ip: Ipv4Addr::new(127, 0, 0, 2),
            app_port_base: 20000,
            pilot_grpc: local(15010),
            pilot_monitoring: local(15014),
            citadel_grpc: local(8060),
            citadel_monitoring: local(15015),
            timeout: Duration::from_secs(60),
        }
    }
}

/// How long stopped processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Binaries(#[from] MissingBinary),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "a local mesh from {} is already running (state in {}); stop it first with `meshctl local down`",
        topology.display(),
        state_dir.display()
    )]
    AlreadyRunning {
        topology: PathBuf,
        state_dir: PathBuf,
    },
    #[error("no local mesh runs with state in {} (no {})", .0.display(), state::STATE_FILE)]
    NotRunning(PathBuf),
    #[error(
        "{addr} is wanted twice: for {first} and for {second}; change --app-port-base or the --pilot-*/--citadel-* addresses"
    )]
    Clash {
        addr: SocketAddr,
        first: String,
        second: String,
    },
    #[error("cannot bind {addr} for {what}: {error}{hint}")]
    Unavailable {
        addr: SocketAddr,
        what: String,
        error: std::io::Error,
        hint: &'static str,
    },
    #[error("{name} {why}; the end of its log {}:\n{tail}", log.display())]
    Failed {
        name: String,
        why: String,
        log: PathBuf,
        tail: String,
    },
    #[error("not ready after {timeout:?}: {waiting}{tails}")]
    Timeout {
        timeout: Duration,
        waiting: String,
        tails: String,
    },
    #[error("interrupted; stopped what had started")]
    Interrupted,
    #[error("no state directory: give --state-dir, or set XDG_STATE_HOME or HOME")]
    NoStateDir,
}

/// A running local mesh. Dropping it stops every process it started, as [`down`] does;
/// [`detach`] leaves them running.
///
/// [`down`]: LocalMesh::down
/// [`detach`]: LocalMesh::detach
pub struct LocalMesh {
    dir: StateDir,
    state: State,
    children: Vec<(String, Child)>,
    detached: bool,
}

impl LocalMesh {
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir.root
    }

    /// A workload instance by name (`reviews-v2`).
    pub fn workload(&self, name: &str) -> Option<&WorkloadState> {
        self.state.workload(name)
    }

    /// Each started process and its exit status if it has exited (reaping it).
    pub fn exits(&mut self) -> Vec<(String, Option<ExitStatus>)> {
        self.children
            .iter_mut()
            .map(|(name, child)| (name.clone(), child.try_wait().ok().flatten()))
            .collect()
    }

    /// Stops everything (SIGTERM, then SIGKILL after [`GRACE`]) and removes the state file.
    pub fn down(mut self) -> process::Stopped {
        self.stop()
    }

    /// Leaves every process running; `meshctl local down` stops them from the state file.
    pub fn detach(mut self) {
        self.detached = true;
    }

    fn stop(&mut self) -> process::Stopped {
        let children = &mut self.children;
        let stopped = process::stop(&self.state.processes, GRACE, || {
            for (_, child) in children.iter_mut() {
                let _ = child.try_wait();
            }
        });
        for (_, child) in &mut self.children {
            // Whatever `stop` could not see as ours (a reused pid is impossible while we
            // hold the child): make sure, and reap.
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.children.clear();
        let _ = self.dir.remove();
        self.detached = true;
        stopped
    }

    /// Records a started process in the state file.
    fn started(&mut self, child: Child, process: state::Process) -> Result<u32, LocalError> {
        let pid = process.pid;
        self.children.push((process.name.clone(), child));
        self.state.processes.push(process);
        self.dir.write(&self.state)?;
        Ok(pid)
    }
}

impl Drop for LocalMesh {
    fn drop(&mut self) {
        if !self.detached {
            self.stop();
        }
    }
}

/// `meshctl local down`: stops the mesh whose state is in `dir`, from any process.
pub fn down(dir: &StateDir) -> Result<process::Stopped, LocalError> {
    let Some(state) = dir.read()? else {
        return Err(LocalError::NotRunning(dir.root.clone()));
    };
    process::check_tools()?;
    let stopped = process::stop(&state.processes, GRACE, || {});
    dir.remove()?;
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller may run `up` on any tokio worker (`tokio::spawn`) when its progress
    /// callback is Send.
    #[test]
    fn up_is_a_send_future() {
        fn send<T: Send>(_: T) {}
        let binaries = Binaries {
            pilot: "pilot".into(),
            citadel: "citadel".into(),
            proxy: "mesh-proxy".into(),
            echo: "mesh-echo".into(),
        };
        let mut progress = |_: &str| {};
        send(up(
            Path::new("topology"),
            &binaries,
            Path::new("state"),
            &Options::default(),
            &mut progress,
        ));
    }
}
