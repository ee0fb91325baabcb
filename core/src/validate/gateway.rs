//! Gateway: servers (port, hosts, TLS) and the selector of the gateway workloads.

use std::collections::BTreeMap;

use crate::config::{GatewaySpec, Object, Server, ServerTlsMode, ServerTlsSettings, TlsProtocol};

use super::hosts::{Scope, check_namespaced_host};
use super::names::check_labels;
use super::net::{check_port, check_unix_path, is_ip};
use super::vocabulary::{Protocol, check_protocol, protocol};
use super::{FieldPath, Report};

pub(super) fn check(gateway: &Object<GatewaySpec>, report: &mut Report) {
    let spec = &gateway.spec;
    let at = FieldPath::spec();
    if spec.selector.is_empty() {
        report.warning(
            &at.field("selector"),
            "selector is empty, so this Gateway applies to every gateway workload; select one, e.g. istio: ingressgateway",
        );
    }
    check_labels(&spec.selector, &at.field("selector"), report);
    if spec.servers.is_empty() {
        report.error(&at.field("servers"), "a Gateway needs at least one server");
    }
    let mut port_names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let here = at.item("servers", i);
        check_server(server, &here, report);
        let name = server.port.name.as_str();
        if name.is_empty() {
            continue;
        }
        if let Some(first) = port_names.insert(name, i) {
            report.error(
                &here.field("port").field("name"),
                format!("port name {name:?} is already used by servers[{first}]; port names must be unique in a Gateway"),
            );
        }
    }
}

fn check_server(server: &Server, at: &FieldPath, report: &mut Report) {
    if server.hosts.is_empty() {
        report.error(
            &at.field("hosts"),
            "a server needs at least one host; use \"*\" for any host",
        );
    }
    for (i, host) in server.hosts.iter().enumerate() {
        report.check(
            &at.item("hosts", i),
            check_namespaced_host(host, Scope::Gateway),
        );
    }
    check_server_port(server, &at.field("port"), report);
    check_bind(server.bind.as_deref(), &at.field("bind"), report);
    let Some(protocol) = protocol(&server.port.protocol) else {
        return;
    };
    match (&server.tls, protocol) {
        (None, Protocol::Tls) => report.error(
            at,
            "an HTTPS or TLS server needs tls settings, e.g. tls: {mode: SIMPLE, credentialName: my-cert}",
        ),
        (None, _) => {}
        (Some(tls), Protocol::Tls) => check_tls(tls, &server.port.protocol, &at.field("tls"), report),
        (Some(tls), Protocol::Http) => check_http_tls(tls, &at.field("tls"), report),
        (Some(_), Protocol::Tcp) => report.error(
            &at.field("tls"),
            format!("a {} server cannot have tls settings; use protocol TLS or HTTPS, or remove tls", server.port.protocol),
        ),
    }
}

fn check_server_port(server: &Server, at: &FieldPath, report: &mut Report) {
    let port = &server.port;
    let unix = server
        .bind
        .as_deref()
        .and_then(|b| b.strip_prefix("unix://"));
    match (unix, port.number) {
        (Some(_), 0) => {}
        (Some(_), _) => report.error(
            &at.field("number"),
            "port number must be 0 when bind is a unix domain socket",
        ),
        (None, number) => report.check(&at.field("number"), check_port(number)),
    }
    report.check(&at.field("protocol"), check_protocol(&port.protocol, false));
    if port.name.is_empty() {
        report.error(
            &at.field("name"),
            "port name is required; name the port, e.g. http or https",
        );
    }
    if port.target_port.is_some() {
        report.error(
            &at.field("targetPort"),
            "targetPort has no effect on Gateways; remove it",
        );
    }
}

fn check_bind(bind: Option<&str>, at: &FieldPath, report: &mut Report) {
    match bind.map(|b| (b, b.strip_prefix("unix://"))) {
        Some((_, Some(path))) => report.check(at, check_unix_path(path)),
        Some((bind, None)) if !is_ip(bind) => report.error(
            at,
            format!("bind {bind:?} must be an IP address or unix:///path"),
        ),
        _ => {}
    }
}

/// A plain-text HTTP server may only redirect to HTTPS (its tls keeps the default mode).
fn check_http_tls(tls: &ServerTlsSettings, at: &FieldPath, report: &mut Report) {
    let passthrough = matches!(
        tls.mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    );
    if !passthrough || has_certificates(tls) {
        report.error(
            at,
            "a plain-text HTTP server can only set tls.httpsRedirect; use protocol HTTPS to terminate TLS",
        );
    }
}

fn has_certificates(tls: &ServerTlsSettings) -> bool {
    tls.server_certificate.is_some()
        || tls.private_key.is_some()
        || tls.ca_certificates.is_some()
        || tls.credential_name.is_some()
        || !tls.credential_names.is_empty()
}

fn check_tls(tls: &ServerTlsSettings, protocol: &str, at: &FieldPath, report: &mut Report) {
    if tls.https_redirect {
        report.warning(
            &at.field("httpsRedirect"),
            "httpsRedirect applies to plain-text HTTP servers only; remove it",
        );
    }
    if tls.credential_name.is_some() && !tls.credential_names.is_empty() {
        report.error(at, "set only one of credentialName and credentialNames");
    }
    let mode = tls.mode;
    let credential = tls.credential_name.is_some() || !tls.credential_names.is_empty();
    match mode {
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => {
            if !protocol.eq_ignore_ascii_case("TLS") {
                report.error(
                    &at.field("mode"),
                    format!("{} (also the default mode) needs port protocol TLS, since the gateway does not terminate TLS; set mode: SIMPLE to serve {protocol}", mode_name(mode)),
                );
            } else if has_certificates(tls) {
                report.warning(
                    at,
                    format!("{} does not use certificates; remove them", mode_name(mode)),
                );
            }
        }
        ServerTlsMode::IstioMutual if has_certificates(tls) => {
            report.error(at, "ISTIO_MUTUAL uses the mesh's certificates; remove serverCertificate, privateKey, caCertificates and credentialName");
        }
        ServerTlsMode::Simple
            if !credential && (tls.server_certificate.is_none() || tls.private_key.is_none()) =>
        {
            report.error(
                at,
                "SIMPLE TLS needs credentialName, or serverCertificate and privateKey",
            );
        }
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
            if !credential
                && (tls.server_certificate.is_none()
                    || tls.private_key.is_none()
                    || tls.ca_certificates.is_none()) =>
        {
            report.error(
                at,
                format!("{} TLS needs credentialName, or serverCertificate, privateKey and caCertificates", mode_name(mode)),
            );
        }
        _ => {}
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version)
        && max != TlsProtocol::Auto
        && rank(min) > rank(max)
    {
        report.error(
            &at.field("minProtocolVersion"),
            "minProtocolVersion is above maxProtocolVersion; swap them",
        );
    }
}

fn rank(version: TlsProtocol) -> u8 {
    match version {
        TlsProtocol::Auto => 0,
        TlsProtocol::V1_0 => 1,
        TlsProtocol::V1_1 => 2,
        TlsProtocol::V1_2 => 3,
        TlsProtocol::V1_3 => 4,
    }
}

fn mode_name(mode: ServerTlsMode) -> &'static str {
    match mode {
        ServerTlsMode::Passthrough => "PASSTHROUGH",
        ServerTlsMode::Simple => "SIMPLE",
        ServerTlsMode::Mutual => "MUTUAL",
        ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
        ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
        ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
    }
}
