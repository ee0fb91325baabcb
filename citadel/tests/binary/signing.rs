//! Local mode: TLS that verifies against the bundle file, signing and refusals, persistence
//! across restarts, and no key or token in any answer or log line.

use std::os::unix::fs::PermissionsExt;

use crate::support;
use crate::support::client::{connect, request};
use crate::support::{
    Citadel, RATINGS_TOKEN, REVIEWS, REVIEWS_TOKEN, assert_no_secret, csr_for, ders, file,
    leaf_sans_and_lifetime, read_bundle, verify,
};
use tonic::Code;

const DAY: i64 = 86400;

#[tokio::test]
async fn signs_what_the_token_proves_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let citadel = Citadel::local(dir.path(), &[]);
    let bundle = read_bundle(dir.path());
    let mut client = connect(citadel.grpc, &bundle)
        .await
        .expect("TLS verified by the bundle");
    let mut answers = String::new();

    // Asking for two days gets one: the default --max-cert-ttl.
    let csr = csr_for(&[REVIEWS]);
    let answer = request(&mut client, &csr, 2 * DAY, Some(REVIEWS_TOKEN))
        .await
        .expect("signed");
    answers.push_str(&format!("{answer:?}"));
    assert_eq!(answer.cert_chain.len(), 2, "leaf and root");
    let (sans, lifetime) = leaf_sans_and_lifetime(&answer.cert_chain);
    assert_eq!(sans, [format!("URI({REVIEWS})")]);
    assert!(lifetime <= DAY + 60, "lifetime {lifetime}s");
    assert_eq!(
        ders(&answer.trust_bundle),
        ders(std::slice::from_ref(&bundle))
    );
    verify(&answer.cert_chain, &ders(std::slice::from_ref(&bundle))).expect("the leaf verifies");

    let short = request(&mut client, &csr, 600, Some(REVIEWS_TOKEN))
        .await
        .expect("signed");
    assert_eq!(
        leaf_sans_and_lifetime(&short.cert_chain).1,
        660,
        "10 minutes + skew"
    );

    let refusals = [
        (
            Some(RATINGS_TOKEN),
            csr.clone(),
            Code::PermissionDenied,
            "credential proves",
        ),
        (None, csr.clone(), Code::Unauthenticated, "authorization"),
        (
            Some("not-a-token"),
            csr.clone(),
            Code::Unauthenticated,
            "bootstrap token",
        ),
        (
            Some(REVIEWS_TOKEN),
            "garbage".into(),
            Code::InvalidArgument,
            "not PEM",
        ),
        (
            Some(REVIEWS_TOKEN),
            csr_for(&[REVIEWS, "spiffe://cluster.local/ns/shop/sa/ratings"]),
            Code::InvalidArgument,
            "2 subject alternative names",
        ),
    ];
    for (token, csr, code, says) in refusals {
        let status = request(&mut client, &csr, 0, token).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
        answers.push_str(&format!("{status:?}"));
    }

    let (code, metrics) = citadel.get("/metrics");
    assert_eq!(code, 200);
    for line in [
        "citadel_cert_issued_total 2",
        "citadel_csr_refused_total{reason=\"identity_mismatch\"} 1",
        "citadel_csr_refused_total{reason=\"unauthenticated\"} 2",
        "citadel_csr_refused_total{reason=\"malformed\"} 1",
        "citadel_csr_refused_total{reason=\"bad_san\"} 1",
        "citadel_root_cert_expiry_timestamp_seconds ",
        "citadel_issued_cert_expiry_timestamp_seconds ",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    assert_eq!(citadel.get("/ready"), (200, "ready\n".into()));
    answers.push_str(&metrics);
    answers.push_str(&citadel.get("/config").1);
    answers.push_str(&citadel.get("/").1);

    let key = file(dir.path().join("ca/root-key.pem"));
    assert!(key.contains("PRIVATE KEY"));
    let logs = citadel.stop();
    assert!(logs.contains("issued"), "{logs}");
    let secrets = [key, REVIEWS_TOKEN.into(), RATINGS_TOKEN.into()];
    assert_no_secret(&secrets, &logs, "citadel's output");
    assert_no_secret(&secrets, &answers, "citadel's answers");
}

