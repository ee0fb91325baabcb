//! A proxy with a workload certificate from a fake citadel, and clients that reach its
//! inbound listeners with mTLS (certificates from the same root, or another) or without.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mesh_proxy::identity::{CertificateManager, Identity};
use mesh_proxy::tls;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ca::TestCa;
use crate::citadel::FakeCitadel;
use crate::support::{DEADLINE, Proxy, get};

pub const APP: &str = "app.shop.svc.cluster.local";
pub const DB: &str = "db.shop.svc.cluster.local";

pub fn id(service_account: &str) -> Identity {
    Identity::new("cluster.local", "shop", service_account).unwrap()
}

/// The proxy (identity `shop/cart`), its CA's root and the citadel that issued its cert.
pub struct Mesh {
    pub root: TestCa,
    pub proxy: Proxy,
    _citadel: FakeCitadel,
}

impl Mesh {
    /// Starts the proxy on `snapshot` and waits until it holds its certificate.
    pub async fn start(snapshot: &str) -> Mesh {
        let root = TestCa::root("mesh root");
        // The proxy's certificate comes through an intermediate; clients' from the root.
        let citadel = FakeCitadel::start(root.intermediate("citadel")).await;
        let address = citadel.address();
        let flags = [
            "--ca-addr",
            &address,
            "--trust-bundle",
            citadel.bundle_file.to_str().unwrap(),
            "--ca-token-file",
            citadel.token_file.to_str().unwrap(),
            "--namespace",
            "shop",
            "--service-account",
            "cart",
            "--access-log",
        ];
        let proxy = Proxy::start_with(snapshot, &flags);
        eventually("the proxy is ready", || async {
            get(proxy.health, "/healthz/ready", &[]).await.0 == StatusCode::OK
        })
        .await;
        Mesh {
            root,
            proxy,
            _citadel: citadel,
        }
    }

    /// A client workload `shop/<service_account>` with a certificate from the mesh root.
    pub fn client(&self, service_account: &str) -> Arc<CertificateManager> {
        self.root.manager(&id(service_account), &[&self.root])
    }
}

/// Polls `check` until it holds, failing after the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 GET over mTLS as `client`; an error when the proxy refuses the connection.
pub async fn mtls_get(
    addr: SocketAddr,
    client: &Arc<CertificateManager>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Bytes), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tls::connect(tcp, client, &[id("cart")])
        .await
        .map_err(|e| e.to_string())?;
    request(stream, path, headers).await
}

/// One HTTP/1.1 GET in plaintext; an error when the proxy closes the connection.
pub async fn plain_get(addr: SocketAddr, path: &str) -> Result<(StatusCode, Bytes), String> {
    plain_get_with(addr, path, &[]).await
}

/// [`plain_get`] with request headers.
pub async fn plain_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Bytes), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    request(tcp, path, headers).await
}

async fn request<S>(
    stream: S,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut builder = Request::get(path).header("host", "app");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::<Bytes>::default()).unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes()))
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// An HTTP inbound listener `in` in `mode`, routing everything to `upstream`.
pub fn http_snapshot(mode: &str, upstream: SocketAddr, policies: &str) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: in, address: "127.0.0.1:0", routeConfig: inbound, inbound: {{mtls: {mode}}}}}
routeConfigs:
- name: inbound
  virtualHosts:
  - name: app
    domains: ["*"]
    routes:
    - name: app
      route: [{{destination: {{host: {APP}}}}}]
{cluster}{policies}"#,
        cluster = cluster(upstream, 9080),
    )
}

/// A TCP inbound listener `in` in `mode`, forwarding to `upstream`.
pub fn tcp_snapshot(mode: &str, upstream: SocketAddr, policies: &str) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: in, address: "127.0.0.1:0", protocol: TCP, tcpRoute: [{{destination: {{host: {APP}}}}}], inbound: {{mtls: {mode}}}}}
{cluster}{policies}"#,
        cluster = cluster(upstream, 9080),
    )
}

/// An AUTO inbound listener `in` in `mode`: HTTP to `http`, anything else to `tcp`
/// (host `db`).
pub fn auto_snapshot(mode: &str, http: SocketAddr, tcp: SocketAddr) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: in, address: "127.0.0.1:0", protocol: AUTO, routeConfig: inbound, tcpRoute: [{{destination: {{host: {DB}}}}}], inbound: {{mtls: {mode}}}}}
routeConfigs:
- name: inbound
  virtualHosts:
  - name: app
    domains: ["*"]
    routes:
    - name: app
      route: [{{destination: {{host: {APP}}}}}]
{cluster}- host: {DB}
  port: 5432
  endpoints: [{{address: "{tcp}"}}]
"#,
        cluster = cluster(http, 9080),
    )
}

fn cluster(upstream: SocketAddr, port: u16) -> String {
    format!(
        r#"clusters:
- host: {APP}
  port: {port}
  endpoints: [{{address: "{upstream}"}}]
"#
    )
}
