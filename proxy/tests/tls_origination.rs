//! DestinationRule `tls.mode: SIMPLE` and `MUTUAL` with the real binary: the app speaks
//! plaintext to its proxy, which originates TLS to a server outside the mesh (a rustls
//! server here), verifying it against the user's CA file, its SNI name or
//! `subjectAltNames`, and presenting the user's client certificate for MUTUAL. Refusals
//! are 503 UF and counted by reason; a certificate file that cannot be read refuses the
//! snapshot and the last good one keeps serving. Certificates are made here with rcgen.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[allow(dead_code)]
#[path = "xds/fake_pilot.rs"]
mod fake_pilot;
#[path = "tls_origination/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ca::{TestCa, Validity};
use support::{DEADLINE, Proxy, get, metric_value};
use upstream::{TlsUpstream, server_config};

const FAILURES: &str = "mesh_upstream_tls_handshake_failures_total";

/// A CA, another one, and a directory for the PEM files the DestinationRules name.
struct Pki {
    ca: TestCa,
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mesh-tls-origination-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Self {
            ca: TestCa::root("egress root"),
            dir,
        };
        pki.write("ca.pem", &pki.ca.root_pem);
        pki.write(
            "other-ca.pem",
            &TestCa::root("someone else's root").root_pem,
        );
        pki
    }

    /// Writes `file` and returns its path.
    fn write(&self, file: &str, text: &str) -> String {
        let path = self.dir.join(file);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// A day's certificate for `names` from the CA: chain and key PEM.
    fn leaf(&self, names: &[&str]) -> (Vec<String>, String) {
        self.ca.leaf_pem(names, day())
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn day() -> Validity {
    Validity::from_now(Duration::from_secs(86_400))
}

/// A cluster of the proxy's snapshot: `host` on port 80 with one endpoint and this `tls`.
struct Cluster<'a> {
    host: &'a str,
    endpoint: SocketAddr,
    tls: String,
}

/// An HTTP listener `out` routing by Host to `http`'s clusters, and a TCP listener
/// `tcp-<i>` for each of `tcp`'s.
fn snapshot(version: &str, http: &[Cluster<'_>], tcp: &[Cluster<'_>]) -> String {
    let mut listeners =
        "- {name: out, address: \"127.0.0.1:0\", routeConfig: outbound}\n".to_owned();
    let mut hosts = String::new();
    let mut clusters = String::new();
    for c in http {
        let host = c.host;
        hosts.push_str(&format!(
            "  - name: {host}\n    domains: [{host}]\n    routes:\n    - name: {host}\n      route: [{{destination: {{host: {host}}}}}]\n"
        ));
    }
    for (i, c) in tcp.iter().enumerate() {
        listeners.push_str(&format!(
            "- {{name: tcp-{i}, address: \"127.0.0.1:0\", protocol: TCP, tcpRoute: [{{destination: {{host: {}}}}}]}}\n",
            c.host
        ));
    }
    for c in http.iter().chain(tcp) {
        clusters.push_str(&format!(
            "- host: {}\n  port: 80\n  endpoints: [{{address: \"{}\"}}]\n  trafficPolicy: {{tls: {}}}\n",
            c.host, c.endpoint, c.tls
        ));
    }
    format!(
        "version: \"{version}\"\nlisteners:\n{listeners}routeConfigs:\n- name: outbound\n  virtualHosts:\n{hosts}clusters:\n{clusters}"
    )
}

/// A GET through the proxy's `out` listener with Host `host`: status, flags, body.
async fn get_host(proxy: &Proxy, host: &str) -> (StatusCode, String, Bytes) {
    let out = proxy.listener("out").await;
    let (status, headers, body) = get(out, "/", &[("host", host)]).await;
    let flags = headers
        .get("x-mesh-response-flags")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, flags, body)
}

async fn failures(proxy: &Proxy, mode: &str, reason: &str) -> f64 {
    metric_value(proxy, FAILURES, &[("mode", mode), ("reason", reason)]).await
}

