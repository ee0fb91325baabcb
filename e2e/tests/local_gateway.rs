//! Local mode's ingress gateway: `examples/bookinfo` brought up with its `gateway:`, and
//! productpage reached with curl through the gateway's own address, as Istio's Bookinfo
//! is through `bookinfo-gateway`; `status` shows the gateway and `down` stops it.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use meshctl::local::{self, gateway};
use serde_json::Value;
use support::local::{binaries, copy_example, free_options, meshctl};
use support::wait_for;

/// `curl http://<addr><path>`: the status code and the body.
fn curl(addr: SocketAddr, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn bookinfo_is_reached_through_the_local_ingress_gateway() {
    let topology = tempfile::tempdir().unwrap();
    copy_example(topology.path());
    let state = tempfile::tempdir().unwrap();
    // Seven workloads and the gateway.
    let options = free_options(8);
    let mesh = local::up(
        topology.path(),
        &binaries(),
        state.path(),
        &options,
        &mut |l| eprintln!("up: {l}"),
    )
    .await
    .unwrap();

    let gw = mesh
        .state()
        .gateway
        .clone()
        .expect("the topology has a gateway");
    let [a, b, c, d] = options.base_ip.octets();
    assert_eq!(
        gw.ip,
        Ipv4Addr::new(a, b, c, d + 7),
        "the address after the workloads"
    );
    let listener = SocketAddr::from((gw.ip, 8080));
    assert_eq!(gw.listeners, [listener]);

    // curl -> the gateway (Gateway bookinfo-gateway, host `*`) -> productpage's sidecar
    // over mTLS -> productpage, which calls details and reviews through its own sidecar.
    let page: Value = wait_for("productpage through the ingress gateway", || async {
        let (code, body) = curl(listener, "/productpage");
        let page: Value = serde_json::from_str(&body).unwrap_or_default();
        (code == 200 && page["calls"][1]["status"] == 200).then_some(page)
    })
    .await;
    assert_eq!(page["service"], "productpage", "{page}");
    assert_eq!(page["calls"][0]["body"]["service"], "details", "{page}");
    assert_eq!(page["calls"][1]["body"]["service"], "reviews", "{page}");
    let xfcc = page["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default();
    assert!(
        xfcc.contains("URI=spiffe://cluster.local/ns/default/sa/ingressgateway"),
        "the gateway's own identity reached productpage: {page}"
    );
    // Only the VirtualService's paths are routed.
    let (code, _) = curl(listener, "/not-bookinfo");
    assert_eq!(code, 404);

    let status = meshctl(state.path(), &["local", "status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with(gateway::NAME))
        .unwrap_or_else(|| panic!("no gateway in {}", status.stdout));
    assert!(row.contains(&listener.to_string()), "{row}");
    assert!(row.contains("running, ready, synced"), "{row}");

    let down = meshctl(state.path(), &["local", "down"]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert!(
        !local::process::alive(gw.pid),
        "the gateway (pid {}) left behind",
        gw.pid
    );
    drop(mesh);
}
