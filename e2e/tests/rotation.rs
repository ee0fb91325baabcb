//! Certificates rotate under load and no request fails: workload certificates that live three
//! seconds are renewed over and over while traffic flows through two mTLS sidecars, and
//! citadel's root is rotated (prepare, activate, finish) with the traffic still flowing.
//! Every request must come back 200 from the echo app, and through mTLS: the app sees the
//! caller's SPIFFE ID in `x-forwarded-client-cert`.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::mesh::{Certs, Load, Mesh, Tally, certs, renewals};

/// Short-lived certificates, and a citadel that picks up a rotation step within 200 ms.
const CITADEL: &[&str] = &["--max-cert-ttl", "1h", "--ca-reload-interval", "200ms"];
const PROXY: &[&str] = &["--cert-ttl", "3s"];
/// How long one rotation step may take to reach both proxies.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

/// Both proxies' `/certs`, or a panic naming what never happened, with what they show.
async fn wait_certs(mesh: &Mesh, what: &str, done: impl Fn(&Certs) -> bool) -> [Certs; 2] {
    let start = Instant::now();
    loop {
        let (caller, callee) = (certs(&mesh.caller).await, certs(&mesh.callee).await);
        if let (Some(a), Some(b)) = (&caller, &callee)
            && done(a)
            && done(b)
        {
            return [a.clone(), b.clone()];
        }
        if start.elapsed() > STEP_DEADLINE {
            panic!(
                "within {STEP_DEADLINE:?}, not every proxy got to: {what}\n\
                 caller /certs: {}\ncallee /certs: {}\ncitadel: {}",
                mesh.caller.admin_json("/certs").await,
                mesh.callee.admin_json("/certs").await,
                mesh.citadel.rotate_root("status"),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_no_failures(tally: &Tally) {
    assert!(tally.sent > 0, "no request was sent");
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests failed; the first ones: {:#?}",
        tally.failures.len(),
        tally.sent,
        &tally.failures[..tally.failures.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workload_certificates_rotate_under_load_and_no_request_fails() {
    let mesh = Mesh::start(CITADEL, PROXY).await;
    let (outbound, _) = mesh.first_request().await;
    let first = [renewals(&mesh.caller).await, renewals(&mesh.callee).await];
    let load = Load::start(outbound, 4, 4);

    // Until each proxy has presented at least three certificates (two renewals) under load.
    let mut serials: [BTreeSet<String>; 2] = Default::default();
    let start = Instant::now();
    loop {
        for (seen, proxy) in serials.iter_mut().zip([&mesh.caller, &mesh.callee]) {
            if let Some(c) = certs(proxy).await {
                seen.insert(c.serial);
            }
        }
        if serials.iter().all(|s| s.len() >= 3) {
            break;
        }
        assert!(
            start.elapsed() < STEP_DEADLINE,
            "two renewals each within {STEP_DEADLINE:?}: serials seen {serials:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Traffic after the last renewal too.
    load.wait_for_more(100).await;
    let tally = load.stop().await;
    let last = [renewals(&mesh.caller).await, renewals(&mesh.callee).await];
    eprintln!(
        "rotation under load: {} requests ({} fresh connections, {} kept alive), {} failed; \
         renewals caller {} -> {}, callee {} -> {}; serials caller {:?}, callee {:?}",
        tally.sent,
        tally.fresh,
        tally.kept_alive,
        tally.failures.len(),
        first[0],
        last[0],
        first[1],
        last[1],
        serials[0],
        serials[1],
    );
    assert_no_failures(&tally);
    for (before, after) in first.iter().zip(&last) {
        assert!(
            after - before >= 2,
            "renewals counted: {first:?} -> {last:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_root_rotates_under_load_and_no_request_fails() {
    let mesh = Mesh::start(CITADEL, PROXY).await;
    let (outbound, _) = mesh.first_request().await;
    let initial = wait_certs(&mesh, "a certificate", |c| c.roots.len() == 1).await;
    let old_root = initial[0].roots[0].clone();
    assert_eq!(initial[1].roots, std::slice::from_ref(&old_root));
    let load = Load::start(outbound, 4, 4);
    // One renewal each under load first (and a root created in a later second than the
    // first one, so their names differ).
    wait_certs(&mesh, "a renewal", |c| {
        initial.iter().all(|i| i.serial != c.serial)
    })
    .await;

    eprintln!("prepare: {}", mesh.citadel.rotate_root("prepare").trim());
    let prepared = wait_certs(&mesh, "a trust bundle with the old and the new root", |c| {
        c.roots.len() == 2
    })
    .await;
    let new_root = prepared[0]
        .roots
        .iter()
        .find(|r| **r != old_root)
        .unwrap_or_else(|| panic!("no new root in {:?}", prepared[0]))
        .clone();
    for c in &prepared {
        assert!(
            c.roots.contains(&old_root) && c.roots.contains(&new_root),
            "{c:?}"
        );
        assert_eq!(c.issuer, old_root, "the old root still signs");
    }
    load.wait_for_more(50).await;

    eprintln!("activate: {}", mesh.citadel.rotate_root("activate").trim());
    let activated = wait_certs(&mesh, "a leaf the new root issued", |c| {
        c.issuer == new_root && c.roots.len() == 2
    })
    .await;
    load.wait_for_more(50).await;

    eprintln!("finish: {}", mesh.citadel.rotate_root("finish").trim());
    let finished = wait_certs(&mesh, "a trust bundle with only the new root", |c| {
        c.roots.as_slice() == std::slice::from_ref(&new_root) && c.issuer == new_root
    })
    .await;
    // Traffic still flows once the old root is gone.
    load.wait_for_more(100).await;
    let tally = load.stop().await;
    eprintln!(
        "root rotation under load: {} requests ({} fresh connections, {} kept alive), {} failed; \
         old root {old_root:?}, new root {new_root:?}; \
         leaves: initial {:?}, prepared {:?}, activated {:?}, finished {:?}",
        tally.sent,
        tally.fresh,
        tally.kept_alive,
        tally.failures.len(),
        initial.each_ref().map(|c| (&c.serial, &c.issuer)),
        prepared.each_ref().map(|c| (&c.serial, &c.issuer)),
        activated.each_ref().map(|c| (&c.serial, &c.issuer)),
        finished.each_ref().map(|c| (&c.serial, &c.issuer)),
    );
    assert_no_failures(&tally);
    let (_, reply) = mesh.first_request().await;
    assert!(
        support::mesh::xfcc(&reply).contains(support::mesh::CALLER_ID),
        "{reply}"
    );
}
