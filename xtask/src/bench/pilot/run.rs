//! The run, phase by phase: pilot starts on the generated directory, the proxies connect
//! and sync, then each scenario's rounds; pilot's CPU, memory and metrics are read around
//! every phase.

use std::path::Path;
use std::time::{Duration, Instant};

use super::config::ConfigDir;
use super::fleet::Fleet;
use super::metrics::{self, PilotMetrics};
use super::process::{self, PilotProcess, RssSampler, Usage};
use super::scenario::{self, RoundResult, SyncResult};
use super::stats::{Spread, Summary};

const SYNC_TIMEOUT: Duration = Duration::from_secs(600);
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);
/// No response for this long: the last phase is over.
const QUIET: Duration = Duration::from_millis(700);
/// pilot left alone after start, to see what it costs idle (the directory poll).
const IDLE: Duration = Duration::from_secs(2);

/// What one phase cost pilot (and this process, whose proxies share the machine).
#[derive(Clone, Debug, Default)]
pub struct Cost {
    pub wall: Duration,
    pub pilot_cpu_s: f64,
    pub client_cpu_s: f64,
    /// The machine's busy time not accounted to pilot or this process: other work.
    pub other_cpu_s: f64,
    /// Peak of VmRSS sampled every 20 ms during the phase.
    pub rss_peak: u64,
    pub after: Usage,
    /// pilot's metrics over the phase.
    pub metrics: PilotMetrics,
}

#[derive(Clone, Debug, Default)]
pub struct Startup {
    pub ready_after: Duration,
    pub usage: Usage,
    pub threads: u32,
    /// CPU seconds per second while nothing changes and nobody is connected.
    pub idle_cpu_per_s: f64,
}

#[derive(Clone, Debug, Default)]
pub struct SyncPhase {
    pub flags: String,
    pub result: SyncResult,
    pub cost: Cost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Scenario A: one VirtualService's weights.
    Route,
    /// Scenario B: one endpoint's address.
    Endpoint,
}

#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub change: Change,
    pub flags: String,
    /// This pilot's CPU seconds per second with nothing to do (its directory poll).
    pub idle_cpu_per_s: f64,
    pub rounds: Vec<RoundResult>,
    pub summary: Summary,
    pub cost: Cost,
}

impl Cost {
    /// Other work on the machine during the phase, in vCPU on average.
    pub fn other_vcpu(&self) -> f64 {
        let wall = self.wall.as_secs_f64();
        if wall > 0.0 {
            self.other_cpu_s / wall
        } else {
            0.0
        }
    }
}

impl ScenarioResult {
    /// pilot's CPU seconds per change, less what its idle poll used meanwhile.
    pub fn cpu_per_change_s(&self) -> f64 {
        let idle = self.idle_cpu_per_s * self.cost.wall.as_secs_f64();
        (self.cost.pilot_cpu_s - idle).max(0.0) / self.rounds.len().max(1) as f64
    }
}

/// How to start pilot.
pub struct Launch<'a> {
    pub binary: &'a Path,
    /// Its `--log` filter.
    pub log_filter: &'a str,
    /// Where its log goes.
    pub log_file: std::path::PathBuf,
}

/// One pilot with its proxies connected.
pub struct Session {
    pub pilot: PilotProcess,
    sampler: RssSampler,
    pub fleet: Fleet,
    pub flags: String,
    proxies: usize,
    idle_cpu_per_s: f64,
}

/// The state at the start of a phase.
struct Mark {
    at: Instant,
    usage: Usage,
    client_cpu_s: f64,
    machine_busy_s: f64,
    metrics: PilotMetrics,
}

impl Session {
    /// Starts pilot with `flags` on `dir` and connects `proxies` that wait for their first
    /// config.
    pub async fn start(
        pilot: &Launch<'_>,
        dir: &ConfigDir,
        flags: &[&str],
        proxies: usize,
    ) -> anyhow::Result<(Session, Startup, SyncPhase)> {
        let all_flags = [flags, &["--log", pilot.log_filter]].concat();
        let pilot = PilotProcess::start(pilot.binary, &dir.path, &pilot.log_file, &all_flags)?;
        let sampler = RssSampler::start(pilot.pid);
        let startup = idle(&pilot, &sampler).await;
        eprintln!(
            "bench: pilot pid {} ready after {:.2} s; {proxies} proxies connecting",
            pilot.pid,
            startup.ready_after.as_secs_f64()
        );
        let mark = mark(&pilot).await?;
        let mut fleet = Fleet::connect(pilot.grpc, proxies, dir.shape.namespaces).await?;
        let result = scenario::initial_sync(&mut fleet, proxies, mark.at, SYNC_TIMEOUT).await;
        eprintln!(
            "bench: {} of {proxies} proxies synced after {:.2} s",
            result.synced,
            result.spread.max.as_secs_f64()
        );
        let mut session = Session {
            pilot,
            sampler,
            fleet,
            flags: flags.join(" "),
            proxies,
            idle_cpu_per_s: startup.idle_cpu_per_s,
        };
        // Read after the ACKs settle, so that "RSS after" is what pilot keeps.
        scenario::settle(&mut session.fleet, QUIET).await;
        let sync = SyncPhase {
            flags: session.flags.clone(),
            result,
            cost: session.cost_since(mark).await?,
        };
        Ok((session, startup, sync))
    }

