//! The modes' edges: AUTO detection after mTLS, STRICT without a certificate, DISABLE
//! passing TLS bytes through.

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Mesh, auto_snapshot, id, mtls_get, plain_get, tcp_snapshot};
use crate::support::{DEADLINE, Proxy, echo, metric_value};

async fn tcp_echo() -> mesh_echo::EchoServer {
    mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap()
}

async fn round_trip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
) -> Vec<u8> {
    stream.write_all(bytes).await.unwrap();
    let mut back = vec![0u8; bytes.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut back))
        .await
        .expect("no echo in time")
        .unwrap();
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_tells_http_from_tcp_inside_mtls() {
    let (http_app, tcp_app) = (echo("v1").await, tcp_echo().await);
    let mesh = Mesh::start(&auto_snapshot("STRICT", http_app.addr(), tcp_app.addr())).await;
    let addr = mesh.proxy.listener("in").await;
    let web = mesh.client("web");

    let (status, _) = mtls_get(addr, &web, "/hello", &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(http_app.stats().requests(), 1);

    // The mesh client offers ALPN h2 whatever it sends: the decrypted bytes decide.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream = mesh_proxy::tls::connect(tcp, &web, &[id("cart")])
        .await
        .unwrap();
    assert_eq!(
        round_trip(&mut stream, b"\x00\x01opaque").await,
        b"\x00\x01opaque"
    );
    assert_eq!(tcp_app.stats().connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_without_a_certificate_manager_refuses_everything() {
    let app = echo("v1").await;
    let proxy = Proxy::start(&crate::harness::http_snapshot("STRICT", app.addr(), ""));
    proxy.wait_applied(1).await;
    let addr = proxy.listener("in").await;
    let result = plain_get(addr, "/").await;
    assert!(result.is_err(), "answered: {result:?}");
    assert_eq!(app.stats().requests(), 0);
    let refused = ("listener", "in");
    assert_eq!(
        metric_value(&proxy, "mesh_inbound_plaintext_refused_total", &[refused]).await,
        0.0,
        "refused for want of a certificate, not for being plaintext"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_passes_tls_bytes_to_the_app_untouched() {
    let app = tcp_echo().await;
    let mesh = Mesh::start(&tcp_snapshot("DISABLE", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;
    // The start of a ClientHello: a STRICT or PERMISSIVE port would try a handshake.
    let hello = [22u8, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut stream, &hello).await, hello);
}
