//! Processes of a local mesh: each in its own process group (so a signal reaches whatever
//! it started too, and a ctrl-c in the terminal that ran `up` reaches none of them), its
//! stdout and stderr in one log file. Signals and liveness go through `kill` and `ps`,
//! which every Linux and macOS machine has, so `down` works from another process than `up`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::state::Process;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot create the log {}", path.display())]
    Log {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("meshctl local needs `{tool}` (on Linux, the procps package)")]
    Tool {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {name} ({program})")]
    Spawn {
        name: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to start.
pub struct Spec<'a> {
    pub name: &'a str,
    pub program: &'a OsStr,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: &'a Path,
    pub log: &'a Path,
}

/// Starts `spec` as the leader of a new process group, output to its log.
pub fn spawn(spec: Spec) -> Result<(Child, Process), ProcessError> {
    let log_err = |source| ProcessError::Log {
        path: spec.log.to_path_buf(),
        source,
    };
    let out = std::fs::File::create(spec.log).map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    let child = Command::new(spec.program)
        .args(&spec.args)
        .envs(&spec.env)
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            name: spec.name.to_owned(),
            program: Path::new(spec.program).display().to_string(),
            source,
        })?;
    let pid = child.id();
    let process = Process {
        name: spec.name.to_owned(),
        pid,
        started: started(pid).unwrap_or_default(),
        log: spec.log.to_path_buf(),
    };
    Ok((child, process))
}

/// Checks that `ps` and `kill` run: without them nothing could be stopped.
pub fn check_tools() -> Result<(), ProcessError> {
    let own = std::process::id().to_string();
    for (tool, args) in [("ps", ["-o", "pid=", "-p"]), ("kill", ["-0", "--", ""])] {
        let mut command = Command::new(tool);
        command
            .args(args.iter().filter(|a| !a.is_empty()))
            .arg(&own);
        let status = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| ProcessError::Tool { tool, source })?;
        if !status.success() {
            return Err(ProcessError::Tool {
                tool,
                source: std::io::Error::other(format!("`{tool}` failed ({status})")),
            });
        }
    }
    Ok(())
}

/// When `pid` started, as `ps` prints it (in UTC and the C locale, so that `down` run
/// from another shell reads the same text).
fn started(pid: u32) -> Option<String> {
    let output = Command::new("ps")
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .args(["-o", "lstart=", "-p", &pid.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// One line of `ps`: a live (not zombie) process and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    pid: u32,
    pgid: u32,
}

/// Every live process on the machine with its group; zombies (exited, not yet reaped by
/// their parent) count as gone.
fn table() -> Vec<Row> {
    let Ok(output) = Command::new("ps")
        .args(["-A", "-o", "pid=,pgid=,stat="])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            let pgid = fields.next()?.parse().ok()?;
            let stat = fields.next().unwrap_or_default();
            (!stat.starts_with('Z')).then_some(Row { pid, pgid })
        })
        .collect()
}

/// The processes of `processes` still ours: alive, still leading their group, and
/// started when we started them.
pub fn ours(processes: &[Process]) -> Vec<&Process> {
    let rows = table();
    processes
        .iter()
        .filter(|p| {
            rows.contains(&Row {
                pid: p.pid,
                pgid: p.pid,
            })
        })
        .filter(|p| p.started.is_empty() || started(p.pid).as_deref() == Some(&p.started))
        .collect()
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    table().iter().any(|row| row.pid == pid)
}

/// Live processes in any of `groups`.
fn members(groups: &BTreeSet<u32>) -> Vec<u32> {
    table()
        .into_iter()
        .filter(|row| groups.contains(&row.pgid))
        .map(|row| row.pid)
        .collect()
}

fn signal_groups(groups: &BTreeSet<u32>, signal: &str) {
    if groups.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .args(groups.iter().map(|g| format!("-{g}")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// What stopping found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Process groups signalled.
    pub groups: usize,
    /// Groups that needed SIGKILL after the grace period.
    pub killed: usize,
    /// Processes still alive at the end (should be none).
    pub left: Vec<u32>,
}

/// SIGTERM to every group of `processes` that is still ours, waits up to `grace` for them
/// to go (calling `reap` meanwhile, so a parent can collect its children), then SIGKILL to
/// what is left and waits once more.
pub fn stop(processes: &[Process], grace: Duration, mut reap: impl FnMut()) -> Stopped {
    let groups: BTreeSet<u32> = ours(processes).iter().map(|p| p.pid).collect();
    let mut stopped = Stopped {
        groups: groups.len(),
        ..Stopped::default()
    };
    signal_groups(&groups, "TERM");
    if wait_gone(&groups, grace, &mut reap) {
        return stopped;
    }
    let rows = table();
    let still: BTreeSet<u32> = groups
        .iter()
        .copied()
        .filter(|g| rows.iter().any(|row| row.pgid == *g))
        .collect();
    stopped.killed = still.len();
    signal_groups(&still, "KILL");
    wait_gone(&groups, Duration::from_secs(5), &mut reap);
    stopped.left = members(&groups);
    stopped
}

/// Polls until no process of `groups` is alive; false at the deadline.
fn wait_gone(groups: &BTreeSet<u32>, limit: Duration, reap: &mut impl FnMut()) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        reap();
        if members(groups).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a log.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests;