/// The `tls` view of cluster `host` on `/clusters`.
async fn cluster_tls(proxy: &Proxy, host: &str) -> serde_json::Value {
    let clusters = proxy.admin_json("/clusters").await;
    let name = format!("outbound|80||{host}");
    clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no cluster {name}: {clusters}"))["tls"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_verifies_the_server_by_ca_and_name_and_sends_the_sni() {
    let pki = Pki::new("simple");
    let (chain, key) = pki.leaf(&["api.example.com"]);
    let server = TlsUpstream::http(server_config(&chain, &key, None)).await;
    let (ca, other) = (pki.path("ca.pem"), pki.path("other-ca.pem"));
    let cluster = |host, tls: String| Cluster {
        host,
        endpoint: server.addr,
        tls,
    };
    let clusters = [
        cluster(
            "api.example.com",
            format!("{{mode: SIMPLE, caCertificates: {ca}}}"),
        ),
        cluster(
            "renamed.test",
            format!("{{mode: SIMPLE, caCertificates: {ca}, sni: api.example.com}}"),
        ),
        cluster(
            "pinned.test",
            format!(
                "{{mode: SIMPLE, caCertificates: {ca}, sni: internal.test, subjectAltNames: [api.example.com]}}"
            ),
        ),
        cluster(
            "skip.test",
            "{mode: SIMPLE, insecureSkipVerify: true}".into(),
        ),
        cluster(
            "other-ca.test",
            format!("{{mode: SIMPLE, caCertificates: {other}, sni: api.example.com}}"),
        ),
        cluster(
            "other-san.test",
            format!(
                "{{mode: SIMPLE, caCertificates: {ca}, sni: api.example.com, subjectAltNames: [billing.example.com]}}"
            ),
        ),
        cluster(
            "other-name.test",
            format!("{{mode: SIMPLE, caCertificates: {ca}}}"),
        ),
        cluster(
            "secret.test",
            "{mode: SIMPLE, credentialName: egress-ca}".into(),
        ),
    ];
    let proxy = Proxy::start(&snapshot("1", &clusters, &[]));

    // Verified, each sending the SNI it should; HTTP/1.1 offers no ALPN, as Istio's.
    for (host, sni) in [
        ("api.example.com", "api.example.com"),
        ("renamed.test", "api.example.com"),
        ("pinned.test", "internal.test"),
        ("skip.test", "skip.test"),
    ] {
        let (status, _, body) = get_host(&proxy, host).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body:?}");
        assert_eq!(body, "tls upstream");
        let seen = server.seen().pop().unwrap();
        assert_eq!(seen.sni.as_deref(), Some(sni), "{host}");
        assert_eq!(seen.alpn, None, "{host}");
        assert!(
            seen.client_certificate.is_none(),
            "SIMPLE shows no certificate"
        );
    }
    assert_eq!(server.requests(), vec![http::Version::HTTP_11; 4]);
    // TLS the rule originates is not mesh mTLS.
    let originated = [
        ("destination_service", "api.example.com"),
        ("connection_security_policy", "unknown"),
    ];
    let counted = metric_value(&proxy, "mesh_requests_total", &originated).await;
    assert_eq!(counted, 1.0, "SIMPLE is not reported as mutual_tls");

    // HTTP/2 from the app: h2 offered, and HTTP/2 to the server.
    let (status, body) = h2_get(proxy.listener("out").await, "api.example.com").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(
        server.seen().pop().unwrap().alpn.as_deref(),
        Some(&b"h2"[..])
    );
    assert_eq!(server.requests().pop(), Some(http::Version::HTTP_2));

    // Refused: another CA, no name the rule accepts, a certificate for another name, and
    // a Secret the proxy cannot read. Nothing reaches the server.
    let answered = server.requests().len();
    for host in [
        "other-ca.test",
        "other-san.test",
        "other-name.test",
        "secret.test",
    ] {
        let (status, flags, _) = get_host(&proxy, host).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
        assert_eq!(flags, "UF", "{host}");
    }
    assert_eq!(server.requests().len(), answered);
    assert!(failures(&proxy, "SIMPLE", "unknown_ca").await >= 1.0);
    assert!(failures(&proxy, "SIMPLE", "bad_name").await >= 2.0);

    // What is in force, per cluster.
    let api = cluster_tls(&proxy, "api.example.com").await;
    assert_eq!(api["mode"], "SIMPLE", "{api}");
    assert_eq!(api["sni"], "api.example.com");
    assert_eq!(api["caCertificates"], ca.as_str());
    assert_eq!(api["status"], "loaded");
    let secret = cluster_tls(&proxy, "secret.test").await;
    let status = secret["status"].as_str().unwrap();
    assert!(status.contains("credentialName \"egress-ca\""), "{secret}");
    let dump = proxy.admin_json("/config_dump").await;
    assert_eq!(
        dump["upstreamTls"]["outbound|80||pinned.test"]["subjectAltNames"][0],
        "api.example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_presents_the_configured_client_certificate() {
    let pki = Pki::new("mutual");
    let (chain, key) = pki.leaf(&["api.example.com"]);
    let server = TlsUpstream::http(server_config(&chain, &key, Some(&pki.ca.root_pem))).await;
    let (client_chain, client_key) = pki.leaf(&["frontend.example.com"]);
    let cert = pki.write("client.pem", &client_chain.concat());
    let key = pki.write("client-key.pem", &client_key);
    let ca = pki.path("ca.pem");
    let mutual = format!(
        "{{mode: MUTUAL, caCertificates: {ca}, clientCertificate: {cert}, privateKey: {key}, sni: api.example.com"
    );
    let cluster = |host, tls: String| Cluster {
        host,
        endpoint: server.addr,
        tls,
    };
    let clusters = [
        cluster("api.example.com", format!("{mutual}}}")),
        cluster(
            "simple.test",
            format!("{{mode: SIMPLE, caCertificates: {ca}, sni: api.example.com}}"),
        ),
        cluster(
            "other-san.test",
            format!("{mutual}, subjectAltNames: [billing.example.com]}}"),
        ),
    ];
    let proxy = Proxy::start(&snapshot("1", &clusters, &[]));

    let (status, _, body) = get_host(&proxy, "api.example.com").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let seen = server.seen().pop().unwrap();
    let presented = seen.client_certificate.expect("a client certificate");
    let configured = CertificateDer::from_pem_slice(client_chain[0].as_bytes()).unwrap();
    assert_eq!(presented, configured, "the configured certificate");
    assert_eq!(
        cluster_tls(&proxy, "api.example.com").await["clientCertificate"],
        cert
    );

    // The server requires a certificate SIMPLE does not show; MUTUAL still checks the
    // server's name.
    for host in ["simple.test", "other-san.test"] {
        let (status, _, _) = get_host(&proxy, host).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
    }
    assert_eq!(server.requests().len(), 1, "only MUTUAL was answered");
    assert!(failures(&proxy, "MUTUAL", "bad_name").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_file_that_cannot_be_loaded_refuses_the_snapshot() {
    let pki = Pki::new("reload");
    let (chain, key) = pki.leaf(&["api.example.com"]);
    let server = TlsUpstream::http(server_config(&chain, &key, None)).await;
    let good = format!("{{mode: SIMPLE, caCertificates: {}}}", pki.path("ca.pem"));
    let with = |version, tls: String| {
        snapshot(
            version,
            &[Cluster {
                host: "api.example.com",
                endpoint: server.addr,
                tls,
            }],
            &[],
        )
    };
    let proxy = Proxy::start(&with("1", good.clone()));
    assert_eq!(get_host(&proxy, "api.example.com").await.0, StatusCode::OK);

    let missing = pki.path("missing.pem");
    let bad = [
        (
            format!("{{mode: SIMPLE, caCertificates: {missing}}}"),
            format!(
                "cluster outbound|80||api.example.com: tls.caCertificates: cannot read {missing}: "
            ),
        ),
        (
            format!(
                "{{mode: MUTUAL, caCertificates: {}, clientCertificate: {}}}",
                pki.path("ca.pem"),
                pki.path("ca.pem")
            ),
            "tls.mode MUTUAL needs tls.clientCertificate and tls.privateKey".to_owned(),
        ),
    ];
    for (count, (tls, expected)) in bad.into_iter().enumerate() {
        proxy.write_snapshot(&with("2", tls));
        let dump = proxy
            .wait_status(|s| s["rejected_count"].as_u64() == Some(count as u64 + 1))
            .await;
        let reason = dump["status"]["last_rejection"].as_str().unwrap();
        assert!(reason.contains(&expected), "{reason}");
        assert_eq!(dump["version"], "1", "the last good snapshot keeps serving");
        assert_eq!(get_host(&proxy, "api.example.com").await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_pilot_an_unreadable_certificate_file_is_nacked_naming_it() {
    use mesh_proto::convert::encode_snapshot;
    use mesh_proto::discovery::v1 as pb;
    let pki = Pki::new("pilot");
    let (chain, key) = pki.leaf(&["api.example.com"]);
    let server = TlsUpstream::http(server_config(&chain, &key, None)).await;
    let push = |version: &str, ca: &str| {
        let text = snapshot(
            version,
            &[Cluster {
                host: "api.example.com",
                endpoint: server.addr,
                tls: format!("{{mode: SIMPLE, caCertificates: {ca}}}"),
            }],
            &[],
        );
        let snapshot = mesh_core::snapshot::Snapshot::from_yaml(&text).unwrap();
        pb::DiscoveryResponse {
            system_version_info: version.into(),
            nonce: format!("nonce-{version}"),
            resources: encode_snapshot(&snapshot),
            removed_resources: vec![],
            more: false,
        }
    };
    let mut pilot = fake_pilot::FakePilot::start().await;
    let proxy = Proxy::start_args(&["--pilot", &pilot.addr.to_string()]);
    pilot.next_request().await;
    let answer = pilot.push_and_answer(push("1", &pki.path("ca.pem"))).await;
    assert_eq!(answer.error_detail, None, "version 1 applies");
    assert_eq!(get_host(&proxy, "api.example.com").await.0, StatusCode::OK);

    let missing = pki.path("not-mounted.pem");
    let answer = pilot.push_and_answer(push("2", &missing)).await;
    let message = answer.error_detail.expect("a NACK").message;
    let expected = format!(
        "cluster outbound|80||api.example.com: tls.caCertificates: cannot read {missing}: "
    );
    assert!(message.contains(&expected), "{message}");
    let dump = proxy.admin_json("/config_dump").await;
    assert_eq!(dump["version"], "1", "the last good version keeps serving");
    assert_eq!(get_host(&proxy, "api.example.com").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_originates_simple_tls_without_alpn() {
    let pki = Pki::new("tcp");
    let (chain, key) = pki.leaf(&["db.example.com"]);
    let server = TlsUpstream::echo(server_config(&chain, &key, None)).await;
    let tls = |ca: &str| format!("{{mode: SIMPLE, caCertificates: {}}}", pki.path(ca));
    let tcp = [
        Cluster {
            host: "db.example.com",
            endpoint: server.addr,
            tls: tls("ca.pem"),
        },
        Cluster {
            host: "db.other.test",
            endpoint: server.addr,
            tls: format!(
                "{{mode: SIMPLE, caCertificates: {}, sni: db.example.com}}",
                pki.path("other-ca.pem")
            ),
        },
    ];
    let proxy = Proxy::start(&snapshot("1", &[], &tcp));

    let mut stream = TcpStream::connect(proxy.listener("tcp-0").await)
        .await
        .unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    let seen = server.seen().pop().unwrap();
    assert_eq!(seen.sni.as_deref(), Some("db.example.com"));
    assert_eq!(seen.alpn, None);

    // Another CA: the client's connection is closed, nothing echoed.
    let mut refused = TcpStream::connect(proxy.listener("tcp-1").await)
        .await
        .unwrap();
    let _ = refused.write_all(b"ping").await;
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(DEADLINE, refused.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(server.seen().len(), 1);
    assert!(failures(&proxy, "SIMPLE", "unknown_ca").await >= 1.0);
}

/// One HTTP/2 (prior knowledge) GET to `addr` with `:authority` `host`.
async fn h2_get(addr: SocketAddr, host: &str) -> (StatusCode, Bytes) {
    use http_body_util::BodyExt;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{host}/h2"))
        .body(http_body_util::Full::<Bytes>::default())
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}
