#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn requests_are_due_evenly_over_the_second() {
    assert_eq!(due(0, 1000), Duration::ZERO);
    assert_eq!(due(1, 1000), Duration::from_millis(1));
    assert_eq!(due(5000, 5000), Duration::from_secs(1));
    assert_eq!(due(3, 3), Duration::from_secs(1));
    // Rates that do not divide a second still land on whole nanoseconds without drift.
    assert_eq!(due(7_000_000, 7), Duration::from_secs(1_000_000));
}

#[test]
fn a_connection_takes_every_nth_request_of_the_schedule() {
    // Connection 2 of 16 at 1000 rps sends at 2 ms, 18 ms, 34 ms...
    let times: Vec<Duration> = (0..3).map(|round| due(round * 16 + 2, 1000)).collect();
    assert_eq!(times, [2, 18, 34].map(Duration::from_millis).to_vec());
}

#[test]
fn waiting_for_a_busy_connection_counts_from_the_scheduled_time() {
    let scheduled = Instant::now();
    let free = scheduled + Duration::from_millis(5);
    let sent = free + Duration::from_micros(10);
    assert_eq!(latency_origin(scheduled, free, sent), scheduled);
}

#[test]
fn a_late_timer_on_a_free_connection_counts_from_the_send() {
    let free = Instant::now();
    let scheduled = free + Duration::from_millis(5);
    let sent = scheduled + Duration::from_micros(900);
    assert_eq!(latency_origin(scheduled, free, sent), sent);
}

#[test]
fn percentiles_are_nearest_rank() {
    let samples: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&samples, 0.50), 50);
    assert_eq!(percentile(&samples, 0.90), 90);
    assert_eq!(percentile(&samples, 0.99), 99);
    assert_eq!(percentile(&samples, 0.999), 100);
    assert_eq!(percentile(&samples, 1.0), 100);
    assert_eq!(percentile(&[7], 0.5), 7);
    assert_eq!(percentile(&[], 0.5), 0);
}

#[test]
fn the_summary_line_round_trips() {
    let summary = RateSummary {
        requests: 20_000,
        errors: 1,
        total: 22_000,
        queued: 3,
        p50_us: 120,
        p90_us: 180,
        p99_us: 410,
        p999_us: 1_200,
        max_us: 5_000,
    };
    assert_eq!(summary.to_line().parse::<RateSummary>().unwrap(), summary);
}

#[test]
fn an_incomplete_or_garbled_summary_is_refused() {
    assert!("requests=1 errors=0".parse::<RateSummary>().is_err());
    assert!("requests=x errors=0".parse::<RateSummary>().is_err());
    assert!("hello".parse::<RateSummary>().is_err());
}

const H2LOAD_OUTPUT: &str = "\
starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 2s of warm-up time and 10s of main duration for measurements.
Warm-up started for thread #0.
progress: 10% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 12.00s, 41873.30 req/s, 46.98MB/s
requests: 418733 total, 418749 started, 418733 done, 418733 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 418733 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 469.79MB (492612345) total, 40.33MB (42289891) headers (space savings 0.00%), 418.73MB (439069633) data
                     min         max         mean         sd        +/- sd
time for request:      134us      4.12ms       376us       102us    78.43%
time for connect:      102us       231us       160us        40us    62.50%
time to 1st byte:     1.02ms      1.34ms      1.15ms       98us    62.50%
req/s           :    2555.03     2680.11     2617.04       35.45    68.75%
";

#[test]
fn h2load_summary_is_parsed() {
    let summary = parse_h2load(H2LOAD_OUTPUT).unwrap();
    assert_eq!(
        summary,
        H2loadSummary {
            rps: 41873.30,
            succeeded: 418_733,
            failed: 0,
            errored: 0,
            timeout: 0,
            status_2xx: 418_733,
            mean_us: 376.0,
        }
    );
}

#[test]
fn h2load_failures_are_counted() {
    let output = "finished in 3.00s, 10.00 req/s, 1KB/s\n\
                  requests: 40 total, 40 started, 40 done, 30 succeeded, 10 failed, 10 errored, 0 timeout\n\
                  status codes: 30 2xx, 0 3xx, 0 4xx, 0 5xx\n\
                  time for request:     1.50ms      2.01s      12.5ms       1ms    50.00%\n";
    let summary = parse_h2load(output).unwrap();
    assert_eq!(
        (summary.succeeded, summary.failed, summary.errored),
        (30, 10, 10)
    );
    assert_eq!(summary.mean_us, 12_500.0);
}

#[test]
fn h2load_without_a_summary_is_an_error() {
    let error = parse_h2load("connect to 127.0.0.1:1 failed\nNo protocol negotiated.\n");
    assert!(error.unwrap_err().to_string().contains("no summary"));
}

#[test]
fn h2load_runs_one_thread_and_one_stream_per_connection() {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let h1 = h2load_args(addr, Proto::H1, 16, 10, 2).join(" ");
    assert_eq!(
        h1,
        "-t 1 -c 16 -m 1 -D 10s --warm-up-time 2s --h1 http://127.0.0.1:8080/"
    );
    let h2 = h2load_args(addr, Proto::H2, 16, 10, 2).join(" ");
    assert!(!h2.contains("--h1"));
}
