//! HTTP/1.1 upgrades: 101, then bytes echoed both ways on the same connection.

mod support;

use http::StatusCode;
use support::{DEADLINE, connect, read_exact, read_head, read_to_end, server, write};
use tokio::io::AsyncWriteExt;

const UPGRADE_REQUEST: &[u8] =
    b"GET /ws HTTP/1.1\r\nhost: echo\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";

#[tokio::test]
async fn upgrade_switches_to_an_echo() {
    let server = server().await;
    let stats = server.stats();
    let mut stream = connect(server.addr()).await;
    write(&mut stream, UPGRADE_REQUEST).await;
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("x-echo-version: v1\r\n"), "{head}");

    write(&mut stream, b"ping").await;
    assert_eq!(read_exact(&mut stream, 4).await, b"ping");
    write(&mut stream, b"pong!").await;
    assert_eq!(read_exact(&mut stream, 5).await, b"pong!");

    stream.shutdown().await.expect("half-close");
    assert!(
        read_to_end(&mut stream).await.is_empty(),
        "the echo half-closes back"
    );
    assert_eq!(stats.upgrades(), 1);
    assert_eq!(stats.echoed_bytes(), 9);
    assert!(
        stats
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await
    );
}

#[tokio::test]
async fn bytes_sent_with_the_request_are_echoed() {
    let server = server().await;
    let mut stream = connect(server.addr()).await;
    let mut request = UPGRADE_REQUEST.to_vec();
    request.extend_from_slice(b"early");
    write(&mut stream, &request).await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(read_exact(&mut stream, 5).await, b"early");
}

#[tokio::test]
async fn a_status_knob_refuses_the_upgrade() {
    let server = server().await;
    let mut stream = connect(server.addr()).await;
    write(
        &mut stream,
        b"GET /ws HTTP/1.1\r\nhost: echo\r\nconnection: upgrade\r\nupgrade: websocket\r\nx-echo-status: 503\r\n\r\n",
    )
    .await;
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with(&format!("HTTP/1.1 {}", StatusCode::SERVICE_UNAVAILABLE)),
        "{head}"
    );
    assert_eq!(server.stats().upgrades(), 0);
}

#[tokio::test]
async fn shutdown_ends_upgraded_connections() {
    let server = server().await;
    let mut stream = connect(server.addr()).await;
    write(&mut stream, UPGRADE_REQUEST).await;
    read_head(&mut stream).await;
    write(&mut stream, b"x").await;
    read_exact(&mut stream, 1).await;

    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown finishes with an upgraded connection open");
    assert!(read_to_end(&mut stream).await.is_empty());
}