    /// `rounds` changes of one kind, one at a time, each to another service.
    pub async fn changes(
        &mut self,
        dir: &mut ConfigDir,
        change: Change,
        rounds: usize,
    ) -> anyhow::Result<ScenarioResult> {
        let mark = mark(&self.pilot).await?;
        let mut results = Vec::new();
        for round in 0..rounds {
            tokio::time::sleep(poll_phase(round)).await;
            let service = pick_service(change, round, dir.shape.services);
            let target = match change {
                Change::Route => dir.change_route(service)?,
                Change::Endpoint => dir.move_endpoint(service)?,
            };
            let changed_at = Instant::now();
            let events = scenario::round(
                &mut self.fleet,
                &target,
                changed_at,
                self.proxies,
                ROUND_TIMEOUT,
            )
            .await;
            let result = RoundResult {
                service,
                ..scenario::judge_round(&events, &target, changed_at)
            };
            log_round(change, &self.flags, round, &result);
            results.push(result);
            scenario::settle(&mut self.fleet, QUIET).await;
        }
        let spreads: Vec<Spread> = results.iter().map(|r| r.spread).collect();
        Ok(ScenarioResult {
            change,
            flags: self.flags.clone(),
            idle_cpu_per_s: self.idle_cpu_per_s,
            summary: Summary::of(&spreads),
            rounds: results,
            cost: self.cost_since(mark).await?,
        })
    }

    async fn cost_since(&self, mark: Mark) -> anyhow::Result<Cost> {
        let after = self.pilot.usage();
        let metrics = metrics::scrape(self.pilot.monitoring).await?;
        let pilot_cpu_s = after.cpu_s - mark.usage.cpu_s;
        let client_cpu_s = process::own_cpu_s() - mark.client_cpu_s;
        let busy_s = process::machine_busy_s() - mark.machine_busy_s;
        Ok(Cost {
            wall: mark.at.elapsed(),
            pilot_cpu_s,
            client_cpu_s,
            other_cpu_s: (busy_s - pilot_cpu_s - client_cpu_s).max(0.0),
            rss_peak: self.sampler.take_peak().max(after.rss),
            after,
            metrics: metrics.since(&mark.metrics),
        })
    }
}

/// pilot just started, left alone for a moment: its memory and what its poll costs.
async fn idle(pilot: &PilotProcess, sampler: &RssSampler) -> Startup {
    let before = pilot.usage();
    tokio::time::sleep(IDLE).await;
    let usage = pilot.usage();
    // Startup's own peak is VmHWM; the sampler's next peak is the sync's.
    sampler.take_peak();
    Startup {
        ready_after: pilot.ready_after,
        usage,
        threads: pilot.threads(),
        idle_cpu_per_s: (usage.cpu_s - before.cpu_s) / IDLE.as_secs_f64(),
    }
}

async fn mark(pilot: &PilotProcess) -> anyhow::Result<Mark> {
    Ok(Mark {
        metrics: metrics::scrape(pilot.monitoring).await?,
        usage: pilot.usage(),
        client_cpu_s: process::own_cpu_s(),
        machine_busy_s: process::machine_busy_s(),
        at: Instant::now(),
    })
}

/// A different service each round, spread over the namespaces; the two kinds of change
/// touch different services.
pub fn pick_service(change: Change, round: usize, services: usize) -> usize {
    let (step, offset) = match change {
        Change::Route => (7, 1),
        Change::Endpoint => (13, 5),
    };
    (round * step + offset) % services.max(1)
}

/// A wait before each round's edit. Rounds start a fixed quiet time after the last push,
/// which itself follows one of pilot's directory polls, so without it every edit would
/// land at the same point of the poll period; this spreads them evenly over 100 ms
/// (golden-ratio steps).
pub fn poll_phase(round: usize) -> Duration {
    let fraction = (round as f64 * 0.618_034).fract();
    Duration::from_secs_f64(0.1 * fraction)
}

fn log_round(change: Change, flags: &str, round: usize, result: &RoundResult) {
    eprintln!(
        "bench: {change:?} change{} round {}: svc-{} reached {} proxies, p50 {:.1} ms, p99 \
         {:.1} ms, max {:.1} ms, {}-{} resources, {} other responses, {} errors",
        if flags.is_empty() {
            String::new()
        } else {
            format!(" ({flags})")
        },
        round + 1,
        result.service,
        result.spread.count,
        ms(result.spread.p50),
        ms(result.spread.p99),
        ms(result.spread.max),
        result.resources.0,
        result.resources.1,
        result.other_responses,
        result.errors.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_spread_over_the_poll_period_and_services_differ() {
        let mut phases: Vec<u128> = (0..5).map(|r| poll_phase(r).as_millis()).collect();
        phases.sort_unstable();
        assert_eq!(phases, [0, 23, 47, 61, 85]);
        let services: std::collections::HashSet<usize> = (0..5)
            .flat_map(|r| [Change::Route, Change::Endpoint].map(|c| pick_service(c, r, 1000)))
            .collect();
        assert_eq!(services.len(), 10);
        assert_eq!(pick_service(Change::Route, 3, 10), 2);
    }
}
