//! The transparent path, as in a pod: two network namespaces on a bridge, each with an echo
//! app, `mesh-proxy iptables` and the proxy in capture mode as uid 1337; pilot and citadel
//! in the root namespace on the bridge's address. The client calls the server's virtual IP
//! in plain HTTP and never learns about the mesh.
//!
//! Root only (network namespaces, iptables): elsewhere each test says why and returns; in
//! CI (`CI` set) a missing prerequisite fails it instead.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use http::StatusCode;
use support::netns::{self, Network, Pod};
use support::{Citadel, Pilot, Proxy, wait_for};

const VIP: &str = "10.96.0.10";
const VIP6: &str = "fd00:96::10";
const SERVICE_PORT: u16 = 9080;
const APP_PORT: u16 = 8080;
const UNMESHED_PORT: u16 = 7070;
const PROXY_UID: u32 = 1337;

/// Whether the namespace tests can run; prints why not.
fn prerequisites() -> bool {
    let Some(why) = netns::missing() else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the network-namespace tests: {why}"
    );
    eprintln!("skipping the network-namespace test: {why}");
    false
}

/// Two services with a VIP each, their pods as WorkloadEntries (meshed: `tlsMode: istio`),
/// a fault for requests marked `x-fault: abort`, and STRICT mTLS in the namespace.
fn config(client: &Pod, server: &Pod) -> String {
    let service = |name: &str, vip: &str| {
        format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: shop}}
spec:
  hosts: [{name}.shop.svc.cluster.local]
  addresses: [{vip}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {SERVICE_PORT}, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: {name}}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}-1, namespace: shop}}
spec:
  address: {ip}
  ports: {{http: {APP_PORT}}}
  labels: {{app: {name}, security.istio.io/tlsMode: istio}}
  serviceAccount: {name}
---
"#,
            ip = if name == "client" {
                client.ip
            } else {
                server.ip
            }
        )
    };
    format!(
        r#"{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: server, namespace: shop}}
spec:
  hosts: [server.shop.svc.cluster.local]
  http:
  - match: [{{headers: {{x-fault: {{exact: abort}}}}}}]
    fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: server.shop.svc.cluster.local}}}}]
  - route: [{{destination: {{host: server.shop.svc.cluster.local}}}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: shop}}
spec: {{mtls: {{mode: STRICT}}}}
"#,
        service("client", "10.96.0.11"),
        service("server", &format!("{VIP}, {VIP6}"))
    )
}

/// What uid 1337 may read: the trust bundle and the bootstrap tokens, copied out of the
/// test's private directories.
struct Shared {
    dir: tempfile::TempDir,
}

