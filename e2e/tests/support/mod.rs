//! The mesh on loopback: a real pilot on a config directory, real proxies connected to it,
//! and echo apps behind them. Every wait has a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub mod local;
pub mod mesh;
pub mod netns;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// The reviews service (`reviews.shop.svc.cluster.local:9080`, HTTP), its endpoints the
/// WorkloadEntries labelled `app: reviews`: the service every end-to-end test calls.
pub const REVIEWS_SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
"#;

/// [`REVIEWS_SERVICE`] with one endpoint: WorkloadEntry `reviews-v1` at 127.0.0.1:`port`.
pub fn reviews_at(port: u16) -> String {
    format!(
        "{REVIEWS_SERVICE}---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: reviews-v1, namespace: shop}}\nspec: {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{app: reviews}}}}\n"
    )
}

/// Starts a binary and reads the one line it prints when its ports are bound.
fn spawn(binary: &str, args: &[&str]) -> (Child, String) {
    spawn_command(Command::new(binary).args(args))
}

/// Starts `command` and reads the one line it prints when its ports are bound.
fn spawn_command(command: &mut Command) -> (Child, String) {
    let (child, line, stdout) = spawn_ready(command.stderr(Stdio::inherit()));
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    (child, line)
}

/// Starts `command`, reads the line it prints when its ports are bound, and hands back the
/// rest of its stdout.
fn spawn_ready(command: &mut Command) -> (Child, String, BufReader<ChildStdout>) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    (child, line, stdout)
}

/// A child's output lines, kept as they come.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Keeps every line of `reader` from a thread of its own (so the child never blocks).
pub fn keep_lines<R: Read + Send + 'static>(reader: R) -> Lines {
    let lines = Lines::default();
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    lines
}

fn field(line: &str, name: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        .parse()
        .unwrap()
}

pub struct Pilot {
    child: Child,
    pub dir: tempfile::TempDir,
    pub grpc: SocketAddr,
    pub monitoring: SocketAddr,
    extra: Vec<String>,
}

impl Pilot {
    /// pilot with its production defaults (100 ms poll, 100 ms debounce) on `files`.
    pub fn start(files: &[(&str, &str)]) -> Pilot {
        Self::start_at(files, "127.0.0.1:0")
    }

    /// As [`start`](Self::start), its discovery port at `grpc` (`ip:0` for a free one).
    pub fn start_at(files: &[(&str, &str)], grpc: &str) -> Pilot {
        Self::start_with(files, grpc, &[])
    }

    /// As [`start_at`](Self::start_at), with more flags (kept across restarts).
    pub fn start_with(files: &[(&str, &str)], grpc: &str, extra: &[&str]) -> Pilot {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, grpc, monitoring) = Self::spawn(dir.path(), grpc, &extra);
        Pilot {
            child,
            dir,
            grpc,
            monitoring,
            extra,
        }
    }

    fn spawn(dir: &Path, grpc: &str, extra: &[String]) -> (Child, SocketAddr, SocketAddr) {
        let mut args = vec![
            "--config-dir",
            dir.to_str().unwrap(),
            "--grpc-addr",
            grpc,
            "--monitoring-addr",
            "127.0.0.1:0",
            "--log",
            "warn",
        ];
        args.extend(extra.iter().map(String::as_str));
        let (child, line) = spawn(env!("CARGO_BIN_EXE_e2e-pilot"), &args);
        (child, field(&line, "grpc"), field(&line, "monitoring"))
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts again on the same discovery port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let (child, grpc, monitoring) =
            Self::spawn(self.dir.path(), &self.grpc.to_string(), &self.extra);
        self.child = child;
        self.grpc = grpc;
        self.monitoring = monitoring;
    }

    /// Replaces a config file as editors do: write aside, rename over.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        let aside = path.with_extension("tmp~");
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(&aside, &path).unwrap();
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).unwrap();
    }

    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = get(self.monitoring, "pilot", path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        serde_json::from_slice(&body).unwrap()
    }

    /// Waits until every listed proxy is connected and has ACKed what it was last sent.
    pub async fn wait_all_synced(&self, ids: &[&str]) -> Value {
        wait_for("every proxy synced", || async {
            let syncz = self.json("/debug/syncz").await;
            let synced = ids.iter().all(|id| {
                syncz.as_array().unwrap().iter().any(|e| {
                    e["id"] == *id
                        && !e["versionSent"].is_null()
                        && e["versionSent"] == e["versionAcked"]
                })
            });
            synced.then_some(syncz)
        })
        .await
    }
}

