#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn stat_fields_are_counted_after_the_command_name() {
    // A name with spaces and a parenthesis must not shift the fields.
    let line = "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 120 0 0 0 \
                731 266 0 0 20 0 1 0 12345 11223344 2048 18446744073709551615 \
                1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
    assert_eq!(
        parse_stat(line).unwrap(),
        ProcStat {
            ppid: 4241,
            cpu_ticks: 731 + 266
        }
    );
}

#[test]
fn a_truncated_stat_is_an_error() {
    assert!(parse_stat("1 (init) S 0 1").is_err());
    assert!(parse_stat("no parenthesis").is_err());
}

#[test]
fn vm_rss_is_read_in_bytes() {
    let status = "Name:\tmesh-proxy\nVmPeak:\t  80000 kB\nVmRSS:\t    6144 kB\nThreads:\t3\n";
    assert_eq!(parse_vm_rss(status), Some(6144 * 1024));
    // Kernel threads have no VmRSS line.
    assert_eq!(parse_vm_rss("Name:\tkthreadd\nThreads:\t1\n"), None);
}

#[test]
fn machine_busy_and_steal_come_from_the_cpu_line() {
    let stat = "cpu  100 5 50 9000 20 3 7 11 0 0\n\
                cpu0 50 2 25 4500 10 1 3 5 0 0\n\
                intr 12345\n";
    assert_eq!(
        parse_proc_stat(stat).unwrap(),
        CpuTimes {
            busy: 100 + 5 + 50 + 3 + 7,
            steal: 11
        }
    );
    assert!(parse_proc_stat("cpu0 1 2 3\n").is_err());
}

#[test]
fn descendants_follow_the_parent_links() {
    // 10 -> 11 -> 13, 10 -> 12; 20 is someone else's.
    let parents = [(11, 10), (12, 10), (13, 11), (20, 1), (10, 1)];
    let mut tree = descendants(10, &parents);
    tree.sort();
    assert_eq!(tree, [10, 11, 12, 13]);
    assert_eq!(descendants(99, &parents), [99]);
}
