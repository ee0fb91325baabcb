//! Load: an open-loop, fixed-rate generator of our own (for latency), and h2load driven
//! closed-loop (for the maximum rate), with parsers for what each prints.
//!
//! Why our own generator: h2load's `--rps` measures from the moment a request is actually
//! written, so a stalled server delays the requests behind it and hides the stall
//! (coordinated omission), and it prints no percentiles. wrk is closed-loop only. This
//! generator schedules every request at a fixed time and, when a request had to wait for its
//! connection, counts its latency from that scheduled time, as wrk2 does.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The protocol between the load generator and the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// HTTP/1.1, one request in flight per connection.
    H1,
    /// HTTP/2 prior knowledge (h2c).
    H2,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1",
            Proto::H2 => "HTTP/2",
        }
    }
}

/// `cargo xtask bench load`: what `bench proxy` runs, pinned, for each fixed-rate phase.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// The target's address.
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long, value_enum)]
    pub proto: Proto,
    /// Requests per second, over all connections.
    #[arg(long)]
    pub rate: u32,
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Seconds at the same rate before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// A response with another body size counts as an error.
    #[arg(long)]
    pub expect_bytes: Option<usize>,
    /// The Host (HTTP/2: `:authority`) to send instead of `--addr`: a proxy that routes by
    /// host (a sidecar's outbound listener) needs a service's name.
    #[arg(long)]
    pub host: Option<String>,
}

/// When the `k`th request (from 0, over all connections) is due, after the start.
pub fn due(k: u64, rate: u32) -> Duration {
    Duration::from_nanos(k.saturating_mul(1_000_000_000) / u64::from(rate.max(1)))
}

/// Where a request's latency is counted from. If its connection was still busy at the
/// scheduled time, the wait is the server's doing and counts (coordinated omission). If the
/// connection was free, the request was late only because the timer woke late (tokio's
/// timer has 1 ms granularity), which is the generator's doing: count from the actual send.
pub fn latency_origin(scheduled: Instant, connection_free: Instant, sent: Instant) -> Instant {
    if connection_free > scheduled {
        scheduled
    } else {
        sent
    }
}

/// The percentile `q` (0..=1) of sorted samples, nearest-rank.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one fixed-rate phase measured; printed as one `key=value` line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateSummary {
    /// Measured (after warm-up) successful requests.
    pub requests: u64,
    /// Measured failures: transport errors, non-200 answers, wrong body sizes.
    pub errors: u64,
    /// Requests sent, warm-up included: the denominator for CPU per request.
    pub total: u64,
    /// Measured requests that found their connection still busy at their scheduled time.
    pub queued: u64,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    pub max_us: u32,
}

impl RateSummary {
    pub fn to_line(&self) -> String {
        format!(
            "requests={} errors={} total={} queued={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
            self.requests,
            self.errors,
            self.total,
            self.queued,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us
        )
    }
}

impl FromStr for RateSummary {
    type Err = anyhow::Error;

    fn from_str(line: &str) -> anyhow::Result<Self> {
        let mut summary = RateSummary::default();
        let mut seen = 0;
        for pair in line.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("`{pair}` is not key=value"))?;
            let number = || -> anyhow::Result<u64> {
                value
                    .parse()
                    .with_context(|| format!("{key}={value} is not a number"))
            };
            let micros = || -> anyhow::Result<u32> { Ok(u32::try_from(number()?)?) };
            match key {
                "requests" => summary.requests = number()?,
                "errors" => summary.errors = number()?,
                "total" => summary.total = number()?,
                "queued" => summary.queued = number()?,
                "p50_us" => summary.p50_us = micros()?,
                "p90_us" => summary.p90_us = micros()?,
                "p99_us" => summary.p99_us = micros()?,
                "p999_us" => summary.p999_us = micros()?,
                "max_us" => summary.max_us = micros()?,
                _ => continue,
            }
            seen += 1;
        }
        if seen < 9 {
            bail!("incomplete load summary: `{line}`");
        }
        Ok(summary)
    }
}

