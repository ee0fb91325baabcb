//! `mesh-proxy --pilot`: the real proxy binary against an in-test discovery server, with
//! real echo upstreams behind it.

#![allow(clippy::unwrap_used)]

#[path = "xds/fake_pilot.rs"]
mod fake_pilot;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fake_pilot::FakePilot;
use http::StatusCode;
use mesh_core::snapshot::Snapshot;
use mesh_proto::convert::{self, encode_snapshot};
use mesh_proto::discovery::v1 as pb;
use serde_json::Value;
use support::*;

fn snapshot(upstream: SocketAddr, subset: &str) -> Snapshot {
    Snapshot::from_yaml(&format!(
        r#"listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: web
    domains: ["*"]
    routes:
    - name: all
      route: [{{destination: {{host: web, subset: {subset}}}}}]
clusters:
- host: web
  port: 80
  endpoints: [{{address: "{upstream}", labels: {{version: {subset}}}}}]
  subsets: [{{name: blue, labels: {{version: blue}}}}, {{name: green, labels: {{version: green}}}}]
"#
    ))
    .unwrap()
}

fn response(version: &str, resources: Vec<pb::Resource>) -> pb::DiscoveryResponse {
    pb::DiscoveryResponse {
        system_version_info: version.into(),
        nonce: format!("nonce-{version}"),
        resources,
        removed_resources: vec![],
        more: false,
    }
}

/// The endpoints resource of cluster `web` with one endpoint of version `subset`.
fn endpoints(upstream: SocketAddr, subset: &str) -> pb::Resource {
    convert::encode_endpoints("web", 80, &snapshot(upstream, subset).clusters[0].endpoints)
}

fn start_proxy(pilot: &FakePilot, extra: &[&str]) -> Proxy {
    let addr = pilot.addr.to_string();
    let mut args = vec!["--pilot", addr.as_str()];
    args.extend_from_slice(extra);
    Proxy::start_args(&args)
}

/// Starts a proxy and gives it `upstream` as version "1" (subset `subset`).
async fn running(pilot: &mut FakePilot, upstream: SocketAddr, subset: &str) -> Proxy {
    let proxy = start_proxy(pilot, &[]);
    pilot.next_request().await;
    let answer = pilot
        .push_and_answer(response("1", encode_snapshot(&snapshot(upstream, subset))))
        .await;
    assert_eq!(answer.error_detail, None, "version 1 applies");
    proxy
}

async fn version_served(proxy: &Proxy) -> (StatusCode, String) {
    let (status, headers, _) = get(proxy.listener("outbound").await, "/", &[]).await;
    (status, version(&headers))
}

async fn wait_dump(proxy: &Proxy, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let dump = proxy.admin_json("/config_dump").await;
        if done(&dump) {
            return dump;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "never {what}: {}",
            dump["pilot"]
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn versions(mut held: Vec<pb::ResourceVersion>) -> Vec<pb::ResourceVersion> {
    held.sort_by(|a, b| (a.r#type, &a.name).cmp(&(b.r#type, &b.name)));
    held
}

#[tokio::test]
async fn first_request_names_the_node_and_readiness_waits_for_the_first_push() {
    let blue = echo("blue").await;
    let mut pilot = FakePilot::start().await;
    let proxy = start_proxy(
        &pilot,
        &[
            "--namespace=shop",
            "--labels=app=productpage,version=v1",
            "--outbound-addr=127.0.0.1:15001",
            "--instance-ip=10.1.2.3",
            "--service-account=bookinfo",
        ],
    );
    let (status, _, _) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before a push"
    );

    let first = pilot.next_request().await;
    let node = first
        .request
        .node
        .expect("the first request names the node");
    assert_eq!(node.id, "productpage-v1.shop");
    assert_eq!(
        (node.namespace.as_str(), node.workload.as_str()),
        ("shop", "productpage-v1")
    );
    assert_eq!(node.labels.get("version").map(String::as_str), Some("v1"));
    assert_eq!(node.outbound_address, "127.0.0.1:15001");
    assert_eq!(
        (node.ip_addresses, node.service_account),
        (vec!["10.1.2.3".to_owned()], "bookinfo".to_owned())
    );
    assert!(!node.proxy_version.is_empty());
    assert!(
        first.request.initial_resource_versions.is_empty(),
        "holds nothing yet"
    );
    wait_dump(&proxy, "connected", |d| d["pilot"]["connected"] == true).await;
    assert_eq!(metric_value(&proxy, "mesh_xds_connected", &[]).await, 1.0);
    let (status, _, _) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "connected is not ready"
    );

    pilot
        .push_and_answer(response(
            "1",
            encode_snapshot(&snapshot(blue.addr(), "blue")),
        ))
        .await;
    let (status, _, _) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(status, StatusCode::OK, "ready once applied");
}

#[tokio::test]
async fn a_pushed_snapshot_routes_to_the_upstream_and_is_acked() {
    let blue = echo("blue").await;
    let mut pilot = FakePilot::start().await;
    let proxy = start_proxy(&pilot, &[]);
    pilot.next_request().await;
    let answer = pilot
        .push_and_answer(response(
            "1",
            encode_snapshot(&snapshot(blue.addr(), "blue")),
        ))
        .await;
    assert_eq!(answer.error_detail, None, "an ACK");
    assert!(
        answer.node.is_none(),
        "the node goes on the first request only"
    );

    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "blue".to_owned())
    );
    assert_eq!(blue.stats().requests(), 1);
    let dump = proxy.admin_json("/config_dump").await;
    assert_eq!(dump["version"], "1");
    assert_eq!(dump["pilot"]["last_ack_nonce"], "nonce-1");
    assert_eq!(dump["pilot"]["applied_version"], "1");
    assert_eq!(dump["pilot"]["address"], pilot.addr.to_string());
    assert_eq!(
        metric_value(&proxy, "mesh_xds_updates_total", &[("result", "ack")]).await,
        1.0
    );
}

