//! Waiting for a starting mesh: until every sidecar has its certificate and config and
//! is ready, pilot shows it synced and every app accepts connections; failing as soon as a
//! process exits, with the end of its log.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::state::State;
use super::{LocalError, LocalMesh, probe, process};

/// How often a waiting `up` looks again.
pub const POLL: Duration = Duration::from_millis(50);

/// Fails when a started process has exited.
pub fn check_exits(mesh: &mut LocalMesh) -> Result<(), LocalError> {
    for (name, status) in mesh.exits() {
        if let Some(status) = status {
            let log = mesh
                .state
                .processes
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.log.clone())
                .unwrap_or_default();
            return Err(LocalError::Failed {
                tail: process::tail(&log, 20),
                why: format!("exited ({status})"),
                name,
                log,
            });
        }
    }
    Ok(())
}

/// What is not ready yet, by workload: `(name, what, log)`.
async fn not_ready(state: &State) -> Vec<(String, &'static str, PathBuf)> {
    let synced: BTreeSet<String> = match &state.pilot {
        Some(pilot) => probe::synced(pilot.monitoring).await.into_iter().collect(),
        None => BTreeSet::new(),
    };
    let mut waiting = Vec::new();
    for w in &state.workloads {
        if !probe::ready(w.sidecar.health).await {
            waiting.push((
                w.name.clone(),
                "sidecar not ready (certificate and config)",
                w.sidecar.log.clone(),
            ));
        } else if !synced.contains(&w.node_id) {
            waiting.push((
                w.name.clone(),
                "sidecar not synced with pilot",
                w.sidecar.log.clone(),
            ));
        } else if !probe::accepts(w.app.addr).await {
            waiting.push((
                w.name.clone(),
                "app not accepting connections",
                w.app.log.clone(),
            ));
        }
    }
    waiting
}

pub async fn wait_ready(
    mesh: &mut LocalMesh,
    timeout: Duration,
    progress: &mut impl FnMut(&str),
) -> Result<(), LocalError> {
    let deadline = Instant::now() + timeout;
    let total = mesh.state.workloads.len();
    let mut reported = usize::MAX;
    loop {
        check_exits(mesh)?;
        let waiting = not_ready(&mesh.state).await;
        if waiting.len() != reported {
            reported = waiting.len();
            progress(&format!(
                "{} of {total} workloads ready",
                total - waiting.len()
            ));
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let what: Vec<String> = waiting
                .iter()
                .map(|(n, w, _)| format!("{n}: {w}"))
                .collect();
            let logs: Vec<(String, PathBuf)> = waiting
                .iter()
                .map(|(n, _, l)| (n.clone(), l.clone()))
                .collect();
            return Err(LocalError::Timeout {
                timeout,
                waiting: what.join("; "),
                tails: tails(&logs),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Until the ingress gateway, if any, has its certificate and config and pilot shows it
/// synced. Apart from the workloads, so their count stays theirs.
pub async fn wait_gateway(
    mesh: &mut LocalMesh,
    timeout: Duration,
    progress: &mut impl FnMut(&str),
) -> Result<(), LocalError> {
    let Some(gateway) = mesh.state.gateway.clone() else {
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    loop {
        check_exits(mesh)?;
        let synced = match &mesh.state.pilot {
            Some(pilot) => probe::synced(pilot.monitoring).await,
            None => Vec::new(),
        };
        if probe::ready(gateway.health).await && synced.contains(&gateway.node_id) {
            progress("ingress gateway ready");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LocalError::Timeout {
                timeout,
                waiting: "the ingress gateway: not ready or not synced with pilot".into(),
                tails: tails(&[("ingressgateway".to_owned(), gateway.log.clone())]),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

pub fn tails(logs: &[(String, PathBuf)]) -> String {
    logs.iter()
        .take(3)
        .map(|(name, log)| {
            format!(
                "\n--- {name}: the end of {}\n{}",
                log.display(),
                process::tail(log, 10)
            )
        })
        .collect()
}

/// Tells `progress` about pilot's config problems, if any: a mesh with a broken file in
/// `config/` runs, and the user should know why a route is missing.
pub async fn report_config_problems(monitoring: SocketAddr, progress: &mut impl FnMut(&str)) {
    let problems = config_problems(monitoring).await;
    if problems.is_empty() {
        return;
    }
    progress(&format!(
        "pilot reports {} config problem(s), also on http://{monitoring}/debug/config_status:",
        problems.len(),
    ));
    for problem in problems {
        progress(&format!("  {problem}"));
    }
}

/// pilot's config problems (`/debug/config_status`), one line each as `analyze` prints
/// them, with what pilot did.
async fn config_problems(monitoring: SocketAddr) -> Vec<String> {
    let Some(status) = probe::json(monitoring, "/debug/config_status").await else {
        return Vec::new();
    };
    let problems = status["problems"].as_array().cloned().unwrap_or_default();
    problems
        .iter()
        .map(|p| {
            let origin = &p["origin"];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            let place = match origin["index"].as_u64() {
                Some(index) => format!("{}[{index}]", text(&origin["file"])),
                None => text(&origin["file"]),
            };
            format!(
                "{}: {place} {} {}/{}: {}: {} ({})",
                text(&p["severity"]),
                text(&origin["kind"]),
                text(&origin["namespace"]),
                text(&origin["name"]),
                text(&p["field"]),
                text(&p["message"]),
                text(&p["action"]),
            )
        })
        .collect()
}
