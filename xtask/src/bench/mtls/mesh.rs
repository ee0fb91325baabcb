//! The mesh under test, as e2e/tests/support/mesh.rs builds it by hand: citadel (one for the
//! run), and for each phase a pilot on its own config directory and two sidecars, a caller
//! (`productpage`) whose outbound listener sends to the `reviews` endpoint on 127.0.0.2, and
//! a callee (`reviews`) whose inbound listener there forwards to the echo app. The two
//! variants differ only in TLS between the sidecars.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::policy::{self, Security};
use crate::bench::targets::{ChildGuard, free_port, spawn_pinned};

/// The Host the load sends: the caller routes by it.
pub const SERVICE_HOST: &str = "reviews:9080";

/// How long a process may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path a request takes to the echo app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// Straight to the app: the baseline.
    Direct,
    /// Caller and callee sidecars, plaintext between them.
    Plaintext,
    /// Caller and callee sidecars, mutual TLS between them.
    Mtls,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Direct, Variant::Plaintext, Variant::Mtls];

    pub fn label(self) -> &'static str {
        match self {
            Variant::Direct => "direct",
            Variant::Plaintext => "sidecars, plaintext",
            Variant::Mtls => "sidecars, mTLS",
        }
    }
}

/// The config directory's one file: the reviews service and its endpoint on 127.0.0.2
/// (labelled `tlsMode: istio`, so the caller originates mTLS unless told not to), the
/// callee's inbound listener in front of `app`, the namespace's PeerAuthentication and,
/// where needed, a DestinationRule: `tls.mode: DISABLE` for plaintext, and
/// `maxRequestsPerConnection: 1` when every request must open a new connection.
pub fn mesh_config(variant: Variant, fresh: bool, inbound_port: u16, app: SocketAddr) -> String {
    let mode = match variant {
        Variant::Mtls => "STRICT",
        _ => "DISABLE",
    };
    let mut policy = Vec::new();
    if variant == Variant::Plaintext {
        policy.push("tls: {mode: DISABLE}");
    }
    if fresh {
        policy.push("connectionPool: {http: {maxRequestsPerConnection: 1}}");
    }
    let rule = if policy.is_empty() {
        String::new()
    } else {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{name: reviews, namespace: shop}}\n\
             spec:\n  host: reviews.shop.svc.cluster.local\n  trafficPolicy: {{{}}}\n",
            policy.join(", ")
        )
    };
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: shop}}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-1, namespace: shop}}
spec:
  address: 127.0.0.2
  ports: {{http: {inbound_port}}}
  labels: {{app: reviews, security.istio.io/tlsMode: istio}}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {inbound_port}, name: http, protocol: HTTP}}
    bind: 127.0.0.2
    defaultEndpoint: {app}
    captureMode: NONE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: shop}}
spec: {{mtls: {{mode: {mode}}}}}
{rule}"#
    )
}

/// Where the programs are and which CPUs they run on.
pub struct Programs<'a> {
    pub citadel: &'a Path,
    pub pilot: &'a Path,
    pub mesh_proxy: &'a Path,
    /// Control plane: idle while the load runs, beside the load generator.
    pub control_cpu: u32,
    /// The sidecars, beside the app.
    pub server_cpu: u32,
}

/// The CA for the whole run, with a bootstrap token for each sidecar.
pub struct Citadel {
    _process: ChildGuard,
    pub grpc: SocketAddr,
    pub bundle: PathBuf,
    dir: PathBuf,
}

impl Citadel {
    pub fn start(programs: &Programs<'_>, dir: &Path) -> anyhow::Result<Self> {
        let dir = dir.join("citadel");
        std::fs::create_dir_all(&dir)?;
        let tokens = dir.join("tokens");
        std::fs::write(
            &tokens,
            "productpage-token shop productpage\nreviews-token shop reviews\n",
        )?;
        let ca_dir = dir.join("ca");
        let grpc = loopback(free_port()?);
        let args = [
            "--ca-dir".to_owned(),
            ca_dir.display().to_string(),
            "--token-file".to_owned(),
            tokens.display().to_string(),
            "--addr".to_owned(),
            grpc.to_string(),
            "--monitoring-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--log".to_owned(),
            "warn".to_owned(),
        ];
        let mut process = spawn_pinned(
            &dir,
            "citadel",
            programs.control_cpu,
            programs.citadel,
            &args,
            Stdio::null(),
        )?;
        let bundle = ca_dir.join("trust-bundle.pem");
        wait_until(
            "citadel's signing port and trust bundle",
            &mut [&mut process],
            || Ok(bundle.is_file() && TcpStream::connect(grpc).is_ok()),
        )?;
        Ok(Citadel {
            _process: process,
            grpc,
            bundle,
            dir,
        })
    }

    /// A file holding the bootstrap token of service account `account`.
    fn token_file(&self, account: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("token-{account}"));
        std::fs::write(&path, format!("{account}-token"))?;
        Ok(path)
    }
}

/// One sidecar's process and the ports the bench reads.
pub struct Sidecar {
    pub process: ChildGuard,
    pub metrics: SocketAddr,
    pub outbound: SocketAddr,
}

/// pilot and the two sidecars of one phase; dropped, every process stops.
pub struct Sidecars {
    pub caller: Sidecar,
    pub callee: Sidecar,
    _pilot: ChildGuard,
}