#[tokio::test]
async fn incremental_pushes_apply_on_top_of_what_the_proxy_holds() {
    let (blue, green) = (echo("blue").await, echo("green").await);
    let mut pilot = FakePilot::start().await;
    let proxy = running(&mut pilot, blue.addr(), "blue").await;
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "blue".to_owned())
    );

    // Only the endpoints change: the route, cluster and listener are what the proxy holds.
    let answer = pilot
        .push_and_answer(response("2", vec![endpoints(green.addr(), "blue")]))
        .await;
    assert_eq!(answer.error_detail, None);
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "green".to_owned())
    );
    assert_eq!(proxy.admin_json("/config_dump").await["version"], "2");

    // Removed: the cluster keeps no endpoint, so there is nowhere to send the request.
    let mut removal = response("3", vec![]);
    removal.removed_resources.push(pb::ResourceKey {
        r#type: pb::ResourceType::Endpoints as i32,
        name: convert::cluster_name("web", 80),
    });
    let answer = pilot.push_and_answer(removal).await;
    assert_eq!(answer.error_detail, None);
    assert_eq!(
        version_served(&proxy).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_bad_push_is_nacked_and_the_old_version_keeps_serving() {
    let (blue, green) = (echo("blue").await, echo("green").await);
    let mut pilot = FakePilot::start().await;
    let proxy = running(&mut pilot, blue.addr(), "blue").await;

    let to_purple = encode_snapshot(&snapshot(blue.addr(), "purple"));
    let answer = pilot.push_and_answer(response("2", to_purple)).await;
    let message = answer.error_detail.expect("a NACK").message;
    assert!(message.contains("route config \"outbound\""), "{message}");
    assert!(message.contains("no subset \"purple\""), "{message}");
    let dump = proxy.admin_json("/config_dump").await;
    assert_eq!(dump["version"], "1", "still on the last good version");
    assert_eq!(dump["pilot"]["last_nack"]["nonce"], "nonce-2");
    assert_eq!(dump["pilot"]["last_nack"]["message"], message.as_str());
    let rejection = dump["status"]["last_rejection"].as_str().unwrap();
    assert!(rejection.contains("no subset \"purple\""), "{rejection}");
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "blue".to_owned())
    );

    let mut unknown_field = encode_snapshot(&snapshot(blue.addr(), "blue"));
    for resource in &mut unknown_field {
        if let Some(pb::resource::Kind::VirtualHost(host)) = &mut resource.kind {
            host.routes_json = r#"[{"name": "all", "rout": []}]"#.into();
        }
    }
    let answer = pilot.push_and_answer(response("3", unknown_field)).await;
    let message = answer.error_detail.expect("a NACK").message;
    assert!(message.contains("unknown field `rout`"), "{message}");
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "blue".to_owned())
    );

    // What the proxy holds is version 1's resources: an endpoints push applies on them.
    let answer = pilot
        .push_and_answer(response("4", vec![endpoints(green.addr(), "blue")]))
        .await;
    assert_eq!(answer.error_detail, None, "applies on top of version 1");
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "green".to_owned())
    );
    assert_eq!(
        metric_value(&proxy, "mesh_xds_updates_total", &[("result", "nack")]).await,
        2.0
    );
}

#[tokio::test]
async fn when_pilot_goes_away_traffic_flows_and_the_proxy_comes_back_with_what_it_holds() {
    let (blue, green) = (echo("blue").await, echo("green").await);
    let mut pilot = FakePilot::start().await;
    let proxy = running(&mut pilot, blue.addr(), "blue").await;
    let held = versions(
        encode_snapshot(&snapshot(blue.addr(), "blue"))
            .iter()
            .map(|r| pb::ResourceVersion {
                r#type: convert::resource_type(r) as i32,
                name: r.name.clone(),
                version: r.version.clone(),
            })
            .collect(),
    );

    pilot.stop().await;
    wait_dump(&proxy, "disconnected", |d| d["pilot"]["connected"] == false).await;
    for _ in 0..5 {
        assert_eq!(
            version_served(&proxy).await,
            (StatusCode::OK, "blue".to_owned())
        );
    }
    let (status, _, _) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still ready on the last good config"
    );
    // It keeps trying while pilot is gone.
    wait_dump(&proxy, "retrying", |d| {
        d["pilot"]["reconnects"].as_u64() >= Some(2)
    })
    .await;

    pilot.restart().await;
    let first = pilot.next_request().await;
    assert!(first.stream > 1, "a new stream");
    assert!(first.request.node.is_some(), "the node again");
    assert_eq!(versions(first.request.initial_resource_versions), held);
    let answer = pilot
        .push_and_answer(response("2", vec![endpoints(green.addr(), "blue")]))
        .await;
    assert_eq!(answer.error_detail, None);
    assert_eq!(
        version_served(&proxy).await,
        (StatusCode::OK, "green".to_owned())
    );
    let dump = wait_dump(&proxy, "reconnected", |d| d["pilot"]["connected"] == true).await;
    assert!(
        dump["pilot"]["reconnects"].as_u64().unwrap() >= 3,
        "{}",
        dump["pilot"]
    );
    assert!(metric_value(&proxy, "mesh_xds_reconnects_total", &[]).await >= 3.0);
}
