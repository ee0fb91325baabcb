//! The discovery protocol against the real pilot binary: full state on connect, deltas on
//! change, ACK/NACK bookkeeping in syncz, resync on reconnect, invalid edits held back.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use mesh_core::compile::compile;
use support::{FakeProxy, Pilot, names};

const SERVICES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

const WORKLOADS: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: shop}
spec: {address: 127.0.0.1, ports: {http: 9081}, labels: {app: reviews, version: v1}}
"#;

const ROUTE_V1: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
"#;

fn pilot() -> Pilot {
    Pilot::start(&[
        ("services.yaml", SERVICES),
        ("workloads.yaml", WORKLOADS),
        ("routes.yaml", ROUTE_V1),
    ])
}

#[tokio::test]
async fn a_new_proxy_gets_everything_and_its_ack_shows_in_syncz() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "productpage.shop", "shop").await;
    let first = proxy.next().await;
    let mut got = names(&first);
    got.sort();
    assert_eq!(
        got,
        [
            "Listener/outbound",
            "RouteConfiguration/outbound",
            "VirtualHost/outbound/reviews.shop.svc.cluster.local:9080",
            "Cluster/outbound|9080||reviews.shop.svc.cluster.local",
            "Endpoints/outbound|9080||reviews.shop.svc.cluster.local",
            "InboundPolicy/inbound",
        ]
        .map(String::from)
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    proxy.ack(&first).await;
    let snapshot = proxy.snapshot(&first.system_version_info);
    compile(&snapshot).expect("the proxy would accept it");

    let entry = pilot
        .wait_syncz("productpage.shop", |e| {
            e["versionAcked"] == first.system_version_info
        })
        .await;
    assert_eq!(entry["versionSent"], first.system_version_info);
    assert_eq!(entry["nonceAcked"], first.nonce);
    assert_eq!(entry["namespace"], "shop");

    // config_dump shows what this proxy should run: the same snapshot.
    let dump = pilot
        .json("/debug/config_dump?proxy=productpage.shop")
        .await;
    assert_eq!(dump["version"], first.system_version_info);
    assert_eq!(dump["snapshot"], serde_json::to_value(&snapshot).unwrap());
    let (status, _) = pilot.get("/debug/config_dump?proxy=nobody").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_endpoint_change_sends_only_that_clusters_endpoints() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "a.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;

    let edited = Instant::now();
    pilot.write(
        "workloads.yaml",
        &format!(
            "{WORKLOADS}---\n{}",
            r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: shop}
spec: {address: 127.0.0.1, ports: {http: 9082}, labels: {app: reviews, version: v2}}
"#
        ),
    );
    let update = proxy.next().await;
    let took = edited.elapsed();
    assert_eq!(
        names(&update),
        ["Endpoints/outbound|9080||reviews.shop.svc.cluster.local"]
    );
    assert!(update.removed_resources.is_empty());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    proxy.ack(&update).await;
    let snapshot = proxy.snapshot(&update.system_version_info);
    let ports: Vec<u16> = snapshot.clusters[0]
        .endpoints
        .iter()
        .map(|e| e.address.port())
        .collect();
    assert_eq!(ports, [9081, 9082]);

    // Removing the service removes its cluster and endpoints.
    pilot.write("services.yaml", "");
    pilot.write("routes.yaml", "");
    let update = proxy.next().await;
    let mut removed: Vec<String> = update
        .removed_resources
        .iter()
        .map(|r| r.name.clone())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            "outbound/reviews.shop.svc.cluster.local:9080",
            "outbound|9080||reviews.shop.svc.cluster.local",
            "outbound|9080||reviews.shop.svc.cluster.local"
        ]
    );
    assert!(names(&update).is_empty(), "{:?}", names(&update));
}

#[tokio::test]
async fn a_nack_is_shown_with_its_message_and_the_next_push_resends_what_the_proxy_lacks() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "b.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;

    pilot.write("routes.yaml", &ROUTE_V1.replace("subset: v1", "subset: v2"));
    let refused = proxy.next().await;
    assert_eq!(
        names(&refused),
        ["VirtualHost/outbound/reviews.shop.svc.cluster.local:9080"]
    );
    proxy
        .nack(
            &refused,
            "routeConfigs[0].virtualHosts[0].routes[0]: refused for the test",
        )
        .await;
    let entry = pilot
        .wait_syncz("b.shop", |e| !e["lastNack"].is_null())
        .await;
    assert_eq!(
        entry["lastNack"]["message"],
        "routeConfigs[0].virtualHosts[0].routes[0]: refused for the test"
    );
    assert_eq!(entry["lastNack"]["nonce"], refused.nonce);
    assert_eq!(entry["versionAcked"], first.system_version_info);
    let (_, metrics) = pilot.get("/metrics").await;
    assert!(
        metrics.contains("pilot_xds_nacks_total{reason=\"route\"} 1"),
        "{metrics}"
    );

    // An unrelated change: pilot computes against what the proxy runs (it refused the
    // route), so the route comes again with the endpoints.
    pilot.write("workloads.yaml", &WORKLOADS.replace("9081", "9091"));
    let next = proxy.next().await;
    let mut got = names(&next);
    got.sort();
    assert_eq!(
        got,
        [
            "Endpoints/outbound|9080||reviews.shop.svc.cluster.local",
            "VirtualHost/outbound/reviews.shop.svc.cluster.local:9080"
        ]
    );
}

