//! Stopping process groups: with SIGTERM, with SIGKILL when TERM is ignored, and with
//! whatever a process started itself.

#![allow(clippy::unwrap_used)]

use super::*;

fn start(dir: &Path, name: &str, script: &str) -> (Child, Process) {
    spawn(Spec {
        name,
        program: OsStr::new("sh"),
        args: vec!["-c".into(), script.into()],
        env: BTreeMap::from([("MARK".to_owned(), name.to_owned())]),
        cwd: dir,
        log: &dir.join(format!("{name}.log")),
    })
    .unwrap()
}

/// Live members of `pid`'s group, as `ps` shows them (not through the code under test).
fn group(pgid: u32) -> usize {
    let output = Command::new("ps")
        .args(["-A", "-o", "pgid=,stat="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(&pgid.to_string()) && !f.next().unwrap_or("Z").starts_with('Z')
        })
        .count()
}

#[test]
fn a_group_and_everything_it_started_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, process) = start(dir.path(), "forks", "sleep 30 & sleep 30 & echo up; wait");
    assert_eq!(process.pid, child.id());
    assert!(!process.started.is_empty(), "ps gave its start time");
    let deadline = Instant::now() + Duration::from_secs(10);
    while group(process.pid) < 3 {
        assert!(Instant::now() < deadline, "the children never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ours(std::slice::from_ref(&process)).len(), 1);

    let stopped = stop(
        std::slice::from_ref(&process),
        Duration::from_secs(10),
        || {
            let _ = child.try_wait();
        },
    );
    assert_eq!(stopped.groups, 1);
    assert_eq!(stopped.killed, 0, "TERM was enough");
    assert!(stopped.left.is_empty(), "{:?}", stopped.left);
    assert_eq!(group(process.pid), 0, "no orphans");
    assert!(child.try_wait().unwrap().is_some());
    assert!(
        tail(&process.log, 5).contains("up"),
        "output goes to the log"
    );
}

#[test]
fn a_group_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, process) = start(dir.path(), "stubborn", "trap '' TERM; echo up; sleep 30");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tail(&process.log, 1).contains("up") {
        assert!(Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = stop(
        std::slice::from_ref(&process),
        Duration::from_millis(300),
        || {
            let _ = child.try_wait();
        },
    );
    assert_eq!(stopped.killed, 1);
    assert!(stopped.left.is_empty(), "{:?}", stopped.left);
    assert_eq!(group(process.pid), 0);
}

#[test]
fn a_pid_that_is_not_ours_is_never_signalled() {
    // Our own pid does not lead its own group here, and a start time that differs marks a
    // reused pid: neither is "ours".
    let me = Process {
        name: "test".into(),
        pid: std::process::id(),
        started: String::new(),
        log: "x.log".into(),
    };
    let leads_group = table()
        .iter()
        .any(|row| row.pid == me.pid && row.pgid == me.pid);
    assert_eq!(
        ours(std::slice::from_ref(&me)).len(),
        usize::from(leads_group)
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut process) = start(dir.path(), "other", "sleep 30");
    process.started = "Thu Jan  1 00:00:00 1970".into();
    assert!(ours(std::slice::from_ref(&process)).is_empty());
    let stopped = stop(
        std::slice::from_ref(&process),
        Duration::from_millis(100),
        || {},
    );
    assert_eq!(stopped.groups, 0);
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn tail_keeps_the_last_lines_and_a_missing_log_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, "1\n2\n3\n").unwrap();
    assert_eq!(tail(&log, 2), "2\n3");
    assert_eq!(tail(&log, 10), "1\n2\n3");
    assert_eq!(tail(&dir.path().join("none.log"), 3), "");
}
