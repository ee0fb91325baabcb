//! The pilot under test: started on the generated directory, its ports read from its ready
//! line, its CPU and memory read from /proc, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::resources;

pub struct PilotProcess {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub pid: u32,
    pub grpc: SocketAddr,
    pub monitoring: SocketAddr,
    /// From spawn to the ready line: loading and indexing the directory.
    pub ready_after: Duration,
}

/// What pilot has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// VmRSS, bytes.
    pub rss: u64,
    /// VmHWM, the resident peak since start, bytes.
    pub hwm: u64,
}

impl PilotProcess {
    /// Starts `binary` on `config_dir` with `extra` flags; its log goes to `log`.
    pub fn start(
        binary: &Path,
        config_dir: &Path,
        log: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .arg("--config-dir")
            .arg(config_dir)
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--monitoring-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("pilot's stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some((grpc, monitoring)) = parse_ready(&line) else {
            let _ = child.kill();
            bail!(
                "pilot did not print its ready line (got {line:?}); see {}",
                log.display()
            );
        };
        Ok(PilotProcess {
            pid: child.id(),
            child,
            _stdout: stdout,
            grpc,
            monitoring,
            ready_after: started.elapsed(),
        })
    }

    pub fn usage(&self) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
        let status = status.unwrap_or_default();
        Usage {
            cpu_s: resources::cpu_ticks(&[self.pid]) as f64 / resources::clock_ticks(),
            rss: status_bytes(&status, "VmRSS:").unwrap_or(0),
            hwm: status_bytes(&status, "VmHWM:").unwrap_or(0),
        }
    }

    pub fn threads(&self) -> u32 {
        resources::threads(self.pid).unwrap_or(0)
    }
}

impl Drop for PilotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pilot ready grpc=A monitoring=B` -> (A, B).
pub fn parse_ready(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let field = |name: &str| -> Option<SocketAddr> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some((field("grpc")?, field("monitoring")?))
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in bytes.
pub fn status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let mut words = line[field.len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(value * 1024)
}

/// This process's own CPU seconds: the simulated proxies share the machine with pilot.
pub fn own_cpu_s() -> f64 {
    resources::cpu_ticks(&[std::process::id()]) as f64 / resources::clock_ticks()
}

/// The whole machine's busy CPU seconds so far (every process, ours included).
pub fn machine_busy_s() -> f64 {
    resources::machine_cpu().map_or(0.0, |t| t.busy as f64 / resources::clock_ticks())
}

/// Samples a process's VmRSS every 20 ms on its own thread and keeps the peak, which
/// VmHWM cannot give per phase (it only grows).
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(resources::rss_bytes(&[pid]), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { peak, stop }
    }

    /// The peak since the last call.
    pub fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_both_ports() {
        let (grpc, monitoring) =
            parse_ready("pilot ready grpc=127.0.0.1:4100 monitoring=127.0.0.1:4101\n").unwrap();
        assert_eq!(grpc.port(), 4100);
        assert_eq!(monitoring.port(), 4101);
        assert_eq!(parse_ready("pilot ready grpc=127.0.0.1:1"), None);
        assert_eq!(parse_ready(""), None);
    }

    #[test]
    fn status_fields_in_bytes() {
        let status = "Name:\tpilot\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_bytes(status, "VmRSS:"), Some(100 << 20));
        assert_eq!(status_bytes(status, "VmHWM:"), Some(200 << 20));
        assert_eq!(status_bytes(status, "VmSwap:"), None);
    }
}
