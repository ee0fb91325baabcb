//! Graceful shutdown: in-flight requests finish, then the port closes.

mod support;

use std::time::Duration;

use http::StatusCode;
use support::{DEADLINE, get, h1_client, h2_client, server};

#[tokio::test]
async fn in_flight_requests_finish_before_shutdown_returns() {
    for client in [h1_client(), h2_client()] {
        let server = server().await;
        let stats = server.stats();
        let addr = server.addr();
        let url = server.url("/slow");
        let request = tokio::spawn(async move {
            get(&client, &url, &[("x-echo-delay", "300ms")])
                .await
                .status
        });
        assert!(stats.wait_until(DEADLINE, |s| s.requests() == 1).await);

        tokio::time::timeout(DEADLINE, server.shutdown())
            .await
            .expect("shutdown finishes");
        let status = tokio::time::timeout(DEADLINE, request)
            .await
            .expect("answered");
        assert_eq!(
            status.expect("request task"),
            StatusCode::OK,
            "not cut short"
        );
        assert_eq!(stats.open_connections(), 0);
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the port is closed"
        );
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let server = server().await;
    get(&h1_client(), &server.url("/"), &[]).await;
    assert_eq!(
        server.stats().open_connections(),
        1,
        "the client keeps it pooled"
    );
    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown finishes");
}

#[tokio::test]
async fn dropping_the_server_closes_the_port() {
    let server = server().await;
    let stats = server.stats();
    let addr = server.addr();
    get(&h1_client(), &server.url("/"), &[]).await;
    drop(server);
    assert!(
        stats
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await
    );
    // The port closes in the background; poll for it, never longer than the deadline.
    let refused = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, refused)
        .await
        .expect("the port closes");
}
