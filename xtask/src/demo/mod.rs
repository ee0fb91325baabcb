//! `cargo xtask demo`: the local mesh running a bookinfo-like topology (a frontend calling
//! reviews in three versions, which call ratings), and a walkthrough of the mesh's
//! features on live traffic. Each step changes the config the way a user does (a file in
//! the directory pilot watches), waits until every proxy runs it, sends traffic, and
//! prints what it applied and what it measured, with the checks that say whether the
//! mesh did what the config asks.
//!
//! The walkthrough ([`walkthrough`]) only needs a running mesh ([`Target`]), so the
//! integration test runs the same steps against a mesh its binaries started.

pub mod client;
mod run;
mod steps;
pub mod sync;

pub use run::{DemoArgs, run};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use client::Http;
use sync::{Edits, Pilot};

/// A running local mesh, as the walkthrough reaches it.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    /// The directory pilot watches; steps write their files here and undo them after.
    pub config_dir: PathBuf,
    /// pilot's monitoring address: `/debug/syncz` and `/debug/config_status`.
    pub pilot_monitoring: SocketAddr,
    pub workloads: Vec<Workload>,
}

/// One workload of the mesh and its sidecar's addresses.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub service: String,
    pub version: String,
    /// Its SPIFFE ID, `spiffe://cluster.local/ns/<ns>/sa/<service account>`.
    pub identity: String,
    /// The sidecar's inbound listener: peers reach the app here.
    pub inbound: SocketAddr,
    /// The sidecar's outbound listener: the app reaches other services here.
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
}

/// One thing a step expects of the mesh, and whether it held.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub passed: bool,
}

/// What one step applied, measured and checked.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub title: String,
    pub checks: Vec<Check>,
}

impl StepReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// What the steps share: the target, an HTTP client, pilot, and the edits to undo.
pub struct Ctx {
    pub target: Target,
    pub http: Http,
    pilot: Pilot,
    edits: Edits,
    checks: Vec<Check>,
}

impl Ctx {
    fn new(target: Target) -> Self {
        let http = Http::new();
        Self {
            pilot: Pilot {
                monitoring: target.pilot_monitoring,
                http: http.clone(),
            },
            edits: Edits::new(&target.config_dir),
            http,
            target,
            checks: Vec::new(),
        }
    }

    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> anyhow::Result<&Workload> {
        self.target
            .workloads
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| anyhow::anyhow!("the topology has no workload {name:?}"))
    }

    /// The first workload of `service`.
    pub fn service_workload(&self, service: &str) -> anyhow::Result<&Workload> {
        self.target
            .workloads
            .iter()
            .find(|w| w.service == service)
            .ok_or_else(|| anyhow::anyhow!("the topology has no service {service:?}"))
    }

    /// A file of the config directory as it is now.
    pub fn read_config(&self, name: &str) -> anyhow::Result<String> {
        let path = self.target.config_dir.join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
    }

    /// Writes config files, prints them, and waits until every proxy runs them.
    pub async fn apply(&mut self, files: &[(&str, String)]) -> anyhow::Result<()> {
        let before = self.pilot.generation().await?;
        for (name, content) in files {
            println!("  applying {name}:");
            print_yaml(content);
            self.edits.write(name, content)?;
        }
        self.synced(before).await
    }

    /// Replaces the DestinationRule `name` in `file` (keeping the file's other documents),
    /// prints the new rule, and waits until every proxy runs it.
    pub async fn apply_rule(&mut self, file: &str, name: &str, rule: &str) -> anyhow::Result<()> {
        let before = self.pilot.generation().await?;
        let text = steps::with_rule(&self.read_config(file)?, name, rule)?;
        println!("  editing {file}: DestinationRule {name} becomes");
        print_yaml(rule);
        self.edits.write(file, &text)?;
        self.synced(before).await
    }

    /// Undoes the step's files and waits until every proxy runs the result.
    pub async fn undo(&mut self) -> anyhow::Result<()> {
        let before = self.pilot.generation().await?;
        if self.edits.restore()? {
            self.synced(before).await?;
        }
        Ok(())
    }

    async fn synced(&self, before: u64) -> anyhow::Result<()> {
        let took = self
            .pilot
            .wait_synced(before, self.target.workloads.len())
            .await?;
        let errors = self.pilot.errors().await?;
        anyhow::ensure!(errors.is_empty(), "pilot refused the config: {errors:#?}");
        println!(
            "  every proxy runs it {} ms after the write",
            took.as_millis()
        );
        Ok(())
    }

    /// Prints a measurement.
    pub fn measured(&self, line: impl AsRef<str>) {
        println!("  measured: {}", line.as_ref());
    }

    /// Records and prints an expectation.
    pub fn check(&mut self, what: impl Into<String>, passed: bool) {
        let what = what.into();
        println!("  {} {what}", if passed { "ok  " } else { "FAIL" });
        self.checks.push(Check { what, passed });
    }
}

fn print_yaml(text: &str) {
    for line in text.trim_end().lines() {
        println!("    | {line}");
    }
}

/// Runs every step against `target`, printing as it goes; the reports say what held.
/// A step that cannot run (an error, not a failed check) ends the walkthrough.
pub async fn walkthrough(target: Target) -> anyhow::Result<Vec<StepReport>> {
    let mut ctx = Ctx::new(target);
    let mut reports = Vec::new();
    for (number, step) in steps::ALL.iter().enumerate() {
        let started = Instant::now();
        println!("\n{}. {}", number + 1, step.title());
        println!("   {}", step.why());
        let outcome = step.run(&mut ctx).await;
        let undone = ctx.undo().await;
        outcome?;
        undone?;
        println!("   ({} ms)", started.elapsed().as_millis());
        reports.push(StepReport {
            title: step.title().to_owned(),
            checks: std::mem::take(&mut ctx.checks),
        });
    }
    Ok(reports)
}

impl Target {
    /// The running local mesh `state` describes; `config_dir` is the first of pilot's
    /// directories, the user's own.
    pub fn from_state(state: &meshctl::local::State) -> anyhow::Result<Self> {
        let pilot = state
            .pilot
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the local mesh has no pilot"))?;
        let config_dir = state
            .config_dirs
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the local mesh has no config directory"))?;
        let workloads = state
            .workloads
            .iter()
            .map(|w| {
                Ok(Workload {
                    name: w.name.clone(),
                    service: w.service.clone(),
                    version: w.version.clone(),
                    identity: w.identity.clone(),
                    inbound: *w.sidecar.inbound.first().ok_or_else(|| {
                        anyhow::anyhow!("workload {} has no service port", w.name)
                    })?,
                    outbound: w.sidecar.outbound,
                    admin: w.sidecar.admin,
                    metrics: w.sidecar.metrics,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            namespace: state.namespace.clone(),
            config_dir,
            pilot_monitoring: pilot.monitoring,
            workloads,
        })
    }
}
