//! `meshctl stat [<namespace>|deploy/<workload>|<workload>]`: the golden metrics of the
//! workloads, as their own sidecars see their inbound requests, over a window: NAME,
//! MESHED, SUCCESS, RPS, LATENCY_P50/P95/P99, TCP_CONN. Printed once after the window, or
//! refreshed with `-w`.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CommandError;
use super::local::StateArgs;
use crate::Status;
use crate::observe::format::{WORKLOAD_COLUMNS, workload_row};
use crate::observe::source::{Measured, Source, select};
use crate::observe::stats::WorkloadStats;

#[derive(Debug, Args)]
#[command(after_help = "\
Locally, meshctl scrapes every sidecar's /stats/prometheus, waits the window and scrapes \
again. With --prometheus URL (Kubernetes), it asks Prometheus for the same metrics over the \
window. SUCCESS is the share of responses that are not 5xx; latencies are those of the \
sidecar's inbound requests (a workload that never received any, such as a gateway, shows what \
it sent); TCP_CONN counts the TCP connections its sidecar proxies now.")]
pub struct StatArgs {
    /// A namespace, a workload (`reviews-v1`, `deploy/reviews-v1`); all workloads when
    /// omitted
    #[arg(value_name = "NAMESPACE|deploy/WORKLOAD|WORKLOAD")]
    pub target: Option<String>,

    /// Refresh every window until Ctrl-C
    #[arg(short, long)]
    pub watch: bool,

    /// How long to measure (`5s`, `500ms`, `1m`)
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub window: Duration,

    /// Read the metrics from Prometheus (Kubernetes), e.g. http://localhost:9090
    #[arg(long, env = "MESH_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus: Option<String>,

    /// A table, or the measurement as JSON
    #[arg(short, long, value_enum, default_value_t = StatOutput::Table)]
    pub output: StatOutput,

    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatOutput {
    Table,
    Json,
}

/// `5s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (5s, 500ms, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit is ms, s or m")),
    };
    if seconds <= 0.0 || !seconds.is_finite() {
        return Err(format!("{text:?}: a window must be longer than 0"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub fn run(args: &StatArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let runtime = super::top::runtime()?;
    runtime.block_on(async {
        let source = Source::open(&args.state, args.prometheus.as_deref(), args.window)?;
        // Locally the workloads are known before measuring: a wrong name fails at once.
        let local: Vec<_> = source
            .targets()
            .iter()
            .map(|t| t.workload.clone())
            .collect();
        if !local.is_empty() {
            select(&local, source.namespace(), args.target.as_deref())?;
        }
        let rounds = super::top::Rounds {
            first: args.window,
            window: args.window,
            every: args.watch.then_some(args.window),
            clear: args.watch && args.output == StatOutput::Table,
        };
        super::top::refresh(source, rounds, out, |source, measured, out| {
            write(args, source, measured, out)
        })
        .await
    })
}

fn write(
    args: &StatArgs,
    source: &Source,
    measured: &Measured,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let stats = &measured.stats;
    let all: Vec<_> = stats.workloads.iter().map(|w| w.workload.clone()).collect();
    let chosen = select(&all, source.namespace(), args.target.as_deref())?;
    let rows: Vec<&WorkloadStats> = stats
        .workloads
        .iter()
        .filter(|w| chosen.contains(&w.workload.id()))
        .collect();
    for error in &measured.errors {
        eprintln!("warning: {error}");
    }
    match args.output {
        StatOutput::Json => {
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
        StatOutput::Table => {
            let cells: Vec<[String; 8]> = rows.iter().map(|w| workload_row(w)).collect();
            super::proxy_config::write_table(WORKLOAD_COLUMNS, &cells, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").unwrap_err().contains("unit"));
        assert!(parse_duration("fast").is_err());
    }
}