impl Drop for Pilot {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Proxy {
    child: Child,
    pub id: String,
    pub admin: SocketAddr,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
}

impl Proxy {
    /// A sidecar for workload `name` in `namespace`, its outbound listener on a free port.
    pub fn start(pilot: &Pilot, name: &str, namespace: &str) -> Proxy {
        let pilot_addr = pilot.grpc.to_string();
        Self::start_args(
            name,
            namespace,
            &["--pilot", &pilot_addr, "--outbound-addr", "127.0.0.1:0"],
        )
    }

    /// A proxy for workload `name` in `namespace` with these flags (its config source
    /// among them), its admin, health and metrics ports free ones.
    pub fn start_args(name: &str, namespace: &str, args: &[&str]) -> Proxy {
        let all = Self::args(name, namespace, "warn", args);
        let (child, line) = spawn(env!("CARGO_BIN_EXE_e2e-proxy"), &all);
        Self::new(child, name, namespace, &line)
    }

    /// As [`start_args`](Self::start_args) at log level `log`, keeping what the proxy
    /// prints: its stdout (access log) and its stderr (logs) lines.
    pub fn start_kept(
        name: &str,
        namespace: &str,
        log: &str,
        args: &[&str],
    ) -> (Proxy, Lines, Lines) {
        let all = Self::args(name, namespace, log, args);
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-proxy"));
        let (mut child, line, stdout) = spawn_ready(command.args(&all).stderr(Stdio::piped()));
        let stderr = keep_lines(child.stderr.take().unwrap());
        let proxy = Self::new(child, name, namespace, &line);
        (proxy, keep_lines(stdout), stderr)
    }

