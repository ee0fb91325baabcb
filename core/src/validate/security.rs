//! PeerAuthentication and RequestAuthentication; AuthorizationPolicy is in
//! [`super::authorization`].

use crate::config::{
    JwtRule, LabelSelector, Object, PeerAuthenticationSpec, RequestAuthenticationSpec,
};

use super::meta::check_selector;
use super::net::check_port_text;
use super::values::{Zero, check_duration};
use super::{FieldPath, Report};

/// `selector.matchLabels`, when a selector is given.
pub(super) fn check_label_selector(
    selector: Option<&LabelSelector>,
    at: &FieldPath,
    report: &mut Report,
) {
    if let Some(selector) = selector {
        check_selector(
            &selector.match_labels,
            &at.field("selector").field("matchLabels"),
            report,
        );
    }
}

pub(super) fn check_peer_authentication(pa: &Object<PeerAuthenticationSpec>, report: &mut Report) {
    let spec = &pa.spec;
    let at = FieldPath::spec();
    check_label_selector(spec.selector.as_ref(), &at, report);
    let selects_workloads = spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    let at = at.field("portLevelMtls");
    if !spec.port_level_mtls.is_empty() && !selects_workloads {
        report.error(
            &at,
            "portLevelMtls needs a selector with labels; namespace- and mesh-wide policies cannot set port-level mTLS",
        );
    }
    for port in spec.port_level_mtls.keys() {
        report.check(&at.key(port), check_port_text(port));
    }
}

pub(super) fn check_request_authentication(
    ra: &Object<RequestAuthenticationSpec>,
    report: &mut Report,
) {
    let spec = &ra.spec;
    let at = FieldPath::spec();
    check_label_selector(spec.selector.as_ref(), &at, report);
    for (i, rule) in spec.jwt_rules.iter().enumerate() {
        check_jwt_rule(rule, &at.item("jwtRules", i), report);
    }
}

fn check_jwt_rule(rule: &JwtRule, at: &FieldPath, report: &mut Report) {
    if rule.issuer.is_empty() {
        report.error(&at.field("issuer"), "issuer is required; write the iss claim the tokens carry, e.g. https://accounts.example.com");
    }
    for (i, audience) in rule.audiences.iter().enumerate() {
        if audience.is_empty() {
            report.error(&at.item("audiences", i), "audience must not be empty");
        }
    }
    if let Some(uri) = &rule.jwks_uri {
        report.check(&at.field("jwksUri"), check_jwks_uri(uri));
        if rule.jwks.is_some() {
            report.warning(
                &at.field("jwks"),
                "both jwks and jwksUri are set; jwks is used and jwksUri ignored, so remove one",
            );
        }
    }
    if let Some(jwks) = &rule.jwks {
        report.check(&at.field("jwks"), check_jwks(jwks));
    }
    for (i, header) in rule.from_headers.iter().enumerate() {
        report.check(
            &at.item("fromHeaders", i).field("name"),
            check_header_name(&header.name),
        );
    }
    for (field, values) in [
        ("fromParams", &rule.from_params),
        ("fromCookies", &rule.from_cookies),
    ] {
        for (i, value) in values.iter().enumerate() {
            if value.is_empty() {
                report.error(&at.item(field, i), "name must not be empty");
            }
        }
    }
    if let Some(header) = &rule.output_payload_to_header {
        report.check(
            &at.field("outputPayloadToHeader"),
            check_header_name(header),
        );
    }
    for (i, claim) in rule.output_claim_to_headers.iter().enumerate() {
        let here = at.item("outputClaimToHeaders", i);
        report.check(&here.field("header"), check_header_name(&claim.header));
        if claim.claim.is_empty() {
            report.error(&here.field("claim"), "claim must not be empty");
        }
    }
    if let Some(timeout) = &rule.timeout {
        report.check(&at.field("timeout"), check_duration(timeout, Zero::Invalid));
    }
}

fn check_jwks_uri(uri: &str) -> Result<(), String> {
    let invalid = || {
        format!(
            "jwksUri {uri:?} must be an http or https URL, e.g. https://example.com/.well-known/jwks.json, or in local mode a file:///absolute/path"
        )
    };
    if let Some(path) = uri.strip_prefix("file://") {
        return if path.starts_with('/') {
            Ok(())
        } else {
            Err(invalid())
        };
    }
    let parsed: http::Uri = uri.parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
    let host_ok = parsed.host().is_some_and(|h| !h.is_empty());
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// An inline JSON Web Key Set with at least one signing key the proxy can verify with.
fn check_jwks(jwks: &str) -> Result<(), String> {
    crate::authn::Jwks::parse(jwks)
        .map(|_| ())
        .map_err(|e| format!("jwks: {e}"))
}

fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    http::HeaderName::from_bytes(name.as_bytes())
        .map(drop)
        .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))
}
