//! An ingress gateway as issue 9 asks, with the real binaries: pilot reads a Gateway and
//! the VirtualServices bound to it, a `mesh-proxy --mode gateway` labelled
//! `istio=ingressgateway` gets a listener per server port on its own address, and real
//! clients go through it: curl to two hosts on one port reaching two versions, curl over
//! HTTPS where the SNI picks the certificate, httpsRedirect, and a tonic gRPC client.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Command;

use mesh_echo::grpc::pb::EchoRequest;
use mesh_echo::grpc::pb::echo_client::EchoClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::{DEADLINE, Pilot, Proxy, echo, free_addr, wait_for};

/// A CA and a leaf per host, as PEM files in `dir`: `ca.pem`, `<host>.pem`, `<host>.key`.
fn certificates(dir: &std::path::Path, hosts: &[&str]) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Its own subject: the leaves' default one would make them look self-signed.
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gateway test CA");
    let key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let issuer = Issuer::new(params, key);
    for host in hosts {
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![host.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{host}.pem")), leaf.pem()).unwrap();
        std::fs::write(dir.join(format!("{host}.key")), key.serialize_pem()).unwrap();
    }
}

/// The ingress gateway's three servers, on its own address.
struct Ports {
    http: SocketAddr,
    https: SocketAddr,
    grpc: SocketAddr,
}

fn config(v1: SocketAddr, v2: SocketAddr, ports: &Ports, certs: &str) -> String {
    let (http, https, grpc) = (ports.http.port(), ports.https.port(), ports.grpc.port());
    let server = |host: &str| {
        format!(
            "  - port: {{number: {https}, name: https-{host}, protocol: HTTPS}}\n    hosts: [{host}]\n    tls: {{mode: SIMPLE, serverCertificate: {certs}/{host}.pem, privateKey: {certs}/{host}.key}}\n"
        )
    };
    let bind = |name: &str, host: &str, subset: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  hosts: [\"{host}\"]\n  gateways: [edge]\n  http: [{{route: [{{destination: {{host: shop, subset: {subset}}}}}]}}]\n"
        )
    };
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop, namespace: web}}
spec:
  hosts: [shop.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: shop}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: shop-v1, namespace: web}}
spec: {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{app: shop, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: shop-v2, namespace: web}}
spec: {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{app: shop, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: shop, namespace: web}}
spec:
  host: shop
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {http}, name: http, protocol: HTTP}}
    hosts: [a.example.com, b.example.com]
  - port: {{number: {http}, name: http-redirect, protocol: http}}
    hosts: [old.example.com]
    tls: {{httpsRedirect: true}}
{}{}  - port: {{number: {grpc}, name: grpc, protocol: GRPC}}
    hosts: ["web/*"]
{}{}{}"#,
        v1.port(),
        v2.port(),
        server("a.example.com"),
        server("b.example.com"),
        bind("a", "a.example.com", "v1"),
        bind("b", "b.example.com", "v2"),
        bind("z-grpc", "*", "v2"),
    )
}

struct Curl {
    status: String,
    body: String,
    certs: String,
    stderr: String,
}

