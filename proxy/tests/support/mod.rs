//! Runs the real `mesh-proxy` binary on loopback against in-process echo upstreams.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct Proxy {
    child: Child,
    dir: PathBuf,
    /// Lines the proxy printed on stdout after its ready line (access logs).
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub admin: SocketAddr,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
}

impl Proxy {
    /// Starts the proxy on `snapshot` (YAML) and waits until it prints its ports.
    pub fn start(snapshot: &str) -> Proxy {
        Self::start_with(snapshot, &[])
    }

    /// As [`Proxy::start`], with extra flags.
    pub fn start_with(snapshot: &str, extra: &[&str]) -> Proxy {
        let dir = test_dir();
        std::fs::write(dir.join("snapshot.yaml"), snapshot).unwrap();
        let file = dir.join("snapshot.yaml");
        let mut args = vec!["--snapshot", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        Self::spawn(dir, &args)
    }

    /// Starts the proxy with these flags and no snapshot file (e.g. `--pilot ADDR`), and
    /// waits until it prints its ports.
    pub fn start_args(args: &[&str]) -> Proxy {
        Self::spawn(test_dir(), args)
    }

    fn spawn(dir: PathBuf, args: &[&str]) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-proxy"))
            .args([
                "--admin-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
            ])
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--workload",
                "productpage-v1",
            ])
            .args(["--snapshot-poll", "20ms", "--log", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mesh-proxy");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let field = |name: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
                .parse()
                .unwrap()
        };
        Proxy {
            stdout: lines,
            admin: field("admin"),
            health: field("health"),
            metrics: field("metrics"),
            child,
            dir,
        }
    }

    /// The bound address of listener `name` (snapshots use port 0).
    pub async fn listener(&self, name: &str) -> SocketAddr {
        let listeners = self.admin_json("/listeners").await;
        let found = listeners
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no listener {name}: {listeners}"));
        found["bound"].as_str().unwrap().parse().unwrap()
    }

    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = get(self.admin, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "admin {path}");
        serde_json::from_slice(&body).unwrap()
    }

    /// Replaces the snapshot file (atomically, as a ConfigMap update does).
    pub fn write_snapshot(&self, snapshot: &str) {
        let tmp = self.dir.join("snapshot.yaml.tmp");
        std::fs::write(&tmp, snapshot).unwrap();
        std::fs::rename(tmp, self.dir.join("snapshot.yaml")).unwrap();
    }

    /// Waits until the proxy reports `count` applied snapshots.
    pub async fn wait_applied(&self, count: u64) {
        self.wait_status(|s| s["applied_count"].as_u64() == Some(count))
            .await;
    }

    /// `/config_dump` once its `status` satisfies `done`.
    pub async fn wait_status(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_admin("/config_dump", |dump| done(&dump["status"]))
            .await
    }

    /// The admin endpoint `path` once its JSON satisfies `done`; panics after [`DEADLINE`].
    pub async fn wait_admin(
        &self,
        path: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let value = self.admin_json(path).await;
            if done(&value) {
                return value;
            }
            assert!(start.elapsed() < DEADLINE, "{path} never matched: {value}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the proxy has printed `count` stdout lines (after the ready line).
    pub async fn stdout_lines(&self, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.stdout.lock().unwrap().clone();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "only {} stdout lines: {lines:?}",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "proxy did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory for one proxy's files.
fn test_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mesh-proxy-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One GET with extra headers, through a fresh client.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    send(&client(), addr, "GET", path, headers).await
}

pub async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(
        DEADLINE,
        client.request(request.body(Full::default()).unwrap()),
    )
    .await
    .expect("request timed out")
    .expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// An echo upstream answering with `version`.
pub async fn echo(version: &str) -> mesh_echo::EchoServer {
    mesh_echo::start(mesh_echo::EchoConfig {
        version: version.to_owned(),
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap()
}

/// The sum of the samples of `metric` whose labels include every `labels` pair (a metric
/// without labels has one sample).
pub async fn metric_value(proxy: &Proxy, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let (status, _, body) = get(proxy.metrics, "/stats/prometheus", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with(&format!("{metric}{{")) || line.starts_with(&format!("{metric} "))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn version(headers: &HeaderMap) -> String {
    headers
        .get("x-echo-version")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
