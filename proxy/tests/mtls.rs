//! Workload identity and mTLS with real handshakes on loopback: identities seen on both
//! sides, refusals (foreign root, expired, unexpected identity, no certificate), rotation of
//! the certificate and of the roots. Certificates come from a test CA made here with rcgen;
//! the manager and the CA client are tested in `mtls/manager.rs` against a fake citadel.
//! Expired certificates are also refused by the real proxy, inbound (a STRICT listener) and
//! outbound (an upstream sidecar), and counted by reason.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "mtls/ca.rs"]
mod ca;
#[path = "mtls/citadel.rs"]
mod citadel;
#[allow(dead_code)]
#[path = "inbound/harness.rs"]
mod harness;
#[path = "mtls/manager.rs"]
mod manager;
#[path = "mtls/net.rs"]
mod net;
#[allow(dead_code)]
#[path = "tls_origination/upstream.rs"]
mod upstream;

use std::sync::Arc;

use ca::{TestCa, Validity};
use mesh_proxy::identity::{CertificateManager, Identity, TrustBundle};
use mesh_proxy::tls::{self, Mode, ServerVerifier, TlsError};
use net::{accept_one, client_reads_fail, exchange, handshake, server_serial, within};
use support::{echo, get, metric_value};

fn id(service_account: &str) -> Identity {
    Identity::new("cluster.local", "shop", service_account).unwrap()
}

#[tokio::test]
async fn two_workloads_handshake_and_each_sees_the_others_identity() {
    let root = TestCa::root("mesh root");
    // One side's certificate comes through an intermediate, as citadel's may.
    let intermediate = root.intermediate("citadel intermediate");
    let frontend = root.manager(&id("frontend"), &[&root]);
    let backend = intermediate.manager(&id("backend"), &[&root]);

    let done = handshake(&backend, Mode::Strict, &frontend, &[id("backend")]).await;
    let (mut server, client_id) = done.server.unwrap();
    let mut client = done.client.unwrap();

    assert_eq!(client_id, Some(id("frontend")));
    assert_eq!(tls::peer_identity(client.get_ref().1), Some(id("backend")));
    assert_eq!(tls::peer_identity(server.get_ref().1), Some(id("frontend")));
    let session = client.get_ref().1;
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    exchange(&mut client, &mut server, "GET / HTTP/1.1").await;
}

#[tokio::test]
async fn a_client_certificate_from_another_root_is_refused() {
    let root = TestCa::root("mesh root");
    let other = TestCa::root("someone else's root");
    let server = root.manager(&id("backend"), &[&root]);
    // The client trusts the server; its own certificate comes from the other root.
    let client = other.manager(&id("frontend"), &[&root, &other]);

    let mut done = handshake(&server, Mode::Strict, &client, &[id("backend")]).await;
    let error = done.server.expect_err("the server refuses").to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(client_reads_fail(done.client.as_mut().unwrap()).await);
}

#[tokio::test]
async fn expired_certificates_are_refused_on_both_sides() {
    let root = TestCa::root("mesh root");
    let fresh = root.manager(&id("fresh"), &[&root]);
    let expired = CertificateManager::new(id("stale"));
    expired
        .install(root.workload(&id("stale"), Validity::expired(), &[&root]))
        .unwrap();

    let mut as_client = handshake(&fresh, Mode::Strict, &expired, &[id("fresh")]).await;
    let error = as_client
        .server
        .expect_err("the server refuses")
        .to_string();
    assert!(error.contains("certificate expired"), "{error}");
    assert!(client_reads_fail(as_client.client.as_mut().unwrap()).await);

    let as_server = handshake(&expired, Mode::Strict, &fresh, &[id("stale")]).await;
    let error = as_server
        .client
        .expect_err("the client refuses")
        .to_string();
    assert!(error.contains("certificate expired"), "{error}");
    assert!(as_server.server.is_err());
}

#[tokio::test]
async fn a_server_that_is_not_an_expected_identity_is_refused_naming_both() {
    let root = TestCa::root("mesh root");
    let payments = root.manager(&id("payments"), &[&root]);
    let client = root.manager(&id("frontend"), &[&root]);

    let expected = [id("reviews"), id("ratings")];
    let done = handshake(&payments, Mode::Strict, &client, &expected).await;
    let error = done.client.expect_err("the client refuses");
    assert!(
        matches!(error, TlsError::UnexpectedIdentity(_)),
        "{error:?}"
    );
    let message = error.to_string();
    for name in ["sa/payments", "sa/reviews", "sa/ratings"] {
        assert!(
            message.contains(&format!("spiffe://cluster.local/ns/shop/{name}")),
            "{message}"
        );
    }
    assert!(
        done.server.is_err(),
        "the server sees the handshake fail too"
    );
}

