//! The live picture of a running local mesh (examples/bookinfo under steady traffic):
//! `meshctl dashboard`'s JSON API has the calls that happened as edges with a rate and the
//! mTLS lock, and the page Debian's chromium renders from it (headless) draws those nodes
//! and edges; `meshctl stat` and `top --once` print the golden metrics of the same traffic.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use meshctl::local::{self, LocalMesh};
use serde_json::Value;
use support::local::{binaries, copy_example, free_options, meshctl};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A route to show: jason's requests on reviews v2, the others split between v1, v2 and v3.
const REVIEWS_ROUTE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 25}
    - {destination: {host: reviews, subset: v3}, weight: 25}
"#;

async fn bookinfo(topology: &Path, state: &Path, config: &[(&str, &str)]) -> LocalMesh {
    copy_example(topology);
    for (name, text) in config {
        std::fs::write(topology.join("config").join(name), text).unwrap();
    }
    // Seven workloads and the ingress gateway.
    local::up(
        topology,
        &binaries(),
        state,
        &free_options(8),
        &mut |line| eprintln!("up: {line}"),
    )
    .await
    .unwrap()
}

/// Browses productpage until dropped, in turns through the ingress gateway
/// (`/productpage`) and straight to productpage's inbound listener, as a client outside the
/// mesh: productpage calls details and reviews, reviews v2 and v3 call ratings, every hop
/// through the sidecars over mTLS. Counts the pages that came back.
struct Traffic {
    stop: Arc<AtomicBool>,
    pages: Arc<AtomicU64>,
}