impl Sidecars {
    /// Starts pilot on `variant`'s config and both sidecars, and waits until a request goes
    /// through them to the app.
    pub fn start(
        programs: &Programs<'_>,
        citadel: &Citadel,
        dir: &Path,
        variant: Variant,
        fresh: bool,
        app: SocketAddr,
    ) -> anyhow::Result<Self> {
        let inbound = SocketAddr::from(([127, 0, 0, 2], free_port_on([127, 0, 0, 2])?));
        let config = dir.join("pilot-config");
        // A fresh directory per phase: pilot starts on exactly this variant's config.
        let _ = std::fs::remove_dir_all(&config);
        std::fs::create_dir_all(&config)?;
        std::fs::write(
            config.join("mesh.yaml"),
            mesh_config(variant, fresh, inbound.port(), app),
        )?;
        let grpc = loopback(free_port()?);
        let args = [
            "--config-dir".to_owned(),
            config.display().to_string(),
            "--grpc-addr".to_owned(),
            grpc.to_string(),
            "--monitoring-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--log".to_owned(),
            "warn".to_owned(),
        ];
        let mut pilot = spawn_pinned(
            dir,
            "pilot",
            programs.control_cpu,
            programs.pilot,
            &args,
            Stdio::null(),
        )?;
        wait_until("pilot's discovery port", &mut [&mut pilot], || {
            Ok(TcpStream::connect(grpc).is_ok())
        })?;
        let start = |account: &str, labels: &str| {
            start_sidecar(programs, citadel, dir, grpc, account, labels)
        };
        let mut callee = start("reviews", "app=reviews")?;
        let mut caller = start("productpage", "app=productpage")?;
        let outbound = caller.outbound;
        wait_until(
            "a request through both sidecars",
            &mut [&mut pilot, &mut caller.process, &mut callee.process],
            || Ok(get(outbound, SERVICE_HOST, "/")?.0 == 200),
        )?;
        Ok(Sidecars {
            caller,
            callee,
            _pilot: pilot,
        })
    }

    pub fn pids(&self) -> [u32; 2] {
        [self.caller.process.pid(), self.callee.process.pid()]
    }

    /// How each sidecar labelled the requests it has seen so far.
    pub fn security(&self) -> anyhow::Result<Security> {
        let scrape = |sidecar: &Sidecar| -> anyhow::Result<policy::Counts> {
            let (status, body) = get(sidecar.metrics, "metrics", "/stats/prometheus")?;
            if status != 200 {
                bail!("{} answered {status} on /stats/prometheus", sidecar.metrics);
            }
            Ok(policy::security_counts(&body))
        };
        let snmp = std::fs::read_to_string("/proc/net/snmp").context("reading /proc/net/snmp")?;
        Ok(Security {
            caller: scrape(&self.caller)?,
            callee: scrape(&self.callee)?,
            connections: policy::tcp_active_opens(&snmp).context("no Tcp ActiveOpens")?,
        })
    }
}

fn start_sidecar(
    programs: &Programs<'_>,
    citadel: &Citadel,
    dir: &Path,
    pilot: SocketAddr,
    account: &str,
    labels: &str,
) -> anyhow::Result<Sidecar> {
    let metrics = loopback(free_port()?);
    let outbound = loopback(free_port()?);
    let flags = [
        ("--workload", account.to_owned()),
        ("--namespace", "shop".to_owned()),
        ("--service-account", account.to_owned()),
        ("--labels", labels.to_owned()),
        ("--pilot", pilot.to_string()),
        ("--outbound-addr", outbound.to_string()),
        ("--ca-addr", citadel.grpc.to_string()),
        ("--trust-bundle", citadel.bundle.display().to_string()),
        (
            "--ca-token-file",
            citadel.token_file(account)?.display().to_string(),
        ),
        ("--admin-addr", "127.0.0.1:0".to_owned()),
        ("--health-addr", "127.0.0.1:0".to_owned()),
        ("--metrics-addr", metrics.to_string()),
        ("--log", "warn".to_owned()),
    ];
    let args: Vec<String> = flags
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
    let process = spawn_pinned(
        dir,
        account,
        programs.server_cpu,
        programs.mesh_proxy,
        &args,
        Stdio::null(),
    )?;
    Ok(Sidecar {
        process,
        metrics,
        outbound,
    })
}

/// Polls `ready` every 50 ms until it holds; fails when a process exits (with its log's
/// tail) or after [`START_TIMEOUT`] (with the last error seen).
fn wait_until(
    what: &str,
    processes: &mut [&mut ChildGuard],
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("not yet");
    while Instant::now() < deadline {
        for process in processes.iter_mut() {
            if let Some(status) = process.try_wait()? {
                bail!(
                    "waiting for {what}: a process exited ({status}):\n{}",
                    process.log_tail()
                );
            }
        }
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => last = format!("{error:#}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("no {what} within {START_TIMEOUT:?}; last: {last}")
}

/// `GET path` with `Host: host` as HTTP/1.0, so that the answer is never chunked: its
/// status and body.
fn get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status line from {addr}: {head:?}"))?;
    Ok((status, body.to_owned()))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn free_port_on(ip: [u8; 4]) -> anyhow::Result<u16> {
    let ip = std::net::Ipv4Addr::from(ip);
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}
