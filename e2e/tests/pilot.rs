//! pilot and proxies together, as issue 4 asks: config edits reach routing within a
//! second, a refused config is NACKed and visible while traffic keeps the previous
//! routing, proxies ride out a pilot crash and resync when it returns, and WorkloadEntries
//! joining and leaving move traffic.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{Pilot, Proxy, REVIEWS_SERVICE, echo, version_via, wait_for};

const HOST: &str = "reviews:9080";

fn service(v1: u16, v2: u16) -> String {
    format!(
        r#"{REVIEWS_SERVICE}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: shop}}
spec: {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{app: reviews, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v2, namespace: shop}}
spec: {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{app: reviews, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: shop}}
spec:
  host: reviews
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
"#
    )
}

fn route_to(subset: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: shop}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: {subset}}}}}]}}]
"#
    )
}

/// Sends requests until `expected` answers `in_a_row` times running; returns how long it took.
async fn until_served_by(proxy: &Proxy, expected: &str, in_a_row: usize) -> Duration {
    let outbound = proxy.outbound().await;
    let start = Instant::now();
    wait_for(&format!("{expected} to answer"), || async {
        for _ in 0..in_a_row {
            if version_via(outbound, HOST).await != expected {
                return None;
            }
        }
        Some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test]
async fn editing_a_virtual_service_changes_routing_within_a_second() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let pilot = Pilot::start(&[
        (
            "services.yaml",
            &service(v1.addr().port(), v2.addr().port()),
        ),
        ("routes.yaml", &route_to("v1")),
    ]);
    let proxy = Proxy::start(&pilot, "productpage", "shop");
    until_served_by(&proxy, "v1", 5).await;

    let edited = Instant::now();
    pilot.write("routes.yaml", &route_to("v2"));
    until_served_by(&proxy, "v2", 1).await;
    let took = edited.elapsed();
    println!(
        "VirtualService edit -> routing changed in {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // And it stays changed.
    until_served_by(&proxy, "v2", 20).await;
}

#[tokio::test]
async fn a_config_the_proxy_refuses_is_nacked_shown_and_routing_stays() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let pilot = Pilot::start(&[
        (
            "services.yaml",
            &service(v1.addr().port(), v2.addr().port()),
        ),
        ("routes.yaml", &route_to("v1")),
    ]);
    let proxy = Proxy::start(&pilot, "productpage", "shop");
    until_served_by(&proxy, "v1", 3).await;
    let synced = pilot.wait_all_synced(&[&proxy.id]).await;
    let good_version = synced[0]["versionAcked"].clone();

    // Valid on its own, but no DestinationRule defines v3: pilot reports it and passes it
    // on, and the proxy, which cannot route to it, refuses the config.
    pilot.write("routes.yaml", &route_to("v3"));
    let entry = wait_for("the NACK in syncz", || async {
        let syncz = pilot.json("/debug/syncz").await;
        let entry = syncz
            .as_array()?
            .iter()
            .find(|e| e["id"] == proxy.id)?
            .clone();
        (!entry["lastNack"].is_null()).then_some(entry)
    })
    .await;
    let message = entry["lastNack"]["message"].as_str().unwrap();
    assert!(message.contains("v3"), "{message}");
    assert!(
        message.contains("outbound"),
        "names the route config: {message}"
    );
    assert_eq!(entry["versionAcked"], good_version);

    let status = pilot.json("/debug/config_status").await;
    let problem = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["origin"]["kind"] == "VirtualService")
        .expect("the dangling subset is reported");
    assert_eq!(problem["action"], "used");
    assert!(
        problem["field"]
            .as_str()
            .unwrap()
            .starts_with("spec.http[0].route[0]")
    );

    // The proxy shows the refusal and still routes on the previous version.
    let dump = proxy.admin_json("/config_dump").await;
    assert!(
        dump["pilot"]["last_nack"]["message"]
            .as_str()
            .unwrap()
            .contains("v3")
    );
    until_served_by(&proxy, "v1", 10).await;

    // Fixed: the next push is ACKed.
    pilot.write("routes.yaml", &route_to("v2"));
    until_served_by(&proxy, "v2", 3).await;
    pilot.wait_all_synced(&[&proxy.id]).await;
}

#[tokio::test]
async fn proxies_keep_serving_without_pilot_and_resync_when_it_returns() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let mut pilot = Pilot::start(&[
        (
            "services.yaml",
            &service(v1.addr().port(), v2.addr().port()),
        ),
        ("routes.yaml", &route_to("v1")),
    ]);
    let first = Proxy::start(&pilot, "productpage", "shop");
    let second = Proxy::start(&pilot, "details", "shop");
    until_served_by(&first, "v1", 3).await;
    until_served_by(&second, "v1", 3).await;

    pilot.kill();
    wait_for("both proxies to notice", || async {
        let a = first.admin_json("/config_dump").await;
        let b = second.admin_json("/config_dump").await;
        (a["pilot"]["connected"] == false && b["pilot"]["connected"] == false).then_some(())
    })
    .await;
    until_served_by(&first, "v1", 20).await;
    until_served_by(&second, "v1", 20).await;

    // Changed while pilot was down: both proxies must pick it up from the new pilot.
    pilot.write("routes.yaml", &route_to("v2"));
    pilot.restart();
    let syncz = pilot.wait_all_synced(&[&first.id, &second.id]).await;
    assert_eq!(syncz.as_array().unwrap().len(), 2);
    until_served_by(&first, "v2", 5).await;
    until_served_by(&second, "v2", 5).await;
}

#[tokio::test]
async fn workload_entries_joining_and_leaving_move_traffic() {
    let (one, two) = (echo("one").await, echo("two").await);
    let entry = |name: &str, port: u16| {
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: shop}}
spec: {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{app: reviews}}}}
"#
        )
    };
    let pilot = Pilot::start(&[
        ("service.yaml", REVIEWS_SERVICE),
        ("one.yaml", &entry("one", one.addr().port())),
    ]);
    let proxy = Proxy::start(&pilot, "productpage", "shop");
    until_served_by(&proxy, "one", 5).await;

    // A new WorkloadEntry starts receiving traffic.
    pilot.write("two.yaml", &entry("two", two.addr().port()));
    let outbound = proxy.outbound().await;
    wait_for("the new entry to answer", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            seen.insert(version_via(outbound, HOST).await);
        }
        (seen == BTreeSet::from(["one".to_owned(), "two".to_owned()])).then_some(())
    })
    .await;

    // A removed one stops.
    pilot.remove("one.yaml");
    wait_for("the removed entry to stop", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            seen.insert(version_via(outbound, HOST).await);
        }
        (seen == BTreeSet::from(["two".to_owned()])).then_some(())
    })
    .await;
    let served_before = one.stats().requests();
    for _ in 0..20 {
        assert_eq!(version_via(outbound, HOST).await, "two");
    }
    assert_eq!(
        one.stats().requests(),
        served_before,
        "no request reached the removed entry"
    );
}
