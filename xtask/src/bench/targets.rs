//! The servers under test: the upstream (mesh-echo) and, in front of it, mesh-proxy, nginx
//! and HAProxy, each started pinned to the server CPU with its config in the run's temp dir,
//! and each stopped by a drop guard however the run ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::resources;

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum TargetKind {
    /// Straight to the upstream: the baseline.
    Direct,
    /// mesh-proxy, release build.
    Mesh,
    /// nginx as a reverse proxy, one worker.
    Nginx,
    /// HAProxy, one thread.
    Haproxy,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Direct,
        TargetKind::Mesh,
        TargetKind::Nginx,
        TargetKind::Haproxy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Direct => "direct",
            TargetKind::Mesh => "mesh-proxy",
            TargetKind::Nginx => "nginx",
            TargetKind::Haproxy => "haproxy",
        }
    }
}

/// A child process that is stopped when dropped: SIGTERM to it and its descendants, then
/// SIGKILL to whatever is left after a grace period.
pub struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process and its children (nginx's master and worker).
    pub fn tree(&self) -> Vec<u32> {
        resources::process_tree(self.pid())
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Everything the process prints on stdout, read on a thread so the pipe never fills.
    pub fn take_output(&mut self) -> anyhow::Result<std::thread::JoinHandle<String>> {
        let mut stdout = self.child.stdout.take().context("stdout was not piped")?;
        Ok(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        }))
    }

    /// The last lines of the process's stderr.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        tail.join("\n")
    }

    /// Fails with the tail of the process's log if it has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let tree = self.tree();
        signal(&tree, "TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Children re-parented to init when their parent died still have their pids.
        let left: Vec<u32> = tree
            .into_iter()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        signal(&left, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pids: &[u32], name: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Starts `program args` pinned to `cpu` with `taskset` (which execs it: the child's pid is
/// the program's), stderr to `<dir>/<name>.log`.
pub fn spawn_pinned(
    dir: &Path,
    name: &str,
    cpu: u32,
    program: &Path,
    args: &[String],
    stdout: Stdio,
) -> anyhow::Result<ChildGuard> {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log)?;
    let child = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {} under taskset", program.display()))?;
    Ok(ChildGuard {
        name: name.to_owned(),
        child,
        log,
    })
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The upstream every target forwards to: mesh-echo answering 1 KB bodies.
pub struct Upstream {
    pub addr: SocketAddr,
    pub process: ChildGuard,
}

pub fn start_upstream(
    echo: &Path,
    dir: &Path,
    cpu: u32,
    body_size: u64,
) -> anyhow::Result<Upstream> {
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--name",
        "bench",
        "--body-size",
        &body_size.to_string(),
    ]
    .map(str::to_owned);
    let mut process = spawn_pinned(dir, "mesh-echo", cpu, echo, &args, Stdio::piped())?;
    let stdout = process.child.stdout.take().context("mesh-echo stdout")?;
    // "mesh-echo bench v1 listening on 127.0.0.1:41234"
    let line = first_line(stdout, START_TIMEOUT);
    let addr = line
        .as_deref()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|a| a.trim().parse().ok());
    let Some(addr) = addr else {
        process.check_running()?;
        bail!("mesh-echo did not print its address (got {line:?})");
    };
    wait_http_ok(addr, &mut process)?;
    Ok(Upstream { addr, process })
}

fn first_line(stdout: impl Read + Send + 'static, timeout: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(timeout).ok().filter(|l| !l.is_empty())
}

/// A target: where the load goes for each protocol, and the process to account to it.
pub struct Target {
    pub kind: TargetKind,
    pub h1: SocketAddr,
    pub h2: SocketAddr,
    /// None for direct: the upstream's cost is not a proxy's.
    pub process: Option<ChildGuard>,
    /// Where Prometheus would scrape the target (mesh-proxy's `/stats/prometheus`).
    pub metrics: Option<SocketAddr>,
}

impl Target {
    pub fn addr(&self, proto: super::load::Proto) -> SocketAddr {
        match proto {
            super::load::Proto::H1 => self.h1,
            super::load::Proto::H2 => self.h2,
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.process
            .as_ref()
            .map(ChildGuard::tree)
            .unwrap_or_default()
    }
}

/// Where the servers' programs are.
pub struct Programs {
    pub mesh_proxy: PathBuf,
    pub nginx: PathBuf,
    pub haproxy: PathBuf,
}

pub fn start_target(
    kind: TargetKind,
    programs: &Programs,
    dir: &Path,
    cpu: u32,
    upstream: SocketAddr,
) -> anyhow::Result<Target> {
    let mut metrics = None;
    let (h1, h2, mut process) = match kind {
        TargetKind::Direct => return Ok(direct(upstream)),
        TargetKind::Mesh => {
            let port = free_port()?;
            let snapshot = dir.join("snapshot.yaml");
            std::fs::write(&snapshot, mesh_snapshot(port, upstream))?;
            let args = mesh_args(&snapshot);
            let mut process = spawn_pinned(
                dir,
                "mesh-proxy",
                cpu,
                &programs.mesh_proxy,
                &args,
                Stdio::piped(),
            )?;
            let stdout = process.child.stdout.take().context("mesh-proxy stdout")?;
            // "mesh-proxy ready admin=127.0.0.1:1 health=127.0.0.1:2 metrics=127.0.0.1:3"
            let line = first_line(stdout, START_TIMEOUT).unwrap_or_default();
            metrics = ready_line_addr(&line, "metrics");
            if metrics.is_none() {
                process.check_running()?;
                bail!("mesh-proxy did not print its ports (got {line:?})");
            }
            // One socket serves both protocols.
            (port, port, process)
        }
        TargetKind::Nginx => {
            let (h1, h2) = (free_port()?, free_port()?);
            let config = dir.join("nginx.conf");
            std::fs::write(&config, nginx_config(dir, h1, h2, upstream))?;
            let args = [
                "-p".to_owned(),
                dir.display().to_string(),
                "-e".to_owned(),
                dir.join("nginx-error.log").display().to_string(),
                "-c".to_owned(),
                config.display().to_string(),
            ];
            let process = spawn_pinned(dir, "nginx", cpu, &programs.nginx, &args, Stdio::null())?;
            (h1, h2, process)
        }
        TargetKind::Haproxy => {
            let (h1, h2) = (free_port()?, free_port()?);
            let config = dir.join("haproxy.cfg");
            std::fs::write(&config, haproxy_config(h1, h2, upstream))?;
            let args = [
                "-f".to_owned(),
                config.display().to_string(),
                "-db".to_owned(),
            ];
            let process =
                spawn_pinned(dir, "haproxy", cpu, &programs.haproxy, &args, Stdio::null())?;
            (h1, h2, process)
        }
    };
    let h1 = SocketAddr::from(([127, 0, 0, 1], h1));
    let h2 = SocketAddr::from(([127, 0, 0, 1], h2));
    wait_http_ok(h1, &mut process)?;
    wait_listening(h2, &mut process)?;
    Ok(Target {
        kind,
        h1,
        h2,
        process: Some(process),
        metrics,
    })
}

/// An address from mesh-proxy's ready line, by name.
pub fn ready_line_addr(line: &str, name: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        .and_then(|addr| addr.parse().ok())
}

fn direct(upstream: SocketAddr) -> Target {
    Target {
        kind: TargetKind::Direct,
        h1: upstream,
        h2: upstream,
        process: None,
        metrics: None,
    }
}

fn mesh_args(snapshot: &Path) -> Vec<String> {
    let mut args = vec!["--snapshot".to_owned(), snapshot.display().to_string()];
    for flag in ["--admin-addr", "--health-addr", "--metrics-addr"] {
        args.push(flag.to_owned());
        args.push("127.0.0.1:0".to_owned());
    }
    args
}

/// One listener, one route, one cluster with the upstream as its only endpoint.
pub fn mesh_snapshot(port: u16, upstream: SocketAddr) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:{port}", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: bench
    domains: ["*"]
    routes:
    - name: all
      route: [{{destination: {{host: bench.local}}}}]
clusters:
- host: bench.local
  port: 80
  endpoints: [{{address: "{upstream}"}}]
"#
    )
}

