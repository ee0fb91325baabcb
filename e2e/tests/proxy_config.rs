//! `meshctl proxy-config` and `meshctl proxy-status` against examples/bookinfo run locally:
//! the real binary reading real proxies' admin ports and pilot's syncz, with no flag but
//! the state directory. Every row asserted is one that changes when the mesh does: the
//! reviews subsets, ratings-v2 ejected by outlier detection, the workload's certificate,
//! every proxy SYNCED, then NACKED with the message after a config no proxy can load.

#![allow(clippy::unwrap_used)]

mod support;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use meshctl::cmd::proxy_config::tables::unix_time;
use meshctl::local::{self, LocalMesh};
use serde_json::Value;
use support::local::{Run, binaries, copy_example, free_options, meshctl};

const RATINGS_CLUSTER: &str = "outbound|9080||ratings.default.svc.cluster.local";

/// Polls `check` every 100 ms until it yields a value; panics after `deadline`.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A table's rows (header included), cells split on runs of two or more spaces.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn rows_of(run: &Run, first: &str) -> Vec<Vec<String>> {
    table(&run.stdout)
        .into_iter()
        .filter(|r| r.first().is_some_and(|c| c == first))
        .collect()
}

fn ok(state: &Path, args: &[&str]) -> Run {
    let run = meshctl(state, args);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    run
}