#[tokio::test]
async fn strict_requires_a_client_certificate_and_permissive_does_not() {
    let root = TestCa::root("mesh root");
    let server = root.manager(&id("backend"), &[&root]);
    for (mode, admitted) in [(Mode::Strict, false), (Mode::Permissive, true)] {
        let (addr, accepted) = accept_one(tls::server_config(&server, mode)).await;
        let mut client = connect_without_certificate(addr, &server, &[id("backend")]).await;
        let accepted = within(accepted).await.unwrap();
        match accepted {
            Ok((mut stream, peer)) => {
                assert!(admitted, "{mode:?} admitted a client without a certificate");
                assert_eq!(peer, None);
                let alpn = stream.get_ref().1.alpn_protocol();
                assert_eq!(
                    alpn,
                    Some(&b"http/1.1"[..]),
                    "the client offered only HTTP/1.1"
                );
                exchange(&mut client, &mut stream, "plain client").await;
            }
            Err(error) => {
                assert!(!admitted, "{mode:?} refused: {error}");
                assert!(
                    error.to_string().contains("peer sent no certificates"),
                    "{error}"
                );
                assert!(client_reads_fail(&mut client).await);
            }
        }
    }
}

#[tokio::test]
async fn without_a_certificate_yet_connect_says_so() {
    let waiting = CertificateManager::new(id("frontend"));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stream = tokio::net::TcpStream::connect(tcp.local_addr().unwrap())
        .await
        .unwrap();
    let error = tls::connect(stream, &waiting, &[id("backend")])
        .await
        .err()
        .unwrap();
    assert!(matches!(error, TlsError::NoCertificate), "{error:?}");
}

#[tokio::test]
async fn after_rotation_new_handshakes_present_the_new_certificate_and_old_connections_go_on() {
    let root = TestCa::root("mesh root");
    let server = root.manager(&id("backend"), &[&root]);
    let client = root.manager(&id("frontend"), &[&root]);
    let first_serial = server.current().unwrap().leaf().serial.clone();

    let before = handshake(&server, Mode::Strict, &client, &[id("backend")]).await;
    let (mut old_server, _) = before.server.unwrap();
    let mut old_client = before.client.unwrap();
    assert_eq!(server_serial(&old_client), first_serial);

    let day = Validity::from_now(std::time::Duration::from_secs(86_400));
    let rotated = server
        .install(root.workload(&id("backend"), day, &[&root]))
        .unwrap();
    assert_ne!(rotated.leaf().serial, first_serial);

    let after = handshake(&server, Mode::Strict, &client, &[id("backend")]).await;
    let (mut new_server, _) = after.server.unwrap();
    let mut new_client = after.client.unwrap();
    assert_eq!(server_serial(&new_client), rotated.leaf().serial);
    exchange(&mut new_client, &mut new_server, "on the new certificate").await;
    exchange(&mut old_client, &mut old_server, "still on the old one").await;
}

#[tokio::test]
async fn during_a_root_rotation_both_roots_are_trusted_and_after_it_only_the_new() {
    let old = TestCa::root("old root");
    let new = TestCa::root("new root");
    let old_server = old.manager(&id("legacy"), &[&old, &new]);
    let new_server = new.manager(&id("modern"), &[&old, &new]);
    let client = new.manager(&id("frontend"), &[&old, &new]);
    let old_client = old.manager(&id("frontend"), &[&old, &new]);

    for (server, name) in [(&old_server, "legacy"), (&new_server, "modern")] {
        let done = handshake(server, Mode::Strict, &client, &[id(name)]).await;
        assert!(
            done.client.is_ok() && done.server.is_ok(),
            "{name} during the rotation"
        );
    }
    let done = handshake(&new_server, Mode::Strict, &old_client, &[id("modern")]).await;
    assert!(done.server.is_ok(), "an old client during the rotation");

    let only_new = TrustBundle::new(vec![new.cert.clone()]).unwrap();
    for manager in [&client, &new_server] {
        let cert = manager.current().unwrap().with_bundle(only_new.clone());
        manager.install(cert).unwrap();
    }
    let refused = handshake(&old_server, Mode::Strict, &client, &[id("legacy")]).await;
    let error = refused
        .client
        .expect_err("an old server after the rotation")
        .to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
    let refused = handshake(&new_server, Mode::Strict, &old_client, &[id("modern")]).await;
    let error = refused
        .server
        .expect_err("an old client after the rotation")
        .to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
    let done = handshake(&new_server, Mode::Strict, &client, &[id("modern")]).await;
    assert!(
        done.client.is_ok() && done.server.is_ok(),
        "new with new after the rotation"
    );
}

