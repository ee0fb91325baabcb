#![allow(clippy::unwrap_used)]

use std::time::SystemTime;

use http::Request;
use serde_json::json;

use super::issuer::{Issuer, unix_time};
use super::*;

const ISS: &str = "https://accounts.example.com";

fn issuer() -> Issuer {
    Issuer::es256(ISS, "k1").unwrap()
}

/// One RequestAuthentication `ns/name` with one rule: `rule` is YAML added to the issuer
/// and the issuer's JWKS.
fn authenticator(issuer: &Issuer, rule: &str) -> Authenticator {
    let yaml = format!(
        "jwtRules:\n- issuer: {:?}\n  jwks: {:?}\n{}",
        issuer.issuer,
        issuer.jwks(),
        indent(rule)
    );
    let spec: RequestAuthenticationSpec = serde_yaml::from_str(&yaml).unwrap();
    Authenticator::compile(&[("shop/jwt".into(), spec)]).unwrap()
}

fn indent(rule: &str) -> String {
    rule.lines().map(|l| format!("  {l}\n")).collect()
}

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn run(auth: &Authenticator, parts: &mut Parts) -> Outcome {
    auth.authenticate(parts, SystemTime::now())
}

fn refused(outcome: Outcome) -> Failure {
    match outcome {
        Outcome::Refused(refusal) => refusal.failure,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn claims(outcome: Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Authenticated(ok) => ok.claims,
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn no_token_goes_on_to_authorization() {
    let iss = issuer();
    let auth = authenticator(&iss, "");
    assert!(matches!(run(&auth, &mut parts("/", &[])), Outcome::NoToken));
    // A header with another scheme is not a token either.
    let mut basic = parts("/", &[("authorization", "Basic YWxhZGRpbjpvcGVu")]);
    assert!(matches!(run(&auth, &mut basic), Outcome::NoToken));
    assert!(matches!(
        run(
            &Authenticator::default(),
            &mut parts("/", &[("authorization", "Bearer x")])
        ),
        Outcome::NoToken
    ));
}

#[test]
fn a_valid_token_yields_its_claims_and_is_removed_before_the_app() {
    let iss = issuer();
    let auth = authenticator(&iss, "");
    let token = iss.token(&json!({"sub": "alice", "exp": unix_time(300), "groups": ["admins"]}));
    let mut request = parts("/", &[("authorization", &bearer(&token))]);
    let claims = claims(run(&auth, &mut request));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["groups"][0], "admins");
    assert!(request.headers.get("authorization").is_none());
}

#[test]
fn forward_original_token_keeps_it_and_outputs_write_payload_and_claims() {
    let iss = issuer();
    let auth = authenticator(
        &iss,
        "forwardOriginalToken: true\noutputPayloadToHeader: x-jwt-payload\noutputClaimToHeaders:\n- {header: x-user, claim: sub}\n- {header: x-level, claim: level}",
    );
    let token = iss.token(&json!({"sub": "alice", "level": 3}));
    let mut request = parts("/", &[("authorization", &bearer(&token))]);
    claims(run(&auth, &mut request));
    assert_eq!(request.headers["authorization"], bearer(&token).as_str());
    assert_eq!(request.headers["x-user"], "alice");
    assert_eq!(request.headers["x-level"], "3");
    let payload = URL_SAFE_NO_PAD
        .decode(request.headers["x-jwt-payload"].as_bytes())
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["sub"], "alice");
}

#[test]
fn rs256_tokens_verify() {
    let iss = Issuer::rs256_test_key(ISS, "rsa").unwrap();
    let auth = authenticator(&iss, "");
    let token = iss.token(&json!({"sub": "bob"}));
    assert_eq!(
        claims(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&token))])
        ))["sub"],
        "bob"
    );
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let auth = authenticator(&issuer(), "");
    // Same issuer and kid, another key pair.
    let forged = issuer().token(&json!({"sub": "mallory"}));
    let mut request = parts("/", &[("authorization", &bearer(&forged))]);
    assert_eq!(refused(run(&auth, &mut request)), Failure::BadSignature);
    // Nothing is rewritten on a refusal.
    assert!(request.headers.contains_key("authorization"));
}

