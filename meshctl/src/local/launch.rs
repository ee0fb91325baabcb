//! `up`: checks the topology and every address first, then starts citadel, pilot and each
//! workload's app and sidecar, and waits until the mesh works: every sidecar has its
//! certificate and is ready, pilot shows it synced, and every app accepts connections.
//! A process that exits on the way fails `up` with the end of its log; whatever started is
//! stopped when the half-built [`LocalMesh`] is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::binaries::Binaries;
use super::gateway::{self, PlannedGateway};
use super::plan::{Instance, generated_config, plan};
use super::process::{self, Spec};
use super::ready::{POLL, check_exits, report_config_problems, tails, wait_gateway, wait_ready};
use super::state::{
    AppState, ControlPlane, GatewayState, SidecarState, State, StateDir, WorkloadState,
};
use super::topology::{CONFIG_DIR, MESH_CONFIG_FILE, Topology};
use super::{LocalError, LocalMesh, Options};

/// Starts the mesh `topology_dir` describes, with its state in `state_dir`, reporting each
/// step to `progress`.
pub async fn up(
    topology_dir: &Path,
    binaries: &Binaries,
    state_dir: &Path,
    options: &Options,
    progress: &mut impl FnMut(&str),
) -> Result<LocalMesh, LocalError> {
    let topology_dir = std::fs::canonicalize(topology_dir).map_err(|source| LocalError::Io {
        what: "no topology directory",
        path: topology_dir.to_path_buf(),
        source,
    })?;
    let topology = Topology::load(&topology_dir)?;
    process::check_tools()?;
    let instances = plan(
        &topology,
        options.base_ip,
        options.app_port_base,
        &binaries.echo,
    )?;
    let gateway = gateway::plan(&topology, options.base_ip, instances.len())?;
    std::fs::create_dir_all(state_dir).map_err(|source| LocalError::Io {
        what: "cannot create the state directory",
        path: state_dir.to_path_buf(),
        source,
    })?;
    let dir = StateDir::new(std::fs::canonicalize(state_dir).unwrap_or(state_dir.into()));
    refuse_if_running(&dir)?;
    check_addresses(options, &instances, gateway.as_ref())?;
    let config_dirs = prepare(
        &dir,
        &topology_dir,
        &topology,
        &instances,
        gateway.is_some(),
    )?;

    let mut mesh = LocalMesh {
        state: State {
            topology_dir: topology_dir.clone(),
            state_dir: dir.root.clone(),
            namespace: topology.namespace.clone(),
            config_dirs: config_dirs.clone(),
            applied_dir: dir.applied(),
            ..State::default()
        },
        dir,
        children: Vec::new(),
        detached: false,
    };
    let citadel = start_citadel(&mut mesh, binaries, options).await?;
    progress(&format!("citadel ready: signing on {}", citadel.grpc));
    let pilot = start_pilot(&mut mesh, binaries, options, &config_dirs).await?;
    progress(&format!(
        "pilot ready: discovery on {}, /debug on http://{}",
        pilot.grpc, pilot.monitoring
    ));
    for instance in &instances {
        start_workload(
            &mut mesh,
            binaries,
            &topology_dir,
            instance,
            &pilot,
            &citadel,
        )?;
        progress(&format!(
            "started {} on {} (app {}, sidecar outbound {})",
            instance.name,
            instance.ip,
            instance.app_addr(),
            instance.outbound()
        ));
    }
    if let Some(gateway) = &gateway {
        start_gateway(&mut mesh, binaries, gateway, &pilot, &citadel)?;
        progress(&format!(
            "started the ingress gateway on {} (listeners {})",
            gateway.ip,
            join(&gateway.listeners())
        ));
    }
    wait_ready(&mut mesh, options.timeout, progress).await?;
    wait_gateway(&mut mesh, options.timeout, progress).await?;
    report_config_problems(pilot.monitoring, progress).await;
    Ok(mesh)
}

fn refuse_if_running(dir: &StateDir) -> Result<(), LocalError> {
    if let Some(state) = dir.read()? {
        if !process::ours(&state.processes).is_empty() {
            return Err(LocalError::AlreadyRunning {
                topology: state.topology_dir,
                state_dir: dir.root.clone(),
            });
        }
        // A mesh that died without `down`: nothing of it runs, start afresh.
        dir.remove()?;
    }
    Ok(())
}

