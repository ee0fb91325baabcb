//! The gRPC Echo service on the HTTP port: what it answers, and the knobs as gRPC statuses.

mod support;

use http::StatusCode;
use mesh_echo::grpc::pb::EchoRequest;
use mesh_echo::grpc::pb::echo_client::EchoClient;
use mesh_echo::{Behaviour, EchoConfig, EchoServer};
use support::{DEADLINE, get, h1_client, h2_client, server_with};
use tonic::Code;
use tonic::transport::Channel;

async fn reviews(version: &str) -> EchoServer {
    server_with(EchoConfig {
        name: "reviews".into(),
        version: version.into(),
        hostname: "pod-r".into(),
        ..EchoConfig::default()
    })
    .await
}

async fn client(server: &EchoServer) -> EchoClient<Channel> {
    let connect = EchoClient::connect(format!("http://{}", server.addr()));
    tokio::time::timeout(DEADLINE, connect)
        .await
        .expect("connected before the deadline")
        .expect("connect")
}

/// A request for `message` with `metadata` pairs.
fn request(
    message: &str,
    metadata: &[(&'static str, &'static str)],
) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(EchoRequest {
        message: message.to_owned(),
    });
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("metadata value"));
    }
    request
}

async fn echo(
    client: &mut EchoClient<Channel>,
    request: tonic::Request<EchoRequest>,
) -> Result<tonic::Response<mesh_echo::grpc::pb::EchoReply>, tonic::Status> {
    tokio::time::timeout(DEADLINE, client.echo(request))
        .await
        .expect("answered before the deadline")
}

fn version(metadata: &tonic::metadata::MetadataMap) -> &str {
    metadata
        .get("x-echo-version")
        .and_then(|value| value.to_str().ok())
        .expect("x-echo-version")
}

#[tokio::test]
async fn answers_with_who_answered_and_the_metadata() {
    let server = reviews("v2").await;
    let mut client = client(&server).await;
    let xfcc = "By=spiffe://td/ns/a/sa/reviews;URI=spiffe://td/ns/a/sa/productpage";
    let response = echo(
        &mut client,
        request(
            "hi",
            &[("x-request-id", "abc"), ("x-forwarded-client-cert", xfcc)],
        ),
    )
    .await
    .expect("OK");
    assert_eq!(version(response.metadata()), "v2");
    let reply = response.into_inner();
    assert_eq!(reply.message, "hi");
    assert_eq!(
        (reply.service.as_str(), reply.version.as_str()),
        ("reviews", "v2")
    );
    assert_eq!(reply.hostname, "pod-r");
    assert_eq!(reply.metadata["x-request-id"], "abc");
    assert_eq!(reply.peer, "spiffe://td/ns/a/sa/productpage");
    assert_eq!(server.stats().path_requests("/mesh.echo.v1.Echo/Echo"), 1);
}

#[tokio::test]
async fn the_fail_knob_is_unavailable_and_spread_like_http() {
    let server = reviews("v1").await;
    let mut client = client(&server).await;
    let all = echo(&mut client, request("", &[("x-echo-fail-percent", "100")]))
        .await
        .expect_err("fails");
    assert_eq!(all.code(), Code::Unavailable);
    assert_eq!(version(all.metadata()), "v1", "errors say who answered too");

    // 50%, server-wide: every second call fails, so a retry of a failed call succeeds. A
    // fresh server, since the calls above advanced the fail schedule.
    let server = server_with(EchoConfig {
        behaviour: Behaviour {
            fail_percent: 50,
            ..Behaviour::default()
        },
        ..EchoConfig::default()
    })
    .await;
    let mut client = self::client(&server).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let result = echo(&mut client, request("", &[])).await;
        codes.push(result.err().map_or(Code::Ok, |status| status.code()));
    }
    assert_eq!(
        codes,
        [Code::Ok, Code::Unavailable, Code::Ok, Code::Unavailable]
    );
}

#[tokio::test]
async fn status_knobs_become_grpc_statuses() {
    let server = reviews("v1").await;
    let mut client = client(&server).await;
    let cases: [(&[(&'static str, &'static str)], Code); 4] = [
        (&[("x-echo-status", "504")], Code::Unavailable),
        (&[("x-echo-status", "404")], Code::Unimplemented),
        (&[("x-echo-grpc-status", "8")], Code::ResourceExhausted),
        (&[("x-echo-delay", "soon")], Code::InvalidArgument),
    ];
    for (metadata, code) in cases {
        let status = echo(&mut client, request("", metadata))
            .await
            .expect_err("a failure");
        assert_eq!(status.code(), code, "{metadata:?}: {status:?}");
    }
    server.set_behaviour(Behaviour {
        status: StatusCode::SERVICE_UNAVAILABLE,
        ..server.behaviour()
    });
    let status = echo(&mut client, request("", &[]))
        .await
        .expect_err("a failure");
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "the server-wide status too"
    );
}

#[tokio::test]
async fn http_and_grpc_share_the_port() {
    let server = reviews("v3").await;
    let mut grpc = client(&server).await;
    let h1 = get(&h1_client(), &server.url("/x"), &[]).await;
    assert_eq!(h1.reply().version, "v3");
    let h2 = get(&h2_client(), &server.url("/x"), &[]).await;
    assert_eq!(h2.reply().protocol, "HTTP/2.0");
    let reply = echo(&mut grpc, request("", &[]))
        .await
        .expect("OK")
        .into_inner();
    assert_eq!(reply.version, "v3");
    let stats = server.stats();
    assert_eq!((stats.path_requests("/x"), stats.requests()), (2, 3));
}