#[test]
fn a_tampered_payload_is_refused() {
    let iss = issuer();
    let auth = authenticator(&iss, "");
    let token = iss.token(&json!({"sub": "alice"}));
    let mut pieces: Vec<&str> = token.split('.').collect();
    let admin = URL_SAFE_NO_PAD.encode(json!({"iss": ISS, "sub": "admin"}).to_string());
    pieces[1] = &admin;
    let tampered = pieces.join(".");
    assert_eq!(
        refused(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&tampered))])
        )),
        Failure::BadSignature
    );
}

#[test]
fn exp_and_nbf_are_checked_with_sixty_seconds_of_skew() {
    let iss = issuer();
    let auth = authenticator(&iss, "");
    let check = |claims: serde_json::Value| {
        let token = iss.token(&claims);
        run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&token))]),
        )
    };
    assert_eq!(
        refused(check(json!({"exp": unix_time(-120)}))),
        Failure::Expired
    );
    assert!(matches!(
        check(json!({"exp": unix_time(-30)})),
        Outcome::Authenticated(_)
    ));
    assert_eq!(
        refused(check(json!({"nbf": unix_time(120)}))),
        Failure::NotYetValid
    );
    assert!(matches!(
        check(json!({"nbf": unix_time(30)})),
        Outcome::Authenticated(_)
    ));
}

#[test]
fn audiences_are_checked_only_when_the_rule_lists_them() {
    let iss = issuer();
    let strict = authenticator(&iss, "audiences: [bookstore, web]");
    let open = authenticator(&iss, "");
    let check = |auth: &Authenticator, claims: serde_json::Value| {
        let token = iss.token(&claims);
        run(auth, &mut parts("/", &[("authorization", &bearer(&token))]))
    };
    assert!(matches!(
        check(&strict, json!({"aud": "web"})),
        Outcome::Authenticated(_)
    ));
    assert!(matches!(
        check(&strict, json!({"aud": ["other", "bookstore"]})),
        Outcome::Authenticated(_)
    ));
    assert_eq!(
        refused(check(&strict, json!({"aud": "other"}))),
        Failure::Audience
    );
    assert_eq!(refused(check(&strict, json!({}))), Failure::Audience);
    assert!(matches!(
        check(&open, json!({"aud": "other"})),
        Outcome::Authenticated(_)
    ));
}

#[test]
fn an_unknown_issuer_and_garbage_are_refused() {
    let auth = authenticator(&issuer(), "");
    let stranger = Issuer::es256("https://evil.example.com", "k1").unwrap();
    let token = stranger.token(&json!({"sub": "x"}));
    assert_eq!(
        refused(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&token))])
        )),
        Failure::UnknownIssuer("https://evil.example.com".into())
    );
    for garbage in ["abc", "a.b.c", "a.b.c.d", "eyJhbGciOiJub25lIn0.e30."] {
        let failure = refused(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(garbage))]),
        ));
        assert!(
            matches!(failure, Failure::Malformed(_) | Failure::MissingIssuer),
            "{garbage}: {failure:?}"
        );
    }
}

#[test]
fn alg_none_and_an_unknown_kid_find_no_key() {
    let iss = issuer();
    let auth = authenticator(&iss, "");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(json!({"iss": ISS, "sub": "x"}).to_string())
    );
    assert!(matches!(
        refused(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&unsigned))])
        )),
        Failure::NoKey { .. }
    ));
    let other_kid = Issuer::es256(ISS, "k2").unwrap().token(&json!({}));
    assert!(matches!(
        refused(run(
            &auth,
            &mut parts("/", &[("authorization", &bearer(&other_kid))])
        )),
        Failure::NoKey { .. }
    ));
}

#[test]
fn a_rule_without_keys_refuses_its_tokens_and_says_why() {
    let spec: RequestAuthenticationSpec = serde_yaml::from_str(&format!(
        "jwtRules:\n- issuer: {ISS}\n  jwksUri: https://accounts.example.com/jwks"
    ))
    .unwrap();
    let auth = Authenticator::compile(&[("shop/jwt".into(), spec)]).unwrap();
    let token = issuer().token(&json!({}));
    let failure = refused(run(
        &auth,
        &mut parts("/", &[("authorization", &bearer(&token))]),
    ));
    assert_eq!(failure.reason(), "jwks_unavailable");
    assert!(
        failure
            .to_string()
            .contains("https://accounts.example.com/jwks"),
        "{failure}"
    );
}