/// Binds every address the mesh will use, so a taken port or a missing loopback alias
/// fails before anything starts.
fn check_addresses(
    options: &Options,
    instances: &[Instance],
    gateway: Option<&PlannedGateway>,
) -> Result<(), LocalError> {
    let mut wanted: Vec<(SocketAddr, String)> = vec![
        (options.pilot_grpc, "pilot's discovery port".into()),
        (options.pilot_monitoring, "pilot's monitoring port".into()),
        (options.citadel_grpc, "citadel's signing port".into()),
        (
            options.citadel_monitoring,
            "citadel's monitoring port".into(),
        ),
    ];
    for instance in instances {
        for addr in instance.binds() {
            wanted.push((addr, format!("workload {}", instance.name)));
        }
    }
    for addr in gateway.map(PlannedGateway::binds).unwrap_or_default() {
        wanted.push((addr, "the ingress gateway".into()));
    }
    let wanted: Vec<(SocketAddr, String)> =
        wanted.into_iter().filter(|(a, _)| a.port() != 0).collect();
    let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
    for (addr, what) in &wanted {
        if let Some(first) = seen.insert(*addr, what) {
            return Err(LocalError::Clash {
                addr: *addr,
                first: first.to_owned(),
                second: what.clone(),
            });
        }
    }
    for (addr, what) in wanted {
        if let Err(error) = std::net::TcpListener::bind(addr) {
            let hint = if error.kind() == std::io::ErrorKind::AddrNotAvailable {
                " (macOS has only 127.0.0.1 by default: add the workload addresses with `sudo ifconfig lo0 alias 127.0.0.N up`, one per workload)"
            } else if error.kind() == std::io::ErrorKind::AddrInUse {
                " (another program, or another local mesh, has it: stop it, or choose other addresses with --base-ip and the --pilot-*/--citadel-* flags)"
            } else {
                ""
            };
            return Err(LocalError::Unavailable {
                addr,
                what,
                error,
                hint,
            });
        }
    }
    Ok(())
}

/// Fresh logs, generated config, applied dir and tokens (the CA is kept); returns the
/// directories pilot reads.
fn prepare(
    dir: &StateDir,
    topology_dir: &Path,
    topology: &Topology,
    instances: &[Instance],
    gateway: bool,
) -> Result<Vec<PathBuf>, LocalError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalError::Io { what, path, source }
    };
    for fresh in [dir.logs(), dir.generated(), dir.applied(), dir.tokens()] {
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io("cannot clear", &fresh))?;
        }
        std::fs::create_dir_all(&fresh).map_err(io("cannot create", &fresh))?;
    }
    let generated = dir.generated().join("topology.yaml");
    std::fs::write(&generated, generated_config(topology, instances))
        .map_err(io("cannot write", &generated))?;
    write_tokens(dir, topology, instances, gateway)?;
    let user = topology_dir.join(CONFIG_DIR);
    let mut dirs = Vec::new();
    if user.is_dir() {
        dirs.push(user);
    }
    dirs.extend([dir.generated(), dir.applied()]);
    Ok(dirs)
}

/// citadel's bootstrap tokens: one random token per service account, in citadel's token
/// file and in `tokens/<sa>` for that account's sidecars.
fn write_tokens(
    dir: &StateDir,
    topology: &Topology,
    instances: &[Instance],
    gateway: bool,
) -> Result<(), LocalError> {
    let mut accounts: BTreeSet<&str> = instances
        .iter()
        .map(|i| i.service_account.as_str())
        .collect();
    if gateway {
        accounts.insert(gateway::NAME);
    }
    let mut lines = String::new();
    for account in accounts {
        let token = format!("{:032x}", rand::random::<u128>());
        lines.push_str(&format!("{token} {} {account}\n", topology.namespace));
        write_secret(&dir.tokens().join(account), &token)?;
    }
    write_secret(&dir.tokens().join("citadel"), &lines)
}

fn write_secret(path: &Path, text: &str) -> Result<(), LocalError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| LocalError::Io {
            what: "cannot write",
            path: path.to_path_buf(),
            source,
        })
}

async fn start_citadel(
    mesh: &mut LocalMesh,
    binaries: &Binaries,
    options: &Options,
) -> Result<ControlPlane, LocalError> {
    let dir = mesh.dir.clone();
    let log = dir.log("citadel");
    let args = vec![
        "--ca-dir".into(),
        path_arg(&dir.ca()),
        "--token-file".into(),
        path_arg(&dir.tokens().join("citadel")),
        "--addr".into(),
        options.citadel_grpc.to_string(),
        "--monitoring-addr".into(),
        options.citadel_monitoring.to_string(),
    ];
    let control = start_control(
        mesh,
        "citadel",
        &binaries.citadel,
        args,
        &log,
        options.timeout,
    )
    .await?;
    mesh.state.citadel = Some(control.clone());
    mesh.dir.write(&mesh.state)?;
    Ok(control)
}

