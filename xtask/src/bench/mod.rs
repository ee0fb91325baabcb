//! `cargo xtask bench proxy`: mesh-proxy against a direct connection, nginx and HAProxy, in
//! one run, on one machine, with the load generator on one CPU and the servers on another.
//!
//! Not run in CI: it takes minutes, needs root or the tools installed, and its numbers mean
//! something only on a quiet machine.
//!
//! `cargo xtask bench pilot` (in `pilot/`) measures the control plane at scale instead.

mod doc;
mod gateway;
mod load;
mod mtls;
mod phase;
mod pilot;
mod report;
mod resources;
mod setup;
mod targets;
mod webhook;

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use load::{LoadArgs, Proto};
use report::{Load, Report};
use setup::{Binaries, TempDir, Tools};
use targets::TargetKind;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    task: BenchTask,
}

#[derive(Subcommand)]
enum BenchTask {
    /// mesh-proxy against direct, nginx and HAProxy: latency at fixed rates, max rps, CPU and
    /// memory. Builds the release binaries and installs nginx, HAProxy and h2load if needed.
    Proxy(ProxyArgs),
    /// pilot at scale: a generated mesh, thousands of simulated proxies, initial sync and
    /// one change's latency, pilot's CPU and memory. Builds pilot in release.
    Pilot(pilot::PilotArgs),
    /// mTLS against plaintext between a client and a server sidecar: latency at a fixed
    /// rate, max rps, and handshakes per second per core. Builds the mesh in release.
    Mtls(mtls::MtlsArgs),
    /// The injector's admission webhook over HTTPS: AdmissionReviews per second and latency
    /// at a fixed rate. Builds the injector in release.
    Webhook(webhook::WebhookArgs),
    /// mesh-proxy as a TLS-terminating gateway against nginx and HAProxy terminating TLS:
    /// req/s, mean latency and CPU per request, HTTP/1.1 and HTTP/2. Builds in release.
    Gateway(gateway::GatewayArgs),
    /// The open-loop load generator `bench proxy` runs pinned for each fixed-rate phase;
    /// prints one `key=value` summary line.
    #[command(hide = true)]
    Load(LoadArgs),
}

#[derive(Args, Clone)]
struct ProxyArgs {
    /// A few seconds per phase: checks that everything works; the numbers are rough.
    #[arg(long)]
    quick: bool,
    /// Replace the generated section of docs/benchmarks.md with this run's results.
    #[arg(long)]
    write_doc: bool,
    /// Targets to measure; direct is always measured, every comparison needs it.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = TargetKind::ALL)]
    targets: Vec<TargetKind>,
    /// Protocols between the load generator and the target.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Proto::H1, Proto::H2])]
    protocols: Vec<Proto>,
    /// Fixed rates, requests per second.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000])]
    rates: Vec<u32>,
    /// Connections from the load generator, one request in flight on each.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Response body size from the upstream, bytes.
    #[arg(long, default_value_t = 1024)]
    body_size: u64,
    /// The CPU for the load generator (and this orchestrator).
    #[arg(long, default_value_t = 0)]
    load_cpu: u32,
    /// The CPU for the upstream and the proxy under test.
    #[arg(long, default_value_t = 1)]
    server_cpu: u32,
    /// Keep the temp dir with the configs and the servers' logs.
    #[arg(long)]
    keep_temp: bool,
}

/// Seconds per phase: (warm-up, measured).
struct Timing {
    fixed: (u32, u32),
    max: (u32, u32),
}

impl ProxyArgs {
    fn timing(&self) -> Timing {
        if self.quick {
            Timing {
                fixed: (1, 3),
                max: (1, 3),
            }
        } else {
            Timing {
                fixed: (2, 20),
                max: (2, 10),
            }
        }
    }
}

pub fn run(args: BenchArgs, root: &Path) -> anyhow::Result<()> {
    match args.task {
        BenchTask::Proxy(args) => bench_proxy(args, root),
        BenchTask::Pilot(args) => pilot::run(args, root),
        BenchTask::Mtls(args) => mtls::run(args, root),
        BenchTask::Webhook(args) => webhook::run(args, root),
        BenchTask::Gateway(args) => gateway::run(args, root),
        BenchTask::Load(args) => {
            println!("{}", load::run_fixed_rate(&args)?.to_line());
            Ok(())
        }
    }
}

