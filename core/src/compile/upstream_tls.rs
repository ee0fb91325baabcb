//! A cluster's DestinationRule `tls` -> [`UpstreamTls`], with Istio's precedence: a
//! `portLevelSettings` entry for the port replaces its policy whole (so its `tls` applies
//! even when unset), and a subset's policy overrides the rule's section by section.
//!
//! Nothing here refuses the snapshot: pilot passes DestinationRules through as written
//! (its validation reports them), and one rule must not take a proxy's whole config down.
//! What the proxy cannot do (credentialName) refuses that cluster's connections, logged;
//! the proxy refuses a snapshot only when a certificate file it names cannot be loaded.

use crate::config::{ClientTlsMode, ClientTlsSettings, TrafficPolicy};
use crate::model::{UpstreamTls, UpstreamTlsMode};

/// The rule's `tls` for `port`.
pub(super) fn destination(rule: Option<&TrafficPolicy>, port: u16) -> UpstreamTls {
    upstream_tls(for_port(rule, port).0)
}

/// A subset's `tls` for `port`: its own policy's when that sets `tls` or has an entry for
/// the port, else the rule's (`destination`).
pub(super) fn subset(
    destination: &UpstreamTls,
    subset: Option<&TrafficPolicy>,
    port: u16,
) -> UpstreamTls {
    match for_port(subset, port) {
        (settings, true) => upstream_tls(settings),
        (Some(settings), false) => upstream_tls(Some(settings)),
        (None, false) => destination.clone(),
    }
}

/// The `tls` of `policy` that applies to `port`, and whether a port-level entry chose it.
fn for_port(policy: Option<&TrafficPolicy>, port: u16) -> (Option<&ClientTlsSettings>, bool) {
    let Some(policy) = policy else {
        return (None, false);
    };
    let entry = policy
        .port_level_settings
        .iter()
        .find(|s| s.port.number == u32::from(port));
    match entry {
        Some(entry) => (entry.tls.as_ref(), true),
        None => (policy.tls.as_ref(), false),
    }
}

fn upstream_tls(settings: Option<&ClientTlsSettings>) -> UpstreamTls {
    let Some(settings) = settings else {
        return UpstreamTls::default();
    };
    let mode = match settings.mode {
        ClientTlsMode::Disable => UpstreamTlsMode::Disable,
        ClientTlsMode::IstioMutual => UpstreamTlsMode::IstioMutual,
        ClientTlsMode::Simple => UpstreamTlsMode::Simple,
        ClientTlsMode::Mutual => UpstreamTlsMode::Mutual,
    };
    // Files and names only mean something when the proxy originates TLS with them.
    let user = |value: &Option<String>| value.clone().filter(|_| mode.is_origination());
    UpstreamTls {
        mode: Some(mode),
        subject_alt_names: settings.subject_alt_names.clone(),
        ca_certificates: user(&settings.ca_certificates),
        client_certificate: user(&settings.client_certificate),
        private_key: user(&settings.private_key),
        credential_name: user(&settings.credential_name),
        sni: user(&settings.sni),
        insecure_skip_verify: mode.is_origination() && settings.insecure_skip_verify == Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> TrafficPolicy {
        serde_yaml::from_str(yaml).expect("a traffic policy")
    }

    fn mode(tls: &UpstreamTls) -> &'static str {
        tls.mode_name()
    }

    const RULE: &str = "
tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: api.example.com}
portLevelSettings:
- port: {number: 8443}
  tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}
- port: {number: 9000}
  loadBalancer: {simple: RANDOM}
";

    #[test]
    fn a_port_level_entry_replaces_the_rules_tls_even_when_it_sets_none() {
        let rule = policy(RULE);
        let other = destination(Some(&rule), 443);
        assert_eq!(mode(&other), "SIMPLE");
        assert_eq!(other.ca_certificates.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(other.sni.as_deref(), Some("api.example.com"));
        let mutual = destination(Some(&rule), 8443);
        assert_eq!(mode(&mutual), "MUTUAL");
        assert_eq!(mutual.client_certificate.as_deref(), Some("/c.pem"));
        assert_eq!(mutual.ca_certificates, None, "not inherited from the rule");
        assert_eq!(
            destination(Some(&rule), 9000),
            UpstreamTls::default(),
            "an entry without tls: auto-mTLS, as Istio's defaults"
        );
        assert_eq!(destination(None, 443), UpstreamTls::default());
    }

    #[test]
    fn a_subset_sets_its_own_tls_or_inherits_the_rules() {
        let rule = policy(RULE);
        let outer = destination(Some(&rule), 443);
        assert_eq!(subset(&outer, None, 443), outer);
        let lb_only = policy("loadBalancer: {simple: RANDOM}");
        assert_eq!(subset(&outer, Some(&lb_only), 443), outer);
        let own = policy("tls: {mode: ISTIO_MUTUAL}");
        assert_eq!(mode(&subset(&outer, Some(&own), 443)), "ISTIO_MUTUAL");
        let port_level = policy(
            "tls: {mode: DISABLE}\nportLevelSettings:\n- port: {number: 443}\n  tls: {mode: SIMPLE, sni: v2.example.com}",
        );
        let v2 = subset(&outer, Some(&port_level), 443);
        assert_eq!(mode(&v2), "SIMPLE");
        assert_eq!(v2.sni.as_deref(), Some("v2.example.com"));
        assert_eq!(v2.ca_certificates, None);
        assert_eq!(mode(&subset(&outer, Some(&port_level), 80)), "DISABLE");
        let entry_without_tls =
            policy("portLevelSettings:\n- port: {number: 443}\n  loadBalancer: {simple: RANDOM}");
        assert_eq!(
            subset(&outer, Some(&entry_without_tls), 443),
            UpstreamTls::default()
        );
    }

    #[test]
    fn user_files_are_kept_only_where_the_proxy_originates_tls() {
        let mesh = destination(
            Some(&policy(
                "tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem, sni: x, insecureSkipVerify: true, subjectAltNames: [spiffe://td/ns/a/sa/b]}",
            )),
            80,
        );
        assert_eq!(mesh.client_certificate, None);
        assert_eq!(mesh.sni, None);
        assert!(!mesh.insecure_skip_verify);
        assert_eq!(mesh.subject_alt_names, ["spiffe://td/ns/a/sa/b"]);
        let skip = destination(
            Some(&policy(
                "tls: {mode: SIMPLE, insecureSkipVerify: true, credentialName: s}",
            )),
            80,
        );
        assert!(skip.insecure_skip_verify);
        assert_eq!(skip.credential_name.as_deref(), Some("s"));
    }
}