async fn start_pilot(
    mesh: &mut LocalMesh,
    binaries: &Binaries,
    options: &Options,
    config_dirs: &[PathBuf],
) -> Result<ControlPlane, LocalError> {
    let log = mesh.dir.log("pilot");
    let args = pilot_args(config_dirs, &mesh.state.topology_dir, options);
    let control =
        start_control(mesh, "pilot", &binaries.pilot, args, &log, options.timeout).await?;
    mesh.state.pilot = Some(control.clone());
    mesh.dir.write(&mesh.state)?;
    Ok(control)
}

/// pilot's flags: the config directories, the ports, and the topology's `mesh.yaml` (Istio's
/// MeshConfig: the telemetry providers) when it has one.
fn pilot_args(config_dirs: &[PathBuf], topology_dir: &Path, options: &Options) -> Vec<String> {
    let mut args = Vec::new();
    for dir in config_dirs {
        args.push("--config-dir".to_owned());
        args.push(path_arg(dir));
    }
    args.extend([
        "--grpc-addr".into(),
        options.pilot_grpc.to_string(),
        "--monitoring-addr".into(),
        options.pilot_monitoring.to_string(),
    ]);
    let mesh_config = topology_dir.join(MESH_CONFIG_FILE);
    if mesh_config.is_file() {
        args.extend(["--mesh-config".into(), path_arg(&mesh_config)]);
    }
    args
}