#[tokio::test]
async fn a_restart_keeps_the_root_and_earlier_certificates_verify() {
    let dir = tempfile::tempdir().unwrap();
    let first = Citadel::local(dir.path(), &[]);
    let root_before = file(dir.path().join("ca/root-cert.pem"));
    let mut client = connect(first.grpc, &read_bundle(dir.path())).await.unwrap();
    let before = request(&mut client, &csr_for(&[REVIEWS]), 0, Some(REVIEWS_TOKEN))
        .await
        .unwrap();
    let mut logs = first.stop();

    let second = Citadel::local(dir.path(), &[]);
    assert_eq!(
        file(dir.path().join("ca/root-cert.pem")),
        root_before,
        "same root"
    );
    let mut client = connect(second.grpc, &read_bundle(dir.path()))
        .await
        .unwrap();
    let after = request(&mut client, &csr_for(&[REVIEWS]), 0, Some(REVIEWS_TOKEN))
        .await
        .unwrap();
    assert_eq!(after.trust_bundle, before.trust_bundle);
    assert_eq!(
        after.cert_chain.last(),
        before.cert_chain.last(),
        "same root in the chain"
    );
    verify(&before.cert_chain, &ders(&after.trust_bundle)).expect("issued before, still valid");

    let key = dir.path().join("ca/root-key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the root key is private");
    logs.push_str(&second.stop());
    assert!(
        logs.contains("created=true") && logs.contains("created=false"),
        "{logs}"
    );
    assert_no_secret(&[file(&key)], &logs, "citadel's output");
    assert_no_secret(
        &[file(&key)],
        &format!("{before:?}{after:?}"),
        "citadel's answers",
    );
}

#[tokio::test]
async fn tokens_added_to_the_file_work_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let citadel = Citadel::local(dir.path(), &[]);
    let mut client = connect(citadel.grpc, &read_bundle(dir.path()))
        .await
        .unwrap();
    let details = "spiffe://cluster.local/ns/shop/sa/details";
    let csr = csr_for(&[details]);
    let status = request(&mut client, &csr, 0, Some("tok-details-5c"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let tokens = format!("{}tok-details-5c shop details\n", support::TOKENS);
    std::fs::write(dir.path().join("tokens"), tokens).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let signed = loop {
        match request(&mut client, &csr, 0, Some("tok-details-5c")).await {
            Ok(signed) => break signed,
            Err(status) => assert!(std::time::Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let chain = signed.cert_chain;
    assert_eq!(
        leaf_sans_and_lifetime(&chain).0,
        [format!("URI({details})")]
    );
    let logs = citadel.stop();
    assert_no_secret(&["tok-details-5c".to_owned()], &logs, "citadel's output");
}

#[test]
fn the_leak_check_catches_a_leak_and_only_a_leak() {
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = key.serialize_pem();
    let secrets = [pem.clone(), "tok-short".to_owned()];
    let first_line = pem.lines().nth(1).unwrap();
    let der = support::base64_decode(
        &pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>(),
    );
    let leaks = [
        format!("error: bad key {first_line} here"),
        format!("key={:?}", der),
        format!("der: {}", support::base64_encode(&der[30..80])),
        "Bearer tok-short".to_owned(),
    ];
    for leak in &leaks {
        let caught = std::panic::catch_unwind(|| assert_no_secret(&secrets, leak, "x"));
        assert!(caught.is_err(), "missed {leak:?}");
    }
    // The public half is no secret: a certificate for the key shows it.
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap().pem();
    assert_no_secret(&secrets, &format!("{cert}{cert}"), "a certificate");
}