/// Replaces `from` with `to` in the topology's DestinationRules, as an editor saves.
fn edit_rules(topology: &Path, from: &str, to: &str) {
    let path = topology.join("config/destination-rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, text.replace(from, to)).unwrap();
    std::fs::rename(&aside, &path).unwrap();
}

#[tokio::test]
async fn proxy_config_and_proxy_status_read_the_local_mesh() {
    let topology = tempfile::tempdir().unwrap();
    copy_example(topology.path());
    let state = tempfile::tempdir().unwrap();
    let options = free_options(7);
    let mesh: LocalMesh = local::up(
        topology.path(),
        &binaries(),
        state.path(),
        &options,
        &mut |line| eprintln!("up: {line}"),
    )
    .await
    .unwrap();
    let state = state.path();
    let productpage = mesh.workload("productpage-v1").unwrap().clone();
    let ip = productpage.ip.to_string();

    // routes: a virtual host per service, the inbound route config to the app.
    let routes = ok(state, &["proxy-config", "routes", "productpage-v1"]);
    assert_eq!(
        table(&routes.stdout)[0],
        ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]
    );
    let reviews: Vec<Vec<String>> = rows_of(&routes, "outbound")
        .into_iter()
        .filter(|r| r[1] == "reviews.default.svc.cluster.local:9080")
        .collect();
    assert_eq!(reviews.len(), 1, "{}", routes.stdout);
    assert_eq!(reviews[0][2], "reviews, reviews.default + 2 more...");
    assert_eq!(reviews[0][3], "/*");
    assert_eq!(
        rows_of(&routes, "inbound|9080").len(),
        1,
        "{}",
        routes.stdout
    );

    // clusters: the reviews DestinationRule's subsets, a row each.
    let clusters = ok(
        state,
        &["proxy-config", "clusters", "productpage-v1.default"],
    );
    let subsets: Vec<String> = rows_of(&clusters, "reviews.default.svc.cluster.local")
        .iter()
        .map(|r| format!("{} {} {} {}", r[1], r[2], r[3], r[4]))
        .collect();
    assert_eq!(
        subsets,
        [
            "9080 - outbound EDS",
            "9080 v1 outbound EDS",
            "9080 v2 outbound EDS",
            "9080 v3 outbound EDS"
        ],
        "{}",
        clusters.stdout
    );
    assert!(
        rows_of(&clusters, "reviews.default.svc.cluster.local")
            .iter()
            .all(|r| r[5] == "default/reviews"),
        "the DestinationRule is named: {}",
        clusters.stdout
    );

    // listeners: bound on the workload's own address.
    let listeners = ok(state, &["proxy-config", "listeners", "productpage-v1"]);
    assert_eq!(
        rows_of(&listeners, &ip),
        [
            vec![
                ip.clone(),
                "9080".into(),
                "HTTP; mTLS PERMISSIVE".into(),
                "Route: inbound|9080".into()
            ],
            vec![
                ip.clone(),
                "15001".into(),
                "HTTP".into(),
                "Route: outbound".into()
            ],
        ],
        "{}",
        listeners.stdout
    );

    // secret: the certificate the proxy holds, valid now.
    let certs: Value = {
        let (_, body) = support::get(productpage.sidecar.admin, "admin", "/certs").await;
        serde_json::from_slice(&body).unwrap()
    };
    let secret = ok(state, &["proxy-config", "secret", "productpage-v1"]);
    let default = &rows_of(&secret, "default")[0];
    assert_eq!(
        default[..4],
        ["default", "Cert Chain", "ACTIVE", "true"],
        "{}",
        secret.stdout
    );
    assert_eq!(default[4], certs["serial"].as_str().unwrap());
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!(
        unix_time(&default[5]).unwrap() > now,
        "NOT AFTER {}",
        default[5]
    );
    assert!(
        unix_time(&default[6]).unwrap() <= now,
        "NOT BEFORE {}",
        default[6]
    );
    assert_eq!(rows_of(&secret, "ROOTCA").len(), 1, "{}", secret.stdout);

    // all -o json: every part, as the admin port gave it.
    let all: Value = serde_json::from_str(
        &ok(
            state,
            &["proxy-config", "all", "productpage-v1", "-o", "json"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(all["secret"]["serial"], certs["serial"]);
    assert_eq!(all["listeners"][1]["bound"], format!("{ip}:15001"));
    assert_eq!(all["routes"][1]["name"], "outbound");
    assert!(all["clusters"].as_array().unwrap().len() >= 5, "{all}");
    assert!(all["endpoints"].as_array().unwrap().len() >= 5, "{all}");

    // The same proxy by --admin, with no state directory at all.
    let admin = productpage.sidecar.admin.to_string();
    let by_address = ok(
        Path::new("/nonexistent"),
        &["proxy-config", "listeners", "--admin", &admin],
    );
    assert_eq!(by_address.stdout, listeners.stdout);

    endpoints_show_an_ejection(&mesh, topology.path(), state).await;
    proxy_status_shows_synced_then_nacked(topology.path(), state).await;
    errors_are_one_line(state);
    mesh.down();
}

/// Outlier detection on ratings; requests through productpage's sidecar reach ratings-v2,
/// which answers 500, and productpage's proxy ejects it.
async fn endpoints_show_an_ejection(mesh: &LocalMesh, topology: &Path, state: &Path) {
    let v2 = format!("{}:9080", mesh.workload("ratings-v2").unwrap().ip);
    let v1 = format!("{}:9080", mesh.workload("ratings-v1").unwrap().ip);
    let before = ok(state, &["proxy-config", "endpoints", "productpage-v1"]);
    assert_eq!(
        rows_of(&before, &v2),
        [vec![
            v2.clone(),
            "HEALTHY".into(),
            "-".into(),
            RATINGS_CLUSTER.into()
        ]],
        "no outlier detection yet:\n{}",
        before.stdout
    );
    edit_rules(
        topology,
        "  host: ratings\n  subsets:",
        "  host: ratings\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}\n  subsets:",
    );
    eventually(
        "outlier detection on ratings",
        Duration::from_secs(10),
        || async {
            let run = ok(state, &["proxy-config", "endpoints", "productpage-v1"]);
            (rows_of(&run, &v1)[0][2] == "OK").then_some(())
        },
    )
    .await;
    let outbound = mesh.workload("productpage-v1").unwrap().sidecar.outbound;
    let endpoints = eventually("ratings-v2 ejected", Duration::from_secs(10), || async {
        let _ = support::get(outbound, "ratings:9080", "/ratings/0").await;
        let run = ok(state, &["proxy-config", "endpoints", "productpage-v1"]);
        (rows_of(&run, &v2)[0][1] == "EJECTED").then_some(run)
    })
    .await;
    assert_eq!(
        rows_of(&endpoints, &v2),
        [vec![
            v2.clone(),
            "EJECTED".into(),
            "FAILED".into(),
            RATINGS_CLUSTER.into()
        ]],
        "{}",
        endpoints.stdout
    );
    assert_eq!(
        rows_of(&endpoints, &v1)[0][1],
        "HEALTHY",
        "{}",
        endpoints.stdout
    );
}

/// Every proxy SYNCED; a DestinationRule no proxy can load (client certificate files that
/// do not exist) makes each NACK its clusters; reverting it brings them back to SYNCED.
async fn proxy_status_shows_synced_then_nacked(topology: &Path, state: &Path) {
    let deadline = Duration::from_secs(10);
    let header = [
        "NAME",
        "LISTENERS",
        "ROUTES",
        "CLUSTERS",
        "ENDPOINTS",
        "POLICIES",
        "VERSION",
        "NACK",
    ];
    // The header, the 7 workloads' sidecars and the ingress gateway.
    let rows_expected = 1 + 7 + 1;
    let synced = |run: &Run| {
        let rows = table(&run.stdout);
        run.code == 0
            && rows.len() == rows_expected
            && rows[1..]
                .iter()
                .all(|r| r[1..6].iter().all(|c| c == "SYNCED") && r[7] == "-")
    };
    let run = eventually("every proxy SYNCED", deadline, || async {
        let run = meshctl(state, &["proxy-status"]);
        synced(&run).then_some(run)
    })
    .await;
    assert_eq!(table(&run.stdout)[0], header);

    let original = "  host: details\n  subsets:";
    let broken = "  host: details\n  trafficPolicy:\n    tls: {mode: MUTUAL, clientCertificate: /nonexistent/cert.pem, privateKey: /nonexistent/key.pem}\n  subsets:";
    edit_rules(topology, original, broken);
    let nacked = eventually("every proxy NACKED", deadline, || async {
        let run = meshctl(state, &["proxy-status"]);
        let rows = table(&run.stdout);
        let all = rows.len() == rows_expected && rows[1..].iter().all(|r| r[3] == "NACKED");
        (run.code == 1 && all).then_some(rows)
    })
    .await;
    for row in &nacked[1..] {
        assert_eq!(
            row[1..6],
            ["SYNCED", "SYNCED", "NACKED", "SYNCED", "SYNCED"],
            "{row:?}"
        );
        assert!(row[7].contains("clientCertificate"), "{row:?}");
        assert!(row[7].contains("/nonexistent/cert.pem"), "{row:?}");
    }
    let one = meshctl(state, &["proxy-status", "details-v1"]);
    assert_eq!(
        (one.code, table(&one.stdout).len()),
        (1, 2),
        "{}",
        one.stdout
    );

    edit_rules(topology, broken, original);
    eventually("every proxy SYNCED again", deadline, || async {
        synced(&meshctl(state, &["proxy-status"])).then_some(())
    })
    .await;
}

/// What a user can act on: one line on stderr, a non-zero exit.
fn errors_are_one_line(state: &Path) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let cases: [(&[&str], &str); 5] = [
        (
            &["proxy-config", "routes", "nope"],
            "no workload \"nope\" in the local mesh; its workloads: productpage-v1, ",
        ),
        (
            &["proxy-config", "routes", "--admin", &closed],
            "admin port unreachable",
        ),
        (
            &["proxy-status", "--pilot", &closed],
            "control plane unreachable",
        ),
        (
            &["proxy-status", "nope"],
            "no proxy \"nope\" is connected to pilot",
        ),
        (&["proxy-config", "routes"], "name a workload"),
    ];
    for (args, message) in cases {
        let run = meshctl(state, args);
        assert_ne!(run.code, 0, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let run = meshctl(
        elsewhere.path(),
        &["proxy-config", "routes", "productpage-v1"],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no local mesh runs"), "{}", run.stderr);
}
