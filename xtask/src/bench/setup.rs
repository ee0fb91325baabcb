//! Before the first phase: the CPUs, the tools (installed if missing), our release builds, a
//! temp dir, and the facts about the run that go into the doc.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::report::RunInfo;
use super::targets::{Programs, TargetKind};

/// CPUs online (not just those this process may use).
pub fn online_cpus() -> anyhow::Result<u32> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").context("reading /proc/cpuinfo")?;
    Ok(count_processors(&cpuinfo))
}

pub fn count_processors(cpuinfo: &str) -> u32 {
    let count = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor") && l.contains(':'))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The first `model name` in /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// Moves this process (every thread) onto `cpu`, next to the load generator, off the
/// servers' CPU.
pub fn pin_self(cpu: u32) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset could not pin the bench to CPU {cpu}");
    }
    Ok(())
}

/// The programs the bench needs besides ours.
pub struct Tools {
    pub nginx: PathBuf,
    pub haproxy: PathBuf,
    pub h2load: PathBuf,
}

impl Tools {
    pub fn find_or_install(targets: &[TargetKind]) -> anyhow::Result<Self> {
        require("taskset", &["util-linux"])?;
        let h2load = require("h2load", &["nghttp2-client"])?;
        let nginx = if targets.contains(&TargetKind::Nginx) {
            require("nginx", &["nginx-light", "nginx"])?
        } else {
            PathBuf::new()
        };
        let haproxy = if targets.contains(&TargetKind::Haproxy) {
            require("haproxy", &["haproxy"])?
        } else {
            PathBuf::new()
        };
        Ok(Tools {
            nginx,
            haproxy,
            h2load,
        })
    }

    pub fn programs(&self, bins: &Binaries) -> Programs {
        Programs {
            mesh_proxy: bins.mesh_proxy.clone(),
            nginx: self.nginx.clone(),
            haproxy: self.haproxy.clone(),
        }
    }
}

