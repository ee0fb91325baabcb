//! A fake Kubernetes API server over a real socket, for tests that run the meshctl binary
//! with a kubeconfig naming it: it answers GETs from a table of paths (anything else is the
//! API server's 404 Status) and records every request line, so a test can check exactly
//! what meshctl asked for. HTTP/1.1, one request per connection (`connection: close`).

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct FakeApi {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    /// Serves `routes` (path without query -> JSON body) until the runtime ends.
    pub async fn start(routes: BTreeMap<String, Value>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let routes = Arc::new(routes);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let routes = routes.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Some(line) = request_line(&mut conn).await else {
                        return;
                    };
                    if let Ok(mut seen) = record.lock() {
                        seen.push(line.clone());
                    }
                    let target = line.split(' ').nth(1).unwrap_or_default();
                    let path = target.split('?').next().unwrap_or_default();
                    let (code, body) = match routes.get(path) {
                        Some(body) if line.starts_with("GET ") => (200, body.clone()),
                        _ => (404, not_found(path)),
                    };
                    let body = body.to_string();
                    let reason = if code == 200 { "OK" } else { "Not Found" };
                    let reply = format!(
                        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        FakeApi { addr, seen }
    }

    /// Every request line so far: `GET /api/v1/pods?... HTTP/1.1`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The paths (no query) of every request so far.
    pub fn paths(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|line| line.split(' ').nth(1))
            .map(|target| target.split('?').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// A kubeconfig in `dir` whose current context is this server and `namespace`.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        kubeconfig(dir, &format!("http://{}", self.addr), namespace)
    }
}

pub fn kubeconfig(dir: &Path, server: &str, namespace: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
         clusters: [{{name: test, cluster: {{server: '{server}'}}}}]\n\
         users: [{{name: test, user: {{}}}}]\n\
         contexts: [{{name: test, context: {{cluster: test, user: test, namespace: {namespace}}}}}]\n"
    );
    std::fs::write(&path, config).expect("kubeconfig written");
    path
}

/// A kubeconfig naming a port on 127.0.0.1 that refuses connections.
pub fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    kubeconfig(dir, &format!("http://127.0.0.1:{port}"), "default")
}

/// Reads the request head; returns its first line.
async fn request_line(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.lines().next().map(str::to_owned)
}

fn not_found(path: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": "NotFound", "code": 404, "message": format!("the server could not find {path}")})
}

/// A `kind: <Kind>List` of `items`.
pub fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "1"}, "items": items})
}
