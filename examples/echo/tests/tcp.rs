//! TCP mode: a byte echo, optionally greeting first like a server-first protocol.

mod support;

use mesh_echo::{EchoConfig, Protocol};
use support::{DEADLINE, connect, read_exact, read_to_end, server_with, write};
use tokio::io::AsyncWriteExt;

fn tcp(banner: Option<&str>) -> EchoConfig {
    EchoConfig {
        protocol: Protocol::Tcp,
        banner: banner.map(str::to_owned),
        ..EchoConfig::default()
    }
}

#[tokio::test]
async fn echoes_bytes_until_the_client_closes() {
    let server = server_with(tcp(None)).await;
    let stats = server.stats();
    let mut stream = connect(server.addr()).await;
    write(&mut stream, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(read_exact(&mut stream, 18).await, b"GET / HTTP/1.1\r\n\r\n");
    let big = vec![7u8; 100_000];
    write(&mut stream, &big).await;
    assert_eq!(read_exact(&mut stream, big.len()).await, big);

    stream.shutdown().await.expect("half-close");
    assert!(
        read_to_end(&mut stream).await.is_empty(),
        "the echo half-closes back"
    );
    assert_eq!(stats.connections(), 1);
    assert_eq!(stats.echoed_bytes(), 100_018);
    assert_eq!(stats.requests(), 0);
    assert!(
        stats
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await
    );
}

#[tokio::test]
async fn banner_is_sent_before_the_client_speaks() {
    let server = server_with(tcp(Some("220 mesh-echo ready"))).await;
    let mut stream = connect(server.addr()).await;
    assert_eq!(
        read_exact(&mut stream, 21).await,
        b"220 mesh-echo ready\r\n"
    );
    write(&mut stream, b"HELO").await;
    assert_eq!(read_exact(&mut stream, 4).await, b"HELO");
}

#[tokio::test]
async fn a_banner_needs_tcp() {
    let config = EchoConfig {
        banner: Some("hello".into()),
        ..EchoConfig::default()
    };
    let err = mesh_echo::start(config).await.expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_closes_tcp_connections() {
    let server = server_with(tcp(None)).await;
    let addr = server.addr();
    let mut stream = connect(addr).await;
    write(&mut stream, b"x").await;
    read_exact(&mut stream, 1).await;
    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(read_to_end(&mut stream).await.is_empty());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed"
    );
}
