//! Reloads, refused snapshots and draining, through the real proxy binary under load.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use support::*;

fn snapshot(version: &str, upstream: std::net::SocketAddr, subset_version: &str) -> String {
    format!(
        r#"version: "{version}"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: web
    domains: ["*"]
    routes:
    - name: all
      route: [{{destination: {{host: web, subset: {subset_version}}}}}]
clusters:
- host: web
  port: 80
  endpoints: [{{address: "{upstream}", labels: {{version: {subset_version}}}}}]
  subsets: [{{name: {subset_version}, labels: {{version: {subset_version}}}}}]
"#
    )
}

/// Sends requests from `workers` tasks until `stop`; returns (ok, failed) counts.
fn load(
    addr: std::net::SocketAddr,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (ok, failures, stop) = (ok.clone(), failures.clone(), stop.clone());
                tokio::spawn(async move {
                    let client = client();
                    while !stop.load(Ordering::Relaxed) {
                        let request = http::Request::get(format!("http://{addr}/"))
                            .body(http_body_util::Full::<bytes::Bytes>::default())
                            .unwrap();
                        match client.request(request).await {
                            Ok(response) if response.status() == StatusCode::OK => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(response) => failures
                                .lock()
                                .unwrap()
                                .push(format!("status {}", response.status())),
                            Err(error) => failures.lock().unwrap().push(format!("{error:?}")),
                        }
                        // About 500 rps over all workers, as the issue asks.
                        tokio::time::sleep(Duration::from_millis(2 * workers as u64)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let failures = failures.lock().unwrap().clone();
        (ok.load(Ordering::Relaxed), failures)
    })
}

#[tokio::test]
async fn reloads_under_load_lose_no_request() {
    let (blue, green) = (echo("blue").await, echo("green").await);
    let proxy = Proxy::start(&snapshot("1", blue.addr(), "blue"));
    let addr = proxy.listener("outbound").await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(addr, 5, stop.clone());
    for version in 2..=11u64 {
        let (upstream, name) = if version % 2 == 0 {
            (green.addr(), "green")
        } else {
            (blue.addr(), "blue")
        };
        proxy.write_snapshot(&snapshot(&version.to_string(), upstream, name));
        proxy.wait_applied(version).await;
        tokio::time::sleep(Duration::from_millis(100)).await; // let traffic flow on this version
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = traffic.await.unwrap();
    println!(
        "10 reloads under load: {ok} requests ok, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "lost requests during reloads: {failures:?}"
    );
    assert!(ok > 200, "too little traffic to prove anything: {ok}");
    assert!(
        blue.stats().requests() > 0 && green.stats().requests() > 0,
        "both versions served"
    );
}

#[tokio::test]
async fn a_bad_snapshot_is_refused_and_the_last_good_one_keeps_serving() {
    let blue = echo("blue").await;
    let proxy = Proxy::start(&snapshot("1", blue.addr(), "blue"));
    let addr = proxy.listener("outbound").await;
    let broken = snapshot("2", blue.addr(), "blue").replace("subset: blue}", "subset: purple}");
    proxy.write_snapshot(&broken);
    let dump = proxy.wait_status(|s| s["rejected_count"] == 1).await;
    let reason = dump["status"]["last_rejection"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("no subset \"purple\""), "{reason}");
    assert_eq!(dump["version"], "1", "still on the last good version");
    let (status, headers, _) = get(addr, "/", &[]).await;
    assert_eq!(
        (status, version(&headers)),
        (StatusCode::OK, "blue".to_owned())
    );
}

#[tokio::test]
async fn sigterm_under_load_finishes_in_flight_requests_and_exits_0() {
    let slow = echo("slow").await;
    let mut proxy = Proxy::start(&snapshot("1", slow.addr(), "slow"));
    let addr = proxy.listener("outbound").await;
    let in_flight: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { get(addr, "/", &[("x-echo-delay", "500ms")]).await.0 }))
        .collect();
    assert!(
        slow.stats()
            .wait_until(DEADLINE, |s| s.open_connections() >= 20)
            .await,
        "the requests never reached the upstream"
    );
    let exit = tokio::task::spawn_blocking(move || proxy.terminate())
        .await
        .unwrap();
    for request in in_flight {
        assert_eq!(
            request.await.unwrap(),
            StatusCode::OK,
            "an in-flight request was lost"
        );
    }
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn health_is_ready_once_a_snapshot_is_applied() {
    let blue = echo("blue").await;
    let proxy = Proxy::start(&snapshot("1", blue.addr(), "blue"));
    let (status, _, _) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let clusters = proxy.admin_json("/clusters").await;
    assert_eq!(clusters[0]["name"], "outbound|80||web");
    assert_eq!(
        clusters[0]["endpoints"][0]["address"],
        blue.addr().to_string()
    );
}