/// A TLS client that checks the server as the mesh does but has no certificate to offer,
/// and speaks only HTTP/1.1.
async fn connect_without_certificate(
    addr: std::net::SocketAddr,
    trusting: &Arc<CertificateManager>,
    expected: &[Identity],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = ServerVerifier {
        manager: trusting.clone(),
        expected: expected.to_vec(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("backend").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    within(connector.connect(name, tcp)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_listener_refuses_an_expired_client_certificate_and_counts_it() {
    let app = echo("v1").await;
    let mesh = harness::Mesh::start(&harness::http_snapshot("STRICT", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;
    let expired = CertificateManager::new(id("web"));
    expired
        .install(
            mesh.root
                .workload(&id("web"), Validity::expired(), &[&mesh.root]),
        )
        .unwrap();

    let refused = harness::mtls_get(addr, &expired, "/hello", &[]).await;
    assert!(
        refused.is_err(),
        "an expired certificate answered: {refused:?}"
    );
    let counted = [("listener", "in"), ("reason", "expired")];
    harness::eventually("the refusal is counted as expired", || async {
        metric_value(
            &mesh.proxy,
            "mesh_inbound_tls_handshake_failures_total",
            &counted,
        )
        .await
            == 1.0
    })
    .await;

    // The same root, valid now: admitted, so the refusal was the date.
    let fresh = mesh.client("web");
    let (status, _) = harness::mtls_get(addr, &fresh, "/hello", &[])
        .await
        .unwrap();
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        app.stats().requests(),
        1,
        "the expired client never reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_side_refuses_an_upstream_whose_certificate_expired() {
    // Two upstream sidecars, whose certificates are installed once the mesh's root exists:
    // each handshake reads the manager's certificate of the moment.
    let (stale_certs, fresh_certs) = (
        CertificateManager::new(id("reviews")),
        CertificateManager::new(id("reviews")),
    );
    let serve = |m: &Arc<CertificateManager>| {
        upstream::TlsUpstream::http(tls::server_config(m, Mode::Permissive))
    };
    let (expired, fresh) = (serve(&stale_certs).await, serve(&fresh_certs).await);
    let cluster = |host: &str, endpoint: std::net::SocketAddr| {
        format!(
            "- host: {host}\n  port: 80\n  endpoints: [{{address: \"{endpoint}\", labels: {{security.istio.io/tlsMode: istio}}, identity: \"{}\"}}]\n",
            id("reviews")
        )
    };
    let route = |host: &str| {
        format!(
            "  - {{name: {host}, domains: [{host}], routes: [{{name: {host}, route: [{{destination: {{host: {host}}}}}]}}]}}\n"
        )
    };
    let text = format!(
        "version: \"1\"\nlisteners:\n- {{name: out, address: \"127.0.0.1:0\", routeConfig: outbound}}\nrouteConfigs:\n- name: outbound\n  virtualHosts:\n{}{}clusters:\n{}{}",
        route("stale"),
        route("fresh"),
        cluster("stale", expired.addr),
        cluster("fresh", fresh.addr)
    );
    let mesh = harness::Mesh::start(&text).await;
    let day = Validity::from_now(std::time::Duration::from_secs(86_400));
    for (manager, validity) in [(&stale_certs, Validity::expired()), (&fresh_certs, day)] {
        let cert = mesh.root.workload(&id("reviews"), validity, &[&mesh.root]);
        manager.install(cert).unwrap();
    }
    let out = mesh.proxy.listener("out").await;

    let (status, headers, _) = get(out, "/", &[("host", "stale")]).await;
    assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-mesh-response-flags"], "UF");
    assert!(expired.requests().is_empty(), "nothing was sent to it");
    let counted = [("mode", "ISTIO_MUTUAL"), ("reason", "expired")];
    let failures = "mesh_upstream_tls_handshake_failures_total";
    assert!(metric_value(&mesh.proxy, failures, &counted).await >= 1.0);

    let (status, _, _) = get(out, "/", &[("host", "fresh")]).await;
    assert_eq!(status, http::StatusCode::OK, "the same root, valid now");
    assert_eq!(fresh.requests().len(), 1);
}
