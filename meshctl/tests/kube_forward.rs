//! The port-forward end to end without a cluster: kube-rs's real port-forward client against
//! a fake API server that answers the websocket upgrade and speaks Kubernetes' channel
//! protocol (`v4.channel.k8s.io`: per port a data and an error channel, each opened by a
//! frame carrying the port), relaying channel 0 to a fake admin port on 127.0.0.1. The
//! HTTP client of `proxy-config` reads through meshctl's relay what the admin port serves.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use meshctl::cmd::proxy_config::fetch;
use meshctl::cmd::proxy_config::kubernetes::{self, ADMIN_PORT};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// An admin port answering every GET with `document`.
async fn fake_admin(document: Value) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = document.to_string();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// An API server that accepts every port-forward upgrade, records its URI, and relays the
/// first port's data channel to `admin`.
async fn fake_api(admin: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(forward_one(conn, admin, record.clone()));
        }
    });
    (addr, seen)
}

async fn forward_one(conn: TcpStream, admin: SocketAddr, seen: Arc<Mutex<Vec<String>>>) {
    // The signature is tungstenite's (`Callback`); its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(request.uri().to_string());
        }
        let protocol = "v4.channel.k8s.io".parse().expect("header value");
        response
            .headers_mut()
            .insert("sec-websocket-protocol", protocol);
        Ok(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(conn, callback).await else {
        return;
    };
    let (mut to_client, mut from_client) = ws.split();
    let port = ADMIN_PORT.to_le_bytes();
    for channel in [0u8, 1] {
        let opening = vec![channel, port[0], port[1]];
        if to_client
            .send(Message::Binary(opening.into()))
            .await
            .is_err()
        {
            return;
        }
    }
    let Ok(upstream) = TcpStream::connect(admin).await else {
        return;
    };
    let (mut read, mut write) = upstream.into_split();
    let down = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut frame = vec![0u8];
            frame.extend_from_slice(&buf[..n]);
            if to_client.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = to_client.close().await;
    });
    while let Some(Ok(message)) = from_client.next().await {
        if let Message::Binary(bytes) = message
            && bytes.first() == Some(&0)
            && write.write_all(&bytes[1..]).await.is_err()
        {
            break;
        }
    }
    let _ = down.await;
}

#[tokio::test]
async fn proxy_config_reads_the_admin_port_through_a_port_forward() {
    let document = json!({"version": "v1", "snapshot": {"clusters": []}});
    let admin = fake_admin(document.clone()).await;
    let (api, seen) = fake_api(admin).await;
    let url = format!("http://{api}").parse().expect("url");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");

    let forward = kubernetes::forward(&client, "productpage-v1-abc", "bookinfo", ADMIN_PORT)
        .await
        .expect("the port-forward opens");
    for _ in 0..2 {
        let got = fetch::json(forward.addr, "/config_dump")
            .await
            .expect("the admin port answers through the forward");
        assert_eq!(got, document);
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    // One port-forward opened eagerly (and used by the first request), one per request after.
    assert_eq!(
        seen,
        vec!["/api/v1/namespaces/bookinfo/pods/productpage-v1-abc/portforward?&ports=15000"; 2]
    );
}
