//! Gateway: servers, hosts, ports, protocols and TLS.

use super::*;

/// A Gateway selecting the ingress gateway, with these servers.
fn servers(servers: &str) -> Vec<Diagnostic> {
    check(
        "Gateway",
        &format!("selector: {{istio: ingressgateway}}\nservers: {servers}"),
    )
}

fn server(server: &str) -> Vec<Diagnostic> {
    servers(&format!("[{server}]"))
}

#[test]
fn a_complete_gateway_is_clean() {
    assert_clean(&check(
        "Gateway",
        r#"
        selector: {istio: ingressgateway}
        servers:
        - port: {number: 80, name: http, protocol: HTTP}
          hosts: [bookinfo.example.com, "prod/*.example.com"]
          tls: {httpsRedirect: true}
        - port: {number: 443, name: https, protocol: https}
          hosts: ["*"]
          tls: {mode: SIMPLE, credentialName: bookinfo-cert, minProtocolVersion: TLSV1_2}
        - port: {number: 8443, name: tls, protocol: TLS}
          hosts: ["*.internal.example.com"]
          tls: {mode: PASSTHROUGH}
        - port: {number: 9443, name: mtls, protocol: HTTPS}
          hosts: ["*"]
          tls: {mode: MUTUAL, serverCertificate: /s.pem, privateKey: /k.pem, caCertificates: /ca.pem}
    "#,
    ));
}

#[test]
fn servers_and_selector() {
    assert_error(
        &servers("[]"),
        "spec.servers",
        "a Gateway needs at least one server",
    );
    let found = check(
        "Gateway",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]",
    );
    assert_warning(&found, "spec.selector", "selector is empty");
    let found = servers(
        "[{port: {number: 80, name: web, protocol: HTTP}, hosts: ['*']}, {port: {number: 8080, name: web, protocol: HTTP}, hosts: ['*']}]",
    );
    assert_error(
        &found,
        "spec.servers[1].port.name",
        "port name \"web\" is already used by servers[0]",
    );
}

#[test]
fn server_hosts() {
    let hosts = |h: &str| {
        server(&format!(
            "{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: {h}}}"
        ))
    };
    assert_error(
        &hosts("[]"),
        "spec.servers[0].hosts",
        "a server needs at least one host",
    );
    assert_error(
        &hosts("[reviews]"),
        "spec.servers[0].hosts[0]",
        "is a short name",
    );
    assert_error(
        &hosts("['Prod/*']"),
        "spec.servers[0].hosts[0]",
        "invalid namespace \"Prod\"",
    );
    assert_error(
        &hosts("['*foo.example.com']"),
        "spec.servers[0].hosts[0]",
        "partial wildcard",
    );
    assert_clean(&hosts("[10.0.0.1, './*.example.com']"));
}

#[test]
fn server_ports() {
    assert_error(
        &server("{port: {number: 80, name: http, protocol: UDP}, hosts: ['*']}"),
        "spec.servers[0].port.protocol",
        "protocol \"UDP\" is not supported; use one of HTTP, HTTPS",
    );
    assert_error(
        &server("{port: {number: 0, name: http, protocol: HTTP}, hosts: ['*']}"),
        "spec.servers[0].port.number",
        "port 0 is not in 1..65535",
    );
    assert_error(
        &server("{port: {number: 80, protocol: HTTP}, hosts: ['*']}"),
        "spec.servers[0].port.name",
        "port name is required",
    );
    assert_error(
        &server("{port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}, hosts: ['*']}"),
        "spec.servers[0].port.targetPort",
        "targetPort has no effect on Gateways",
    );
    assert_error(
        &server("{port: {number: 80, name: http, protocol: HTTP}, bind: localhost, hosts: ['*']}"),
        "spec.servers[0].bind",
        "bind \"localhost\" must be an IP address",
    );
    assert_clean(&server(
        "{port: {number: 0, name: uds, protocol: HTTP}, bind: 'unix:///var/run/gw.sock', hosts: ['*']}",
    ));
}

#[test]
fn tls_servers_need_tls_settings() {
    assert_error(
        &server("{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*']}"),
        "spec.servers[0]",
        "an HTTPS or TLS server needs tls settings",
    );
    let tls = |t: &str| {
        server(&format!(
            "{{port: {{number: 443, name: https, protocol: HTTPS}}, hosts: ['*'], tls: {t}}}"
        ))
    };
    let at = "spec.servers[0].tls";
    assert_error(
        &tls("{mode: SIMPLE}"),
        at,
        "SIMPLE TLS needs credentialName, or serverCertificate and privateKey",
    );
    assert_error(
        &tls("{mode: SIMPLE, serverCertificate: /s.pem}"),
        at,
        "SIMPLE TLS needs credentialName",
    );
    assert_error(
        &tls("{mode: MUTUAL, serverCertificate: /s.pem, privateKey: /k.pem}"),
        at,
        "MUTUAL TLS needs credentialName, or serverCertificate, privateKey and caCertificates",
    );
    assert_error(
        &tls("{mode: PASSTHROUGH}"),
        "spec.servers[0].tls.mode",
        "PASSTHROUGH (also the default mode) needs port protocol TLS",
    );
    assert_error(
        &tls("{credentialName: cert}"),
        "spec.servers[0].tls.mode",
        "needs port protocol TLS",
    );
    assert_error(
        &tls("{mode: ISTIO_MUTUAL, credentialName: c}"),
        at,
        "ISTIO_MUTUAL uses the mesh's certificates",
    );
    assert_error(
        &tls("{mode: SIMPLE, credentialName: a, credentialNames: [b]}"),
        at,
        "set only one of credentialName and credentialNames",
    );
    assert_error(
        &tls(
            "{mode: SIMPLE, credentialName: a, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}",
        ),
        "spec.servers[0].tls.minProtocolVersion",
        "minProtocolVersion is above maxProtocolVersion",
    );
    assert_warning(
        &tls("{mode: SIMPLE, credentialName: a, httpsRedirect: true}"),
        "spec.servers[0].tls.httpsRedirect",
        "applies to plain-text HTTP servers only",
    );
    let passthrough = server(
        "{port: {number: 443, name: tls, protocol: TLS}, hosts: ['*'], tls: {mode: AUTO_PASSTHROUGH, credentialName: c}}",
    );
    assert_warning(
        &passthrough,
        "spec.servers[0].tls",
        "AUTO_PASSTHROUGH does not use certificates",
    );
}

#[test]
fn plain_servers_take_no_tls() {
    assert_error(
        &server(
            "{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*'], tls: {mode: SIMPLE, credentialName: c}}",
        ),
        "spec.servers[0].tls",
        "a plain-text HTTP server can only set tls.httpsRedirect",
    );
    assert_error(
        &server(
            "{port: {number: 27017, name: mongo, protocol: MONGO}, hosts: ['*'], tls: {mode: SIMPLE, credentialName: c}}",
        ),
        "spec.servers[0].tls",
        "a MONGO server cannot have tls settings",
    );
}