/// One worker, a keep-alive pool to the upstream, no access log; h2c on its own port
/// (nginx 1.22 cannot serve HTTP/1.1 and h2c prior knowledge on one plaintext port).
pub fn nginx_config(dir: &Path, h1: u16, h2: u16, upstream: SocketAddr) -> String {
    let server = format!("listen 127.0.0.1:{h1};\n    listen 127.0.0.1:{h2} http2;");
    nginx_proxy_config(dir, "nginx", upstream, &server)
}

/// The nginx configuration every bench shares: one worker, its files in `dir` (the pid file
/// named after `name`), no access log, a keep-alive pool to `upstream`, and one server whose
/// listen (and TLS) directives are `server` and which proxies everything to the pool.
pub fn nginx_proxy_config(dir: &Path, name: &str, upstream: SocketAddr, server: &str) -> String {
    let dir = dir.display();
    format!(
        r#"worker_processes 1;
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream echo {{
    server {upstream};
    keepalive 64;
    keepalive_requests 10000000;
  }}
  server {{
    {server}
    location / {{
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"#
    )
}

/// One thread, HTTP mode, connections to the upstream reused across clients.
pub fn haproxy_config(h1: u16, h2: u16, upstream: SocketAddr) -> String {
    format!(
        r#"global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  http-reuse always
frontend h1
  bind 127.0.0.1:{h1}
  default_backend echo
frontend h2
  bind 127.0.0.1:{h2} proto h2
  default_backend echo
backend echo
  http-reuse always
  server echo {upstream}
"#
    )
}

/// Waits until `GET /` over HTTP/1.1 answers 200: the server is up and routes to the
/// upstream.
fn wait_http_ok(addr: SocketAddr, process: &mut ChildGuard) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        process.check_running()?;
        match get_status_line(addr) {
            Ok(line) if line.starts_with("HTTP/1.1 200") => return Ok(()),
            Ok(line) => last = line,
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{addr} did not answer 200 within {START_TIMEOUT:?}; last: {last}")
}

fn wait_listening(addr: SocketAddr, process: &mut ChildGuard) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        process.check_running()?;
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {addr} after {START_TIMEOUT:?}")
}

/// `GET path` over HTTP/1.1, reading the whole answer: what a Prometheus scrape costs.
pub fn scrape(addr: SocketAddr, path: &str) -> anyhow::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer.len())
}

fn get_status_line(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