/// Starts pilot or citadel and reads the `<name> ready grpc=.. monitoring=..` line it
/// prints once its ports are bound.
async fn start_control(
    mesh: &mut LocalMesh,
    name: &str,
    program: &Path,
    args: Vec<String>,
    log: &Path,
    timeout: Duration,
) -> Result<ControlPlane, LocalError> {
    let (child, process) = process::spawn(Spec {
        name,
        program: program.as_os_str(),
        args,
        env: plain_logs(),
        cwd: &mesh.dir.root,
        log,
    })?;
    let pid = mesh.started(child, process)?;
    let deadline = Instant::now() + timeout;
    let prefix = format!("{name} ready ");
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with(&prefix))
            && let (Some(grpc), Some(monitoring)) = (field(line, "grpc"), field(line, "monitoring"))
        {
            return Ok(ControlPlane {
                pid,
                grpc,
                monitoring,
                log: log.to_path_buf(),
            });
        }
        check_exits(mesh)?;
        if Instant::now() >= deadline {
            return Err(LocalError::Timeout {
                timeout,
                waiting: format!("{name} never printed its ready line"),
                tails: tails(&[(name.to_owned(), log.to_path_buf())]),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn field(line: &str, name: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?
        .parse()
        .ok()
}

fn start_workload(
    mesh: &mut LocalMesh,
    binaries: &Binaries,
    topology_dir: &Path,
    instance: &Instance,
    pilot: &ControlPlane,
    citadel: &ControlPlane,
) -> Result<(), LocalError> {
    let app_log = mesh.dir.log(&instance.name);
    let program = program(topology_dir, instance.command.first().map(String::as_str));
    let (child, process) = process::spawn(Spec {
        name: &instance.name,
        program: program.as_os_str(),
        args: instance.command.iter().skip(1).cloned().collect(),
        env: instance.env.clone(),
        cwd: topology_dir,
        log: &app_log,
    })?;
    let app_pid = mesh.started(child, process)?;

    let sidecar_name = format!("{}.sidecar", instance.name);
    let sidecar_log = mesh.dir.log(&sidecar_name);
    let labels: Vec<String> = instance
        .labels()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let args = vec![
        "--pilot".into(),
        pilot.grpc.to_string(),
        "--workload".into(),
        instance.name.clone(),
        "--namespace".into(),
        instance.namespace.clone(),
        "--service-account".into(),
        instance.service_account.clone(),
        "--labels".into(),
        labels.join(","),
        "--app".into(),
        instance.service.clone(),
        "--app-version".into(),
        instance.version.clone(),
        "--instance-ip".into(),
        instance.ip.to_string(),
        "--outbound-addr".into(),
        instance.outbound().to_string(),
        "--admin-addr".into(),
        instance.admin().to_string(),
        "--metrics-addr".into(),
        instance.metrics().to_string(),
        "--health-addr".into(),
        instance.health().to_string(),
        "--ca-addr".into(),
        citadel.grpc.to_string(),
        "--trust-bundle".into(),
        path_arg(&mesh.dir.ca().join("trust-bundle.pem")),
        "--ca-token-file".into(),
        path_arg(&mesh.dir.tokens().join(&instance.service_account)),
        "--access-log".into(),
    ];
    let (child, process) = process::spawn(Spec {
        name: &sidecar_name,
        program: binaries.proxy.as_os_str(),
        args,
        env: plain_logs(),
        cwd: &mesh.dir.root,
        log: &sidecar_log,
    })?;
    let sidecar_pid = mesh.started(child, process)?;

    mesh.state.workloads.push(WorkloadState {
        name: instance.name.clone(),
        service: instance.service.clone(),
        version: instance.version.clone(),
        service_account: instance.service_account.clone(),
        identity: format!(
            "spiffe://cluster.local/ns/{}/sa/{}",
            instance.namespace, instance.service_account
        ),
        ip: instance.ip,
        node_id: instance.node_id(),
        app: AppState {
            pid: app_pid,
            addr: instance.app_addr(),
            command: instance.command.clone(),
            log: app_log,
        },
        sidecar: SidecarState {
            pid: sidecar_pid,
            outbound: instance.outbound(),
            inbound: instance.inbound(),
            admin: instance.admin(),
            metrics: instance.metrics(),
            health: instance.health(),
            log: sidecar_log,
        },
    });
    mesh.dir.write(&mesh.state)?;
    Ok(())
}

fn start_gateway(
    mesh: &mut LocalMesh,
    binaries: &Binaries,
    gateway: &PlannedGateway,
    pilot: &ControlPlane,
    citadel: &ControlPlane,
) -> Result<(), LocalError> {
    let log = mesh.dir.log(gateway::NAME);
    let trust_bundle = mesh.dir.ca().join("trust-bundle.pem");
    let token = mesh.dir.tokens().join(gateway::NAME);
    let args = gateway.args(&gateway::Control {
        pilot: pilot.grpc,
        citadel: citadel.grpc,
        trust_bundle: &trust_bundle,
        token: &token,
    });
    let (child, process) = process::spawn(Spec {
        name: gateway::NAME,
        program: binaries.proxy.as_os_str(),
        args,
        env: plain_logs(),
        cwd: &mesh.dir.root,
        log: &log,
    })?;
    let pid = mesh.started(child, process)?;
    mesh.state.gateway = Some(GatewayState {
        pid,
        ip: gateway.ip,
        node_id: gateway.node_id(),
        listeners: gateway.listeners(),
        admin: gateway.admin(),
        health: gateway.health(),
        log,
    });
    mesh.dir.write(&mesh.state)?;
    Ok(())
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A command's program: a relative path with a `/` is the topology directory's.
fn program(topology_dir: &Path, first: Option<&str>) -> PathBuf {
    let first = first.unwrap_or_default();
    let path = Path::new(first);
    if path.is_relative() && first.contains('/') {
        topology_dir.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Our own programs write logs to files: no terminal colours in them.
fn plain_logs() -> BTreeMap<String, String> {
    BTreeMap::from([("NO_COLOR".to_owned(), "1".to_owned())])
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod mesh_config_tests {
    use super::*;

    #[test]
    fn pilot_gets_the_topologys_mesh_config_when_there_is_one() {
        let topology = tempfile::tempdir().expect("temp dir");
        let options = Options::default();
        let dirs = [PathBuf::from("/state/config")];
        let args = pilot_args(&dirs, topology.path(), &options);
        assert!(!args.contains(&"--mesh-config".to_owned()), "{args:?}");
        let file = topology.path().join(MESH_CONFIG_FILE);
        std::fs::write(&file, "extensionProviders: []\n").expect("write");
        let args = pilot_args(&dirs, topology.path(), &options);
        let at = args.iter().position(|a| a == "--mesh-config");
        let at = at.unwrap_or_else(|| panic!("no --mesh-config in {args:?}"));
        assert_eq!(args[at + 1], file.display().to_string());
        assert_eq!(args[..2], ["--config-dir", "/state/config"]);
    }
}
