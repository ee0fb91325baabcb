//! `meshctl local up <dir> | down | status`: the whole mesh on this machine.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CommandError;
use crate::Status;
use crate::local::{self, Binaries, LocalError, Options, State, StateDir, probe, process};

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub command: LocalCommand,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start the mesh a directory describes (its topology.yaml, and Istio YAML in config/)
    /// and return once every workload is ready; processes keep running in the background
    Up(UpArgs),
    /// Stop everything `up` started (SIGTERM, then SIGKILL after a grace period)
    Down(StateArgs),
    /// Show what runs where, and whether it is alive and ready
    Status(StateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Where the mesh keeps its state file, logs, generated config and CA
    /// [default: $XDG_STATE_HOME/mesh/local, else ~/.local/state/mesh/local]
    #[arg(long, env = "MESH_LOCAL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    pub fn dir(&self) -> Result<StateDir, LocalError> {
        self.state_dir
            .clone()
            .or_else(local::state::default_state_dir)
            .map(StateDir::new)
            .ok_or(LocalError::NoStateDir)
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The topology directory, e.g. examples/bookinfo
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub state: StateArgs,

    /// Take pilot, citadel, mesh-proxy and mesh-echo from this directory only
    /// [default: next to meshctl, else PATH]
    #[arg(long, env = "MESH_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// The first workload's address; the next ones follow (127.0.0.0/8)
    #[arg(long, default_value = "127.0.0.2")]
    pub base_ip: Ipv4Addr,

    /// The first app's port on 127.0.0.1 (where its sidecar forwards); the next ones follow
    #[arg(long, default_value_t = 20000)]
    pub app_port_base: u16,

    /// pilot's config discovery address
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub pilot_addr: SocketAddr,

    /// pilot's monitoring and /debug address
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub pilot_monitoring_addr: SocketAddr,

    /// citadel's certificate signing address
    #[arg(long, default_value = "127.0.0.1:8060")]
    pub citadel_addr: SocketAddr,

    /// citadel's monitoring address
    #[arg(long, default_value = "127.0.0.1:15015")]
    pub citadel_monitoring_addr: SocketAddr,

    /// How long to wait for every workload to be ready, in seconds
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

pub fn run(args: &LocalArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Write)?;
    runtime.block_on(async {
        match &args.command {
            LocalCommand::Up(up) => run_up(up, out).await,
            LocalCommand::Down(state) => run_down(state, out),
            LocalCommand::Status(state) => run_status(state, out).await,
        }
    })
}

