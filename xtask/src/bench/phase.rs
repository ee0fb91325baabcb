//! One phase: a load against one target while its CPU and memory are sampled, run again
//! when other work on the machine disturbed it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::ProxyArgs;
use super::load::{self, Proto};
use super::report::{self, Load, Phase};
use super::resources;
use super::setup::{Binaries, Tools};
use super::targets::{self, Programs, Target, TargetKind, Upstream};

/// How often the bench scrapes mesh-proxy's metrics during a phase, like Prometheus.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(15);

/// Runs a phase; if other work on the machine disturbed it, waits for quiet and runs it
/// again, keeping the quieter run.
pub(super) fn run_quiet_phase(
    bench: &Bench<'_>,
    kind: TargetKind,
    proto: Proto,
    load: Load,
) -> Phase {
    let phase = run_phase(bench, kind, proto, load);
    eprintln!("{}", progress_line(&phase));
    if phase.noisy() {
        return retry(bench, phase, Duration::from_secs(60));
    }
    phase
}

/// One more run of a noisy phase once the machine is quiet (or `patience` has passed);
/// the quieter of the two is kept.
fn retry(bench: &Bench<'_>, phase: Phase, patience: Duration) -> Phase {
    eprintln!("bench: noisy, running it again when the machine is quiet");
    wait_for_quiet(patience);
    let mut again = run_phase(bench, phase.target, phase.proto, phase.load);
    eprintln!("{}", progress_line(&again));
    again.attempts = phase.attempts + 1;
    if again.error.is_none() && again.other_vcpu() < phase.other_vcpu() {
        again
    } else {
        Phase {
            attempts: again.attempts,
            ..phase
        }
    }
}

/// Phases still noisy after the main pass get up to two more runs, each after waiting up to
/// three minutes for the machine to quiet down.
pub(super) fn rerun_noisy(bench: &Bench<'_>, phases: &mut [Phase]) {
    for phase in phases.iter_mut() {
        while phase.noisy() && phase.attempts < 4 {
            *phase = retry(bench, phase.clone(), Duration::from_secs(180));
        }
    }
}

/// Waits (at most `limit`) until the machine's CPUs have been nearly idle for three seconds
/// in a row: our servers are idle between phases, so what is busy is someone else's work.
pub(super) fn wait_for_quiet(limit: Duration) {
    let deadline = Instant::now() + limit;
    let hz = resources::clock_ticks();
    let mut announced = false;
    let mut quiet_seconds = 0;
    loop {
        let Ok(before) = resources::machine_cpu() else {
            return;
        };
        std::thread::sleep(Duration::from_secs(1));
        let Ok(after) = resources::machine_cpu() else {
            return;
        };
        let busy = after.busy.saturating_sub(before.busy) as f64 / hz;
        quiet_seconds = if busy <= report::NOISY_VCPU {
            quiet_seconds + 1
        } else {
            0
        };
        if quiet_seconds >= 3 {
            return;
        }
        if busy <= report::NOISY_VCPU {
            continue;
        }
        if Instant::now() >= deadline {
            eprintln!("bench: still {busy:.2} vCPU busy with other work; going on");
            return;
        }
        if !announced {
            eprintln!("bench: {busy:.2} vCPU busy with other work; waiting for quiet");
            announced = true;
        }
    }
}

fn progress_line(phase: &Phase) -> String {
    let head = format!(
        "bench: {:<8} {:<8} {:<10}",
        phase.proto.label(),
        phase.load.label(),
        phase.target.label()
    );
    if let Some(error) = &phase.error {
        return format!("{head} FAILED: {error}");
    }
    let result = match (&phase.rate, &phase.max) {
        (Some(r), _) => format!(
            "p50 {:.3} p99 {:.3} ms, {} errors",
            f64::from(r.p50_us) / 1e3,
            f64::from(r.p99_us) / 1e3,
            r.errors
        ),
        (_, Some(m)) => format!("{:.0} rps", m.rps),
        _ => String::new(),
    };
    format!(
        "{head} {result}; target {:.2} vCPU, other work {:.2} vCPU",
        phase.target_utilisation(),
        phase.other_vcpu()
    )
}

/// CPU time of each party at one moment.
struct Snapshot {
    at: Instant,
    target: u64,
    upstream: u64,
    machine: resources::CpuTimes,
}

impl Snapshot {
    fn take(target: &[u32], upstream: u32) -> anyhow::Result<Self> {
        Ok(Snapshot {
            at: Instant::now(),
            target: resources::cpu_ticks(target),
            upstream: resources::cpu_ticks(&[upstream]),
            machine: resources::machine_cpu()?,
        })
    }
}

/// What every phase needs.
pub(super) struct Bench<'a> {
    pub args: &'a ProxyArgs,
    pub tools: &'a Tools,
    pub bins: &'a Binaries,
    pub programs: Programs,
    pub upstream: &'a Upstream,
    pub dir: &'a Path,
}

impl Bench<'_> {
    /// Starts a target on the server CPU, in front of the upstream.
    pub fn start(&self, kind: TargetKind) -> anyhow::Result<Target> {
        targets::start_target(
            kind,
            &self.programs,
            self.dir,
            self.args.server_cpu,
            self.upstream.addr,
        )
    }
}

