#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::pem;
use crate::testing::{REVIEWS, csr, dns, uri};

fn check(text: &str) -> Result<CheckedCsr, CsrError> {
    let checked = parse(text, REVIEWS)?;
    checked.check_identity(REVIEWS)?;
    Ok(checked)
}

#[test]
fn one_spiffe_uri_passes() {
    let checked = check(&csr(vec![uri(REVIEWS)])).expect("accepted");
    assert_eq!(checked.uri, REVIEWS);
}

#[test]
fn no_san_is_refused_naming_the_expected_uri() {
    let error = check(&csr(vec![])).unwrap_err();
    assert!(matches!(error, CsrError::NoSan { .. }), "{error}");
    assert!(error.to_string().contains(REVIEWS), "{error}");
    assert_eq!(error.reason(), "bad_san");
}

#[test]
fn a_dns_san_alone_is_refused() {
    let error = check(&csr(vec![dns("reviews.shop.svc")])).unwrap_err();
    assert_eq!(error, CsrError::NotUri("DNS:reviews.shop.svc".into()));
}

#[test]
fn an_extra_dns_san_is_refused_and_listed() {
    let error = check(&csr(vec![uri(REVIEWS), dns("evil.example")])).unwrap_err();
    assert_eq!(
        error,
        CsrError::TooManySans(vec![format!("URI:{REVIEWS}"), "DNS:evil.example".into()])
    );
    assert!(error.to_string().contains("DNS:evil.example"), "{error}");
}

#[test]
fn ip_and_email_sans_are_refused() {
    let ip = rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap());
    let error = check(&csr(vec![uri(REVIEWS), ip])).unwrap_err();
    assert!(error.to_string().contains("IP:10.0.0.1"), "{error}");
    let email = rcgen::SanType::Rfc822Name("a@b.c".try_into().unwrap());
    let error = check(&csr(vec![email])).unwrap_err();
    assert_eq!(error, CsrError::NotUri("email:a@b.c".into()));
}

#[test]
fn two_uris_are_refused() {
    let other = "spiffe://cluster.local/ns/shop/sa/ratings";
    let error = check(&csr(vec![uri(REVIEWS), uri(other)])).unwrap_err();
    assert!(
        matches!(error, CsrError::TooManySans(ref n) if n.len() == 2),
        "{error}"
    );
}

#[test]
fn a_uri_that_is_not_spiffe_is_refused() {
    let error = check(&csr(vec![uri("https://reviews.shop")])).unwrap_err();
    assert_eq!(error, CsrError::NotSpiffe("https://reviews.shop".into()));
}

#[test]
fn another_identity_is_a_mismatch() {
    let other = "spiffe://cluster.local/ns/shop/sa/ratings";
    let error = check(&csr(vec![uri(other)])).unwrap_err();
    assert_eq!(
        error,
        CsrError::IdentityMismatch {
            requested: other.into(),
            proven: REVIEWS.into()
        }
    );
    assert_eq!(error.reason(), "identity_mismatch");
}

#[test]
fn a_tampered_signature_is_refused() {
    let text = csr(vec![uri(REVIEWS)]);
    let mut der = pem::decode_one(&text, "CERTIFICATE REQUEST").unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let error = check(&pem::encode("CERTIFICATE REQUEST", &der)).unwrap_err();
    assert_eq!(error, CsrError::Signature);
    assert_eq!(error.reason(), "bad_signature");
}

#[test]
fn a_tampered_request_is_refused() {
    // The SAN changed after signing: the signature no longer covers what is asked.
    let text = csr(vec![uri("spiffe://cluster.local/ns/shop/sa/ratings")]);
    let der = pem::decode_one(&text, "CERTIFICATE REQUEST").unwrap();
    let swapped = replace(&der, b"ratings", b"reviews");
    let error = check(&pem::encode("CERTIFICATE REQUEST", &swapped)).unwrap_err();
    assert_eq!(error, CsrError::Signature);
}

#[test]
fn garbage_is_malformed() {
    for text in ["", "hello", &pem::encode("CERTIFICATE REQUEST", b"not der")] {
        let error = check(text).unwrap_err();
        assert_eq!(error.reason(), "malformed", "{text:?}: {error}");
    }
    let error = check(&pem::encode("CERTIFICATE", b"x")).unwrap_err();
    assert!(matches!(error, CsrError::Pem(_)), "{error}");
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .expect("present");
    let mut out = haystack.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}