async fn run_up(args: &UpArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let binaries = Binaries::find(args.bin_dir.as_deref()).map_err(LocalError::from)?;
    let dir = args.state.dir()?;
    let options = Options {
        base_ip: args.base_ip,
        app_port_base: args.app_port_base,
        pilot_grpc: args.pilot_addr,
        pilot_monitoring: args.pilot_monitoring_addr,
        citadel_grpc: args.citadel_addr,
        citadel_monitoring: args.citadel_monitoring_addr,
        timeout: Duration::from_secs(args.timeout),
    };
    let mut printed = Ok(());
    let mut progress = |line: &str| {
        if printed.is_ok() {
            printed = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    };
    let started = tokio::select! {
        started = local::up(&args.dir, &binaries, &dir.root, &options, &mut progress) => started,
        _ = tokio::signal::ctrl_c() => Err(LocalError::Interrupted),
    };
    // A mesh that started keeps running even if its report cannot be printed.
    let mesh = started?;
    let state = mesh.state().clone();
    mesh.detach();
    printed?;
    writeln!(out)?;
    write_table(&state, out).await?;
    writeln!(
        out,
        "\nLogs: {}\nStop with `meshctl local down{}`.",
        dir.logs().display(),
        state_flag(&args.state)
    )?;
    Ok(Status::Success)
}

fn state_flag(args: &StateArgs) -> String {
    match &args.state_dir {
        Some(dir) => format!(" --state-dir {}", dir.display()),
        None => String::new(),
    }
}

fn run_down(args: &StateArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let dir = args.dir()?;
    match local::down(&dir) {
        Ok(stopped) => {
            writeln!(
                out,
                "stopped {} processes{}",
                stopped.groups,
                if stopped.killed > 0 {
                    format!(" ({} needed SIGKILL)", stopped.killed)
                } else {
                    String::new()
                }
            )?;
            if stopped.left.is_empty() {
                Ok(Status::Success)
            } else {
                writeln!(out, "still running: pids {:?}", stopped.left)?;
                Ok(Status::Failed)
            }
        }
        Err(LocalError::NotRunning(root)) => {
            writeln!(out, "no local mesh runs with state in {}", root.display())?;
            Ok(Status::Success)
        }
        Err(err) => Err(err.into()),
    }
}

async fn run_status(args: &StateArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let dir = args.dir()?;
    let Some(state) = dir.read().map_err(LocalError::from)? else {
        writeln!(
            out,
            "no local mesh runs with state in {}",
            dir.root.display()
        )?;
        return Ok(Status::Failed);
    };
    process::check_tools().map_err(LocalError::from)?;
    writeln!(out, "topology  {}", state.topology_dir.display())?;
    writeln!(out, "state     {}", state.state_dir.display())?;
    let healthy = write_table(&state, out).await?;
    Ok(if healthy {
        Status::Success
    } else {
        Status::Failed
    })
}

/// The control plane and one row per workload; whether everything is up.
async fn write_table(state: &State, out: &mut impl Write) -> std::io::Result<bool> {
    let mut healthy = true;
    for (name, control) in [("pilot", &state.pilot), ("citadel", &state.citadel)] {
        let Some(control) = control else { continue };
        let running = process::alive(control.pid);
        healthy &= running;
        writeln!(
            out,
            "{name:<9} {} (monitoring {}) {}",
            control.grpc,
            control.monitoring,
            if running { "running" } else { "EXITED" }
        )?;
    }
    let synced = match &state.pilot {
        Some(pilot) => probe::synced(pilot.monitoring).await,
        None => Vec::new(),
    };
    let header = [
        "WORKLOAD", "SERVICE", "VERSION", "ADDRESS", "APP", "APP-UP", "SIDECAR", "READY", "SYNCED",
        "ADMIN",
    ];
    let mut rows = Vec::new();
    for w in &state.workloads {
        let app = match (process::alive(w.app.pid), probe::accepts(w.app.addr).await) {
            (true, true) => "yes",
            (true, false) => "not-listening",
            (false, _) => "EXITED",
        };
        let sidecar = process::alive(w.sidecar.pid);
        let ready = sidecar && probe::ready(w.sidecar.health).await;
        let is_synced = synced.contains(&w.node_id);
        healthy &= app == "yes" && ready && is_synced;
        let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
        rows.push([
            w.name.clone(),
            w.service.clone(),
            w.version.clone(),
            w.ip.to_string(),
            w.app.addr.to_string(),
            app.to_owned(),
            if sidecar { "running" } else { "EXITED" }.to_owned(),
            yes(ready),
            yes(is_synced),
            w.sidecar.admin.to_string(),
        ]);
    }
    writeln!(out)?;
    super::proxy_config::table::write(header, &rows, out)?;
    if let Some(gateway) = &state.gateway {
        let running = process::alive(gateway.pid);
        let ready = running && probe::ready(gateway.health).await;
        let is_synced = synced.contains(&gateway.node_id);
        healthy &= ready && is_synced;
        let listeners: Vec<String> = gateway.listeners.iter().map(|a| a.to_string()).collect();
        writeln!(
            out,
            "\ningressgateway {} (listeners {}, admin {}) {}{}{}",
            gateway.ip,
            listeners.join(", "),
            gateway.admin,
            if running { "running" } else { "EXITED" },
            if ready { ", ready" } else { ", NOT READY" },
            if is_synced {
                ", synced"
            } else {
                ", NOT SYNCED"
            },
        )?;
    }
    Ok(healthy)
}
