use super::*;

const SERVER: &str = "spiffe://cluster.local/ns/shop/sa/reviews";

fn endpoint(sidecar: bool, identity: Option<&str>) -> Endpoint {
    let mut endpoint = Endpoint::new("10.0.0.7:9080".parse().expect("address"));
    if sidecar {
        endpoint
            .labels
            .insert(TLS_MODE_LABEL.into(), TLS_MODE_ISTIO.into());
    }
    endpoint.identity = identity.map(String::from);
    endpoint
}

fn tls(mode: Option<UpstreamTlsMode>, sans: &[&str]) -> UpstreamTls {
    UpstreamTls {
        mode,
        subject_alt_names: sans.iter().map(|s| s.to_string()).collect(),
        ..UpstreamTls::default()
    }
}

fn mutual(identities: &[&str]) -> Result<TlsDecision, TlsRefusal> {
    Ok(TlsDecision::Mutual {
        identities: identities.iter().map(|s| s.to_string()).collect(),
    })
}

#[test]
fn auto_mtls_follows_the_sidecar_label() {
    let auto = UpstreamTls::default();
    assert_eq!(
        auto.decide(&endpoint(true, Some(SERVER))),
        mutual(&[SERVER])
    );
    assert_eq!(
        auto.decide(&endpoint(false, Some(SERVER))),
        Ok(TlsDecision::Plaintext)
    );
    let mut other = endpoint(false, Some(SERVER));
    other
        .labels
        .insert(TLS_MODE_LABEL.into(), "disabled".into());
    assert_eq!(auto.decide(&other), Ok(TlsDecision::Plaintext));
}

#[test]
fn auto_mtls_without_a_known_identity_stays_plaintext() {
    let auto = UpstreamTls::default();
    assert_eq!(
        auto.decide(&endpoint(true, None)),
        Ok(TlsDecision::Plaintext)
    );
    let sans = tls(None, &["spiffe://td/ns/a/sa/b"]);
    assert_eq!(
        sans.decide(&endpoint(true, None)),
        mutual(&["spiffe://td/ns/a/sa/b"])
    );
}

#[test]
fn disable_is_plaintext_even_to_sidecars() {
    let disable = tls(Some(UpstreamTlsMode::Disable), &[]);
    assert_eq!(
        disable.decide(&endpoint(true, Some(SERVER))),
        Ok(TlsDecision::Plaintext)
    );
}

#[test]
fn istio_mutual_needs_no_label_but_an_identity() {
    let istio = tls(Some(UpstreamTlsMode::IstioMutual), &[]);
    assert_eq!(
        istio.decide(&endpoint(false, Some(SERVER))),
        mutual(&[SERVER])
    );
    let err = istio.decide(&endpoint(true, None)).expect_err("unknown");
    assert!(err.to_string().contains("subjectAltNames"), "{err}");
}

#[test]
fn subject_alt_names_replace_the_endpoints_identity() {
    let pinned = tls(
        Some(UpstreamTlsMode::IstioMutual),
        &["spiffe://td/ns/x/sa/y"],
    );
    assert_eq!(
        pinned.decide(&endpoint(true, Some(SERVER))),
        mutual(&["spiffe://td/ns/x/sa/y"])
    );
}

#[test]
fn simple_and_mutual_originate_whatever_the_endpoint() {
    for mode in [UpstreamTlsMode::Simple, UpstreamTlsMode::Mutual] {
        let user = tls(Some(mode), &["api.example.com"]);
        for endpoint in [endpoint(false, None), endpoint(true, Some(SERVER))] {
            assert_eq!(
                user.decide(&endpoint),
                Ok(TlsDecision::Originate),
                "{mode:?}"
            );
        }
        assert!(mode.is_origination());
    }
    assert!(!UpstreamTlsMode::IstioMutual.is_origination());
}

#[test]
fn credential_name_is_refused_naming_the_secret_and_what_to_do() {
    let secret = UpstreamTls {
        mode: Some(UpstreamTlsMode::Mutual),
        credential_name: Some("egress-certs".into()),
        ..UpstreamTls::default()
    };
    let err = secret
        .decide(&endpoint(false, None))
        .expect_err("credentialName");
    assert_eq!(err, TlsRefusal::CredentialName("egress-certs".into()));
    let message = err.to_string();
    for part in ["\"egress-certs\"", "not supported", "tls.caCertificates"] {
        assert!(message.contains(part), "{message}");
    }
}

#[test]
fn the_server_name_is_sni_else_the_host() {
    let mut simple = tls(Some(UpstreamTlsMode::Simple), &[]);
    assert_eq!(simple.server_name("api.example.com"), "api.example.com");
    simple.sni = Some("edge.example.net".into());
    assert_eq!(simple.server_name("api.example.com"), "edge.example.net");
}

#[test]
fn mode_names_are_istios_spelling_and_unset_is_auto() {
    assert_eq!(UpstreamTls::default().mode_name(), "auto");
    let names = [
        (UpstreamTlsMode::Disable, "DISABLE"),
        (UpstreamTlsMode::Simple, "SIMPLE"),
        (UpstreamTlsMode::Mutual, "MUTUAL"),
        (UpstreamTlsMode::IstioMutual, "ISTIO_MUTUAL"),
    ];
    for (mode, name) in names {
        assert_eq!(tls(Some(mode), &[]).mode_name(), name);
    }
}