/// curl `scheme://host:port/` resolved to `gateway`, trusting `ca` for HTTPS.
fn curl(scheme: &str, host: &str, gateway: SocketAddr, ca: &str) -> Curl {
    let (ip, port) = (gateway.ip(), gateway.port());
    let resolve = format!("{host}:{port}:{ip}");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--resolve", &resolve, "--cacert", ca])
        .args(["--write-out", "\n%{http_code} %{redirect_url}\n%{certs}"])
        .arg(format!("{scheme}://{host}:{port}/"))
        .output()
        .expect("curl runs (the gateway tests need curl on PATH)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut parts = stdout.splitn(3, '\n');
    Curl {
        body: parts.next().unwrap_or("").to_owned(),
        status: parts.next().unwrap_or("").to_owned(),
        certs: parts.next().unwrap_or("").to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// curl `https://sni:port/` with `Host: host`: a request fronted by another server's name.
fn curl_fronted(sni: &str, host: &str, gateway: SocketAddr, ca: &str) -> Curl {
    let (ip, port) = (gateway.ip(), gateway.port());
    let resolve = format!("{sni}:{port}:{ip}");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--resolve", &resolve, "--cacert", ca])
        .args(["--header", &format!("host: {host}")])
        .args(["--write-out", "\n%{http_code}"])
        .arg(format!("https://{sni}:{port}/"))
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or((&stdout, ""));
    Curl {
        body: body.to_owned(),
        status: status.to_owned(),
        certs: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_gateway_routes_hosts_terminates_tls_by_sni_and_carries_grpc() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path(), &["a.example.com", "b.example.com"]);
    const IP: &str = "127.0.10.1";
    let ports = Ports {
        http: free_addr(IP),
        https: free_addr(IP),
        grpc: free_addr(IP),
    };
    let dir = certs.path().to_str().unwrap().to_owned();
    let pilot = Pilot::start(&[("web.yaml", &config(v1.addr(), v2.addr(), &ports, &dir))]);
    let gateway = gateway_proxy(&pilot, "ingressgateway", "web", IP);
    let expected = [ports.http, ports.https, ports.grpc].map(|a| format!("{IP}_{}", a.port()));
    wait_for("the gateway's listeners", || async {
        let listeners = gateway.admin_json("/listeners").await;
        let names: Vec<String> = listeners
            .as_array()?
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_owned))
            .collect();
        expected.iter().all(|e| names.contains(e)).then_some(())
    })
    .await;
    let ca = certs.path().join("ca.pem").to_str().unwrap().to_owned();

    // Two hosts on one port, two versions; the same over HTTPS with each host's own
    // certificate, which curl verifies for the name and we read back.
    let (http, https) = (ports.http, ports.https);
    let ca_for_curl = ca.clone();
    let replies = tokio::task::spawn_blocking(move || {
        let ca = ca_for_curl;
        [
            curl("http", "a.example.com", http, &ca),
            curl("http", "b.example.com", http, &ca),
            curl("https", "a.example.com", https, &ca),
            curl("https", "b.example.com", https, &ca),
            curl("http", "old.example.com", http, &ca),
            curl_fronted("a.example.com", "b.example.com", https, &ca),
        ]
    })
    .await
    .unwrap();
    for (reply, version) in replies[..4].iter().zip(["v1", "v2", "v1", "v2"]) {
        assert!(
            reply.status.starts_with("200"),
            "{}: {}",
            reply.status,
            reply.stderr
        );
        assert!(
            reply.body.contains(&format!("\"version\":\"{version}\"")),
            "{}",
            reply.body
        );
    }
    // The SNI's server routes only its own hosts: a's handshake cannot reach b's routes.
    assert!(
        replies[5].status.starts_with("404"),
        "{}: {}",
        replies[5].status,
        replies[5].body
    );
    assert!(
        replies[2].certs.contains("DNS:a.example.com"),
        "{}",
        replies[2].certs
    );
    assert!(!replies[2].certs.contains("DNS:b.example.com"));
    assert!(
        replies[3].certs.contains("DNS:b.example.com"),
        "{}",
        replies[3].certs
    );
    assert_eq!(
        replies[4].status.trim(),
        // As Envoy's https_redirect: the scheme's default port, whatever the request's.
        "301 https://old.example.com/",
        "{}",
        replies[4].stderr
    );

    // gRPC on the GRPC server: HTTP/2 end to end, to the version the `*` host routes to.
    let connect = EchoClient::connect(format!("http://{}", ports.grpc));
    let mut client = tokio::time::timeout(DEADLINE, connect)
        .await
        .expect("connected in time")
        .expect("connect");
    let reply = tokio::time::timeout(
        DEADLINE,
        client.echo(EchoRequest {
            message: "through the gateway".into(),
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
    assert_eq!(version, "v2");
    assert_eq!(reply.into_inner().message, "through the gateway");

    // A new host on the Gateway and a VirtualService for it reach the running gateway.
    let edited = config(v1.addr(), v2.addr(), &ports, &dir).replace(
        "hosts: [a.example.com, b.example.com]",
        "hosts: [a.example.com, b.example.com, c.example.com]",
    ) + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: c, namespace: web}\nspec:\n  hosts: [c.example.com]\n  gateways: [web/edge]\n  http: [{route: [{destination: {host: shop.web.svc.cluster.local, subset: v1}}]}]\n";
    pilot.write("web.yaml", &edited);
    wait_for("the new host through the gateway", || async {
        (support::version_via(ports.http, "c.example.com").await == "v1").then_some(())
    })
    .await;
}

/// A ServiceEntry for an external host reached through the egress gateway, and a Sidecar
/// locking `shop`'s sidecars to the registry.
fn egress_config(external: SocketAddr, gateway: SocketAddr) -> String {
    let (gateway_ip, gateway_port) = (gateway.ip(), gateway.port());
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api, namespace: shop}}
spec:
  hosts: [api.external.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: egressgateway, namespace: mesh-system}}
spec:
  hosts: [egressgateway.mesh-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: {gateway_ip}, ports: {{http: {gateway_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: egress, namespace: mesh-system}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: {gateway_port}, name: http, protocol: HTTP}}
    hosts: [api.external.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api-via-egress, namespace: mesh-system}}
spec:
  hosts: [api.external.com]
  gateways: [mesh, egress]
  http:
  - match: [{{gateways: [mesh]}}]
    route: [{{destination: {{host: egressgateway.mesh-system.svc.cluster.local}}}}]
  - match: [{{gateways: [egress]}}]
    route: [{{destination: {{host: api.external.com}}}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: shop}}
spec:
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
"#,
        external.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_only_refuses_unknown_hosts_and_external_traffic_leaves_by_the_egress_gateway() {
    let external = echo("external").await;
    let gateway_addr = free_addr("127.0.10.2");
    let pilot = Pilot::start(&[("egress.yaml", &egress_config(external.addr(), gateway_addr))]);
    let (gateway, sidecar) = egress_gateway_and_sidecar(&pilot, gateway_addr).await;
    let outbound = sidecar.outbound().await;

    let (status, body) = support::get(outbound, "api.external.com", "/").await;
    assert_eq!(status, 200, "{body:?}");
    assert!(
        String::from_utf8_lossy(&body).contains("\"version\":\"external\""),
        "{body:?}"
    );
    // It went out through the egress gateway, which counted it.
    let (_, metrics) = support::get(gateway.metrics, "metrics", "/stats/prometheus").await;
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mesh_requests_total") && l.contains("api.external.com")),
        "{metrics}"
    );

    let (status, body) = support::get(outbound, "unknown.example.org", "/").await;
    assert_eq!(status, 502, "REGISTRY_ONLY must refuse an unknown host");
    assert!(
        String::from_utf8_lossy(&body).contains("REGISTRY_ONLY"),
        "{body:?}"
    );
}

