//! The capture sockets with real connections and a fake original destination: what a
//! redirect would have said, without root.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Answers for each client (by its address) the destination it "meant"; unknown clients
/// were not redirected.
#[derive(Default)]
struct Fake(Mutex<HashMap<SocketAddr, SocketAddr>>);

impl OriginalDst for Fake {
    fn original_dst(&self, stream: &TcpStream) -> std::io::Result<SocketAddr> {
        let peer = stream.peer_addr()?;
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&peer)
            .copied()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// An upstream that answers every connection with `hello` and closes.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"hello").await;
        }
    });
    address
}

async fn capture_port(fake: Arc<Fake>, inbound: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let capture = Arc::new(Capture::new(fake, address.port()));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let drain = Drain::default();
    tokio::spawn(async move {
        let _stop = _stop;
        let direction = if inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        serve(listener, capture, direction, drain, stopped).await;
    });
    address
}

/// Connects from a socket bound first, so the fake can be told its address beforehand.
async fn redirected(fake: &Fake, port: SocketAddr, original: Option<SocketAddr>) -> Vec<u8> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("any"))
        .expect("bind");
    let local = socket.local_addr().expect("local");
    if let Some(original) = original {
        fake.0.lock().expect("lock").insert(local, original);
    }
    let mut stream = socket.connect(port).await.expect("connect");
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut received),
    );
    let _ = read.await.expect("the connection ends");
    received
}

#[tokio::test]
async fn unknown_destinations_pass_through_both_ways() {
    let target = upstream().await;
    for inbound in [false, true] {
        let fake = Arc::new(Fake::default());
        let port = capture_port(fake.clone(), inbound).await;
        assert_eq!(
            redirected(&fake, port, Some(target)).await,
            b"hello",
            "inbound: {inbound}"
        );
    }
}

#[tokio::test]
async fn connections_that_were_not_redirected_are_closed() {
    let fake = Arc::new(Fake::default());
    let port = capture_port(fake.clone(), false).await;
    // No original destination at all.
    assert_eq!(redirected(&fake, port, None).await, b"");
    // The capture port itself, in either spelling: would loop.
    assert_eq!(redirected(&fake, port, Some(port)).await, b"");
    let mapped = std::net::SocketAddr::new(
        std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
        port.port(),
    );
    assert_eq!(redirected(&fake, port, Some(mapped)).await, b"");
}