/// Runs one fixed-rate phase on a single-threaded runtime (the caller pins the process).
pub fn run_fixed_rate(args: &LoadArgs) -> anyhow::Result<RateSummary> {
    if args.rate == 0 || args.connections == 0 {
        bail!("--rate and --connections must be positive");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(fixed_rate(args.clone()))
}

/// One connection's share of the schedule and what it measured.
#[derive(Default)]
struct ConnResult {
    samples: Vec<u32>,
    errors: u64,
    total: u64,
    queued: u64,
}

struct Plan {
    args: LoadArgs,
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

async fn fixed_rate(args: LoadArgs) -> anyhow::Result<RateSummary> {
    // Connect everything first so that connection setup is not in the schedule.
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        senders.push(Sender::connect(args.addr, args.proto).await?);
    }
    let start = Instant::now() + Duration::from_millis(10);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = std::sync::Arc::new(Plan {
        end: measure_from + Duration::from_secs_f64(args.seconds),
        args,
        start,
        measure_from,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (index, sender) in senders.into_iter().enumerate() {
        tasks.spawn(run_connection(plan.clone(), index as u64, sender));
    }
    let mut samples = Vec::new();
    let mut summary = RateSummary::default();
    while let Some(joined) = tasks.join_next().await {
        let result = joined?;
        summary.errors += result.errors;
        summary.total += result.total;
        summary.queued += result.queued;
        samples.extend(result.samples);
    }
    samples.sort_unstable();
    summary.requests = samples.len() as u64;
    summary.p50_us = percentile(&samples, 0.50);
    summary.p90_us = percentile(&samples, 0.90);
    summary.p99_us = percentile(&samples, 0.99);
    summary.p999_us = percentile(&samples, 0.999);
    summary.max_us = samples.last().copied().unwrap_or(0);
    Ok(summary)
}

async fn run_connection(plan: std::sync::Arc<Plan>, index: u64, sender: Sender) -> ConnResult {
    let args = &plan.args;
    let connections = u64::from(args.connections);
    let authority = args.host.clone().unwrap_or_else(|| args.addr.to_string());
    let mut sender = Some(sender);
    let mut result = ConnResult::default();
    let mut connection_free = plan.start;
    for round in 0.. {
        let scheduled = plan.start + due(round * connections + index, args.rate);
        if scheduled >= plan.end {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let sent = Instant::now();
        let measured = scheduled >= plan.measure_from;
        let origin = latency_origin(scheduled, connection_free, sent);
        let queued = connection_free > scheduled;
        result.total += 1;
        let outcome = match sender.as_mut() {
            Some(s) => s.get(&authority).await,
            None => Err(anyhow::anyhow!("not connected")),
        };
        let done = Instant::now();
        connection_free = done;
        let ok = matches!(outcome, Ok(bytes) if args.expect_bytes.is_none_or(|e| e == bytes));
        if measured && ok {
            let micros = done.duration_since(origin).as_micros();
            result
                .samples
                .push(u32::try_from(micros).unwrap_or(u32::MAX));
            result.queued += u64::from(queued);
        } else if measured {
            result.errors += 1;
        }
        if outcome.is_err() {
            // A broken connection is replaced; if that fails too, the next turn counts
            // another error rather than stopping the schedule.
            sender = Sender::connect(args.addr, args.proto).await.ok();
            connection_free = Instant::now();
        }
    }
    result
}

/// One client connection, either protocol, one request at a time.
enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    async fn connect(addr: SocketAddr, proto: Proto) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        Ok(match proto {
            Proto::H1 => {
                let (sender, conn) = http1::handshake(io).await?;
                tokio::spawn(conn);
                Sender::H1(sender)
            }
            Proto::H2 => {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        })
    }

    /// GET / and read the whole body; the body size on a 200.
    async fn get(&mut self, authority: &str) -> anyhow::Result<usize> {
        let response = match self {
            Sender::H1(sender) => {
                let request = Request::get("/")
                    .header(header::HOST, authority)
                    .body(Empty::new())?;
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                let request = Request::get(format!("http://{authority}/")).body(Empty::new())?;
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let status = response.status();
        let bytes = read_body(response.into_body()).await?;
        if status != StatusCode::OK {
            bail!("status {status}");
        }
        Ok(bytes)
    }
}

async fn read_body(mut body: Incoming) -> anyhow::Result<usize> {
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len();
        }
    }
    Ok(bytes)
}

/// What h2load printed for one closed-loop run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct H2loadSummary {
    pub rps: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    pub status_2xx: u64,
    pub mean_us: f64,
}

/// Parses h2load's summary, e.g. `finished in 10.00s, 51234.50 req/s, 58.08MB/s` and
/// `requests: 512345 total, 512361 started, 512345 done, 512345 succeeded, 0 failed, ...`.
pub fn parse_h2load(output: &str) -> anyhow::Result<H2loadSummary> {
    let mut summary = H2loadSummary::default();
    let mut found_rate = false;
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            let rate = rest
                .split(", ")
                .find_map(|part| part.strip_suffix(" req/s"))
                .context("h2load: no req/s on the `finished in` line")?;
            summary.rps = rate.trim().parse()?;
            found_rate = true;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            for part in rest.split(", ") {
                let (count, what) = part.split_once(' ').unwrap_or((part, ""));
                let count: u64 = count.parse().unwrap_or(0);
                match what {
                    "succeeded" => summary.succeeded = count,
                    "failed" => summary.failed = count,
                    "errored" => summary.errored = count,
                    "timeout" => summary.timeout = count,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            let first = rest.split(", ").next().unwrap_or("");
            if let Some(count) = first.strip_suffix(" 2xx") {
                summary.status_2xx = count.trim().parse().unwrap_or(0);
            }
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min, max, mean, sd, +/- sd
            if let Some(mean) = rest.split_whitespace().nth(2) {
                summary.mean_us = parse_h2load_duration(mean).unwrap_or(0.0);
            }
        }
    }
    if !found_rate {
        bail!("h2load printed no summary:\n{output}");
    }
    Ok(summary)
}

/// h2load's durations: `734us`, `1.23ms`, `2.01s`; in microseconds.
fn parse_h2load_duration(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// h2load's arguments for a closed-loop run: one thread, `connections` connections, one
/// request in flight on each (the same concurrency for both protocols).
pub fn h2load_args(
    addr: SocketAddr,
    proto: Proto,
    connections: u32,
    seconds: u32,
    warmup: u32,
) -> Vec<String> {
    let mut args = vec![
        "-t".to_owned(),
        "1".to_owned(),
        "-c".to_owned(),
        connections.to_string(),
        "-m".to_owned(),
        "1".to_owned(),
        "-D".to_owned(),
        format!("{seconds}s"),
        "--warm-up-time".to_owned(),
        format!("{warmup}s"),
    ];
    if proto == Proto::H1 {
        args.push("--h1".to_owned());
    }
    args.push(format!("http://{addr}/"));
    args
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