impl Shared {
    fn new(citadel: &Citadel, tokens: &[&str]) -> Shared {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(citadel.trust_bundle(), dir.path().join("bundle.pem")).unwrap();
        for token in tokens {
            std::fs::write(dir.path().join(token), token).unwrap();
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Shared { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A meshed pod's sidecar: its identity from citadel, its config from pilot.
fn sidecar(pod: &Pod, name: &str, pilot: &Pilot, citadel: &Citadel, shared: &Shared) -> Proxy {
    let token = shared.path(&format!("{name}-token"));
    let bundle = shared.path("bundle.pem");
    netns::capture_proxy(
        pod,
        &[
            "--pilot",
            &pilot.grpc.to_string(),
            "--ca-addr",
            &citadel.grpc.to_string(),
            "--trust-bundle",
            text(&bundle),
            "--ca-token-file",
            text(&token),
            "--service-account",
            name,
            "--labels",
            &format!("app={name}"),
        ],
    )
}

/// The value of the first sample of `metric` whose labels include every one of `labels`.
async fn sample(proxy: &Proxy, metric: &str, labels: &[&str]) -> Option<f64> {
    let (status, body) = support::get(proxy.metrics, "metrics", "/stats/prometheus").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn plain_http_to_a_vip_is_intercepted_secured_routed_and_enforced() {
    if !prerequisites() {
        return;
    }
    // Declared first, dropped last: every process in the pods stops before they go.
    let network = Network::new(&["client", "server"]);
    let (client, server) = (network.pod("client"), network.pod("server"));
    let gateway = network.gateway().to_string();
    let citadel = Citadel::start_at(
        &[
            ("client-token", "shop", "client"),
            ("server-token", "shop", "server"),
        ],
        &format!("{gateway}:0"),
        &["--serving-san", &gateway],
    );
    let pilot = Pilot::start_at(
        &[("mesh.yaml", &config(client, server))],
        &format!("{gateway}:0"),
    );
    let shared = Shared::new(&citadel, &["client-token", "server-token"]);

    let _apps = [
        netns::echo(client, APP_PORT, "client"),
        netns::echo(server, APP_PORT, "server"),
        // A port no service names: the mesh passes its traffic through untouched.
        netns::echo(server, UNMESHED_PORT, "unmeshed"),
    ];
    for pod in [client, server] {
        netns::iptables(pod, &["--ipv6"]);
    }
    let client_proxy = sidecar(client, "client", &pilot, &citadel, &shared);
    let server_proxy = sidecar(server, "server", &pilot, &citadel, &shared);
    pilot
        .wait_all_synced(&[&client_proxy.id, &server_proxy.id])
        .await;
    for proxy in [&client_proxy, &server_proxy] {
        wait_for("the sidecar ready (certificate and config)", || async {
            let (status, _) = support::get(proxy.health, "health", "/healthz/ready").await;
            (status == StatusCode::OK).then_some(())
        })
        .await;
    }

    // Interception: the client only knows the VIP; both sidecars count the request as mTLS.
    let url = format!("http://{VIP}:{SERVICE_PORT}/");
    let status = wait_for("a plain HTTP call to the VIP answered", || async {
        netns::curl(client, None, &url, &[]).ok()
    })
    .await;
    assert_eq!(status, 200);
    let source = [
        r#"reporter="source""#,
        r#"connection_security_policy="mutual_tls""#,
        r#"destination_service="server.shop.svc.cluster.local""#,
        r#"response_code="200""#,
    ];
    let destination = [
        r#"reporter="destination""#,
        r#"connection_security_policy="mutual_tls""#,
        r#"source_principal="spiffe://cluster.local/ns/shop/sa/client""#,
        r#"response_code="200""#,
    ];
    for (proxy, labels) in [(&client_proxy, &source), (&server_proxy, &destination)] {
        let counted = wait_for("the request counted", || async {
            sample(proxy, "mesh_requests_total", labels).await
        })
        .await;
        assert!(counted >= 1.0, "{labels:?}: {counted}");
    }

    // Routing: the VirtualService's fault applies to the matching requests only.
    let faulted = netns::curl(client, None, &url, &["x-fault: abort"]);
    assert_eq!(faulted, Ok(418));
    assert_eq!(netns::curl(client, None, &url, &[]), Ok(200));

    // IPv6: the service's IPv6 VIP is intercepted (ip6tables, IP6T_SO_ORIGINAL_DST) and
    // routed the same way.
    let url6 = format!("http://[{VIP6}]:{SERVICE_PORT}/");
    assert_eq!(netns::curl(client, None, &url6, &[]), Ok(200));
    assert_eq!(
        netns::curl(client, None, &url6, &["x-fault: abort"]),
        Ok(418)
    );

    // Passthrough: a destination the mesh does not know is reached as it is, through both
    // sidecars (each counts it) and without mTLS.
    for ip in [server.ip.to_string(), format!("[{}]", server.ip6)] {
        let unmeshed = format!("http://{ip}:{UNMESHED_PORT}/");
        assert_eq!(
            netns::curl(client, None, &unmeshed, &[]),
            Ok(200),
            "{unmeshed}"
        );
    }
    for (proxy, direction) in [(&client_proxy, "outbound"), (&server_proxy, "inbound")] {
        let label = format!(r#"direction="{direction}""#);
        let passed = wait_for("the passthrough counted", || async {
            sample(proxy, "mesh_capture_passthrough_total", &[&label]).await
        })
        .await;
        assert!(passed >= 2.0, "{direction}: {passed}");
    }

    // REGISTRY_ONLY for the namespace: the same unknown destination is refused by the
    // client's sidecar (BlackHoleCluster), counted with its reason; the VIP still answers.
    pilot.write(
        "registry-only.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: shop}\nspec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}\n",
    );
    let unmeshed = format!("http://{}:{UNMESHED_PORT}/", server.ip);
    let refused = wait_for("the unknown destination refused", || async {
        netns::curl(client, None, &unmeshed, &[]).err()
    })
    .await;
    println!("REGISTRY_ONLY: curl {unmeshed}: {refused}");
    assert_eq!(netns::curl(client, None, &url, &[]), Ok(200));
    let blackholed = wait_for("the refusal counted", || async {
        let labels = [r#"direction="outbound""#, r#"reason="registry_only""#];
        sample(&client_proxy, "mesh_capture_blackhole_total", &labels).await
    })
    .await;
    assert!(blackholed >= 1.0, "{blackholed}");
    pilot.remove("registry-only.yaml");

    // STRICT: a caller that bypasses its own sidecar (uid 1337 is not redirected) reaches
    // the server pod in plaintext, and the server's sidecar refuses it.
    let direct = format!("http://{}:{APP_PORT}/", server.ip);
    let bypass = netns::curl(client, Some(PROXY_UID), &direct, &[]);
    assert!(
        bypass.is_err(),
        "a plaintext caller was answered: {bypass:?}"
    );
    let refused = wait_for(
        "the plaintext connection refused by the server's sidecar",
        || async { sample(&server_proxy, "mesh_inbound_plaintext_refused_total", &[]).await },
    )
    .await;
    assert!(refused >= 1.0);
}

#[tokio::test]
async fn iptables_is_idempotent_prints_its_rules_and_cleans_up_after_itself() {
    if !prerequisites() {
        return;
    }
    let network = Network::new(&["pod"]);
    let pod = network.pod("pod");
    let dry = netns::iptables(pod, &["--dry-run"]);
    assert!(
        dry.contains("-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN"),
        "{dry}"
    );
    let before = netns::nat_rules(pod);
    assert!(
        !before.contains("MESH_"),
        "--dry-run changed the rules: {before}"
    );

    netns::iptables(pod, &["--exclude-outbound-ports", "5432"]);
    let once = netns::nat_rules(pod);
    netns::iptables(pod, &["--exclude-outbound-ports", "5432"]);
    assert_eq!(
        netns::nat_rules(pod),
        once,
        "applying twice changed the rules"
    );
    for rule in [
        "-A PREROUTING -p tcp -j MESH_INBOUND",
        "-A OUTPUT -p tcp -j MESH_OUTPUT",
        "-A MESH_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
        "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
    ] {
        assert!(once.contains(rule), "no {rule:?} in\n{once}");
    }

    netns::iptables(pod, &["--cleanup"]);
    assert_eq!(
        netns::nat_rules(pod),
        before,
        "--cleanup left something behind"
    );
}
