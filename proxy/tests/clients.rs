//! Real third-party clients through the proxy: curl (HTTP/1.1 and HTTP/2 prior knowledge)
//! and h2load (HTTP/2 and HTTP/1.1 under concurrent load).

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Command;

use support::*;

fn snapshot(upstreams: &[SocketAddr]) -> String {
    let endpoints: String = upstreams
        .iter()
        .map(|u| format!("  - {{address: \"{u}\"}}\n"))
        .collect();
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: reviews
    domains: [reviews]
    routes:
    - name: all
      route: [{{destination: {{host: reviews.default.svc.cluster.local}}}}]
clusters:
- host: reviews.default.svc.cluster.local
  port: 9080
  endpoints:
{endpoints}"#
    )
}

async fn run(program: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run installs it): {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn curl_over_http1_and_http2_prior_knowledge() {
    let upstream = echo("v1").await;
    let proxy = Proxy::start(&snapshot(&[upstream.addr()]));
    let url = format!("http://{}/", proxy.listener("outbound").await);
    for (flag, expected) in [
        ("--http1.1", "200 1.1 v1"),
        ("--http2-prior-knowledge", "200 2 v1"),
    ] {
        let out = run(
            "curl",
            vec![
                "-s".into(),
                flag.into(),
                "-H".into(),
                "host: reviews".into(),
                "-o".into(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code} %{http_version} %header{x-echo-version}".into(),
                url.clone(),
            ],
        )
        .await;
        assert_eq!(out.trim(), expected, "curl {flag}");
    }
}

/// Parses h2load's "requests: N total, N started, N done, N succeeded, N failed, ...".
fn succeeded_and_failed(report: &str) -> (u64, u64) {
    let line = report
        .lines()
        .find(|l| l.starts_with("requests:"))
        .expect("a requests: line");
    let count = |word: &str| -> u64 {
        line.split(',')
            .find(|part| part.trim().ends_with(word))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {word} in {line}"))
    };
    (count("succeeded"), count("failed"))
}

#[tokio::test]
async fn h2load_over_http2_and_http1_loses_nothing() {
    let (a, b) = (echo("a").await, echo("b").await);
    let proxy = Proxy::start(&snapshot(&[a.addr(), b.addr()]));
    let url = format!("http://{}/", proxy.listener("outbound").await);
    let http2 = run(
        "h2load",
        vec![
            "-n".into(),
            "2000".into(),
            "-c".into(),
            "16".into(),
            "-m".into(),
            "8".into(),
            "-H".into(),
            ":authority: reviews".into(),
            url.clone(),
        ],
    )
    .await;
    let http1 = run(
        "h2load",
        vec![
            "--h1".into(),
            "-n".into(),
            "2000".into(),
            "-c".into(),
            "16".into(),
            "-H".into(),
            ":authority: reviews".into(),
            url,
        ],
    )
    .await;
    println!(
        "h2load h2: {:?}, h1: {:?}",
        succeeded_and_failed(&http2),
        succeeded_and_failed(&http1)
    );
    assert_eq!(succeeded_and_failed(&http2), (2000, 0), "{http2}");
    assert_eq!(succeeded_and_failed(&http1), (2000, 0), "{http1}");
    assert!(
        http2.contains("2000 2xx") && http1.contains("2000 2xx"),
        "all 2xx:\n{http2}\n{http1}"
    );
    assert_eq!(a.stats().requests() + b.stats().requests(), 4000);
    assert!(
        a.stats().requests() > 0 && b.stats().requests() > 0,
        "both endpoints served"
    );
}

#[tokio::test]
async fn apps_can_use_the_proxy_through_http_proxy_and_connect() {
    let upstream = echo("v1").await;
    let proxy = Proxy::start(
        &snapshot(&[upstream.addr()])
            .replace("domains: [reviews]", "domains: [reviews, \"reviews:9080\"]"),
    );
    let proxy_url = format!("http://{}", proxy.listener("outbound").await);
    let format = "%{http_code} %header{x-echo-version}".to_owned();
    // HTTP_PROXY: curl sends the absolute form, GET http://reviews:9080/ HTTP/1.1.
    let absolute = run(
        "curl",
        vec![
            "-s".into(),
            "-x".into(),
            proxy_url.clone(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            format.clone(),
            "http://reviews:9080/".into(),
        ],
    )
    .await;
    assert_eq!(absolute.trim(), "200 v1");
    // CONNECT: curl opens a tunnel to reviews:9080 and speaks HTTP inside it.
    let tunnelled = run(
        "curl",
        vec![
            "-s".into(),
            "-p".into(),
            "-x".into(),
            proxy_url,
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            format,
            "http://reviews:9080/".into(),
        ],
    )
    .await;
    assert_eq!(tunnelled.trim(), "200 v1");
    assert_eq!(upstream.stats().requests(), 2);
}