#[tokio::test]
async fn reverting_a_refused_change_shows_the_proxy_synced_without_a_push() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "b.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;
    pilot.write("routes.yaml", &ROUTE_V1.replace("subset: v1", "subset: v2"));
    let refused = proxy.next().await;
    proxy.nack(&refused, "refused for the test").await;
    pilot
        .wait_syncz("b.shop", |e| !e["lastNack"].is_null())
        .await;

    // Back to what the proxy runs: nothing to send, and syncz says it is in sync.
    pilot.write("routes.yaml", ROUTE_V1);
    let entry = pilot
        .wait_syncz("b.shop", |e| {
            e["versionSent"] == first.system_version_info
                && e["versionAcked"] == first.system_version_info
        })
        .await;
    assert_ne!(
        entry["lastNack"]["version"], entry["versionSent"],
        "the NACK is history"
    );
    assert!(
        proxy.quiet_for(std::time::Duration::from_millis(200)).await,
        "nothing was pushed"
    );
}

#[tokio::test]
async fn a_reconnecting_proxy_gets_only_what_changed_while_it_was_away() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "c.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;
    let held = proxy.held.clone();
    drop(proxy);

    // Nothing changed: the resync is empty, and says the version.
    let mut again = FakeProxy::connect_holding(pilot.grpc, "c.shop", "shop", held.clone()).await;
    let resync = again.next().await;
    assert!(resync.resources.is_empty() && resync.removed_resources.is_empty());
    assert_eq!(resync.system_version_info, first.system_version_info);
    drop(again);

    pilot.write("routes.yaml", &ROUTE_V1.replace("subset: v1", "subset: v2"));
    // Wait until pilot has the new generation (a fresh proxy sees it).
    let mut probe = FakeProxy::connect(pilot.grpc, "probe.shop", "shop").await;
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let response = probe.next().await;
        if response.system_version_info != first.system_version_info {
            break;
        }
        assert!(Instant::now() < deadline);
        drop(probe);
        tokio::time::sleep(Duration::from_millis(20)).await;
        probe = FakeProxy::connect(pilot.grpc, "probe.shop", "shop").await;
    }
    let mut back = FakeProxy::connect_holding(pilot.grpc, "c.shop", "shop", held).await;
    let resync = back.next().await;
    assert_eq!(
        names(&resync),
        ["VirtualHost/outbound/reviews.shop.svc.cluster.local:9080"]
    );
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_last_good_version_and_says_so() {
    let pilot = pilot();
    let mut proxy = FakeProxy::connect(pilot.grpc, "d.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;

    // A weight over 100 is invalid on its own: the VirtualService's previous version stays.
    pilot.write(
        "routes.yaml",
        &ROUTE_V1.replace(
            "[{destination: {host: reviews, subset: v1}}]",
            "[{destination: {host: reviews, subset: v2}, weight: 150}]",
        ),
    );
    let deadline = Instant::now() + support::DEADLINE;
    let status = loop {
        let status = pilot.json("/debug/config_status").await;
        if status["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["action"] == "keptPrevious")
        {
            break status;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let problem = &status["problems"][0];
    assert_eq!(problem["origin"]["kind"], "VirtualService");
    assert_eq!(problem["origin"]["name"], "reviews");
    assert!(
        problem["field"]
            .as_str()
            .unwrap()
            .starts_with("spec.http[0].route"),
        "{problem:#}"
    );
    assert!(
        problem["origin"]["file"]
            .as_str()
            .unwrap()
            .ends_with("routes.yaml")
    );
    // Nothing changed for the proxy.
    assert!(proxy.quiet_for(Duration::from_millis(300)).await);
    let (_, metrics) = pilot.get("/metrics").await;
    assert!(
        metrics.contains("pilot_config_errors{action=\"keptPrevious\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_node_without_a_namespace_is_refused_with_the_field() {
    let pilot = pilot();
    let mut client = mesh_proto::discovery::v1::discovery_client::DiscoveryClient::connect(
        format!("http://{}", pilot.grpc),
    )
    .await
    .unwrap();
    let request = mesh_proto::discovery::v1::DiscoveryRequest {
        node: Some(mesh_proto::discovery::v1::Node {
            id: "x".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = client
        .stream(tokio_stream::iter([request]))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "node.namespace must not be empty");
}

#[tokio::test]
async fn replicas_agree_so_a_proxy_can_move_between_them_without_a_full_resend() {
    let first = pilot();
    let files: Vec<(String, String)> = ["services.yaml", "workloads.yaml", "routes.yaml"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(first.path(name)).unwrap();
            (name.to_string(), text)
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let second = Pilot::start(&borrowed);

    let mut proxy = FakeProxy::connect(first.grpc, "e.shop", "shop").await;
    let full = proxy.next().await;
    proxy.ack(&full).await;
    let held = proxy.held.clone();
    drop(proxy);

    // Another replica, started separately, computes the same versions.
    let mut moved = FakeProxy::connect_holding(second.grpc, "e.shop", "shop", held).await;
    let resync = moved.next().await;
    assert_eq!(resync.system_version_info, full.system_version_info);
    assert!(
        resync.resources.is_empty() && resync.removed_resources.is_empty(),
        "sent {:?}",
        names(&resync)
    );
}

#[tokio::test]
async fn a_large_config_arrives_in_pieces_that_assemble_into_one_snapshot() {
    let mut services = String::new();
    for i in 0..300 {
        services.push_str(&format!(
            r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc-{i}, namespace: shop}}
spec:
  hosts: [svc-{i}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http}}]
  endpoints: [{{address: 10.0.{a}.{b}}}, {{address: 10.1.{a}.{b}}}]
---
"#,
            a = i / 250,
            b = i % 250 + 1
        ));
    }
    let pilot = Pilot::start(&[("services.yaml", &services)]);
    let mut proxy = FakeProxy::connect(pilot.grpc, "big.shop", "shop").await;
    let mut pieces = vec![proxy.next_piece().await];
    while pieces.last().expect("a piece").more {
        pieces.push(proxy.next_piece().await);
    }
    assert!(pieces.len() >= 2, "{} piece(s)", pieces.len());
    let nonce = &pieces[0].nonce;
    assert!(pieces.iter().all(|p| &p.nonce == nonce));
    let mut whole = pieces[0].clone();
    for piece in &pieces[1..] {
        whole.resources.extend(piece.resources.clone());
    }
    // 300 virtual hosts, clusters and endpoints, a route config, a listener, inbound policy.
    assert_eq!(whole.resources.len(), 903);
    proxy.ack(&whole).await;
    let snapshot = proxy.snapshot(&whole.system_version_info);
    let config = compile(&snapshot).expect("compiles");
    assert_eq!(config.clusters().count(), 300);
    pilot
        .wait_syncz("big.shop", |e| {
            e["versionAcked"] == whole.system_version_info
        })
        .await;
}

#[tokio::test]
async fn several_config_dirs_are_one_set_and_each_is_watched() {
    let services = tempfile::tempdir().unwrap();
    std::fs::write(services.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(services.path().join("routes.yaml"), ROUTE_V1).unwrap();
    let workloads = tempfile::tempdir().unwrap();
    let second = workloads.path().join("workloads.yaml");
    std::fs::write(&second, WORKLOADS).unwrap();
    let pilot = Pilot::start_in(
        services,
        &["--config-dir", workloads.path().to_str().unwrap()],
    );
    let mut proxy = FakeProxy::connect(pilot.grpc, "e.shop", "shop").await;
    let first = proxy.next().await;
    proxy.ack(&first).await;
    let endpoint_ports = |snapshot: &mesh_core::snapshot::Snapshot| -> Vec<u16> {
        snapshot.clusters[0]
            .endpoints
            .iter()
            .map(|e| e.address.port())
            .collect()
    };
    let snapshot = proxy.snapshot(&first.system_version_info);
    assert_eq!(
        endpoint_ports(&snapshot),
        [9081],
        "the second dir's endpoint"
    );

    support::write_atomically(
        &second,
        &format!(
            "{WORKLOADS}---\n{}",
            r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: shop}
spec: {address: 127.0.0.1, ports: {http: 9082}, labels: {app: reviews, version: v2}}
"#
        ),
    );
    let update = proxy.next().await;
    assert_eq!(
        names(&update),
        ["Endpoints/outbound|9080||reviews.shop.svc.cluster.local"]
    );
    proxy.ack(&update).await;
    let snapshot = proxy.snapshot(&update.system_version_info);
    assert_eq!(endpoint_ports(&snapshot), [9081, 9082]);
}