impl Traffic {
    fn start(mesh: &LocalMesh) -> Traffic {
        let productpage = mesh.workload("productpage-v1").unwrap();
        let inbound = SocketAddr::from((productpage.ip, 9080));
        let gateway = mesh.state().gateway.as_ref().unwrap().listeners[0];
        let (stop, pages) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stopped, counted) = (stop.clone(), pages.clone());
        tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                for (addr, path) in [(gateway, "/productpage"), (inbound, "/")] {
                    let (status, _) = support::get(addr, "productpage:9080", path).await;
                    if status == StatusCode::OK {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Traffic { stop, pages }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `meshctl dashboard --no-open` and the URL it printed.
struct Dashboard {
    child: Child,
    url: String,
}

impl Dashboard {
    fn start(state: &Path) -> Dashboard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
            .args(["dashboard", "--no-open", "--addr", "127.0.0.1:0"])
            .args(["--interval", "1s", "--window", "4s", "--state-dir"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("dashboard: ")
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim()
            .to_owned();
        Dashboard { child, url }
    }

    async fn json(&self, path: &str) -> Value {
        let addr: SocketAddr = self
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let (status, body) = support::get(addr, "dashboard", path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        serde_json::from_slice(&body).unwrap()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workloads with a proxy: bookinfo's seven and the ingress gateway.
fn workloads(mesh: &LocalMesh) -> Vec<String> {
    let mut names: Vec<String> = mesh
        .state()
        .workloads
        .iter()
        .map(|w| w.name.clone())
        .collect();
    names.push("ingressgateway".to_owned());
    names
}

fn edge<'a>(graph: &'a Value, source: &str, target_prefix: &str) -> Option<&'a Value> {
    graph["edges"].as_array()?.iter().find(|e| {
        e["source"] == source
            && e["target"]
                .as_str()
                .is_some_and(|t| t.starts_with(target_prefix))
            && e["golden"]["rps"].as_f64().is_some_and(|rps| rps > 0.0)
    })
}

/// Runs `meshctl <args>` until it has printed `tables` tables (a line starting `NAME `),
/// then sends it SIGINT (Ctrl-C); how many it printed, and how it exited.
fn refreshes_until_interrupted(
    state: &Path,
    args: &[&str],
    tables: usize,
) -> (usize, std::process::ExitStatus) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut seen = 0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while seen < tables {
        let line = lines.next().expect("output until the tables").unwrap();
        if line.starts_with("NAME ") {
            seen += 1;
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    (seen, status)
}

/// Runs Debian's chromium headless on `url` with `extra` flags; its stdout.
fn chromium(url: &str, profile: &Path, extra: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_the_calls_that_happen() {
    let (topology, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = [("reviews.yaml", REVIEWS_ROUTE)];
    let mesh = bookinfo(topology.path(), state.path(), &config).await;
    let traffic = Traffic::start(&mesh);
    let dashboard = Dashboard::start(state.path());
    assert!(
        dashboard.url.starts_with("http://127.0.0.1:"),
        "{}",
        dashboard.url
    );

    // The API: productpage's calls to details and reviews, reviews' to ratings, each an
    // edge with requests per second and the lock; the test client (outside the mesh, no
    // certificate) an edge from `unknown`, without one.
    let graph = support::wait_for("the calls as edges of the graph", || async {
        let graph = dashboard.json("/api/graph").await;
        let all = [
            edge(&graph, "productpage-v1.default", "details"),
            edge(&graph, "productpage-v1.default", "reviews"),
            edge(&graph, "unknown", "productpage-v1.default"),
            edge(&graph, "ingressgateway.default", "productpage-v1.default"),
        ];
        let ratings = graph["edges"].as_array()?.iter().any(|e| {
            e["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("reviews"))
                && e["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("ratings"))
        });
        (all.iter().all(Option::is_some) && ratings).then_some(graph)
    })
    .await;
    let details = edge(&graph, "productpage-v1.default", "details").unwrap();
    assert_eq!(details["target"], "details-v1.default", "{details}");
    assert_eq!(details["mtls"], true, "{details}");
    assert_eq!(details["golden"]["success"], 1.0, "{details}");
    assert!(
        details["golden"]["p99"].as_f64().unwrap() > 0.0,
        "{details}"
    );
    assert_eq!(
        edge(&graph, "productpage-v1.default", "reviews").unwrap()["mtls"],
        true
    );
    assert_eq!(
        edge(&graph, "unknown", "productpage").unwrap()["mtls"],
        false
    );
    let gateway = edge(&graph, "ingressgateway.default", "productpage").unwrap();
    assert_eq!(gateway["mtls"], true, "{gateway}");
    let nodes: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "workload")
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for workload in workloads(&mesh) {
        assert!(
            nodes.contains(&format!("{workload}.default").as_str()),
            "{nodes:?}"
        );
    }
    let services = dashboard.json("/api/services").await;
    let productpage = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "productpage")
        .unwrap();
    assert!(
        productpage["golden"]["rps"].as_f64().unwrap() > 0.0,
        "{services}"
    );
    // The routes in force: the reviews VirtualService, as productpage's sidecar runs it.
    let routes = support::wait_for("the reviews route in force", || async {
        let routes = dashboard.json("/api/routes").await;
        let reviews = routes["routes"]
            .as_array()?
            .iter()
            .find(|r| r["virtualService"] == "default/reviews")?
            .clone();
        Some(reviews)
    })
    .await;
    assert_eq!(routes["routes"].as_array().unwrap().len(), 2, "{routes}");
    let split: Vec<&str> = routes["routes"][1]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().rsplit('|').next().unwrap())
        .collect();
    assert_eq!(split, ["v1 50%", "v2 25%", "v3 25%"], "{routes}");
    assert!(
        routes["routes"][0]["match"]
            .as_str()
            .unwrap()
            .contains("end-user=jason"),
        "{routes}"
    );
    assert!(
        routes["proxies"]
            .as_array()
            .unwrap()
            .contains(&Value::from("productpage-v1")),
        "{routes}"
    );
    println!(
        "graph: {} nodes, {} edges; productpage -> details {:.1} rps, p99 {} ms; {} pages",
        graph["nodes"].as_array().unwrap().len(),
        graph["edges"].as_array().unwrap().len(),
        details["golden"]["rps"].as_f64().unwrap(),
        details["golden"]["p99"],
        traffic.pages.load(Ordering::Relaxed),
    );

    // The page, as chromium renders it: the graph's nodes and edges as SVG elements.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(&dashboard.url, profile.path(), &["--dump-dom"]);
    assert!(dom.contains(r#"data-ready="true""#), "{dom}");
    for workload in workloads(&mesh) {
        let node = format!(r#"data-node="{workload}.default""#);
        assert!(dom.contains(&node), "no {node} in the page: {dom}");
    }
    let drawn = r#"data-source="productpage-v1.default" data-target="details-v1.default""#;
    let at = dom
        .find(drawn)
        .unwrap_or_else(|| panic!("no edge {drawn}: {dom}"));
    let element = &dom[at..at + dom[at..].find('>').unwrap()];
    assert!(element.contains(r#"data-mtls="true""#), "{element}");
    assert!(dom.contains("data-mtls-lock"), "no lock drawn: {dom}");
    assert!(
        dom.contains(r#"data-service="productpage.default""#),
        "{dom}"
    );

    // And a screenshot, for docs/dashboard.png (MESH_DASHBOARD_SCREENSHOT=<path> keeps it).
    let shot = profile.path().join("dashboard.png");
    let shot_flag = format!("--screenshot={}", shot.display());
    chromium(
        &dashboard.url,
        profile.path(),
        &[&shot_flag, "--window-size=1400,900"],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is blank",
        png.len()
    );
    if let Some(keep) = std::env::var_os("MESH_DASHBOARD_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
    drop(traffic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_and_top_print_the_golden_metrics_of_the_traffic() {
    let (topology, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mesh = bookinfo(topology.path(), state.path(), &[]).await;
    let _traffic = Traffic::start(&mesh);
    let state = state.path();

    // ratings-v2 answers 500 to everything (a broken release), ratings-v1 never fails:
    // every workload shows its own sidecar's inbound requests.
    let json = support::wait_for("stat to see ratings-v1 and v2 called", || async {
        let run = meshctl(state, &["stat", "-o", "json", "--window", "1s"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let rows: Value = serde_json::from_str(&run.stdout).unwrap();
        let called = |name: &str| {
            rows.as_array().unwrap().iter().any(|r| {
                r["name"] == name && r["golden"]["rps"].as_f64().is_some_and(|rps| rps > 0.0)
            })
        };
        (called("ratings-v1") && called("ratings-v2")).then_some(rows)
    })
    .await;
    let row = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
    };
    assert_eq!(row("ratings-v1")["golden"]["success"], 1.0);
    assert_eq!(row("ratings-v2")["golden"]["success"], 0.0);
    assert_eq!(row("productpage-v1")["meshed"], serde_json::json!([1, 1]));

    let run = meshctl(state, &["stat", "default", "--window", "1s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    println!("{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MESHED",
            "SUCCESS",
            "RPS",
            "LATENCY_P50",
            "LATENCY_P95",
            "LATENCY_P99",
            "TCP_CONN"
        ]
    );
    assert_eq!(lines.len(), 1 + workloads(&mesh).len(), "{}", run.stdout);
    let productpage: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("productpage-v1 "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(productpage[1], "1/1");
    assert!(productpage[2].ends_with('%'), "{productpage:?}");
    assert!(
        productpage[3].ends_with("rps") && productpage[3] != "0.0rps",
        "{productpage:?}"
    );
    for latency in &productpage[4..7] {
        assert!(latency.ends_with("ms"), "{productpage:?}");
    }
    assert_eq!(productpage[7], "0");
    // The gateway is called by nobody in the mesh: its row is what it forwarded.
    let gateway: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("ingressgateway "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(gateway[1..3], ["1/1", "100.00%"], "{gateway:?}");
    assert_ne!(gateway[3], "0.0rps", "{gateway:?}");

    let run = meshctl(state, &["stat", "deploy/ratings-v2", "--window", "1s"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[1].starts_with("ratings-v2 "), "{}", run.stdout);

    let run = meshctl(state, &["stat", "nosuch", "--window", "1s"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "\"nosuch\" is neither the local mesh's namespace (default) nor one of its workloads"
        ),
        "{}",
        run.stderr
    );

    // top: the workloads, then the calls between them with the lock column.
    let run = meshctl(state, &["top", "--once", "--interval", "1s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    println!("{}", run.stdout);
    assert!(run.stdout.starts_with("NAME "), "{}", run.stdout);
    let call = run
        .stdout
        .lines()
        .find(|l| l.starts_with("productpage-v1 ") && l.contains(" details-v1 "))
        .unwrap_or_else(|| panic!("no productpage -> details row: {}", run.stdout));
    let cells: Vec<&str> = call.split_whitespace().collect();
    assert_eq!(cells[2], "100.00%", "{call}");
    assert_eq!(cells[5], "yes", "{call}");
    assert!(run.stdout.contains("FROM  "), "{}", run.stdout);

    // Without --once, top refreshes until Ctrl-C, and then exits cleanly.
    let (tables, status) =
        refreshes_until_interrupted(state, &["top", "--interval", "300ms", "--window", "1s"], 3);
    assert_eq!(tables, 3);
    assert!(status.success(), "{status:?}");
    let (tables, status) =
        refreshes_until_interrupted(state, &["stat", "-w", "--window", "300ms"], 2);
    assert_eq!(tables, 2);
    assert!(status.success(), "{status:?}");

    // A sidecar that stops answering is not meshed, and stat says why.
    let sidecar = mesh.workload("ratings-v2").unwrap().sidecar.clone();
    let killed = Command::new("kill")
        .args(["-KILL", &sidecar.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let run = support::wait_for("ratings-v2's sidecar gone", || async {
        let run = meshctl(state, &["stat", "ratings-v2", "--window", "200ms"]);
        run.stdout.contains(" 0/1 ").then_some(run)
    })
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warning = format!(
        "warning: ratings-v2: metrics {}/stats/prometheus:",
        sidecar.metrics
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
}
