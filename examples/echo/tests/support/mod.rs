//! Clients and waits shared by the integration tests. Every wait has a deadline.
#![allow(dead_code)] // each test binary uses a different part

pub mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_echo::{EchoConfig, EchoReply, EchoServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any wait in a test may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub async fn server() -> EchoServer {
    server_with(EchoConfig::default()).await
}

pub async fn server_with(config: EchoConfig) -> EchoServer {
    mesh_echo::start(config).await.expect("server starts")
}

pub fn h1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// HTTP/2 with prior knowledge, as a proxy speaks to a known-h2 upstream.
pub fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A response read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn reply(&self) -> EchoReply {
        serde_json::from_slice(&self.body).expect("a JSON echo body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("response header {name}"))
    }
}

pub async fn get(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(client, request.body(Full::default()).expect("request")).await
}

pub async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Answer {
    let exchange = async {
        let response = client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Answer {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("answered before the deadline")
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .expect("connected before the deadline")
        .expect("connect")
}

pub async fn write(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(data).await.expect("write");
}

/// Reads exactly `n` bytes.
pub async fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut buf))
        .await
        .expect("read before the deadline")
        .expect("read");
    buf
}

/// Reads until the peer closes; proves the server closed the connection.
pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf))
        .await
        .expect("peer closed before the deadline")
        .expect("read");
    buf
}

/// Reads an HTTP/1 response head (through the blank line), leaving the rest unread.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = read_exact(stream, 1).await;
        head.extend_from_slice(&byte);
    }
    String::from_utf8(head).expect("an ASCII head")
}
