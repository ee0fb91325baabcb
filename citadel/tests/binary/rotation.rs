//! Root rotation against a running citadel: each `citadel rotate-root` step is picked up
//! without a restart, certificates from both roots verify in the middle step, and clients
//! that re-read the bundle file keep connecting throughout.

use std::path::Path;
use std::process::Command;

use crate::support::client::{connect, request};
use crate::support::{
    Citadel, REVIEWS, REVIEWS_TOKEN, assert_no_secret, csr_for, ders, eventually, file,
    read_bundle, verify,
};

fn rotate(dir: &Path, step: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["rotate-root", step, "--ca-dir"])
        .arg(dir.join("ca"))
        .output()
        .expect("rotate-root runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rotate-root {step}: {text}");
    text
}

/// Issues a certificate for reviews over a fresh connection that trusts the bundle file.
async fn issue(citadel: &Citadel, dir: &Path) -> mesh_proto::ca::v1::CertificateResponse {
    let mut client = connect(citadel.grpc, &read_bundle(dir)).await.expect("TLS");
    request(&mut client, &csr_for(&[REVIEWS]), 0, Some(REVIEWS_TOKEN))
        .await
        .expect("signed")
}

#[tokio::test]
async fn three_steps_rotate_the_root_without_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let citadel = Citadel::local(dir.path(), &[]);
    let key_path = dir.path().join("ca/root-key.pem");
    let mut secrets = vec![file(&key_path)];
    let mut printed = String::new();
    let old_root = ders(&[file(dir.path().join("ca/root-cert.pem"))]);
    let from_old = issue(&citadel, dir.path()).await;

    // Step 1: the new root is trusted, the old one still signs.
    printed.push_str(&rotate(dir.path(), "prepare"));
    secrets.push(file(dir.path().join("ca/next-root-key.pem")));
    assert_eq!(ders(&[read_bundle(dir.path())]).len(), 2);
    eventually("the bundle in answers to hold both roots", || async {
        issue(&citadel, dir.path()).await.trust_bundle.len() == 2
    })
    .await;
    let prepared = issue(&citadel, dir.path()).await;
    assert_eq!(
        ders(&prepared.cert_chain[1..]),
        old_root,
        "the old root signs"
    );

    // Step 2: the new root signs, the old one stays trusted.
    printed.push_str(&rotate(dir.path(), "activate"));
    let new_root = ders(&[file(dir.path().join("ca/root-cert.pem"))]);
    assert_ne!(new_root, old_root);
    eventually("the new root to sign", || async {
        ders(&issue(&citadel, dir.path()).await.cert_chain[1..]) == new_root
    })
    .await;
    let from_new = issue(&citadel, dir.path()).await;
    let middle = ders(&from_new.trust_bundle);
    verify(&from_old.cert_chain, &middle).expect("an old-root certificate verifies");
    verify(&from_new.cert_chain, &middle).expect("a new-root certificate verifies");

    // Step 3: the old root is no longer trusted.
    printed.push_str(&rotate(dir.path(), "finish"));
    eventually("the old root to leave the bundle", || async {
        issue(&citadel, dir.path()).await.trust_bundle.len() == 1
    })
    .await;
    let last = issue(&citadel, dir.path()).await;
    assert_eq!(ders(&last.trust_bundle), new_root);
    verify(&from_new.cert_chain, &new_root).expect("new-root certificates still verify");
    assert!(
        verify(&from_old.cert_chain, &new_root).is_err(),
        "old-root ones do not"
    );
    let status = rotate(dir.path(), "status");
    assert!(status.contains("no rotation in progress"), "{status}");

    let answers = format!("{from_old:?}{prepared:?}{from_new:?}{last:?}");
    let logs = citadel.stop();
    assert!(logs.contains("serving certificate renewed"), "{logs}");
    assert_no_secret(&secrets, &logs, "citadel's output");
    assert_no_secret(&secrets, &printed, "rotate-root's output");
    assert_no_secret(&secrets, &answers, "citadel's answers");
}

#[test]
fn steps_out_of_order_are_refused_with_the_next_step_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(Citadel::local(dir.path(), &[]));
    let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["rotate-root", "finish", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("rotate-root activate"), "{error}");
}
