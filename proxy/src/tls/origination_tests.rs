use std::path::{Path, PathBuf};

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;

use super::*;

/// A fresh directory with a CA (`ca.pem`), a client certificate and key (`client.pem`,
/// `client-key.pem`), another key (`other-key.pem`) and a file that is not PEM.
fn files(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-origination-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = rcgen::KeyPair::generate().expect("key");
    let client = rcgen::CertificateParams::new(vec!["client.example.com".to_owned()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client");
    let other = rcgen::KeyPair::generate().expect("key");
    for (file, text) in [
        ("ca.pem", ca.pem()),
        ("client.pem", client.pem()),
        ("client-key.pem", client_key.serialize_pem()),
        ("other-key.pem", other.serialize_pem()),
        ("junk.pem", "not a certificate\n".to_owned()),
    ] {
        std::fs::write(dir.join(file), text).expect("write");
    }
    dir
}

fn path(dir: &Path, file: &str) -> Option<String> {
    Some(dir.join(file).to_string_lossy().into_owned())
}

fn simple(dir: &Path) -> UpstreamTls {
    UpstreamTls {
        mode: Some(UpstreamTlsMode::Simple),
        ca_certificates: path(dir, "ca.pem"),
        ..UpstreamTls::default()
    }
}

fn error(tls: &UpstreamTls, host: &str) -> String {
    Origination::load(tls, host)
        .err()
        .map(|e| e.to_string())
        .expect("refused")
}

#[test]
fn simple_and_mutual_load_from_pem_files() {
    let dir = files("good");
    let loaded = Origination::load(&simple(&dir), "api.example.com").expect("SIMPLE loads");
    assert_eq!(loaded.server_name.to_str(), "api.example.com");
    assert_eq!(loaded.mode(), "SIMPLE");
    assert!(
        loaded.no_alpn.alpn_protocols.is_empty(),
        "no ALPN for HTTP/1.1"
    );
    assert_eq!(loaded.h2.alpn_protocols, [b"h2".to_vec()]);
    let mutual = UpstreamTls {
        mode: Some(UpstreamTlsMode::Mutual),
        client_certificate: path(&dir, "client.pem"),
        private_key: path(&dir, "client-key.pem"),
        sni: Some("edge.example.net".into()),
        ..simple(&dir)
    };
    let loaded = Origination::load(&mutual, "api.example.com").expect("MUTUAL loads");
    assert_eq!(loaded.server_name.to_str(), "edge.example.net");
    assert!(loaded.no_alpn.client_auth_cert_resolver.has_certs());
}

#[test]
fn a_file_that_cannot_be_used_is_named_with_its_field() {
    let dir = files("bad");
    let missing = UpstreamTls {
        ca_certificates: path(&dir, "missing.pem"),
        ..simple(&dir)
    };
    let message = error(&missing, "api.example.com");
    assert!(
        message.starts_with("tls.caCertificates: cannot read ") && message.contains("missing.pem"),
        "{message}"
    );
    let junk = UpstreamTls {
        ca_certificates: path(&dir, "junk.pem"),
        ..simple(&dir)
    };
    let message = error(&junk, "api.example.com");
    assert!(
        message.contains("junk.pem: holds no PEM certificate"),
        "{message}"
    );

    let mutual = |cert: &str, key: &str| UpstreamTls {
        mode: Some(UpstreamTlsMode::Mutual),
        client_certificate: path(&dir, cert),
        private_key: path(&dir, key),
        ..simple(&dir)
    };
    let message = error(&mutual("client.pem", "junk.pem"), "api.example.com");
    assert!(message.starts_with("tls.privateKey: "), "{message}");
    let message = error(&mutual("client.pem", "other-key.pem"), "api.example.com");
    assert!(
        message.starts_with("tls.clientCertificate and tls.privateKey: "),
        "{message}"
    );
    let no_key = UpstreamTls {
        private_key: None,
        ..mutual("client.pem", "client-key.pem")
    };
    assert_eq!(
        error(&no_key, "api.example.com"),
        "tls.mode MUTUAL needs tls.clientCertificate and tls.privateKey (PEM file paths)"
    );
}

#[test]
fn a_host_that_is_no_server_name_needs_sni() {
    let dir = files("sni");
    let message = error(&simple(&dir), "*.example.com");
    assert!(message.contains("set tls.sni"), "{message}");
    let named = UpstreamTls {
        sni: Some("api.example.com".into()),
        ..simple(&dir)
    };
    assert!(Origination::load(&named, "*.example.com").is_ok());
}

fn snapshot(tls: &str) -> ProxyConfig {
    let yaml = format!(
        "version: \"1\"\nclusters:\n- host: api.example.com\n  port: 443\n  endpoints: [{{address: \"127.0.0.1:1\", labels: {{v: one}}}}]\n  trafficPolicy: {{tls: {{mode: SIMPLE}}}}\n  subsets:\n  - name: v1\n    labels: {{v: one}}\n    trafficPolicy: {{tls: {tls}}}\n"
    );
    compile(&Snapshot::from_yaml(&yaml).expect("parses")).expect("compiles")
}

#[test]
fn load_all_names_the_cluster_and_subset_and_views_show_what_is_in_force() {
    let dir = files("all");
    let missing = dir.join("gone.pem");
    let config = snapshot(&format!(
        "{{mode: SIMPLE, caCertificates: {}}}",
        missing.display()
    ));
    let message = load_all(&config).expect_err("unreadable").to_string();
    assert!(
        message.starts_with(
            "cluster outbound|443|v1|api.example.com: tls.caCertificates: cannot read"
        ),
        "{message}"
    );

    let ca = dir.join("ca.pem");
    let config = snapshot(&format!(
        "{{mode: SIMPLE, caCertificates: {}, sni: v1.example.com}}",
        ca.display()
    ));
    // The cluster's own SIMPLE uses the system's roots, which this machine may not have.
    if super::roots::system().is_ok() {
        load_all(&config).expect("loads");
        let cluster = config.cluster("api.example.com", 443).expect("cluster");
        let view = cluster_view(cluster);
        assert_eq!(view["mode"], "SIMPLE");
        assert_eq!(view["caCertificates"], "system roots");
        assert_eq!(view["status"], "loaded");
        assert_eq!(view["subsets"]["v1"]["sni"], "v1.example.com");
        assert_eq!(view["subsets"]["v1"]["status"], "loaded");
    }

    let config = snapshot("{mode: MUTUAL, credentialName: egress}");
    let cluster = config.cluster("api.example.com", 443).expect("cluster");
    let view = cluster_view(cluster);
    assert_eq!(view["subsets"]["v1"]["mode"], "MUTUAL");
    let status = view["subsets"]["v1"]["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("refused: credentialName \"egress\""),
        "{view}"
    );
}