/// A TLS server outside the gateway: a standalone mesh-proxy terminating TLS for `host`
/// with its own certificate (made by [`certificates`]) and answering through `echo`.
fn tls_upstream(certs: &std::path::Path, host: &str, echo: SocketAddr) -> Proxy {
    let dir = certs.to_str().unwrap();
    let snapshot = format!(
        "listeners:\n- name: tls\n  address: \"127.0.0.1:0\"\n  routeConfig: r\n  tls:\n    servers:\n    - {{hosts: [\"*\"], tls: {{mode: SIMPLE, serverCertificate: {dir}/{host}.pem, privateKey: {dir}/{host}.key}}}}\nrouteConfigs:\n- name: r\n  virtualHosts:\n  - name: any\n    domains: [\"*\"]\n    routes: [{{route: [{{destination: {{host: echo}}}}]}}]\nclusters:\n- {{host: echo, port: 80, endpoints: [{{address: \"{echo}\"}}]}}\n"
    );
    let file = certs.join(format!("upstream-{host}.yaml"));
    std::fs::write(&file, snapshot).unwrap();
    Proxy::start_args(
        "upstream",
        "outside",
        &["--snapshot", file.to_str().unwrap()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_by_sni_reaches_the_upstream_whose_certificate_the_client_sees() {
    let behind = echo("behind-tls").await;
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path(), &["secure.example.com"]);
    let upstream = tls_upstream(certs.path(), "secure.example.com", behind.addr());
    let upstream_addr = bound(&upstream).await;
    const IP: &str = "127.0.10.3";
    let gateway_addr = free_addr(IP);
    let port = gateway_addr.port();
    let config = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: web}}
spec:
  hosts: [secure.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: tls, protocol: TLS}}
    hosts: [secure.example.com]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure, namespace: web}}
spec:
  hosts: [secure.example.com]
  gateways: [edge]
  tls:
  - match: [{{sniHosts: [secure.example.com]}}]
    route: [{{destination: {{host: secure, port: {{number: 443}}}}}}]
