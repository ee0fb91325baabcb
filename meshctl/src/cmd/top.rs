//! `meshctl top`: every workload's golden metrics, busiest first, and below them the calls
//! between workloads (the service graph's edges), refreshed until Ctrl-C; `--once` prints
//! one measurement and exits.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use super::CommandError;
use super::local::StateArgs;
use super::stat::parse_duration;
use crate::Status;
use crate::observe::format::{EDGE_COLUMNS, WORKLOAD_COLUMNS, edge_row, workload_row};
use crate::observe::source::{Measured, Source};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Print one measurement (after the window) and exit
    #[arg(long)]
    pub once: bool,

    /// How often to refresh
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Rates and latencies are over this much of the recent past (`10s`, `1m`)
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub window: Duration,

    /// Read the metrics from Prometheus (Kubernetes), e.g. http://localhost:9090
    #[arg(long, env = "MESH_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus: Option<String>,

    #[command(flatten)]
    pub state: StateArgs,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Write)
}

/// Ctrl-C (SIGINT), listened for from the start: one pressed while the command measures
/// or prints still ends it.
pub(crate) struct Interrupt(tokio::signal::unix::Signal);

impl Interrupt {
    pub(crate) fn listen() -> Result<Self, CommandError> {
        let kind = tokio::signal::unix::SignalKind::interrupt();
        Ok(Self(tokio::signal::unix::signal(kind)?))
    }

    /// Waits `wait`; true when Ctrl-C came first (or had come already).
    pub(crate) async fn during(&mut self, wait: Duration) -> bool {
        tokio::select! {
            _ = self.0.recv() => true,
            () = tokio::time::sleep(wait) => false,
        }
    }

    /// `work`'s result, or None when Ctrl-C came first.
    pub(crate) async fn or<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            _ = self.0.recv() => None,
            done = work => Some(done),
        }
    }
}

/// Home and clear, when the output is a terminal (a pipe gets one table after another).
pub(crate) fn clear_screen(out: &mut impl Write) -> std::io::Result<()> {
    if std::io::stdout().is_terminal() {
        write!(out, "\x1b[H\x1b[2J")?;
    }
    Ok(())
}

/// How `stat` and `top` measure and print, round after round.
pub(crate) struct Rounds {
    /// The window of the first measurement.
    pub first: Duration,
    /// The window of every later one.
    pub window: Duration,
    /// The wait between rounds; None: one round only.
    pub every: Option<Duration>,
    /// Clear the terminal before each print.
    pub clear: bool,
}

/// Measures `source` and prints it with `print`, round after round as `rounds` says, until
/// Ctrl-C (which ends it with success, even mid-measurement).
pub(crate) async fn refresh<W: Write>(
    mut source: Source,
    rounds: Rounds,
    out: &mut W,
    mut print: impl FnMut(&Source, &Measured, &mut W) -> Result<(), CommandError>,
) -> Result<Status, CommandError> {
    let mut interrupt = Interrupt::listen()?;
    let mut window = rounds.first;
    loop {
        let Some(measured) = interrupt.or(source.measure(window)).await else {
            return Ok(Status::Success);
        };
        let measured = measured?;
        if rounds.clear {
            clear_screen(out)?;
        }
        print(&source, &measured, out)?;
        out.flush()?;
        match rounds.every {
            Some(every) if !interrupt.during(every).await => window = rounds.window,
            _ => return Ok(Status::Success),
        }
    }
}

pub fn run(args: &TopArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    runtime()?.block_on(async {
        let source = Source::open(&args.state, args.prometheus.as_deref(), args.window)?;
        let rounds = Rounds {
            // The first window is the interval (or --window if shorter), so the first table
            // comes soon; later ones span --window.
            first: args.interval.min(args.window),
            window: args.window,
            every: (!args.once).then_some(args.interval),
            clear: !args.once,
        };
        refresh(source, rounds, out, |_, measured, out| {
            write(measured, args.once, out)
        })
        .await
    })
}

fn write(measured: &Measured, once: bool, out: &mut impl Write) -> Result<(), CommandError> {
    let stats = &measured.stats;
    let mut workloads: Vec<_> = stats.workloads.iter().collect();
    workloads.sort_by(|a, b| b.golden.rps.total_cmp(&a.golden.rps));
    let rows: Vec<[String; 8]> = workloads.iter().map(|w| workload_row(w)).collect();
    super::proxy_config::write_table(WORKLOAD_COLUMNS, &rows, out)?;
    let mut edges: Vec<_> = stats.edges.iter().collect();
    edges.sort_by(|a, b| b.golden.rps.total_cmp(&a.golden.rps));
    if !edges.is_empty() {
        writeln!(out)?;
        let rows: Vec<[String; 7]> = edges.iter().map(|e| edge_row(stats, e)).collect();
        super::proxy_config::write_table(EDGE_COLUMNS, &rows, out)?;
    }
    for error in &measured.errors {
        writeln!(out, "warning: {error}")?;
    }
    let stop = if once { "" } else { "; Ctrl-C to stop" };
    writeln!(out, "\nover the last {:.1}s{stop}", stats.window_seconds)?;
    Ok(())
}
