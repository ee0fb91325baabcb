//! What a process (tree) costs, read from /proc: CPU seconds from `/proc/<pid>/stat`, resident
//! memory from `/proc/<pid>/status`, and the whole machine's busy time from `/proc/stat` so a
//! run can tell how much else was using the CPUs.

use std::fs;

use anyhow::{Context, bail};

/// utime + stime and the parent of one process, from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// hold spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> anyhow::Result<ProcStat> {
    let close = text.rfind(')').context("no `)` in /proc/<pid>/stat")?;
    // After the name: state(3) ppid(4) ... utime(14) stime(15).
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let raw = fields
            .get(n - 3)
            .with_context(|| format!("/proc/<pid>/stat has no field {n}"))?;
        raw.parse()
            .with_context(|| format!("/proc/<pid>/stat field {n} `{raw}` is not a number"))
    };
    Ok(ProcStat {
        ppid: u32::try_from(field(4)?)?,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// The `VmRSS:` line of `/proc/<pid>/status`, in bytes.
pub fn parse_vm_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// One CPU's (or, for `cpu`, all CPUs') times from `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq: time spent running something.
    pub busy: u64,
    /// Time the hypervisor gave this vCPU to someone else.
    pub steal: u64,
}

/// The aggregate `cpu ` line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> anyhow::Result<CpuTimes> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no `cpu` line in /proc/stat")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    if values.len() < 8 {
        bail!("short `cpu` line in /proc/stat: {line}");
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    Ok(CpuTimes {
        busy: values[0] + values[1] + values[2] + values[5] + values[6],
        steal: values[7],
    })
}

/// Clock ticks per second for the tick counts above (USER_HZ, 100 on Linux nearly always).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads the machine-wide CPU times now.
pub fn machine_cpu() -> anyhow::Result<CpuTimes> {
    parse_proc_stat(&fs::read_to_string("/proc/stat")?)
}

/// `pid` and every process below it (nginx's workers under its master), by scanning /proc.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(stat) = read_stat(child) {
                parents.push((child, stat.ppid));
            }
        }
    }
    descendants(pid, &parents)
}

/// `root` and its descendants, given (pid, ppid) pairs.
pub fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parents
                .iter()
                .filter(|(child, ppid)| *ppid == parent && !tree.contains(child))
                .map(|(child, _)| *child)
                .collect::<Vec<_>>(),
        );
        next += 1;
    }
    tree
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).ok()
}

/// CPU ticks used so far by these processes (those that have exited count nothing).
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| read_stat(*pid))
        .map(|s| s.cpu_ticks)
        .sum()
}

/// Resident memory of these processes now, in bytes.
pub fn rss_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|text| parse_vm_rss(&text))
        .sum()
}

/// The number of threads of one process (to show how each server ran).
pub fn threads(pid: u32) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