fn bench_proxy(mut args: ProxyArgs, root: &Path) -> anyhow::Result<()> {
    if !args.targets.contains(&TargetKind::Direct) {
        args.targets.insert(0, TargetKind::Direct);
    }
    args.targets.sort();
    args.targets.dedup();
    let cpus = setup::online_cpus()?;
    if args.load_cpu == args.server_cpu || args.load_cpu.max(args.server_cpu) >= cpus {
        bail!(
            "--load-cpu and --server-cpu must be two different CPUs below {cpus}; this machine \
             has {cpus}"
        );
    }
    setup::pin_self(args.load_cpu)?;
    let tools = Tools::find_or_install(&args.targets)?;
    let bins = setup::build(root)?;
    let dir = TempDir::new()?;
    eprintln!("bench: configs and logs in {}", dir.path.display());
    let result = measure(&args, &tools, &bins, &dir.path);
    if args.keep_temp {
        dir.keep();
    }
    let report = Report {
        info: setup::run_info(&pinning(&args), &tools, root),
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
    let failed = report.phases.iter().filter(|p| p.error.is_some()).count();
    if failed > 0 {
        bail!("{failed} phases failed; see the table");
    }
    Ok(())
}

/// Runs every phase, each against a freshly started target, so that no phase inherits
/// another's memory high-water mark; every process is stopped by its guard, also on error.
fn measure(args: &ProxyArgs, tools: &Tools, bins: &Binaries, dir: &Path) -> anyhow::Result<Report> {
    let upstream = targets::start_upstream(&bins.echo, dir, args.server_cpu, args.body_size)?;
    let bench = phase::Bench {
        args,
        tools,
        bins,
        programs: tools.programs(bins),
        upstream: &upstream,
        dir,
    };
    let mut report = Report {
        targets: args.targets.clone(),
        rates: args.rates.clone(),
        idle_rss: idle_rss(&bench)?,
        ..Report::default()
    };
    let loads: Vec<Load> = args
        .rates
        .iter()
        .map(|r| Load::Rate(*r))
        .chain([Load::Max])
        .collect();
    phase::wait_for_quiet(Duration::from_secs(60));
    // Targets interleave within each load so that drift on the machine hits them alike.
    for &proto in &args.protocols {
        for &load in &loads {
            for &kind in &args.targets {
                let phase = phase::run_quiet_phase(&bench, kind, proto, load);
                report.phases.push(phase);
            }
        }
    }
    phase::rerun_noisy(&bench, &mut report.phases);
    Ok(report)
}

/// Each target's memory a second after it started, with nothing asked of it yet.
fn idle_rss(bench: &phase::Bench<'_>) -> anyhow::Result<Vec<(TargetKind, u64)>> {
    let mut started = Vec::new();
    for &kind in &bench.args.targets {
        started.push(bench.start(kind)?);
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut idle = Vec::new();
    for target in &started {
        idle.push((target.kind, resources::rss_bytes(&target.pids())));
        if let Some(process) = &target.process {
            let threads = resources::threads(process.pid()).unwrap_or(0);
            eprintln!(
                "bench: {} on {} (h2c {}), pid {}, {threads} threads",
                target.kind.label(),
                target.h1,
                target.h2,
                process.pid()
            );
        }
    }
    Ok(idle)
}

/// How the run was set up, for the doc.
fn pinning(args: &ProxyArgs) -> Vec<String> {
    let timing = args.timing();
    vec![
        format!(
            "Pinning: the load generator (and this orchestrator) on CPU {load} with \
             `taskset -c {load}`; the upstream and every proxy on CPU {server} with \
             `taskset -c {server}`. Each server therefore runs one worker: nginx \
             `worker_processes 1`, HAProxy `nbthread 1`, and the tokio runtimes of mesh-proxy \
             and mesh-echo size themselves from the affinity mask.",
            load = args.load_cpu,
            server = args.server_cpu
        ),
        format!(
            "Upstream: one release mesh-echo answering every request with a {} byte body, \
             shared by all targets; nginx and HAProxy reach it over HTTP/1.1 with keep-alive \
             pools, mesh-proxy in the client's protocol (HTTP/2 clients: one multiplexed \
             HTTP/2 connection per endpoint; nginx: \
             `upstream {{ keepalive 64; }}`, `proxy_http_version 1.1`, `proxy_set_header \
             Connection \"\"`; HAProxy: `mode http`, `http-reuse always`). mesh-proxy runs \
             a generated snapshot: one listener, one route, one cluster.",
            args.body_size
        ),
        format!(
            "Fixed rates ({rates} rps): `cargo xtask bench load`, an open-loop generator \
             (tokio + hyper, one thread): {c} connections, requests scheduled evenly and \
             round-robin over them, one in flight per connection; latency counted from the \
             scheduled send time when the connection was still busy (no coordinated \
             omission), else from the actual send. {w} s warm-up, {m} s measured per phase. \
             HTTP/2 is h2c prior knowledge; nginx serves it on a second port.",
            rates = args
                .rates
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            c = args.connections,
            w = timing.fixed.0,
            m = timing.fixed.1
        ),
        format!(
            "Max rps: `h2load -t 1 -c {c} -m 1 -D {m}s --warm-up-time {w}s` (`--h1` for \
             HTTP/1.1), closed loop, {c} requests in flight.",
            c = args.connections,
            w = timing.max.0,
            m = timing.max.1
        ),
        "CPU: utime + stime from /proc/<pid>/stat of the target's processes (nginx master and \
         worker summed) before and after each phase; vCPU per 1000 rps = CPU seconds per \
         1000 requests sent (warm-up included on both sides). RSS: VmRSS from \
         /proc/<pid>/status, idle one second after start, and the peak of 100 ms samples \
         during each phase."
            .to_owned(),
        "mesh-proxy's `/stats/prometheus` is scraped every 15 s during each phase, as \
         Prometheus would: its recorder keeps every histogram sample until a scrape."
            .to_owned(),
        "Every phase starts its target afresh (the upstream stays), so no phase inherits \
         another's memory high-water mark; targets interleave within each phase (direct, \
         mesh-proxy, nginx, HAProxy at 1000 rps, then all at 5000 rps, ...) so drift on the \
         machine hits them alike."
            .to_owned(),
    ]
}
