//! One phase: the mesh of one variant started afresh, a load through it from the pinned
//! load generator (ours at a fixed rate, h2load for the maximum), each process's CPU time
//! around it, and the sidecars' own account of what went through them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;

use super::MtlsArgs;
use super::mesh::{Citadel, Programs, SERVICE_HOST, Sidecars, Variant};
use super::report::{Phase, Spec};
use crate::bench::load;
use crate::bench::report::Load;
use crate::bench::resources;
use crate::bench::setup::{Binaries, Tools};
use crate::bench::targets::{Upstream, spawn_pinned};

/// What every phase needs.
pub struct Bench<'a> {
    pub args: &'a MtlsArgs,
    pub tools: &'a Tools,
    pub bins: &'a Binaries,
    pub programs: Programs<'a>,
    pub citadel: &'a Citadel,
    pub app: &'a Upstream,
    pub dir: &'a Path,
}

/// Runs a phase; if other work disturbed it, runs it once more when the machine is quiet
/// and keeps the quieter run (not with `--quick`, which only checks that all works).
pub fn run_quiet(bench: &Bench<'_>, spec: Spec) -> Phase {
    let first = run(bench, spec);
    eprintln!("{}", first.progress());
    if !first.noisy() || bench.args.quick {
        return first;
    }
    eprintln!("bench: noisy, running it again when the machine is quiet");
    crate::bench::phase::wait_for_quiet(Duration::from_secs(90));
    let mut second = run(bench, spec);
    eprintln!("{}", second.progress());
    second.attempts = 2;
    let keep_second = second.error.is_none() && second.other_vcpu() < first.other_vcpu();
    if keep_second {
        second
    } else {
        Phase {
            attempts: 2,
            ..first
        }
    }
}

fn run(bench: &Bench<'_>, spec: Spec) -> Phase {
    let mut phase = Phase::new(spec);
    if let Err(error) = measure(bench, &mut phase) {
        let text = format!("{error:#}");
        phase.error = Some(text.lines().next().unwrap_or("").replace('|', "/"));
    }
    phase
}

/// CPU ticks of each party at one moment.
struct Ticks {
    at: Instant,
    caller: u64,
    callee: u64,
    app: u64,
    machine: u64,
}

impl Ticks {
    fn take(sidecars: Option<&Sidecars>, app: u32) -> anyhow::Result<Self> {
        let [caller, callee] = sidecars.map_or([0, 0], |s| s.pids().map(ticks));
        Ok(Ticks {
            at: Instant::now(),
            caller,
            callee,
            app: ticks(app),
            machine: resources::machine_cpu()?.busy,
        })
    }
}

fn ticks(pid: u32) -> u64 {
    resources::cpu_ticks(&[pid])
}

fn measure(bench: &Bench<'_>, phase: &mut Phase) -> anyhow::Result<()> {
    let spec = phase.spec;
    let sidecars = match spec.variant {
        Variant::Direct => None,
        _ => Some(Sidecars::start(
            &bench.programs,
            bench.citadel,
            bench.dir,
            spec.variant,
            spec.fresh,
            bench.app.addr,
        )?),
    };
    let target = sidecars
        .as_ref()
        .map_or(bench.app.addr, |s| s.caller.outbound);
    let security_before = sidecars.as_ref().map(Sidecars::security).transpose()?;
    let (program, args) = load_command(bench, target, spec);
    let before = Ticks::take(sidecars.as_ref(), bench.app.process.pid())?;
    let mut generator = spawn_pinned(
        bench.dir,
        "load",
        bench.args.load_cpu,
        &program,
        &args,
        Stdio::piped(),
    )
    .context("load generator")?;
    let output = generator.take_output()?;
    let mut loadgen_ticks = 0;
    let status = loop {
        loadgen_ticks = loadgen_ticks.max(ticks(generator.pid()));
        if let Some(status) = generator.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = Ticks::take(sidecars.as_ref(), bench.app.process.pid())?;
    let stdout = output.join().unwrap_or_default();
    if !status.success() {
        bail!("load generator failed ({status}): {}", generator.log_tail());
    }
    account(phase, &before, &after, loadgen_ticks);
    match spec.load {
        Load::Rate(_) => phase.rate = Some(stdout.lines().last().unwrap_or("").parse()?),
        Load::Max => {
            let max = load::parse_h2load(&stdout)?;
            // A wrong Host would be answered 404 by the caller, as fast as anything.
            if max.status_2xx < max.succeeded || max.succeeded == 0 {
                bail!(
                    "h2load: {} 2xx of {} succeeded, {} failed, {} errored",
                    max.status_2xx,
                    max.succeeded,
                    max.failed,
                    max.errored
                );
            }
            phase.max = Some(max);
        }
    }
    if let (Some(sidecars), Some(before)) = (&sidecars, security_before) {
        let security = sidecars.security()?.since(&before);
        phase.security = Some(security);
        if let Some(contradiction) = security.contradiction(spec.variant, spec.fresh) {
            bail!("{contradiction}");
        }
    }
    Ok(())
}

/// Our fixed-rate generator or h2load, both sending the service's Host.
fn load_command(
    bench: &Bench<'_>,
    addr: std::net::SocketAddr,
    spec: Spec,
) -> (PathBuf, Vec<String>) {
    let args = bench.args;
    let timing = args.timing();
    match spec.load {
        Load::Rate(rate) => {
            let proto = spec
                .proto
                .to_possible_value()
                .map(|v| v.get_name().to_owned());
            let flags = [
                ("--addr", addr.to_string()),
                ("--host", SERVICE_HOST.to_owned()),
                ("--proto", proto.unwrap_or_default()),
                ("--rate", rate.to_string()),
                ("--connections", args.connections.to_string()),
                ("--warmup", timing.fixed.0.to_string()),
                ("--seconds", timing.fixed.1.to_string()),
                ("--expect-bytes", args.body_size.to_string()),
            ];
            let mut command = vec!["bench".to_owned(), "load".to_owned()];
            command.extend(flags.into_iter().flat_map(|(f, v)| [f.to_owned(), v]));
            (bench.bins.xtask.clone(), command)
        }
        Load::Max => {
            // `:authority` replaces h2load's own Host (HTTP/1.1) too; `host` would add one.
            let mut command = vec!["-H".to_owned(), format!(":authority: {SERVICE_HOST}")];
            command.extend(load::h2load_args(
                addr,
                spec.proto,
                args.connections,
                timing.max.1,
                timing.max.0,
            ));
            (bench.tools.h2load.clone(), command)
        }
    }
}

fn account(phase: &mut Phase, before: &Ticks, after: &Ticks, loadgen_ticks: u64) {
    let hz = resources::clock_ticks();
    let seconds = |after: u64, before: u64| after.saturating_sub(before) as f64 / hz;
    phase.wall_s = after.at.duration_since(before.at).as_secs_f64();
    phase.caller_cpu_s = seconds(after.caller, before.caller);
    phase.callee_cpu_s = seconds(after.callee, before.callee);
    phase.app_cpu_s = seconds(after.app, before.app);
    phase.loadgen_cpu_s = loadgen_ticks as f64 / hz;
    let machine = seconds(after.machine, before.machine);
    let ours = phase.caller_cpu_s + phase.callee_cpu_s + phase.app_cpu_s + phase.loadgen_cpu_s;
    phase.other_cpu_s = (machine - ours).max(0.0);
}