    fn args<'a>(name: &'a str, namespace: &'a str, log: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            "--workload",
            name,
            "--namespace",
            namespace,
            "--admin-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log",
            log,
        ];
        all.extend_from_slice(args);
        all
    }

    fn new(child: Child, name: &str, namespace: &str, ready: &str) -> Proxy {
        Proxy {
            child,
            id: format!("{name}.{namespace}"),
            admin: field(ready, "admin"),
            health: field(ready, "health"),
            metrics: field(ready, "metrics"),
        }
    }

    pub async fn admin_json(&self, path: &str) -> Value {
        let (status, body) = get(self.admin, "admin", path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        serde_json::from_slice(&body).unwrap()
    }

    /// Where the outbound listener is bound, once pilot's config is applied.
    pub async fn outbound(&self) -> SocketAddr {
        wait_for("the outbound listener", || async {
            let listeners = self.admin_json("/listeners").await;
            listeners
                .as_array()?
                .iter()
                .find(|l| l["name"] == "outbound")
                .and_then(|l| l["bound"].as_str()?.parse().ok())
        })
        .await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 10 ms until it yields a value; panics after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One GET with `Host: host` to `addr`, through a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> (StatusCode, Bytes) {
    let (status, _, body) = request(addr, host, path).await;
    (status, body)
}

/// One GET; the answering echo's version (`x-echo-version`), or the status when it failed.
pub async fn version_via(addr: SocketAddr, host: &str) -> String {
    let (status, headers, _) = request(addr, host, "/").await;
    match headers.get("x-echo-version") {
        Some(v) if status == StatusCode::OK => v.to_str().unwrap().to_owned(),
        _ => format!("status {}", status.as_u16()),
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A plain HTTP/1 client with hyper's default pool.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A port free on `ip` now, bound to that address. A test that must name a port before
/// its server binds it picks an address of its own: on 127.0.0.1 a port found free here can
/// be taken, before the server binds it, as the source port of any test's connection.
pub fn free_addr(ip: &str) -> SocketAddr {
    let socket = std::net::TcpListener::bind((ip, 0)).unwrap();
    socket.local_addr().unwrap()
}

async fn request(addr: SocketAddr, host: &str, path: &str) -> (StatusCode, http::HeaderMap, Bytes) {
    let client = client();
    let request = Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Full::default())
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, client.request(request))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// An echo app answering with `version`.
pub async fn echo(version: &str) -> mesh_echo::EchoServer {
    mesh_echo::start(mesh_echo::EchoConfig {
        version: version.to_owned(),
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap()
}

/// citadel on a fresh CA directory, with bootstrap tokens `(token, namespace, sa)`.
pub struct Citadel {
    child: Child,
    pub dir: tempfile::TempDir,
    pub grpc: SocketAddr,
    pub monitoring: SocketAddr,
}

impl Citadel {
    pub fn start(tokens: &[(&str, &str, &str)]) -> Citadel {
        Self::start_args(tokens, &[])
    }

    /// As [`start`](Self::start), with more flags (`--max-cert-ttl`, `--ca-reload-interval`).
    pub fn start_args(tokens: &[(&str, &str, &str)], extra: &[&str]) -> Citadel {
        Self::start_at(tokens, "127.0.0.1:0", extra)
    }

    /// As [`start_args`](Self::start_args), its signing port at `addr`.
    pub fn start_at(tokens: &[(&str, &str, &str)], addr: &str, extra: &[&str]) -> Citadel {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = tokens
            .iter()
            .map(|(token, ns, sa)| format!("{token} {ns} {sa}"))
            .collect();
        let token_file = dir.path().join("tokens");
        std::fs::write(&token_file, lines.join("\n")).unwrap();
        let ca_dir = dir.path().join("ca");
        let mut args = vec![
            "--ca-dir",
            ca_dir.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
            "--addr",
            addr,
            "--monitoring-addr",
            "127.0.0.1:0",
            "--log",
            "warn",
        ];
        args.extend_from_slice(extra);
        let (child, line) = spawn(env!("CARGO_BIN_EXE_e2e-citadel"), &args);
        Citadel {
            child,
            grpc: field(&line, "grpc"),
            monitoring: field(&line, "monitoring"),
            dir,
        }
    }

    pub fn ca_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("ca")
    }

    /// `citadel rotate-root <step> --ca-dir <its store>`; panics unless it succeeds.
    pub fn rotate_root(&self, step: &str) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_e2e-citadel"))
            .args(["rotate-root", step, "--ca-dir"])
            .arg(self.ca_dir())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "rotate-root {step}: {text}");
        text
    }

    pub fn trust_bundle(&self) -> std::path::PathBuf {
        self.dir.path().join("ca").join("trust-bundle.pem")
    }

    /// A file holding `token`, as a proxy's `--ca-token-file`.
    pub fn token_file(&self, token: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("token-{token}"));
        std::fs::write(&path, token).unwrap();
        path
    }

    /// A proxy's flags to get its certificate from this citadel with bootstrap `token`:
    /// `--ca-addr`, `--trust-bundle` and `--ca-token-file`.
    pub fn identity_args(&self, token: &str) -> Vec<String> {
        let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
        vec![
            "--ca-addr".to_owned(),
            self.grpc.to_string(),
            "--trust-bundle".to_owned(),
            path(self.trust_bundle()),
            "--ca-token-file".to_owned(),
            path(self.token_file(token)),
        ]
    }
}

impl Drop for Citadel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