/// The program on PATH (or in /usr/sbin, where Debian puts servers), installed with
/// apt-get from the first package that works if missing.
fn require(program: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    if let Some(path) = find_program(program) {
        return Ok(path);
    }
    let mut updated = false;
    for package in packages {
        loop {
            eprintln!("bench: {program} not found; apt-get install {package}");
            let installed = Command::new("apt-get")
                .args(["install", "-y", "-q", package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if installed && let Some(path) = find_program(program) {
                return Ok(path);
            }
            if updated {
                break;
            }
            // A fresh machine may never have fetched the package lists.
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
            updated = true;
        }
    }
    bail!(
        "{program} is missing and `apt-get install {}` failed; install it and retry",
        packages.join(" or ")
    )
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Our release binaries.
pub struct Binaries {
    pub echo: PathBuf,
    pub mesh_proxy: PathBuf,
    /// The load generator (`xtask bench load`).
    pub xtask: PathBuf,
}

/// Builds mesh-proxy and mesh-echo in release, and this xtask too when it runs as a debug
/// build: the load generator must not be the slow part.
pub fn build(root: &Path) -> anyhow::Result<Binaries> {
    cargo(
        root,
        &["build", "--release", "-p", "mesh-proxy", "-p", "mesh-echo"],
    )?;
    let release = release_dir(root);
    let xtask = if cfg!(debug_assertions) {
        cargo(
            root,
            &["build", "--release", "-p", "xtask", "--bin", "xtask"],
        )?;
        release.join("xtask")
    } else {
        std::env::current_exe()?
    };
    Ok(Binaries {
        echo: release.join("mesh-echo"),
        mesh_proxy: release.join("mesh-proxy"),
        xtask,
    })
}

/// Runs this same xtask command again as a release build, for benches whose own work must
/// not be the slow part.
pub(crate) fn rerun_in_release(root: &Path) -> anyhow::Result<()> {
    cargo(
        root,
        &["build", "--release", "-p", "xtask", "--bin", "xtask"],
    )?;
    let xtask = release_dir(root).join("xtask");
    let status = Command::new(&xtask)
        .args(std::env::args_os().skip(1))
        .status()
        .with_context(|| format!("running {}", xtask.display()))?;
    if !status.success() {
        bail!("the release bench failed ({status})");
    }
    Ok(())
}

/// Where `cargo build --release` puts the binaries.
pub(crate) fn release_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release")
}

/// Runs cargo (the one running xtask) in the workspace, echoing the command.
pub(crate) fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// A directory for configs and logs, removed on drop unless kept.
pub struct TempDir {
    pub path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("mesh-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep: false })
    }

    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The command, the date, the machine and the versions.
pub fn run_info(method: &[String], tools: &Tools, root: &Path) -> RunInfo {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut machine = vec![
        (
            "CPUs (nproc)".to_owned(),
            count_processors(&cpuinfo).to_string(),
        ),
        (
            "CPU model".to_owned(),
            cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_owned()),
        ),
    ];
    if cpuinfo.contains(" hypervisor") {
        machine.push(("virtualised".to_owned(), "yes (hypervisor flag)".to_owned()));
    }
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(total) = mem.lines().find(|l| l.starts_with("MemTotal:")) {
        machine.push((
            "memory".to_owned(),
            total["MemTotal:".len()..].trim().to_owned(),
        ));
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    machine.push(("kernel".to_owned(), kernel.trim().to_owned()));
    let mut versions = vec![("mesh".to_owned(), mesh_revision(root))];
    let tool_versions = [
        ("nginx", &tools.nginx, "-v"),
        ("HAProxy", &tools.haproxy, "-v"),
        ("h2load", &tools.h2load, "--version"),
    ];
    for (name, program, flag) in tool_versions {
        if !program.as_os_str().is_empty() {
            versions.push((
                name.to_owned(),
                first_output_line(program.as_os_str(), &[flag]),
            ));
        }
    }
    versions.push((
        "rustc".to_owned(),
        first_output_line("rustc".as_ref(), &["-V"]),
    ));
    RunInfo {
        command: format!("cargo xtask {}", args.join(" ")),
        date: first_output_line("date".as_ref(), &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine,
        versions,
        method: method.to_vec(),
    }
}

/// `git rev-parse` of the workspace, noting uncommitted changes in what the bench builds.
fn mesh_revision(root: &Path) -> String {
    let build = ["proxy", "core", "examples/echo", "Cargo.toml", "Cargo.lock"];
    revision(root, &build, "the proxy's build")
}

/// `git rev-parse` of the workspace, noting uncommitted changes under `paths` (what a
/// bench's binaries are built from, called `what` in the note).
pub(crate) fn revision(root: &Path, paths: &[&str], what: &str) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
            .unwrap_or_default()
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]);
    let mut status_args = vec!["status", "--porcelain", "--"];
    status_args.extend_from_slice(paths);
    let status = git(&status_args);
    let dirty: Vec<&str> = status.lines().filter_map(|l| l.get(3..)).collect();
    match dirty.len() {
        0 => rev,
        n if n <= 5 => format!("{rev} + uncommitted changes in {}", dirty.join(", ")),
        n => format!("{rev} + uncommitted changes in {n} files of {what}"),
    }
}

/// The first line a program prints, stdout or else stderr (nginx -v uses stderr).
fn first_output_line(program: &std::ffi::OsStr, args: &[&str]) -> String {
    let Ok(output) = Command::new(program).args(args).output() else {
        return "unknown".to_owned();
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\
                           flags\t\t: fpu hypervisor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n";

    #[test]
    fn cpuinfo_gives_the_count_and_the_model() {
        assert_eq!(count_processors(CPUINFO), 2);
        assert_eq!(cpu_model(CPUINFO).as_deref(), Some("AMD EPYC"));
        assert_eq!(cpu_model(""), None);
    }
}
