#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A connected pair: (client, the accepted server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[tokio::test]
async fn http_is_found_and_left_unread() {
    let (mut client, mut server) = pair().await;
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let sniffed = sniff(&server, Duration::from_secs(5)).await;
    assert_eq!(sniffed, Sniffed::Bytes(Protocol::Http1));
    let mut first = [0; 3];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"GET", "the server path still reads every byte");
}

#[tokio::test]
async fn a_request_line_split_across_segments_is_still_http() {
    let (mut client, server) = pair().await;
    client.write_all(b"GE").await.unwrap();
    let writer = tokio::spawn(async move {
        // A slow client is the scenario here, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(b"T / HTTP/1.1\r\n\r\n").await.unwrap();
        client
    });
    let sniffed = sniff(&server, Duration::from_secs(5)).await;
    assert_eq!(sniffed, Sniffed::Bytes(Protocol::Http1));
    writer.await.unwrap();
}

#[tokio::test]
async fn a_silent_client_times_out_at_the_deadline() {
    let (_client, server) = pair().await;
    let started = std::time::Instant::now();
    let sniffed = sniff(&server, Duration::from_millis(50)).await;
    assert_eq!(sniffed, Sniffed::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_closes_without_a_byte_is_closed() {
    let (client, server) = pair().await;
    drop(client);
    assert_eq!(
        sniff(&server, Duration::from_secs(5)).await,
        Sniffed::Closed
    );
}

#[tokio::test]
async fn binary_bytes_are_opaque_at_once() {
    let (mut client, server) = pair().await;
    client
        .write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
        .await
        .unwrap();
    assert_eq!(
        sniff(&server, Duration::from_secs(5)).await,
        Sniffed::Bytes(Protocol::Opaque)
    );
}
