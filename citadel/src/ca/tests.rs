#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use x509_parser::prelude::*;

use super::authority::{Authority, LeafKind};
use super::intermediate::{self, IntermediateFiles};
use super::keys;
use super::roots::RootState;
use super::rotation::{self, RotationError};
use crate::bundle::TrustBundle;
use crate::pem;
use crate::testing::{self, REVIEWS, sans_of, verify_chain_at, verify_client_chain};

const HOUR: Duration = Duration::from_secs(3600);

fn workload() -> LeafKind {
    LeafKind::Workload {
        spiffe_id: REVIEWS.into(),
    }
}

fn leaf(pem_text: &str) -> (Vec<u8>, x509_parser::certificate::Validity, bool) {
    let der = pem::decode_one(pem_text, "CERTIFICATE").unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let serial = cert.raw_serial().to_vec();
    (serial, cert.validity().clone(), cert.is_ca())
}

#[test]
fn a_new_root_is_a_p256_ca_with_pathlen_zero_and_cert_sign() {
    let root = testing::new_root(87600 * HOUR);
    let (_, cert) = X509Certificate::from_der(&root.cert).unwrap();
    let constraints = cert
        .basic_constraints()
        .unwrap()
        .expect("basicConstraints")
        .value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let usage = cert.key_usage().unwrap().expect("keyUsage").value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature());
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86400;
    assert_eq!(days, 3650, "ten years");
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    );
}

