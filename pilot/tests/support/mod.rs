//! Runs the real `pilot` binary on loopback against a temporary config directory, and
//! speaks the discovery protocol to it as a proxy would.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesh_proto::discovery::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct Pilot {
    child: Child,
    pub dir: tempfile::TempDir,
    pub grpc: SocketAddr,
    pub monitoring: SocketAddr,
}

impl Pilot {
    /// Starts pilot on a directory holding `files` (name, YAML).
    pub fn start(files: &[(&str, &str)]) -> Pilot {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Self::start_in(dir, &[])
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Pilot {
        Self::start_with_env(dir, extra, &[])
    }

    /// [`Pilot::start_in`] with environment variables set for pilot.
    pub fn start_with_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Pilot {
        let (child, grpc, monitoring) =
            spawn_child(dir.path(), &["--grpc-addr", "127.0.0.1:0"], extra, env);
        Pilot {
            child,
            dir,
            grpc,
            monitoring,
        }
    }

    /// Stops pilot (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts pilot again on the same discovery port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let grpc = self.grpc.to_string();
        let (child, grpc, monitoring) =
            spawn_child(self.dir.path(), &["--grpc-addr", &grpc], &[], &[]);
        self.child = child;
        self.grpc = grpc;
        self.monitoring = monitoring;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces a config file the way editors and `kubectl cp` do: write aside, rename.
    pub fn write(&self, name: &str, text: &str) {
        write_atomically(&self.path(name), text);
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.monitoring, path).await
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `check` holds for `/debug/syncz`'s entry of proxy `id`.
    pub async fn wait_syncz(
        &self,
        id: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let all = self.json("/debug/syncz").await;
            if let Some(entry) = all.as_array().unwrap().iter().find(|e| e["id"] == id)
                && check(entry)
            {
                return entry.clone();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "syncz for {id} never matched: {all:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Pilot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_child(
    dir: &Path,
    addr: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, SocketAddr, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pilot"))
        .envs(env.iter().copied())
        .arg("--config-dir")
        .arg(dir)
        .args(addr)
        .args(["--monitoring-addr", "127.0.0.1:0", "--config-poll", "20ms"])
        .args(["--debounce", "20ms", "--log", "warn"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pilot");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let field = |name: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
            .parse()
            .unwrap()
    };
    (child, field("grpc"), field("monitoring"))
}

pub fn write_atomically(path: &Path, text: &str) {
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: pilot\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A discovery client that behaves as a proxy: it keeps the resources it accepted.
pub struct FakeProxy {
    pub node: pb::Node,
    requests: mpsc::Sender<pb::DiscoveryRequest>,
    responses: tonic::Streaming<pb::DiscoveryResponse>,
    pub held: BTreeMap<(i32, String), pb::Resource>,
}

impl FakeProxy {
    pub async fn connect(pilot: SocketAddr, id: &str, namespace: &str) -> FakeProxy {
        Self::connect_holding(pilot, id, namespace, BTreeMap::new()).await
    }

    /// Connects as a proxy that already holds `held` (a reconnect).
    pub async fn connect_holding(
        pilot: SocketAddr,
        id: &str,
        namespace: &str,
        held: BTreeMap<(i32, String), pb::Resource>,
    ) -> FakeProxy {
        let node = pb::Node {
            id: id.into(),
            namespace: namespace.into(),
            workload: id.into(),
            outbound_address: "127.0.0.1:15001".into(),
            ..Default::default()
        };
        let mut client = pb::discovery_client::DiscoveryClient::connect(format!("http://{pilot}"))
            .await
            .unwrap()
            .max_decoding_message_size(64 << 20);
        let (requests, outbound) = mpsc::channel(4);
        requests
            .send(pb::DiscoveryRequest {
                node: Some(node.clone()),
                initial_resource_versions: held
                    .iter()
                    .map(|((kind, name), r)| pb::ResourceVersion {
                        r#type: *kind,
                        name: name.clone(),
                        version: r.version.clone(),
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .unwrap();
        let responses = client
            .stream(ReceiverStream::new(outbound))
            .await
            .unwrap()
            .into_inner();
        FakeProxy {
            node,
            requests,
            responses,
            held,
        }
    }

    /// The next update, its pieces gathered, within the deadline.
    pub async fn next(&mut self) -> pb::DiscoveryResponse {
        let mut whole = self.next_piece().await;
        while whole.more {
            let piece = self.next_piece().await;
            assert_eq!(
                piece.nonce, whole.nonce,
                "pieces of one update share its nonce"
            );
            whole.resources.extend(piece.resources);
            whole.removed_resources.extend(piece.removed_resources);
            whole.more = piece.more;
        }
        whole
    }

    /// The next response as sent: one piece of an update.
    pub async fn next_piece(&mut self) -> pb::DiscoveryResponse {
        tokio::time::timeout(DEADLINE, self.responses.message())
            .await
            .expect("a response before the deadline")
            .unwrap()
            .expect("the stream is open")
    }

    /// Whether a response arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.responses.message())
            .await
            .is_err()
    }

    /// Applies `response` to what this proxy holds and ACKs it.
    pub async fn ack(&mut self, response: &pb::DiscoveryResponse) {
        for removed in &response.removed_resources {
            self.held.remove(&(removed.r#type, removed.name.clone()));
        }
        for resource in &response.resources {
            let kind = mesh_proto::convert::resource_type(resource) as i32;
            self.held
                .insert((kind, resource.name.clone()), resource.clone());
        }
        self.answer(response, None).await;
    }

    pub async fn nack(&mut self, response: &pb::DiscoveryResponse, message: &str) {
        self.answer(response, Some(message)).await;
    }

    async fn answer(&mut self, response: &pb::DiscoveryResponse, error: Option<&str>) {
        self.requests
            .send(pb::DiscoveryRequest {
                response_nonce: response.nonce.clone(),
                error_detail: error.map(|message| pb::Rejection {
                    message: message.into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// What the held resources assemble into, as the proxy would.
    pub fn snapshot(&self, version: &str) -> mesh_core::snapshot::Snapshot {
        mesh_proto::convert::decode_snapshot(version, self.held.values()).unwrap()
    }
}

/// Names of `response`'s resources as `type/name`.
pub fn names(response: &pb::DiscoveryResponse) -> Vec<String> {
    response
        .resources
        .iter()
        .map(|r| format!("{:?}/{}", mesh_proto::convert::resource_type(r), r.name))
        .collect()
}
