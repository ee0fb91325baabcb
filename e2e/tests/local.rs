//! Local mode end to end: `examples/bookinfo` brought up by meshctl's launcher (pilot,
//! citadel, and an echo app plus a sidecar per workload, each workload on its own loopback
//! address), a request through one sidecar to another over mTLS, a live routing edit in
//! the config directory, `meshctl apply`/`delete`, `status`, and `down` leaving nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use http::StatusCode;
use meshctl::local::{self, LocalError, LocalMesh, Options};
use serde_json::Value;
use support::local::{binaries, copy_example, free_options};
use support::wait_for;

const CALLER: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
const CALLEE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

async fn up(topology: &Path, state: &Path, options: &Options) -> Result<LocalMesh, LocalError> {
    local::up(topology, &binaries(), state, options, &mut |line| {
        eprintln!("up: {line}")
    })
    .await
}

/// `meshctl <args> --state-dir <state>`: exit code and stdout + stderr.
fn meshctl(state: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// One GET through `outbound` (a sidecar's outbound listener) to `host`.
async fn call(outbound: SocketAddr, host: &str) -> (StatusCode, Value) {
    let (status, body) = support::get(outbound, host, "/hello").await;
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn write_atomically(path: &Path, text: &str) {
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

const REVIEWS_V3: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
"#;

const RATINGS_WEIGHT_150: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http: [{route: [{destination: {host: ratings, subset: v1}, weight: 150}]}]
"#;

const RATINGS_TEAPOT: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault: {abort: {percentage: {value: 100}, httpStatus: 418}}
    route: [{destination: {host: ratings, subset: v1}}]
"#;

#[tokio::test]
async fn bookinfo_runs_locally_routes_live_and_stops_without_orphans() {
    let topology = tempfile::tempdir().unwrap();
    copy_example(topology.path());
    let state = tempfile::tempdir().unwrap();
    // Seven workloads and the ingress gateway.
    let options = free_options(8);
    let mut mesh = up(topology.path(), state.path(), &options).await.unwrap();
    let names: Vec<&str> = mesh
        .state()
        .workloads
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "productpage-v1",
            "details-v1",
            "reviews-v1",
            "reviews-v2",
            "reviews-v3",
            "ratings-v1",
            "ratings-v2"
        ]
    );
    let productpage = mesh.workload("productpage-v1").unwrap().clone();
    assert_eq!(productpage.ip, options.base_ip);
    assert!(state.path().join("local.json").is_file());

    // A second `up` on the same state refuses before starting anything.
    let again = up(topology.path(), state.path(), &options).await;
    assert!(
        matches!(again, Err(LocalError::AlreadyRunning { .. })),
        "{:?}",
        again.err()
    );

    // productpage's sidecar -> reviews' sidecar over mTLS -> the reviews app.
    let outbound = productpage.sidecar.outbound;
    let reply = wait_for("reviews through productpage's sidecar", || async {
        let (status, reply) = call(outbound, "reviews:9080").await;
        (status == StatusCode::OK).then_some(reply)
    })
    .await;
    assert_eq!(reply["service"], "reviews", "{reply}");
    let xfcc = reply["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default();
    assert!(xfcc.contains(&format!("URI={CALLER}")), "{reply}");
    assert!(xfcc.contains(&format!("By={CALLEE}")), "{reply}");

    // The apps call each other through their sidecars: productpage's inbound listener ->
    // productpage -> details and reviews (-> ratings for v2 and v3), each hop over mTLS.
    let inbound = SocketAddr::from((productpage.ip, 9080));
    let page = wait_for("the productpage chain", || async {
        let (status, page) = call(inbound, "productpage:9080").await;
        (status == StatusCode::OK && page["calls"][1]["status"] == 200).then_some(page)
    })
    .await;
    assert_eq!(page["service"], "productpage", "{page}");
    let (details, reviews) = (&page["calls"][0]["body"], &page["calls"][1]["body"]);
    assert_eq!(details["service"], "details", "{page}");
    assert_eq!(reviews["service"], "reviews", "{page}");
    assert_eq!(reviews["peer"], CALLER, "reviews saw productpage: {page}");
    if reviews["version"] != "v1" {
        let ratings = &reviews["calls"][0]["body"];
        assert_eq!(ratings["service"], "ratings", "{page}");
        assert_eq!(ratings["peer"], CALLEE, "ratings saw reviews: {page}");
    }

    // No route yet: every version answers. Then a VirtualService in the config dir sends
    // everything to v3, live.
    wait_for("more than one reviews version", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..6 {
            seen.insert(call(outbound, "reviews:9080").await.1["version"].to_string());
        }
        (seen.len() > 1).then_some(())
    })
    .await;
    write_atomically(&topology.path().join("config/reviews.yaml"), REVIEWS_V3);
    wait_for("every reviews request on v3", || async {
        for _ in 0..5 {
            if call(outbound, "reviews:9080").await.1["version"] != "v3" {
                return None;
            }
        }
        Some(())
    })
    .await;

    // apply: an invalid file is refused with its file, object and field; nothing is written.
    let invalid = topology.path().join("ratings-invalid.yaml");
    std::fs::write(&invalid, RATINGS_WEIGHT_150).unwrap();
    let (code, text) = meshctl(state.path(), &["apply", "-f", invalid.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ratings-invalid.yaml[0]"), "{text}");
    assert!(text.contains("VirtualService default/ratings"), "{text}");
    assert!(text.contains("spec.http[0].route[0].weight"), "{text}");
    assert!(text.contains("nothing applied"), "{text}");
    let applied = &mesh.state().applied_dir;
    assert_eq!(std::fs::read_dir(applied).unwrap().count(), 0);

    // A valid one takes effect live, and `delete` takes it away again.
    let teapot = topology.path().join("ratings-fault.yaml");
    std::fs::write(&teapot, RATINGS_TEAPOT).unwrap();
    let (code, text) = meshctl(state.path(), &["apply", "-f", teapot.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("VirtualService default/ratings created"),
        "{text}"
    );
    let status_of_ratings = || async { call(outbound, "ratings:9080").await.0 };
    wait_for("the applied fault", || async {
        (status_of_ratings().await == StatusCode::IM_A_TEAPOT).then_some(())
    })
    .await;
    let (code, text) = meshctl(state.path(), &["delete", "-f", teapot.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    wait_for("the fault removed", || async {
        (status_of_ratings().await == StatusCode::OK).then_some(())
    })
    .await;

    // status: every workload, its address, ready and synced.
    let (code, text) = meshctl(state.path(), &["local", "status"]);
    assert_eq!(code, 0, "{text}");
    for workload in &mesh.state().workloads {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{} ", workload.name)))
            .unwrap_or_else(|| panic!("no row for {}: {text}", workload.name));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[3], workload.ip.to_string(), "{row}");
        assert_eq!(
            [cells[5], cells[6], cells[7], cells[8]],
            ["yes", "running", "yes", "yes"],
            "app up, sidecar running, ready and synced: {row}"
        );
    }

    // down, from another process as a user would: every process exits.
    let processes: Vec<(String, u32)> = mesh
        .state()
        .processes
        .iter()
        .map(|p| (p.name.clone(), p.pid))
        .collect();
    // pilot, citadel, an app and a sidecar per workload, the ingress gateway.
    assert_eq!(processes.len(), 2 + 2 * 7 + 1);
    let (code, text) = meshctl(state.path(), &["local", "down"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stopped 17 processes"), "{text}");
    for (name, status) in mesh.exits() {
        assert!(status.is_some(), "{name} still runs after down");
    }
    assert!(!state.path().join("local.json").exists());
    for (name, pid) in processes {
        assert!(
            !local::process::alive(pid),
            "{name} (pid {pid}) left behind"
        );
    }
    drop(mesh);
    let (code, text) = meshctl(state.path(), &["local", "status"]);
    assert_eq!(code, 1, "nothing runs: {text}");
}

const WEB_AND_BROKEN: &str = r#"
services:
  - name: web
    ports: [{number: 9080}]
  - name: broken
    ports: [{number: 9080}]
workloads:
  - {service: web}
  - service: broken
    command: ["sh", "-c", "echo boom on {listen} >&2; exit 3"]
"#;

const WEB: &str = r#"
services:
  - name: web
    ports: [{number: 9080, name: http, protocol: HTTP}]
workloads:
  - {service: web, version: v7}
"#;

/// Processes (not zombies) whose command line names `dir`: pilot, citadel and the sidecars
/// of a local mesh do (its state directory is in their flags); the apps do not.
fn running_with(dir: &Path) -> Vec<String> {
    let output = Command::new("ps")
        .args(["-A", "-o", "stat=,args="])
        .output()
        .unwrap();
    let needle = dir.to_str().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(needle) && !l.trim_start().starts_with('Z'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_workload_that_exits_fails_up_with_its_log_and_everything_stops() {
    let topology = tempfile::tempdir().unwrap();
    std::fs::write(topology.path().join("topology.yaml"), WEB_AND_BROKEN).unwrap();
    let state = tempfile::tempdir().unwrap();
    let options = free_options(2);
    let err = match up(topology.path(), state.path(), &options).await {
        Ok(_) => panic!("up succeeded with a workload that exits"),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(message.starts_with("broken-v1 exited"), "{message}");
    assert!(
        message.contains("boom on 127.0.0.1:"),
        "the log's tail: {message}"
    );
    assert!(message.contains("broken-v1.log"), "{message}");
    assert!(!state.path().join("local.json").exists());
    assert_eq!(running_with(state.path()), Vec::<String>::new());
    let web_admin = SocketAddr::from((options.base_ip, 15000));
    assert!(
        std::net::TcpStream::connect(web_admin).is_err(),
        "web's sidecar stopped"
    );
    let web_app = SocketAddr::from((Ipv4Addr::LOCALHOST, options.app_port_base));
    assert!(
        std::net::TcpStream::connect(web_app).is_err(),
        "web's app stopped"
    );
}

#[tokio::test]
async fn the_cli_leaves_the_mesh_running_and_down_stops_it() {
    let topology = tempfile::tempdir().unwrap();
    std::fs::write(topology.path().join("topology.yaml"), WEB).unwrap();
    std::fs::create_dir(topology.path().join("config")).unwrap();
    std::fs::write(
        topology.path().join("config/web.yaml"),
        RATINGS_WEIGHT_150
            .replace("ratings", "web")
            .replace(", subset: v1", ""),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let options = free_options(1);
    let base_ip = options.base_ip.to_string();
    let app_ports = options.app_port_base.to_string();
    let mut args = vec!["local", "up", topology.path().to_str().unwrap()];
    args.extend(["--base-ip", &base_ip, "--app-port-base", &app_ports]);
    for flag in [
        "--pilot-addr",
        "--pilot-monitoring-addr",
        "--citadel-addr",
        "--citadel-monitoring-addr",
    ] {
        args.extend([flag, "127.0.0.1:0"]);
    }
    let bins = binaries();
    let output = Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
        .args(&args)
        .arg("--state-dir")
        .arg(state.path())
        .env("MESH_PILOT_BIN", &bins.pilot)
        .env("MESH_CITADEL_BIN", &bins.citadel)
        .env("MESH_PROXY_BIN", &bins.proxy)
        .env("MESH_ECHO_BIN", &bins.echo)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("1 of 1 workloads ready"), "{text}");
    assert!(text.contains("web-v7"), "{text}");
    // A problem in the config directory does not stop `up`, and is shown.
    assert!(text.contains("pilot reports 1 config problem(s)"), "{text}");
    assert!(
        text.contains(
            "web.yaml[0] VirtualService default/web: spec.http[0].route[0].weight: weight 150"
        ),
        "{text}"
    );

    // meshctl has exited; the mesh runs on, and answers through the sidecar.
    let outbound = SocketAddr::from((options.base_ip, 15001));
    let (status, reply) = call(outbound, "web:9080").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["version"], "v7");
    let (code, text) = meshctl(state.path(), &["local", "status"]);
    assert_eq!(code, 0, "{text}");
    let state_file: Value =
        serde_json::from_str(&std::fs::read_to_string(state.path().join("local.json")).unwrap())
            .unwrap();
    let pids: Vec<u64> = state_file["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "pilot, citadel, app, sidecar");
    assert!(pids.iter().all(|pid| runs(*pid)), "{pids:?}");

    let (code, text) = meshctl(state.path(), &["local", "down"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stopped 4 processes"), "{text}");
    // They are init's children now: gone once it reaps them.
    wait_for("every process gone", || async {
        (!pids.iter().any(|pid| runs(*pid))).then_some(())
    })
    .await;
    assert!(std::net::TcpStream::connect(outbound).is_err());
}

/// Whether `pid` is a live process (`ps` lists it, and not as a zombie).
fn runs(pid: u64) -> bool {
    let output = Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&output.stdout);
    !stat.trim().is_empty() && !stat.trim_start().starts_with('Z')
}