#[test]
fn a_workload_leaf_verifies_against_the_root_and_has_one_uri() {
    let authority = testing::authority();
    let key = KeyPair::generate().unwrap();
    let issued = authority
        .issue(&key, &workload(), HOUR, SystemTime::now())
        .unwrap();
    assert_eq!(issued.chain.len(), 2, "leaf and root");
    verify_client_chain(&issued.chain, authority.bundle().roots()).expect("verifies");
    assert_eq!(sans_of(&issued.chain[0]), [format!("URI({REVIEWS})")]);

    let der = pem::decode_one(&issued.chain[0], "CERTIFICATE").unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert!(!cert.is_ca());
    let constraints = cert.basic_constraints().unwrap().expect("CA:false present");
    assert!(!constraints.value.ca);
    let usage = cert.key_usage().unwrap().expect("keyUsage").value;
    assert!(usage.digital_signature() && usage.key_encipherment() && !usage.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().expect("EKU").value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(
        cert.public_key().subject_public_key.data,
        key.public_key_raw()
    );
    let san = cert.subject_alternative_name().unwrap().expect("SAN");
    assert!(san.critical, "critical, as the subject is empty");
}

#[test]
fn a_leaf_from_another_root_does_not_verify() {
    let one = testing::authority();
    let other = testing::authority();
    let key = KeyPair::generate().unwrap();
    let issued = one
        .issue(&key, &workload(), HOUR, SystemTime::now())
        .unwrap();
    assert!(verify_client_chain(&issued.chain, other.bundle().roots()).is_err());
}

#[test]
fn not_before_allows_a_minute_of_skew_and_lifetime_is_as_asked() {
    let authority = testing::authority();
    let now = SystemTime::now();
    let key = KeyPair::generate().unwrap();
    let issued = authority.issue(&key, &workload(), 2 * HOUR, now).unwrap();
    let (_, validity, _) = leaf(&issued.chain[0]);
    let now_secs = crate::cert::seconds(now) as i64;
    assert_eq!(validity.not_before.timestamp(), now_secs - 60);
    assert_eq!(validity.not_after.timestamp(), now_secs + 7200);
    // Verifies 30s "before" it was issued, as a peer with a slow clock sees it.
    verify_chain_at(
        &issued.chain,
        authority.bundle().roots(),
        now - Duration::from_secs(30),
    )
    .expect("valid under skew");
}

#[test]
fn a_leaf_never_outlives_its_signer() {
    let short_root = testing::new_root(2 * HOUR);
    let authority = Authority::new(testing::material(&short_root)).unwrap();
    let key = KeyPair::generate().unwrap();
    let issued = authority
        .issue(&key, &workload(), 24 * HOUR, SystemTime::now())
        .unwrap();
    assert_eq!(issued.not_after, authority.signer().not_after);
}

#[test]
fn serials_are_unique() {
    let authority = testing::authority();
    let key = KeyPair::generate().unwrap();
    let mut serials = HashSet::new();
    for _ in 0..200 {
        let issued = authority
            .issue(&key, &workload(), HOUR, SystemTime::now())
            .unwrap();
        let (serial, _, _) = leaf(&issued.chain[0]);
        assert!((15..=17).contains(&serial.len()), "{} bytes", serial.len());
        assert!(serials.insert(serial), "a serial repeated");
    }
}

#[test]
fn a_key_that_does_not_match_the_root_is_refused() {
    let root = testing::new_root(HOUR);
    let other = testing::new_root(HOUR);
    let mut material = testing::material(&root);
    material.key = other.key.clone();
    let error = Authority::new(material).unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
    assert!(!error.to_string().contains(&body(other.key.expose())[..40]));
}

#[test]
fn a_root_missing_from_the_bundle_is_refused() {
    let root = testing::new_root(HOUR);
    let mut material = testing::material(&root);
    material.bundle = TrustBundle::default().with(&testing::new_root(HOUR).cert);
    let error = Authority::new(material).unwrap_err().to_string();
    assert!(error.contains("not in the trust bundle"), "{error}");
}

#[test]
fn debug_output_never_shows_the_key() {
    let root = testing::new_root(HOUR);
    let authority = Authority::new(testing::material(&root)).unwrap();
    let secret = &body(root.key.expose())[..40];
    for text in [
        format!("{authority:?}"),
        format!("{:?}", authority.material()),
        format!("{root:?}"),
        format!("{:?}", RootState::fresh(root.clone())),
        format!("{:?}", RootState::fresh(root.clone()).to_files()),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
}

fn body(pem_text: &str) -> String {
    pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// A user's own root and an intermediate it issued, as files.
fn user_ca(dir: &std::path::Path) -> (IntermediateFiles, Vec<u8>) {
    let root_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "corp root");
    let root = rcgen::CertifiedIssuer::self_signed(params, root_key).unwrap();

    let key = keys::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mesh intermediate");
    params.not_after = (SystemTime::now() + 48 * HOUR).into();
    let intermediate = params.signed_by(&key, &root).unwrap();

    let files = IntermediateFiles {
        cert: dir.join("ca-cert.pem"),
        key: dir.join("ca-key.pem"),
        roots: dir.join("root-cert.pem"),
    };
    std::fs::write(&files.cert, intermediate.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(&files.roots, root.pem()).unwrap();
    (files, root.der().to_vec())
}

#[tokio::test]
async fn intermediate_mode_chains_leaf_intermediate_root() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root_der) = user_ca(dir.path());
    let authority = Authority::new(files.load().await.unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let issued = authority
        .issue(&key, &workload(), 72 * HOUR, SystemTime::now())
        .unwrap();
    assert_eq!(issued.chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(
        pem::decode_one(&issued.chain[2], "CERTIFICATE").unwrap(),
        root_der
    );
    verify_client_chain(&issued.chain, &[root_der]).expect("verifies to the user's root");
    assert_eq!(
        issued.not_after,
        authority.signer().not_after,
        "clamped to the intermediate"
    );
}

#[tokio::test]
async fn intermediate_mode_refuses_an_unrelated_root() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = user_ca(dir.path());
    let other = testing::new_root(HOUR);
    std::fs::write(&files.roots, pem::encode("CERTIFICATE", &other.cert)).unwrap();
    let error = files.load().await.unwrap_err().to_string();
    assert!(error.contains("no root in --root-cert"), "{error}");
    assert!(intermediate::complete(vec![], &TrustBundle::default()).is_none());
}

#[test]
fn rotation_trusts_both_roots_in_the_middle_and_only_the_new_one_after() {
    let old = testing::new_root(87600 * HOUR);
    let new = testing::new_root(87600 * HOUR);
    let state = RootState::fresh(old.clone());
    let key = KeyPair::generate().unwrap();
    let issue = |state: &RootState| {
        let authority = Authority::new(state.signing_material()).unwrap();
        authority
            .issue(&key, &workload(), HOUR, SystemTime::now())
            .unwrap()
            .chain
    };
    let from_old = issue(&state);

    let prepared = rotation::prepare(&state, new.clone()).unwrap();
    assert_eq!(prepared.current, old, "the old root still signs");
    assert_eq!(
        prepared.bundle.roots(),
        [old.cert.clone(), new.cert.clone()]
    );
    assert_eq!(
        rotation::prepare(&prepared, new.clone()),
        Err(RotationError::AlreadyPrepared)
    );

    let active = rotation::activate(&prepared).unwrap();
    assert_eq!(active.current, new);
    let from_new = issue(&active);
    for chain in [&from_old, &from_new] {
        verify_client_chain(chain, active.bundle.roots()).expect("both verify mid-rotation");
    }
    assert_eq!(
        rotation::prepare(&active, new.clone()),
        Err(RotationError::NotFinished)
    );

    let done = rotation::finish(&active).unwrap();
    assert_eq!(done.bundle.roots(), std::slice::from_ref(&new.cert));
    verify_client_chain(&from_new, done.bundle.roots()).expect("new still verifies");
    assert!(verify_client_chain(&from_old, done.bundle.roots()).is_err());
    assert_eq!(rotation::finish(&done), Err(RotationError::NotActivated));
    assert_eq!(rotation::activate(&done), Err(RotationError::NotPrepared));
}

#[test]
fn root_state_round_trips_through_files_and_heals_a_lost_bundle_entry() {
    let old = testing::new_root(HOUR);
    let new = testing::new_root(HOUR);
    let state = rotation::prepare(&RootState::fresh(old.clone()), new).unwrap();
    let files = state.to_files();
    assert_eq!(RootState::from_files(&files).unwrap(), state);

    let mut edited = files.clone();
    edited.insert("trust-bundle.pem", &pem::encode("CERTIFICATE", &old.cert));
    assert_eq!(RootState::from_files(&edited).unwrap().bundle, state.bundle);
}

#[test]
fn extra_roots_in_the_bundle_survive_a_rotation() {
    let old = testing::new_root(HOUR);
    let federated = testing::new_root(HOUR);
    let mut files = RootState::fresh(old).to_files();
    let bundle = format!(
        "{}{}",
        files.get("trust-bundle.pem").unwrap(),
        pem::encode("CERTIFICATE", &federated.cert)
    );
    files.insert("trust-bundle.pem", &bundle);
    let state = RootState::from_files(&files).unwrap();
    assert_eq!(state.bundle.roots().len(), 2);
    let state = rotation::prepare(&state, testing::new_root(HOUR)).unwrap();
    let state = rotation::finish(&rotation::activate(&state).unwrap()).unwrap();
    assert!(
        state.bundle.contains(&federated.cert),
        "the federated root stays"
    );
    assert!(state.bundle.contains(&state.current.cert));
    assert_eq!(state.bundle.roots().len(), 2);
}
