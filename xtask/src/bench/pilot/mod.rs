//! `cargo xtask bench pilot`: pilot at scale. A generated mesh of services in a config
//! directory, a release pilot on it with its production defaults, and thousands of
//! simulated proxies in this process: how long until all have their config, how long one
//! route or endpoint change takes to reach them, and what pilot spends doing it.
//!
//! Not run in CI: it takes minutes and its numbers mean something only on a quiet machine.

mod config;
mod fleet;
mod metrics;
mod process;
mod report;
mod run;
mod scenario;
mod stats;
mod wire;

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

use super::setup::{cargo, release_dir, rerun_in_release};
use config::{ConfigDir, Shape};
use report::PilotReport;
use run::{Change, Launch, Session};

/// The extra set that shows pilot's own cost apart from its deliberate delays.
const FAST: [&str; 4] = ["--debounce", "10ms", "--config-poll", "10ms"];

#[derive(Args, Clone)]
pub struct PilotArgs {
    /// Services: a ServiceEntry, a DestinationRule and a VirtualService each.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Endpoints per service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Simulated proxies, each with its own discovery stream.
    #[arg(long, default_value_t = 2000)]
    proxies: usize,
    /// Namespaces the services and the proxies are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Changes per scenario.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Replace the `## pilot at scale` section of docs/benchmarks.md with this run's results.
    #[arg(long)]
    write_doc: bool,
    /// Keep the temp dir with the config and pilot's logs.
    #[arg(long)]
    keep_temp: bool,
    /// Run this pilot binary instead of building one (to compare two builds).
    #[arg(long)]
    pilot_binary: Option<PathBuf>,
    /// pilot's `--log` filter, e.g. `mesh_pilot=debug` to see each push in its log.
    #[arg(long, default_value = "info")]
    pilot_log: String,
}

pub fn run(args: PilotArgs, root: &Path) -> anyhow::Result<()> {
    let counts = [
        args.services,
        args.endpoints,
        args.proxies,
        args.namespaces,
        args.rounds,
    ];
    if counts.contains(&0) {
        bail!("--services, --endpoints, --proxies, --namespaces and --rounds must be at least 1");
    }
    // The simulated proxies must not be the slow part: a debug build decodes several times
    // slower than pilot encodes.
    if cfg!(debug_assertions) {
        return rerun_in_release(root);
    }
    let binary = match &args.pilot_binary {
        Some(binary) => binary.clone(),
        None => {
            cargo(root, &["build", "--release", "-p", "mesh-pilot"])?;
            release_dir(root).join("pilot")
        }
    };
    let temp = tempfile::Builder::new()
        .prefix("mesh-bench-pilot-")
        .tempdir()?;
    eprintln!("bench: config and logs in {}", temp.path().display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(&args, &binary, temp.path()));
    if args.keep_temp {
        let _ = temp.keep();
    }
    let report = PilotReport {
        info: run_info(root, args.pilot_binary.as_deref()),
        ..result?
    };
    let text = report.render();
    println!("{text}");
    if args.write_doc {
        let path = root.join("docs/benchmarks.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, report::replace_doc_section(&existing, &text))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

async fn measure(args: &PilotArgs, binary: &Path, temp: &Path) -> anyhow::Result<PilotReport> {
    let shape = Shape {
        services: args.services,
        endpoints: args.endpoints,
        namespaces: args.namespaces,
    };
    let config = temp.join("config");
    std::fs::create_dir(&config)?;
    let (mut dir, config_bytes) = ConfigDir::generate(&config, shape)?;
    let mut launch = Launch {
        binary,
        log_filter: &args.pilot_log,
        log_file: temp.join("pilot.log"),
    };
    let (mut session, startup, sync) = Session::start(&launch, &dir, &[], args.proxies).await?;
    let connections = session.fleet.connections;
    let mut scenarios = vec![
        session
            .changes(&mut dir, Change::Route, args.rounds)
            .await?,
    ];
    scenarios.push(
        session
            .changes(&mut dir, Change::Endpoint, args.rounds)
            .await?,
    );
    drop(session);
    launch.log_file = temp.join("pilot-fast.log");
    let (mut fast, _, fast_sync) = Session::start(&launch, &dir, &FAST, args.proxies).await?;
    scenarios.push(
        fast.changes(&mut dir, Change::Endpoint, args.rounds)
            .await?,
    );
    Ok(PilotReport {
        shape: Some(shape),
        proxies: args.proxies,
        connections,
        config_bytes,
        startup,
        syncs: vec![sync, fast_sync],
        scenarios,
        ..PilotReport::default()
    })
}

/// The command, the date, the machine and the versions, as the proxy bench records them,
/// with the revision of what pilot is built from.
fn run_info(root: &Path, binary: Option<&Path>) -> crate::bench::report::RunInfo {
    let no_tools = super::setup::Tools {
        nginx: PathBuf::new(),
        haproxy: PathBuf::new(),
        h2load: PathBuf::new(),
    };
    let mut info = super::setup::run_info(&method(), &no_tools, root);
    if let Some(mesh) = info.versions.first_mut() {
        mesh.1 = match binary {
            Some(binary) => format!("pilot from {}", binary.display()),
            None => super::setup::revision(
                root,
                &["pilot/src", "core", "proto", "Cargo.toml", "Cargo.lock"],
                "pilot's build",
            ),
        };
    }
    info
}

fn method() -> Vec<String> {
    [
        "Every simulated proxy opens its stream at once when the phase starts (as after a \
         pilot restart); \"every proxy synced after\" runs from then to the last proxy's \
         first full config.",
        "A change rewrites one service's file (write aside, rename); its latency runs from \
         the rename to a proxy's receipt of the update that carries the changed resource \
         (decoded; the proxy ACKs right after). Every proxy sees every service, so every \
         proxy should receive it. Rounds start 0.7 s after the last response plus a wait \
         that spreads the edits evenly over pilot's 100 ms poll period.",
        "The simulated proxies decode each resource's type, name and version and skip its \
         body (xtask/src/bench/pilot/wire.rs): decoding every body for 2000 proxies on the \
         machine pilot runs on would cost more CPU than pilot itself, which real proxies, on \
         their own machines, do not take from pilot.",
        "CPU: utime + stime from /proc/<pid>/stat; RSS: VmRSS sampled every 20 ms (the peak \
         of each phase) and VmHWM from /proc/<pid>/status. Client CPU is this bench's own \
         process, which shares the two CPUs with pilot.",
        "The last scenario restarts pilot with `--debounce 10ms --config-poll 10ms` and \
         syncs the proxies again (second row of the sync table).",
    ]
    .map(String::from)
    .to_vec()
}