/// Starts the target, runs one phase against it, stops it.
fn run_phase(bench: &Bench<'_>, kind: TargetKind, proto: Proto, load: Load) -> Phase {
    let mut phase = Phase {
        target: kind,
        proto,
        load,
        rate: None,
        max: None,
        error: None,
        wall_s: 0.0,
        target_cpu_s: 0.0,
        upstream_cpu_s: 0.0,
        loadgen_cpu_s: 0.0,
        other_cpu_s: 0.0,
        steal_s: 0.0,
        rss_peak: 0,
        attempts: 1,
    };
    let result = bench
        .start(kind)
        .and_then(|target| drive(bench, &target, &mut phase));
    if let Err(error) = result {
        let text = format!("{error:#}");
        phase.error = Some(text.lines().next().unwrap_or("").replace('|', "/"));
    }
    // Stopped (dropped) targets do not disturb the next phase's start.
    std::thread::sleep(Duration::from_millis(300));
    phase
}

/// Runs the load for one phase while sampling the target, and fills in `phase`.
fn drive(bench: &Bench<'_>, target: &Target, phase: &mut Phase) -> anyhow::Result<()> {
    let pids = target.pids();
    let upstream = bench.upstream.process.pid();
    let (program, load_args) = load_command(bench, target.addr(phase.proto), phase);
    let before = Snapshot::take(&pids, upstream)?;
    let mut generator = targets::spawn_pinned(
        bench.dir,
        "load",
        bench.args.load_cpu,
        &program,
        &load_args,
        std::process::Stdio::piped(),
    )
    .context("load generator")?;
    let output = generator.take_output()?;
    let mut loadgen_ticks = 0;
    let mut scraped: Option<Instant> = None;
    let status = loop {
        // As Prometheus would: mesh-proxy keeps histogram samples until a scrape.
        if let Some(metrics) = target.metrics
            && scraped.is_none_or(|at| at.elapsed() >= SCRAPE_INTERVAL)
        {
            scraped = Some(Instant::now());
            targets::scrape(metrics, "/stats/prometheus").context("scraping mesh-proxy")?;
        }
        phase.rss_peak = phase.rss_peak.max(resources::rss_bytes(&pids));
        loadgen_ticks = loadgen_ticks.max(resources::cpu_ticks(&[generator.pid()]));
        if let Some(status) = generator.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = Snapshot::take(&pids, upstream)?;
    let stdout = output.join().unwrap_or_default();
    if !status.success() {
        bail!("load generator failed ({status}): {}", generator.log_tail());
    }
    account(phase, &before, &after, loadgen_ticks);
    match phase.load {
        Load::Rate(_) => {
            let line = stdout.lines().last().unwrap_or("");
            phase.rate = Some(line.parse()?);
        }
        Load::Max => phase.max = Some(load::parse_h2load(&stdout)?),
    }
    Ok(())
}

/// The load generator's program and arguments for this phase: ours at a fixed rate, h2load
/// for the maximum.
fn load_command(
    bench: &Bench<'_>,
    addr: std::net::SocketAddr,
    phase: &Phase,
) -> (std::path::PathBuf, Vec<String>) {
    let args = bench.args;
    let timing = args.timing();
    match phase.load {
        Load::Rate(rate) => {
            let flags = [
                ("--addr", addr.to_string()),
                ("--proto", proto_flag(phase.proto).to_owned()),
                ("--rate", rate.to_string()),
                ("--connections", args.connections.to_string()),
                ("--warmup", timing.fixed.0.to_string()),
                ("--seconds", timing.fixed.1.to_string()),
                ("--expect-bytes", args.body_size.to_string()),
            ];
            let mut command = vec!["bench".to_owned(), "load".to_owned()];
            for (flag, value) in flags {
                command.push(flag.to_owned());
                command.push(value);
            }
            (bench.bins.xtask.clone(), command)
        }
        Load::Max => (
            bench.tools.h2load.clone(),
            load::h2load_args(
                addr,
                phase.proto,
                args.connections,
                timing.max.1,
                timing.max.0,
            ),
        ),
    }
}

/// CPU seconds of each party between two snapshots; the rest of the machine's busy time is
/// other work.
fn account(phase: &mut Phase, before: &Snapshot, after: &Snapshot, loadgen_ticks: u64) {
    let hz = resources::clock_ticks();
    let seconds = |ticks: u64| ticks as f64 / hz;
    phase.wall_s = after.at.duration_since(before.at).as_secs_f64();
    phase.target_cpu_s = seconds(after.target.saturating_sub(before.target));
    phase.upstream_cpu_s = seconds(after.upstream.saturating_sub(before.upstream));
    phase.loadgen_cpu_s = seconds(loadgen_ticks);
    let machine = seconds(after.machine.busy.saturating_sub(before.machine.busy));
    phase.other_cpu_s =
        (machine - phase.target_cpu_s - phase.upstream_cpu_s - phase.loadgen_cpu_s).max(0.0);
    phase.steal_s = seconds(after.machine.steal.saturating_sub(before.machine.steal));
}

fn proto_flag(proto: Proto) -> &'static str {
    match proto {
        Proto::H1 => "h1",
        Proto::H2 => "h2",
    }
}
