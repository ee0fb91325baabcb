//! Each knob, per request and as a server default, through real connections.

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use mesh_echo::{Behaviour, EchoConfig};
use support::{
    DEADLINE, connect, get, h1_client, h2_client, read_to_end, server, server_with, write,
};

#[tokio::test]
async fn status_header_sets_the_status_and_keeps_the_echo() {
    let server = server().await;
    let answer = get(&h1_client(), &server.url("/x"), &[("x-echo-status", "503")]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.reply().path, "/x");
    // The header beats the path.
    let answer = get(
        &h1_client(),
        &server.url("/status/500"),
        &[("x-echo-status", "201")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
}

#[tokio::test]
async fn delay_holds_the_answer() {
    let server = server().await;
    let client = h1_client();
    let delay = Duration::from_millis(200);
    let started = Instant::now();
    let answer = get(&client, &server.url("/"), &[("x-echo-delay", "200ms")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn fail_percent_fails_an_exact_evenly_spread_share() {
    let server = server().await;
    let client = h1_client();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let answer = get(&client, &server.url("/"), &[("x-echo-fail-percent", "50")]).await;
        statuses.push(answer.status);
    }
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(failed, 50);
    for (n, status) in statuses.iter().enumerate() {
        let expected = if n % 2 == 1 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        assert_eq!(*status, expected, "request {n}: every second one fails");
    }
}

#[tokio::test]
async fn fail_percent_as_a_server_default() {
    let server = server_with(EchoConfig {
        behaviour: Behaviour {
            fail_percent: 10,
            ..Behaviour::default()
        },
        ..EchoConfig::default()
    })
    .await;
    let client = h2_client();
    let mut failed = 0;
    for _ in 0..100 {
        if get(&client, &server.url("/"), &[]).await.status == StatusCode::SERVICE_UNAVAILABLE {
            failed += 1;
        }
    }
    assert_eq!(failed, 10);
    let answer = get(&client, &server.url("/"), &[("x-echo-fail-percent", "0")]).await;
    assert_eq!(answer.status, StatusCode::OK, "a request can opt out");
}

#[tokio::test]
async fn body_size_sends_exactly_that_many_bytes() {
    let server = server().await;
    for client in [h1_client(), h2_client()] {
        for size in [0usize, 1024, 100_000] {
            let value = size.to_string();
            let answer = get(&client, &server.url("/"), &[("x-echo-body-size", &value)]).await;
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.body.len(), size);
            let length = answer.headers.get("content-length");
            // HTTP/2 may leave out the length of an empty body; END_STREAM says it.
            let empty_h2 = size == 0 && answer.version == http::Version::HTTP_2;
            assert!(
                length.is_some_and(|l| l == value.as_str()) || (empty_h2 && length.is_none()),
                "{length:?} for {size}"
            );
            assert_eq!(answer.header("content-type"), "application/octet-stream");
        }
    }
}

#[tokio::test]
async fn close_ends_an_http1_connection_after_the_response() {
    let server = server().await;
    let mut stream = connect(server.addr()).await;
    write(
        &mut stream,
        b"GET /bye HTTP/1.1\r\nhost: echo\r\nx-echo-close: true\r\n\r\n",
    )
    .await;
    let response = String::from_utf8(read_to_end(&mut stream).await).expect("ASCII response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("connection: close\r\n"), "{response}");
    assert!(response.contains("\"path\":\"/bye\""), "{response}");
    let stats = server.stats();
    assert!(
        stats
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await
    );
}

#[tokio::test]
async fn close_sends_an_http2_connection_away() {
    let server = server().await;
    let stats = server.stats();
    let client = h2_client();
    let answer = get(&client, &server.url("/"), &[("x-echo-close", "true")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers.get("connection").is_none(),
        "not an HTTP/2 header"
    );
    assert!(
        stats
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await
    );

    get(&client, &server.url("/"), &[]).await;
    assert_eq!(
        stats.connections(),
        2,
        "the next request needed a new connection"
    );
}

#[tokio::test]
async fn behaviour_changes_at_runtime() {
    let server = server().await;
    let client = h1_client();
    assert_eq!(
        get(&client, &server.url("/"), &[]).await.status,
        StatusCode::OK
    );

    server.set_behaviour(Behaviour {
        status: StatusCode::GATEWAY_TIMEOUT,
        ..server.behaviour()
    });
    assert_eq!(
        get(&client, &server.url("/"), &[]).await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    let overridden = get(&client, &server.url("/"), &[("x-echo-status", "200")]).await;
    assert_eq!(
        overridden.status,
        StatusCode::OK,
        "a request header still wins"
    );
    let health = get(&client, &server.url("/healthz"), &[]).await;
    assert_eq!(health.status, StatusCode::OK, "health is not steered");

    server.set_behaviour(Behaviour::default());
    assert_eq!(
        get(&client, &server.url("/"), &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.stats().connections(),
        1,
        "no restart, same connection"
    );
}

#[tokio::test]
async fn server_defaults_apply_to_every_request() {
    let server = server_with(EchoConfig {
        behaviour: Behaviour {
            status: StatusCode::ACCEPTED,
            delay: Duration::from_millis(50),
            body_size: Some(3),
            ..Behaviour::default()
        },
        ..EchoConfig::default()
    })
    .await;
    let started = Instant::now();
    let answer = get(&h1_client(), &server.url("/"), &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        (answer.status, &answer.body[..]),
        (StatusCode::ACCEPTED, &b"xxx"[..])
    );
}
