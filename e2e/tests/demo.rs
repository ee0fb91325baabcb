//! The `cargo xtask demo` walkthrough, asserted: examples/bookinfo started by meshctl's
//! launcher with this crate's binaries, then every step of the walkthrough (routing by
//! header, canary, faults, retries, outlier detection, consistent hashing, STRICT mTLS,
//! authorization) with each measured result checked.

#![allow(clippy::unwrap_used)]

mod support;

use meshctl::local;
use support::local::{binaries, copy_example, free_options};
use xtask::demo::{Target, walkthrough};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_walkthrough_measures_what_each_step_promises() {
    let topology = tempfile::tempdir().unwrap();
    copy_example(topology.path());
    let state = tempfile::tempdir().unwrap();
    let workloads = 7;
    let mesh = local::up(
        topology.path(),
        &binaries(),
        state.path(),
        &free_options(workloads),
        &mut |line| eprintln!("up: {line}"),
    )
    .await
    .unwrap();
    assert_eq!(mesh.state().workloads.len(), usize::from(workloads));
    let target = Target::from_state(mesh.state()).unwrap();
    let reports = walkthrough(target).await.unwrap();
    assert_eq!(reports.len(), 9, "every step ran");
    let failed: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.checks
                .iter()
                .filter(|c| !c.passed)
                .map(move |c| format!("{}: {}", r.title, c.what))
        })
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert!(reports.iter().all(|r| !r.checks.is_empty()));
    // The walkthrough leaves the config directory as it found it.
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bookinfo/config");
    for entry in std::fs::read_dir(topology.path().join("config")).unwrap() {
        let path = entry.unwrap().path();
        let original = example.join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&original).unwrap(),
            "{} was left changed",
            path.display()
        );
    }
    mesh.down();
}
