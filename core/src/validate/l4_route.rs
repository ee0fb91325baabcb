//! The L4 routes of a VirtualService: TLS routes (by SNI) and TCP routes.

use std::collections::BTreeMap;

use crate::config::{
    Destination, L4MatchAttributes, TcpRoute, TlsMatchAttributes, TlsRoute, VirtualServiceSpec,
};

use super::hosts::{check_wildcard_domain, covers};
use super::names::{check_labels, is_dns_label};
use super::net::{check_ip_or_cidr, check_port, is_ip};
use super::virtual_service::{check_destination, check_gateway_names, check_weights};
use super::{FieldPath, Report};

pub(super) fn check_tls_route(
    route: &TlsRoute,
    spec: &VirtualServiceSpec,
    at: &FieldPath,
    report: &mut Report,
) {
    if route.matches.is_empty() {
        report.error(at, "a TLS route needs at least one match with sniHosts");
    }
    for (i, m) in route.matches.iter().enumerate() {
        check_tls_match(m, spec, &at.item("match", i), report);
    }
    check_l4_destinations(
        route.route.iter().map(|r| (&r.destination, r.weight)),
        "TLS",
        at,
        report,
    );
}

fn check_tls_match(
    m: &TlsMatchAttributes,
    spec: &VirtualServiceSpec,
    at: &FieldPath,
    report: &mut Report,
) {
    if m.sni_hosts.is_empty() {
        report.error(
            &at.field("sniHosts"),
            "sniHosts must not be empty; list the SNI names this route matches",
        );
    }
    for (i, sni) in m.sni_hosts.iter().enumerate() {
        let here = at.item("sniHosts", i);
        if is_ip(sni) {
            report.warning(&here, format!("SNI host {sni:?} is an IP address, which most TLS clients never send as SNI; use a host name"));
            continue;
        }
        if let Err(why) = check_wildcard_domain(sni) {
            report.error(&here, why);
            continue;
        }
        let sni_lower = sni.to_ascii_lowercase();
        if !spec
            .hosts
            .iter()
            .any(|h| covers(&h.to_ascii_lowercase(), &sni_lower))
        {
            report.error(
                &here,
                format!("SNI host {sni:?} is not covered by any host of this VirtualService ({}); add it to hosts", spec.hosts.join(", ")),
            );
        }
    }
    check_l4_match_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        m.source_namespace.as_deref(),
        at,
        report,
    );
}

pub(super) fn check_tcp_route(route: &TcpRoute, at: &FieldPath, report: &mut Report) {
    for (i, m) in route.matches.iter().enumerate() {
        check_l4_match(m, &at.item("match", i), report);
    }
    check_l4_destinations(
        route.route.iter().map(|r| (&r.destination, r.weight)),
        "TCP",
        at,
        report,
    );
}

fn check_l4_match(m: &L4MatchAttributes, at: &FieldPath, report: &mut Report) {
    check_l4_match_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        m.source_namespace.as_deref(),
        at,
        report,
    );
}

fn check_l4_match_common(
    subnets: &[String],
    port: Option<u32>,
    source_labels: &BTreeMap<String, String>,
    gateways: &[String],
    source_namespace: Option<&str>,
    at: &FieldPath,
    report: &mut Report,
) {
    for (i, subnet) in subnets.iter().enumerate() {
        report.check(&at.item("destinationSubnets", i), check_ip_or_cidr(subnet));
    }
    if let Some(port) = port {
        report.check(&at.field("port"), check_port(port));
    }
    check_labels(source_labels, &at.field("sourceLabels"), report);
    check_gateway_names(gateways, &at.field("gateways"), report);
    if let Some(namespace) = source_namespace {
        check_source_namespace(namespace, &at.field("sourceNamespace"), report);
    }
}

pub(super) fn check_source_namespace(namespace: &str, at: &FieldPath, report: &mut Report) {
    if !is_dns_label(namespace) {
        report.error(
            at,
            format!("sourceNamespace {namespace:?} is not a valid namespace name"),
        );
    }
}

fn check_l4_destinations<'a>(
    destinations: impl Iterator<Item = (&'a Destination, Option<u32>)>,
    protocol: &str,
    at: &FieldPath,
    report: &mut Report,
) {
    let at = at.field("route");
    let mut weights = Vec::new();
    for (i, (destination, weight)) in destinations.enumerate() {
        check_destination(destination, &at.index(i).field("destination"), report);
        weights.push(weight);
    }
    if weights.is_empty() {
        report.error(
            &at,
            format!("a {protocol} route needs at least one destination in route"),
        );
    }
    check_weights(&weights, &at, report);
}