#[test]
fn tokens_are_read_where_the_rule_says() {
    let iss = issuer();
    let token = iss.token(&json!({"sub": "alice"}));
    let custom = authenticator(&iss, "fromHeaders:\n- {name: x-jwt, prefix: 'Token '}");
    assert!(matches!(
        run(
            &custom,
            &mut parts("/", &[("x-jwt", &format!("Token {token}"))])
        ),
        Outcome::Authenticated(_)
    ));
    // The default places are not read when the rule names its own.
    assert!(matches!(
        run(
            &custom,
            &mut parts("/", &[("authorization", &bearer(&token))])
        ),
        Outcome::NoToken
    ));
    let default = authenticator(&iss, "");
    assert!(matches!(
        run(
            &default,
            &mut parts(&format!("/x?a=1&access_token={token}"), &[])
        ),
        Outcome::Authenticated(_)
    ));
    let params = authenticator(&iss, "fromParams: [jwt]");
    assert!(matches!(
        run(&params, &mut parts(&format!("/x?jwt={token}"), &[])),
        Outcome::Authenticated(_)
    ));
    let cookies = authenticator(&iss, "fromCookies: [session]");
    assert!(matches!(
        run(
            &cookies,
            &mut parts("/", &[("cookie", &format!("theme=dark; session={token}"))])
        ),
        Outcome::Authenticated(_)
    ));
    // The bearer scheme is case-insensitive.
    assert!(matches!(
        run(
            &default,
            &mut parts("/", &[("authorization", &format!("bearer {token}"))])
        ),
        Outcome::Authenticated(_)
    ));
}

#[test]
fn rules_of_several_policies_pick_by_issuer_and_one_valid_token_is_enough() {
    let first = issuer();
    let second = Issuer::rs256_test_key("https://login.example.org", "r1").unwrap();
    let spec = |iss: &Issuer| -> RequestAuthenticationSpec {
        serde_yaml::from_str(&format!(
            "jwtRules:\n- issuer: {:?}\n  jwks: {:?}\n  fromHeaders: [{{name: x-{}}}]",
            iss.issuer,
            iss.jwks(),
            if iss.issuer == ISS { "first" } else { "second" }
        ))
        .unwrap()
    };
    let auth = Authenticator::compile(&[
        ("shop/first".into(), spec(&first)),
        ("shop/second".into(), spec(&second)),
    ])
    .unwrap();
    let good = second.token(&json!({"sub": "carol"}));
    let bad = Issuer::es256(ISS, "k1")
        .unwrap()
        .token(&json!({"sub": "x"}));
    let mut request = parts(
        "/",
        &[("x-first", bad.as_str()), ("x-second", good.as_str())],
    );
    match run(&auth, &mut request) {
        Outcome::Authenticated(ok) => {
            assert_eq!(ok.claims["sub"], "carol");
            assert_eq!(ok.policy, "shop/second");
        }
        other => panic!("{other:?}"),
    }
    // A token in the first rule's header from the second issuer is not the first's to check.
    let misplaced = second.token(&json!({}));
    assert!(matches!(
        refused(run(
            &auth,
            &mut parts("/", &[("x-first", misplaced.as_str())])
        )),
        Failure::UnknownIssuer(_)
    ));
}

#[test]
fn jwks_errors_say_what_is_wrong() {
    assert!(matches!(Jwks::parse("nope"), Err(JwksError::Json(_))));
    assert!(matches!(
        Jwks::parse(r#"{"keys": []}"#),
        Err(JwksError::NoUsableKey)
    ));
    assert!(matches!(
        Jwks::parse(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#),
        Err(JwksError::NoUsableKey)
    ));
    assert_eq!(
        Jwks::parse(r#"{"keys": [{"kty": "RSA", "e": "AQAB"}]}"#),
        Err(JwksError::Key {
            index: 0,
            problem: "RSA key without \"n\"".into()
        })
    );
    assert!(matches!(
        Jwks::parse(r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}"#),
        Err(JwksError::Key { index: 0, .. })
    ));
    assert_eq!(Jwks::parse(&issuer().jwks()).unwrap().len(), 1);
}
