//! Sidecar: the listeners and egress scope of selected proxies.

use std::collections::BTreeMap;

use crate::config::{CaptureMode, EgressListener, IngressListener, Object, Port, SidecarSpec};

use super::destination_rule::check_connection_pool;
use super::hosts::{Scope, check_namespaced_host};
use super::meta::check_selector;
use super::names::{DNS_LABEL_RULE, is_istio_label};
use super::net::{check_port, check_unix_path, is_ip};
use super::vocabulary::{Protocol, check_protocol, protocol};
use super::{FieldPath, Report};

pub(super) fn check(sidecar: &Object<SidecarSpec>, report: &mut Report) {
    let spec = &sidecar.spec;
    let at = FieldPath::spec();
    if let Some(selector) = &spec.workload_selector {
        check_selector(
            &selector.labels,
            &at.field("workloadSelector").field("labels"),
            report,
        );
    }
    let empty = spec.egress.is_empty()
        && spec.ingress.is_empty()
        && spec.outbound_traffic_policy.is_none()
        && spec.inbound_connection_pool.is_none();
    if empty {
        report.error(
            &at,
            "a Sidecar must set egress, ingress, outboundTrafficPolicy or inboundConnectionPool",
        );
    }
    if let Some(pool) = &spec.inbound_connection_pool {
        check_connection_pool(pool, &at.field("inboundConnectionPool"), report);
    }
    let mut ports: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, listener) in spec.ingress.iter().enumerate() {
        let here = at.item("ingress", i);
        check_ingress(listener, &here, report);
        if let Some(first) = ports.insert(listener.port.number, i) {
            report.error(
                &here.field("port").field("number"),
                format!(
                    "port {} is already used by ingress[{first}]; ingress ports must be unique",
                    listener.port.number
                ),
            );
        }
    }
    let mut ports: BTreeMap<(u32, Option<&str>), usize> = BTreeMap::new();
    let last = spec.egress.len().saturating_sub(1);
    for (i, listener) in spec.egress.iter().enumerate() {
        let here = at.item("egress", i);
        check_egress(listener, &here, report);
        let Some(port) = &listener.port else {
            if i != last {
                report.error(&here, "an egress listener without port catches all other traffic and must be the last one");
            }
            continue;
        };
        let bind = if port.number == 0 {
            listener.bind.as_deref()
        } else {
            None
        };
        if let Some(first) = ports.insert((port.number, bind), i) {
            report.error(
                &here.field("port"),
                format!("egress[{first}] already listens here; egress ports must be unique"),
            );
        }
    }
}

fn check_port_fields(port: &Port, at: &FieldPath, report: &mut Report) {
    report.check(&at.field("protocol"), check_protocol(&port.protocol, true));
    if !port.name.is_empty() && !is_istio_label(&port.name) {
        report.error(
            &at.field("name"),
            format!("port name {:?} is invalid: {DNS_LABEL_RULE}", port.name),
        );
    }
    if port.target_port.is_some() {
        report.error(
            &at.field("targetPort"),
            "targetPort has no effect on Sidecars; remove it",
        );
    }
}

fn check_bind(bind: Option<&str>, at: &FieldPath, report: &mut Report) {
    match bind {
        Some(bind) if bind.starts_with("unix://") || is_ip(bind) => {}
        Some(bind) => report.error(
            at,
            format!("bind {bind:?} must be an IP address or unix:///path"),
        ),
        None => {}
    }
}

fn check_ingress(listener: &IngressListener, at: &FieldPath, report: &mut Report) {
    let port = at.field("port");
    report.check(&port.field("number"), check_port(listener.port.number));
    check_port_fields(&listener.port, &port, report);
    check_bind(listener.bind.as_deref(), &at.field("bind"), report);
    if let Some(endpoint) = &listener.default_endpoint {
        report.check(
            &at.field("defaultEndpoint"),
            check_default_endpoint(endpoint),
        );
    }
    if let Some(pool) = &listener.connection_pool {
        let here = at.field("connectionPool");
        check_connection_pool(pool, &here, report);
        let http = matches!(protocol(&listener.port.protocol), Some(Protocol::Http));
        if pool.http.is_some() && !http {
            report.warning(
                &here.field("http"),
                format!("HTTP settings apply to HTTP ports only and port {} is {}; only tcp settings apply", listener.port.number, display_protocol(&listener.port.protocol)),
            );
        }
    }
}

/// Where the app listens: `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`,
/// `:PORT` or `unix:///path`.
fn check_default_endpoint(endpoint: &str) -> Result<(), String> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return check_unix_path(path);
    }
    let invalid = || {
        format!(
            "defaultEndpoint {endpoint:?} must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///path"
        )
    };
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(invalid)?;
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "[::1]" | "[::]") {
        return Err(invalid());
    }
    let port: u32 = port.parse().map_err(|_| invalid())?;
    check_port(port)
}

fn check_egress(listener: &EgressListener, at: &FieldPath, report: &mut Report) {
    if let Some(port) = &listener.port {
        let here = at.field("port");
        let unix = listener
            .bind
            .as_deref()
            .is_some_and(|b| b.starts_with("unix://"));
        if port.number == 0 && !unix {
            report.error(
                &here.field("number"),
                "port 0 needs a unix domain socket bind (unix:///path); use a port in 1..65535",
            );
        } else if port.number != 0 {
            report.check(&here.field("number"), check_port(port.number));
        }
        if unix
            && !matches!(
                listener.capture_mode,
                None | Some(CaptureMode::Default | CaptureMode::None)
            )
        {
            report.error(
                &at.field("captureMode"),
                "a unix domain socket listener needs captureMode DEFAULT or NONE",
            );
        }
        check_port_fields(port, &here, report);
    }
    check_bind(listener.bind.as_deref(), &at.field("bind"), report);
    if let Some(path) = listener
        .bind
        .as_deref()
        .and_then(|b| b.strip_prefix("unix://"))
    {
        report.check(&at.field("bind"), check_unix_path(path));
    }
    if listener.hosts.is_empty() {
        report.error(
            &at.field("hosts"),
            "an egress listener needs at least one host, e.g. ./* or istio-system/*",
        );
    }
    for (i, host) in listener.hosts.iter().enumerate() {
        report.check(
            &at.item("hosts", i),
            check_namespaced_host(host, Scope::Sidecar),
        );
    }
}

fn display_protocol(protocol: &str) -> &str {
    if protocol.is_empty() {
        "not declared"
    } else {
        protocol
    }
}
