//! Upstream calls: a chain of echoes, directly and through a forward proxy, with forwarded
//! headers, failures reported in the answer, and `fail_on_error`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use http::{StatusCode, Uri};
use mesh_echo::{Behaviour, CallConfig, EchoConfig, EchoServer};
use support::proxy::{ForwardProxy, VIA};
use support::{get, h1_client, server_with};

async fn named(name: &str, version: &str) -> EchoServer {
    server_with(EchoConfig {
        name: name.into(),
        version: version.into(),
        ..EchoConfig::default()
    })
    .await
}

/// An echo calling `urls` with `calls` for the rest.
async fn caller(urls: &[String], calls: CallConfig) -> EchoServer {
    let urls = urls
        .iter()
        .map(|url| url.parse::<Uri>().expect("a valid URL"))
        .collect();
    server_with(EchoConfig {
        name: "productpage".into(),
        calls: CallConfig { urls, ..calls },
        ..EchoConfig::default()
    })
    .await
}

/// An address where nothing listens: bound, then released.
async fn closed_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("local addr")
}

const HEADERS: &[(&str, &str)] = &[
    ("end-user", "jason"),
    ("x-request-id", "req-1"),
    (
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    ("x-not-listed", "secret"),
];

#[tokio::test]
async fn a_chain_reports_each_hop_and_forwards_the_listed_headers() {
    let ratings = named("ratings", "v1").await;
    let reviews = caller(&[ratings.url("/ratings/0")], CallConfig::default()).await;
    let front = caller(&[reviews.url("/reviews/0?x=1")], CallConfig::default()).await;

    let answer = get(&h1_client(), &front.url("/productpage"), HEADERS).await;
    assert_eq!(answer.status, StatusCode::OK);
    let reply = answer.reply();
    assert_eq!(reply.calls.len(), 1);
    let call = &reply.calls[0];
    assert_eq!(call.url, reviews.url("/reviews/0?x=1"));
    assert_eq!((call.status, call.error.as_deref()), (Some(200), None));
    let hop = &call.body;
    assert_eq!(hop["service"], "productpage");
    assert_eq!(
        (hop["path"].as_str(), hop["query"].as_str()),
        (Some("/reviews/0"), Some("x=1"))
    );
    let last = &hop["calls"][0]["body"];
    assert_eq!(
        (last["service"].as_str(), last["version"].as_str()),
        (Some("ratings"), Some("v1"))
    );
    for seen in [&hop["headers"], &last["headers"]] {
        assert_eq!(seen["end-user"], "jason");
        assert_eq!(seen["x-request-id"], "req-1");
        assert_eq!(seen["traceparent"], HEADERS[2].1);
        assert!(seen.get("x-not-listed").is_none(), "{seen}");
    }
    assert_eq!(ratings.stats().path_requests("/ratings/0"), 1);
}

#[tokio::test]
async fn calls_go_through_the_proxy_in_absolute_form_over_kept_alive_connections() {
    let reviews = named("reviews", "v2").await;
    let proxy = ForwardProxy::start(&[("reviews", reviews.addr())]).await;
    let front = caller(
        &["http://reviews:9080/reviews/0".to_owned()],
        CallConfig {
            proxy: Some(format!("http://{}", proxy.addr).parse().expect("proxy URI")),
            ..CallConfig::default()
        },
    )
    .await;

    let client = h1_client();
    for _ in 0..2 {
        let reply = get(&client, &front.url("/"), HEADERS).await.reply();
        let call = &reply.calls[0];
        assert_eq!(call.status, Some(200), "{call:?}");
        assert_eq!(call.body["version"], "v2");
        assert_eq!(call.body["authority"], "reviews:9080");
        assert_eq!(call.body["headers"][VIA], "1");
        assert_eq!(call.body["headers"]["end-user"], "jason");
    }
    assert_eq!(proxy.targets(), ["http://reviews:9080/reviews/0"; 2]);
    assert_eq!(
        proxy.connections(),
        1,
        "the second call reuses the connection"
    );
}

#[tokio::test]
async fn no_proxy_hosts_are_called_directly() {
    let reviews = named("reviews", "v3").await;
    let proxy = ForwardProxy::start(&[]).await;
    let front = caller(
        &[reviews.url("/")],
        CallConfig {
            proxy: Some(format!("http://{}", proxy.addr).parse().expect("proxy URI")),
            no_proxy: vec!["127.0.0.1".to_owned()],
            ..CallConfig::default()
        },
    )
    .await;
    let reply = get(&h1_client(), &front.url("/"), &[]).await.reply();
    assert_eq!(reply.calls[0].body["version"], "v3");
    assert!(proxy.targets().is_empty());
}

#[tokio::test]
async fn a_failed_call_is_reported_and_fails_the_answer_only_when_asked() {
    let down = format!("http://{}/", closed_addr().await);
    let lenient = caller(std::slice::from_ref(&down), CallConfig::default()).await;
    let answer = get(&h1_client(), &lenient.url("/"), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let call = &answer.reply().calls[0];
    assert_eq!(call.status, None);
    assert!(call.body.is_null());
    let error = call.error.as_deref().expect("an error");
    assert!(error.contains("refused"), "{error}");

    let strict = caller(
        &[down],
        CallConfig {
            fail_on_error: true,
            ..CallConfig::default()
        },
    )
    .await;
    let answer = get(&h1_client(), &strict.url("/"), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(
        answer.reply().calls[0].error.is_some(),
        "the JSON still says why"
    );
}

#[tokio::test]
async fn upstream_5xx_is_reported_with_its_body() {
    let reviews = named("reviews", "v1").await;
    reviews.set_behaviour(Behaviour {
        status: StatusCode::SERVICE_UNAVAILABLE,
        ..reviews.behaviour()
    });
    let strict = caller(
        &[reviews.url("/")],
        CallConfig {
            fail_on_error: true,
            ..CallConfig::default()
        },
    )
    .await;
    let answer = get(&h1_client(), &strict.url("/"), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let call = &answer.reply().calls[0];
    assert_eq!((call.status, call.error.as_deref()), (Some(503), None));
    assert_eq!(call.body["version"], "v1");

    let lenient = caller(&[reviews.url("/")], CallConfig::default()).await;
    assert_eq!(
        get(&h1_client(), &lenient.url("/"), &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_slow_call_times_out() {
    let slow = server_with(EchoConfig {
        behaviour: Behaviour {
            delay: Duration::from_secs(5),
            ..Behaviour::default()
        },
        ..EchoConfig::default()
    })
    .await;
    let front = caller(
        &[slow.url("/")],
        CallConfig {
            timeout: Duration::from_millis(100),
            ..CallConfig::default()
        },
    )
    .await;
    let reply = get(&h1_client(), &front.url("/"), &[]).await.reply();
    let call = &reply.calls[0];
    assert_eq!(call.status, None);
    assert_eq!(call.error.as_deref(), Some("no answer within 100ms"));
    assert!(call.duration_ms >= 100, "{call:?}");
}

#[tokio::test]
async fn health_checks_make_no_calls() {
    let reviews = named("reviews", "v1").await;
    let front = caller(&[reviews.url("/")], CallConfig::default()).await;
    let answer = get(&h1_client(), &front.url("/healthz"), &[]).await;
    assert_eq!(answer.body, "ok");
    assert_eq!(reviews.stats().requests(), 0);
}

#[tokio::test]
async fn the_peer_is_the_last_uri_of_xfcc() {
    let server = named("reviews", "v1").await;
    let xfcc = "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/productpage";
    let reply = get(
        &h1_client(),
        &server.url("/"),
        &[("x-forwarded-client-cert", xfcc)],
    )
    .await
    .reply();
    assert_eq!(
        reply.peer.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/productpage")
    );
    let reply = get(&h1_client(), &server.url("/"), &[]).await.reply();
    assert_eq!(reply.peer, None);
}

#[tokio::test]
async fn https_calls_are_refused_at_start() {
    let config = EchoConfig {
        calls: CallConfig {
            urls: vec![Uri::from_static("https://reviews/")],
            ..CallConfig::default()
        },
        ..EchoConfig::default()
    };
    let err = mesh_echo::start(config)
        .await
        .expect_err("https is refused");
    assert!(err.to_string().contains("http://host"), "{err}");
}