"#,
        upstream_addr.port()
    );
    let pilot = Pilot::start(&[("web.yaml", &config)]);
    let gateway = gateway_proxy(&pilot, "ingressgateway", "web", IP);
    let listener = format!("{IP}_{port}");
    wait_for("the gateway's TLS listener", || async {
        let listeners = gateway.admin_json("/listeners").await;
        let found = listeners
            .as_array()?
            .iter()
            .any(|l| l["name"] == listener.as_str() && l["protocol"] == "TLS");
        found.then_some(())
    })
    .await;
    let ca = certs.path().join("ca.pem").to_str().unwrap().to_owned();
    let reply =
        tokio::task::spawn_blocking(move || curl("https", "secure.example.com", gateway_addr, &ca))
            .await
            .unwrap();
    assert!(
        reply.status.starts_with("200"),
        "{}: {}",
        reply.status,
        reply.stderr
    );
    assert!(
        reply.body.contains("\"version\":\"behind-tls\""),
        "{}",
        reply.body
    );
    // The certificate is the upstream's: the gateway holds none for this name.
    assert!(
        reply.certs.contains("DNS:secure.example.com"),
        "{}",
        reply.certs
    );
}

/// Where a standalone proxy's one listener is bound.
async fn bound(proxy: &Proxy) -> SocketAddr {
    wait_for("the listener", || async {
        let listeners = proxy.admin_json("/listeners").await;
        listeners
            .as_array()?
            .iter()
            .find_map(|l| l["bound"].as_str()?.parse().ok())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_egress_gateway_originates_tls_to_an_https_upstream_by_destination_rule() {
    let behind = echo("external-https").await;
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path(), &["secure.external.com"]);
    let upstream = tls_upstream(certs.path(), "secure.external.com", behind.addr());
    let upstream_port = bound(&upstream).await.port();
    let ca = certs.path().join("ca.pem");
    let gateway_addr = free_addr("127.0.10.4");
    // The app speaks plain HTTP to its sidecar, which sends it to the egress gateway; the
    // gateway originates TLS (DestinationRule SIMPLE) to the external HTTPS server.
    let config = egress_config(behind.addr(), gateway_addr)
        .replace("api.external.com", "secure.external.com")
        .replace(
            &format!("ports: {{http: {}}}", behind.addr().port()),
            &format!("ports: {{http: {upstream_port}}}"),
        )
        + &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: secure, namespace: mesh-system}}\nspec:\n  host: secure.external.com\n  trafficPolicy: {{tls: {{mode: SIMPLE, caCertificates: {}, sni: secure.external.com}}}}\n",
            ca.display()
        );
    let pilot = Pilot::start(&[("egress.yaml", &config)]);
    let (_gateway, sidecar) = egress_gateway_and_sidecar(&pilot, gateway_addr).await;
    let outbound = sidecar.outbound().await;
    let (status, body) = support::get(outbound, "secure.external.com", "/").await;
    assert_eq!(status, 200, "{body:?}");
    assert!(
        String::from_utf8_lossy(&body).contains("\"version\":\"external-https\""),
        "{body:?}"
    );
}

/// An egress gateway (`istio: egressgateway`) and a sidecar `web.shop`, both from `pilot`,
/// once the gateway listens on `gateway`.
async fn egress_gateway_and_sidecar(pilot: &Pilot, gateway: SocketAddr) -> (Proxy, Proxy) {
    let ip = gateway.ip().to_string();
    let listener = format!("{ip}_{}", gateway.port());
    let gateway = gateway_proxy(pilot, "egressgateway", "mesh-system", &ip);
    let sidecar = Proxy::start(pilot, "web", "shop");
    wait_for("the egress gateway's listener", || async {
        let listeners = gateway.admin_json("/listeners").await;
        listeners
            .as_array()?
            .iter()
            .any(|l| l["name"] == listener.as_str())
            .then_some(())
    })
    .await;
    (gateway, sidecar)
}

/// A proxy in gateway mode named `name` in `namespace`, labelled `istio=<name>` (the
/// selector Istio's Gateways use), configured by `pilot`, its servers bound on `ip`.
fn gateway_proxy(pilot: &Pilot, name: &str, namespace: &str, ip: &str) -> Proxy {
    let pilot_addr = pilot.grpc.to_string();
    let labels = format!("istio={name}");
    let own_address = format!("{ip}:0");
    Proxy::start_args(
        name,
        namespace,
        &[
            "--pilot",
            &pilot_addr,
            "--mode",
            "gateway",
            "--labels",
            &labels,
            "--outbound-addr",
            &own_address,
        ],
    )
}
