//! Intermediate mode: citadel signs with a CA the user's own root issued; answers chain
//! leaf -> intermediate -> root, and citadel's serving certificate verifies against that root.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::support::client::{connect, request};
use crate::support::{
    Citadel, REVIEWS, REVIEWS_TOKEN, TOKENS, assert_no_secret, csr_for, ders,
    leaf_sans_and_lifetime, verify,
};

/// Writes a root, an intermediate it signed (valid 12h) and the intermediate's key.
fn user_ca(dir: &Path) -> (String, String) {
    let ca = |name: &str| {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        params
    };
    let root =
        rcgen::CertifiedIssuer::self_signed(ca("corp root"), KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = ca("corp mesh intermediate");
    params.not_after = (SystemTime::now() + Duration::from_secs(12 * 3600)).into();
    let intermediate = params.signed_by(&key, &root).unwrap();
    std::fs::write(dir.join("root-cert.pem"), root.pem()).unwrap();
    std::fs::write(dir.join("ca-cert.pem"), intermediate.pem()).unwrap();
    std::fs::write(dir.join("ca-key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tokens"), TOKENS).unwrap();
    (root.pem(), key.serialize_pem())
}

#[tokio::test]
async fn answers_chain_to_the_users_root() {
    let dir = tempfile::tempdir().unwrap();
    let (root, key) = user_ca(dir.path());
    let path = |name: &str| dir.path().join(name).display().to_string();
    let args: Vec<String> = [
        "--ca-cert",
        &path("ca-cert.pem"),
        "--ca-key",
        &path("ca-key.pem"),
        "--root-cert",
        &path("root-cert.pem"),
        "--token-file",
        &path("tokens"),
    ]
    .map(str::to_owned)
    .to_vec();
    let citadel = Citadel::start(&args);
    let mut client = connect(citadel.grpc, &root)
        .await
        .expect("serving cert chains to root");
    let answer = request(&mut client, &csr_for(&[REVIEWS]), 0, Some(REVIEWS_TOKEN))
        .await
        .expect("signed");
    assert_eq!(answer.cert_chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(
        ders(&answer.cert_chain[2..]),
        ders(std::slice::from_ref(&root))
    );
    assert_eq!(
        ders(&answer.trust_bundle),
        ders(std::slice::from_ref(&root))
    );
    verify(&answer.cert_chain, &ders(&[root])).expect("verifies to the user's root");
    let (sans, lifetime) = leaf_sans_and_lifetime(&answer.cert_chain);
    assert_eq!(sans, [format!("URI({REVIEWS})")]);
    assert!(
        lifetime <= 12 * 3600 + 60,
        "never past the intermediate: {lifetime}s"
    );

    let logs = citadel.stop();
    assert_no_secret(std::slice::from_ref(&key), &logs, "citadel's output");
    assert_no_secret(&[key], &format!("{answer:?}"), "citadel's answers");
}
