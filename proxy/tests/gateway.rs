//! Gateway mode with the real binary and real clients (curl, rustls, tonic): host-based
//! routing of several domains to different versions, a `*` host, httpsRedirect, TLS
//! termination where the SNI picks the certificate, MUTUAL, and PASSTHROUGH to a TLS
//! upstream whose own certificate the client sees. Certificates are made with rcgen.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[path = "gateway/curl.rs"]
mod curl;
#[allow(dead_code)]
#[path = "tls_origination/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ca::{TestCa, Validity};
use support::{Proxy, echo};
use upstream::{TlsUpstream, server_config};

/// A CA and a directory for the PEM files the Gateway servers name.
struct Pki {
    ca: TestCa,
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mesh-gateway-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Self {
            ca: TestCa::root("gateway root"),
            dir,
        };
        pki.write("ca.pem", &pki.ca.root_pem);
        pki
    }

    fn write(&self, file: &str, text: &str) -> String {
        let path = self.dir.join(file);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn ca_path(&self) -> String {
        self.dir.join("ca.pem").to_string_lossy().into_owned()
    }

    /// A certificate for `names` written as `<file>.pem` and `<file>-key.pem`; the
    /// `serverCertificate`/`privateKey` pair for a snapshot.
    fn leaf(&self, file: &str, names: &[&str]) -> String {
        let (chain, key) = self
            .ca
            .leaf_pem(names, Validity::from_now(Duration::from_secs(86_400)));
        let cert = self.write(&format!("{file}.pem"), &chain.concat());
        let key = self.write(&format!("{file}-key.pem"), &key);
        format!("serverCertificate: {cert}, privateKey: {key}")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cluster(host: &str, endpoint: SocketAddr) -> String {
    format!("- {{host: {host}, port: 80, endpoints: [{{address: \"{endpoint}\"}}]}}\n")
}

/// A virtual host sending `domains` to `cluster`. Gateways list each host also as
/// `host:*`, as Istio does, so a Host header with the port matches it too.
fn vhost(name: &str, host: &str, cluster: &str) -> String {
    let domains = if host == "*" {
        r#"["*"]"#.to_owned()
    } else {
        format!("[{host}, \"{host}:*\"]")
    };
    format!(
        "  - name: {name}\n    domains: {domains}\n    routes:\n    - route: [{{destination: {{host: {cluster}}}}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_go_to_two_versions_and_star_catches_the_rest() {
    let (v1, v2, v3) = (echo("v1").await, echo("v2").await, echo("v3").await);
    let snapshot = format!(
        "listeners:\n- {{name: http, address: \"127.0.0.1:0\", routeConfig: http.80}}\nrouteConfigs:\n- name: http.80\n  virtualHosts:\n{}{}{}clusters:\n{}{}{}",
        vhost("a", "a.example.com", "shop-v1"),
        vhost("b", "b.example.com", "shop-v2"),
        vhost("any", "*", "shop-v3"),
        cluster("shop-v1", v1.addr()),
        cluster("shop-v2", v2.addr()),
        cluster("shop-v3", v3.addr()),
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("http").await;
    for (name, version) in [
        ("a.example.com", "v1"),
        ("b.example.com", "v2"),
        ("anything.else.org", "v3"),
    ] {
        let reply = tokio::task::spawn_blocking(move || curl::http(name, addr, "/"))
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{name}: {}", reply.stderr);
        assert!(
            reply.body.contains(&format!("\"version\":\"{version}\"")),
            "{name} should reach {version}: {}",
            reply.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_answers_301_to_the_same_url_over_https() {
    let snapshot = "listeners:\n- {name: http, address: \"127.0.0.1:0\", routeConfig: http.80}\nrouteConfigs:\n- name: http.80\n  virtualHosts:\n  - name: a\n    domains: [a.example.com]\n    routes:\n    - redirect: {scheme: https, redirectCode: 301}\n";
    let proxy = Proxy::start(snapshot);
    let addr = proxy.listener("http").await;
    let (status, headers, _) =
        support::get(addr, "/cart?item=1", &[("host", "a.example.com")]).await;
    assert_eq!(status, 301);
    assert_eq!(
        headers["location"].to_str().unwrap(),
        "https://a.example.com/cart?item=1"
    );
}

/// An HTTPS port with two SIMPLE servers, each with its own certificate.
fn two_certificates(pki: &Pki, v1: SocketAddr, v2: SocketAddr) -> String {
    let (a, b) = (
        pki.leaf("a", &["a.example.com"]),
        pki.leaf("b", &["b.example.com"]),
    );
    format!(
        "listeners:\n- name: https\n  address: \"127.0.0.1:0\"\n  routeConfig: https.443\n  tls:\n    servers:\n    - {{hosts: [a.example.com], tls: {{mode: SIMPLE, {a}}}}}\n    - {{hosts: [b.example.com], tls: {{mode: SIMPLE, {b}}}}}\nrouteConfigs:\n- name: https.443\n  virtualHosts:\n{}{}clusters:\n{}{}",
        vhost("a", "a.example.com", "shop-v1"),
        vhost("b", "b.example.com", "shop-v2"),
        cluster("shop-v1", v1),
        cluster("shop-v2", v2),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_the_host_the_version() {
    let pki = Pki::new("sni");
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let proxy = Proxy::start(&two_certificates(&pki, v1.addr(), v2.addr()));
    let addr = proxy.listener("https").await;
    for (name, version) in [("a.example.com", "v1"), ("b.example.com", "v2")] {
        let ca = pki.ca_path();
        let reply = tokio::task::spawn_blocking(move || curl::https(name, addr, "/", &ca, &[]))
            .await
            .unwrap();
        assert_eq!(reply.exit, 0, "{name}: {}", reply.stderr);
        assert_eq!(reply.status, 200, "{name}");
        assert!(
            reply.body.contains(&format!("\"version\":\"{version}\"")),
            "{}",
            reply.body
        );
        // The served leaf names this host and not the other one.
        let leaf = reply
            .certs
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap();
        assert!(leaf.contains(&format!("DNS:{name}")), "{name}: {leaf}");
        let other = if name.starts_with('a') { "b" } else { "a" };
        assert!(
            !leaf.contains(&format!("DNS:{other}.example.com")),
            "{leaf}"
        );
    }
    // A name no server answers gets no handshake at all.
    let ca = pki.ca_path();
    let reply =
        tokio::task::spawn_blocking(move || curl::https("c.example.com", addr, "/", &ca, &[]))
            .await
            .unwrap();
    assert_ne!(reply.exit, 0, "an unknown SNI must not be served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new("mutual");
    let v1 = echo("v1").await;
    let server = pki.leaf("server", &["a.example.com"]);
    let ca = pki.ca_path();
    let snapshot = format!(
        "listeners:\n- name: https\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {{hosts: [\"*\"], tls: {{mode: MUTUAL, {server}, caCertificates: {ca}}}}}\nrouteConfigs:\n- name: r\n  virtualHosts:\n{}clusters:\n{}",
        vhost("a", "*", "shop-v1"),
        cluster("shop-v1", v1.addr()),
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("https").await;
    let (ca1, ca2) = (ca.clone(), ca.clone());
    let without =
        tokio::task::spawn_blocking(move || curl::https("a.example.com", addr, "/", &ca1, &[]))
            .await
            .unwrap();
    assert_ne!(without.status, 200, "no client certificate must be refused");

    let (chain, key) = pki.ca.leaf_pem(
        &["client.example.com"],
        Validity::from_now(Duration::from_secs(3600)),
    );
    let cert = pki.write("client.pem", &chain.concat());
    let key = pki.write("client-key.pem", &key);
    let with = tokio::task::spawn_blocking(move || {
        curl::https(
            "a.example.com",
            addr,
            "/",
            &ca2,
            &["--cert", &cert, "--key", &key],
        )
    })
    .await
    .unwrap();
    assert_eq!(with.exit, 0, "{}", with.stderr);
    assert_eq!(with.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_reaches_the_upstream_whose_certificate_the_client_sees() {
    let pki = Pki::new("passthrough");
    let (chain, key) = pki.ca.leaf_pem(
        &["secure.example.com"],
        Validity::from_now(Duration::from_secs(3600)),
    );
    let upstream = TlsUpstream::http(server_config(&chain, &key, None)).await;
    // The gateway's own server for other names must not be what the client gets.
    let own = pki.leaf("own", &["other.example.com"]);
    let v1 = echo("v1").await;
    let snapshot = format!(
        "listeners:\n- name: tls\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {{hosts: [secure.example.com], tls: {{mode: PASSTHROUGH}}}}\n    - {{hosts: [other.example.com], tls: {{mode: SIMPLE, {own}}}}}\n    tlsRoutes:\n    - match: [{{sniHosts: [secure.example.com]}}]\n      route: [{{destination: {{host: secure-upstream}}}}]\nrouteConfigs:\n- name: r\n  virtualHosts:\n{}clusters:\n{}{}",
        vhost("other", "other.example.com", "shop-v1"),
        cluster("secure-upstream", upstream.addr),
        cluster("shop-v1", v1.addr()),
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("tls").await;
    let ca = pki.ca_path();
    let reply =
        tokio::task::spawn_blocking(move || curl::https("secure.example.com", addr, "/", &ca, &[]))
            .await
            .unwrap();
    assert_eq!(reply.exit, 0, "{}", reply.stderr);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "tls upstream");
    assert!(
        reply.certs.contains("DNS:secure.example.com"),
        "{}",
        reply.certs
    );
    // The upstream itself completed the handshake, with the client's SNI.
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("secure.example.com"));

    // The terminating server on the same port still serves its own name.
    let ca = pki.ca_path();
    let own =
        tokio::task::spawn_blocking(move || curl::https("other.example.com", addr, "/", &ca, &[]))
            .await
            .unwrap();
    assert_eq!(own.status, 200, "{}", own.stderr);
    assert!(own.body.contains("\"version\":\"v1\""), "{}", own.body);
    assert_eq!(upstream.seen().len(), 1, "not passed through");
}

#[test]
fn a_server_with_neither_files_nor_credential_is_a_refused_snapshot_naming_the_field() {
    let snapshot = "listeners:\n- name: https\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {hosts: [a.example.com], tls: {mode: MUTUAL, serverCertificate: /c.pem}}\nrouteConfigs:\n- {name: r}\n";
    let error = mesh_core::snapshot::Snapshot::from_yaml(snapshot)
        .map(|s| mesh_core::compile::compile(&s))
        .unwrap()
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("listeners[0].tls.servers[0].tls.privateKey"),
        "{text}"
    );
    assert!(
        text.contains("listeners[0].tls.servers[0].tls.caCertificates"),
        "{text}"
    );
    assert!(!text.contains("serverCertificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_name_is_read_from_the_mounted_secret() {
    let pki = Pki::new("credential");
    // Laid out as a kubernetes.io/tls Secret mounted at <credentials-dir>/<name>.
    let secret = pki.dir.join("credentials").join("shop-cert");
    std::fs::create_dir_all(&secret).unwrap();
    let (chain, key) = pki.ca.leaf_pem(
        &["a.example.com"],
        Validity::from_now(Duration::from_secs(3600)),
    );
    std::fs::write(secret.join("tls.crt"), chain.concat()).unwrap();
    std::fs::write(secret.join("tls.key"), key).unwrap();
    let v1 = echo("v1").await;
    let snapshot = format!(
        "listeners:\n- name: https\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {{hosts: [a.example.com], tls: {{mode: SIMPLE, credentialName: shop-cert}}}}\n    - {{hosts: [b.example.com], tls: {{mode: SIMPLE, credentialName: missing}}}}\nrouteConfigs:\n- name: r\n  virtualHosts:\n{}clusters:\n{}",
        vhost("any", "*", "shop-v1"),
        cluster("shop-v1", v1.addr()),
    );
    let dir = pki.dir.join("credentials");
    let proxy = Proxy::start_with(&snapshot, &["--credentials-dir", dir.to_str().unwrap()]);
    let addr = proxy.listener("https").await;
    let (ca_a, ca_b) = (pki.ca_path(), pki.ca_path());
    let served =
        tokio::task::spawn_blocking(move || curl::https("a.example.com", addr, "/", &ca_a, &[]))
            .await
            .unwrap();
    assert_eq!(served.status, 200, "{}", served.stderr);
    assert!(
        served.certs.contains("DNS:a.example.com"),
        "{}",
        served.certs
    );
    // A Secret that is not mounted: that server refuses, the other one serves on.
    let refused =
        tokio::task::spawn_blocking(move || curl::https("b.example.com", addr, "/", &ca_b, &[]))
            .await
            .unwrap();
    assert_ne!(refused.exit, 0, "no certificate, no handshake");

    // The missing Secret is mounted, and the other one rotated: both are picked up
    // without a config change.
    let mounted = pki.dir.join("credentials").join("missing");
    std::fs::create_dir_all(&mounted).unwrap();
    let validity = Validity::from_now(Duration::from_secs(3600));
    let (chain_b, key_b) = pki.ca.leaf_pem(&["b.example.com"], validity);
    std::fs::write(mounted.join("tls.key"), key_b).unwrap();
    std::fs::write(mounted.join("tls.crt"), chain_b.concat()).unwrap();
    let (chain_a, key_a) = pki.ca.leaf_pem(&["a.example.com"], validity);
    std::fs::write(secret.join("tls.key"), key_a).unwrap();
    std::fs::write(secret.join("tls.crt"), chain_a.concat()).unwrap();
    let before = served.certs;
    let ca = pki.ca_path();
    let rotated = wait_until("the new certificates are served", move || {
        let b = curl::https("b.example.com", addr, "/", &ca, &[]);
        let a = curl::https("a.example.com", addr, "/", &ca, &[]);
        (b.status == 200 && a.status == 200 && a.certs != before).then_some(a)
    })
    .await;
    assert!(
        rotated.certs.contains("DNS:a.example.com"),
        "{}",
        rotated.certs
    );
}

/// Runs `check` (blocking: it may run curl) until it yields a value; panics after
/// [`support::DEADLINE`].
async fn wait_until<T: Send + 'static>(
    what: &str,
    check: impl Fn() -> Option<T> + Send + Sync + 'static,
) -> T {
    let check = std::sync::Arc::new(check);
    let deadline = std::time::Instant::now() + support::DEADLINE;
    loop {
        let attempt = check.clone();
        if let Some(value) = tokio::task::spawn_blocking(move || attempt())
            .await
            .unwrap()
        {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_gateway_originates_tls_to_an_https_upstream() {
    let pki = Pki::new("egress");
    let (chain, key) = pki.ca.leaf_pem(
        &["api.external.com"],
        Validity::from_now(Duration::from_secs(3600)),
    );
    let upstream = TlsUpstream::http(server_config(&chain, &key, None)).await;
    let ca = pki.ca_path();
    // The egress gateway's plain HTTP port; the DestinationRule's SIMPLE TLS to the
    // external host, verified against its CA with the host as SNI.
    let snapshot = format!(
        "listeners:\n- {{name: egress, address: \"127.0.0.1:0\", routeConfig: http.80}}\nrouteConfigs:\n- name: http.80\n  virtualHosts:\n{}clusters:\n- host: api.external.com\n  port: 443\n  endpoints: [{{address: \"{}\"}}]\n  trafficPolicy: {{tls: {{mode: SIMPLE, caCertificates: {ca}, sni: api.external.com}}}}\n",
        vhost("api", "api.external.com", "api.external.com"),
        upstream.addr,
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("egress").await;
    let reply = tokio::task::spawn_blocking(move || curl::http("api.external.com", addr, "/"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.stderr);
    assert_eq!(reply.body, "tls upstream");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("api.external.com"));
}

/// A tonic connector that dials `addr` and speaks TLS (ALPN `h2`) for `name`, trusting
/// `ca`: a gRPC client of an HTTPS gateway.
#[derive(Clone)]
struct TlsConnector {
    addr: SocketAddr,
    name: &'static str,
    tls: tokio_rustls::TlsConnector,
}

impl TlsConnector {
    fn new(addr: SocketAddr, name: &'static str, ca_pem: &str) -> Self {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Self {
            addr,
            name,
            tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        }
    }
}

type Connecting = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = std::io::Result<
                    hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
                >,
            > + Send,
    >,
>;

impl tonic::codegen::Service<tonic::codegen::http::Uri> for TlsConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(this.addr).await?;
            let name = rustls::pki_types::ServerName::try_from(this.name).unwrap();
            let tls = this.tls.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_through_an_https_gateway_is_http2_end_to_end() {
    use mesh_echo::grpc::pb::EchoRequest;
    use mesh_echo::grpc::pb::echo_client::EchoClient;

    let pki = Pki::new("grpc");
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let proxy = Proxy::start(&two_certificates(&pki, v1.addr(), v2.addr()));
    let addr = proxy.listener("https").await;
    let connector = TlsConnector::new(addr, "b.example.com", &pki.ca.root_pem);
    let endpoint = tonic::transport::Endpoint::from_static("https://b.example.com");
    let channel = tokio::time::timeout(
        support::DEADLINE,
        endpoint.connect_with_connector(connector),
    )
    .await
    .expect("connected in time")
    .expect("TLS and HTTP/2 to the gateway");
    let mut client = EchoClient::new(channel);
    let reply = tokio::time::timeout(
        support::DEADLINE,
        client.echo(EchoRequest {
            message: "over TLS".into(),
        }),
    )
    .await
    .expect("answered in time")
    .expect("gRPC call succeeds");
    let version = reply
        .metadata()
        .get("x-echo-version")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        version, "v2",
        "the SNI's and :authority's host routes to v2"
    );
    assert_eq!(reply.into_inner().message, "over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_with_subject_alt_names_admits_only_the_clients_named() {
    let pki = Pki::new("mutual-sans");
    let v1 = echo("v1").await;
    let server = pki.leaf("server", &["a.example.com"]);
    let ca = pki.ca_path();
    let snapshot = format!(
        "listeners:\n- name: https\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {{hosts: [\"*\"], tls: {{mode: MUTUAL, {server}, caCertificates: {ca}, subjectAltNames: [client.example.com]}}}}\nrouteConfigs:\n- name: r\n  virtualHosts:\n{}clusters:\n{}",
        vhost("a", "*", "shop-v1"),
        cluster("shop-v1", v1.addr()),
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("https").await;
    let validity = Validity::from_now(Duration::from_secs(3600));
    let mut statuses = Vec::new();
    for name in ["client.example.com", "intruder.example.com"] {
        // Both from the trusted CA: only the name differs.
        let (chain, key) = pki.ca.leaf_pem(&[name], validity);
        let cert = pki.write(&format!("{name}.pem"), &chain.concat());
        let key = pki.write(&format!("{name}-key.pem"), &key);
        let ca = ca.clone();
        let reply = tokio::task::spawn_blocking(move || {
            curl::https(
                "a.example.com",
                addr,
                "/",
                &ca,
                &["--cert", &cert, "--key", &key],
            )
        })
        .await
        .unwrap();
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses,
        [200, 0],
        "client.example.com admitted, intruder refused"
    );
}
