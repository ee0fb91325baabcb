//! VirtualService: hosts, gateways, and each HTTP, TLS and TCP route.

use crate::config::{Destination, Object, VirtualServiceSpec};

use super::hosts::{check_domain, check_wildcard_domain, covers};
use super::meta::{ExportNone, check_export_to};
use super::names::{is_dns_label, is_istio_label};
use super::net::{check_port, is_ip};
use super::{FieldPath, Report, http_route, l4_route};

/// The gateway name that means "the sidecars of the mesh".
pub(crate) const MESH_GATEWAY: &str = "mesh";

pub(super) fn check(vs: &Object<VirtualServiceSpec>, report: &mut Report) {
    let spec = &vs.spec;
    let at = FieldPath::spec();
    check_hosts(spec, &at, report);
    check_gateway_names(&spec.gateways, &at.field("gateways"), report);
    if spec.http.is_empty() && spec.tcp.is_empty() && spec.tls.is_empty() {
        report.error(
            &at,
            "http, tcp or tls routes are required; add at least one route",
        );
    }
    for (i, route) in spec.http.iter().enumerate() {
        http_route::check(route, &at.item("http", i), report);
    }
    check_unreachable(spec, &at, report);
    for (i, route) in spec.tls.iter().enumerate() {
        l4_route::check_tls_route(route, spec, &at.item("tls", i), report);
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        l4_route::check_tcp_route(route, &at.item("tcp", i), report);
    }
    check_export_to(
        &spec.export_to,
        &vs.metadata.namespace,
        ExportNone::Invalid,
        &at.field("exportTo"),
        report,
    );
}

/// Whether the VirtualService applies to sidecars: no gateways, or `mesh` among them.
pub(crate) fn applies_to_mesh(spec: &VirtualServiceSpec) -> bool {
    spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == MESH_GATEWAY)
}

fn check_hosts(spec: &VirtualServiceSpec, at: &FieldPath, report: &mut Report) {
    let at = at.field("hosts");
    if spec.hosts.is_empty() {
        report.error(
            &at,
            "hosts must not be empty; name the hosts these routes apply to (delegate VirtualServices are not supported yet)",
        );
    }
    let mesh = applies_to_mesh(spec);
    let mut all_valid = true;
    for (i, host) in spec.hosts.iter().enumerate() {
        if is_ip(host) {
            continue;
        }
        let result = check_wildcard_domain(host).and_then(|()| {
            if mesh && host == "*" {
                Err("wildcard host * is allowed only for VirtualServices bound to gateways (not mesh); name the hosts, or bind it to a gateway".into())
            } else {
                Ok(())
            }
        });
        all_valid &= result.is_ok();
        report.check(&at.index(i), result);
    }
    if all_valid {
        check_duplicate_hosts(&spec.hosts, &at, report);
    }
}

/// `*.example.com` and `api.example.com` in one VirtualService overlap: one rule set would
/// shadow the other.
fn check_duplicate_hosts(hosts: &[String], at: &FieldPath, report: &mut Report) {
    let lower: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    for (j, b) in lower.iter().enumerate() {
        if let Some(a) = lower[..j].iter().find(|a| covers(a, b) || covers(b, a)) {
            report.error(
                &at.index(j),
                format!(
                    "host {:?} overlaps host {a:?} of this VirtualService; list each host once",
                    hosts[j]
                ),
            );
        }
    }
}

/// Gateway references: `mesh`, `name` (this namespace) or `namespace/name`.
pub(super) fn check_gateway_names(gateways: &[String], at: &FieldPath, report: &mut Report) {
    for (i, gateway) in gateways.iter().enumerate() {
        match check_gateway_ref(gateway) {
            Ok(None) => {}
            Ok(Some(warning)) => report.warning(&at.index(i), warning),
            Err(error) => report.error(&at.index(i), error),
        }
    }
}

/// One gateway reference: `mesh`, `name`, `namespace/name`, or the legacy
/// `name.namespace.svc.cluster.local`, which is accepted with a warning (`Ok(Some(..))`).
pub(super) fn check_gateway_ref(gateway: &str) -> Result<Option<String>, String> {
    if gateway == MESH_GATEWAY {
        return Ok(None);
    }
    match gateway.split_once('/') {
        Some((namespace, name)) if !is_dns_label(namespace) || !is_dns_label(name) => Err(format!(
            "gateway {gateway:?} is invalid; write namespace/name, both lower-case DNS labels"
        )),
        Some(_) => Ok(None),
        None if gateway.contains('.') => {
            check_domain(gateway)
                .map_err(|why| format!("gateway {gateway:?} is invalid: {why}"))?;
            let mut parts = gateway.split('.');
            let name = parts.next().unwrap_or_default();
            let namespace = parts.next().unwrap_or_default();
            Ok(Some(format!(
                "gateway {gateway:?} uses the legacy FQDN form; write it as {namespace}/{name}"
            )))
        }
        None if !is_dns_label(gateway) => Err(format!(
            "gateway {gateway:?} is invalid; write name, namespace/name or mesh"
        )),
        None => Ok(None),
    }
}

/// A rule after one without `match` never sees a request.
fn check_unreachable(spec: &VirtualServiceSpec, at: &FieldPath, report: &mut Report) {
    if let Some(catch_all) = spec.http.iter().position(|r| r.matches.is_empty()) {
        for i in catch_all + 1..spec.http.len() {
            report.warning(
                &at.item("http", i),
                format!("this route is never used: route http[{catch_all}] before it has no match and takes every request; move the catch-all route last"),
            );
        }
    }
}

/// A route's destination: one named service (no wildcard), a valid subset and port.
pub(super) fn check_destination(destination: &Destination, at: &FieldPath, report: &mut Report) {
    let result = check_destination_host(&destination.host);
    report.check(&at.field("host"), result);
    if let Some(subset) = &destination.subset
        && !is_istio_label(subset)
    {
        report.error(
            &at.field("subset"),
            format!("subset name {subset:?} is invalid; use letters, digits and '-', starting and ending with a letter or digit"),
        );
    }
    if let Some(port) = &destination.port {
        report.check(&at.field("port").field("number"), check_port(port.number));
    }
}

/// A destination host: one named service, so no wildcard.
pub(super) fn check_destination_host(host: &str) -> Result<(), String> {
    if host.starts_with('*') {
        Err(format!(
            "destination host {host:?} is a wildcard; a destination must name one service, such as reviews or api.example.com"
        ))
    } else {
        check_wildcard_domain(host)
    }
}

/// Destinations' weights: each at most 100; with several destinations, either none is
/// weighted (an even split) or they add up to 100.
pub(super) fn check_weights(weights: &[Option<u32>], at: &FieldPath, report: &mut Report) {
    for (i, weight) in weights.iter().enumerate() {
        if let Some(weight) = weight.filter(|w| *w > 100) {
            report.error(
                &at.index(i).field("weight"),
                format!("weight {weight} is more than 100; weights are percentages of the route's traffic"),
            );
        }
    }
    if weights.len() > 1 && weights.iter().any(Option::is_some) {
        let total: u64 = weights.iter().flatten().map(|w| u64::from(*w)).sum();
        if total != 100 {
            report.error(
                at,
                format!("total destination weight {total} != 100; make the weights add up to 100, or remove them all to split evenly"),
            );
        }
    }
}

/// Every destination a VirtualService sends or mirrors traffic to, with its path.
pub(crate) fn destinations(spec: &VirtualServiceSpec) -> Vec<(FieldPath, &Destination)> {
    let at = FieldPath::spec();
    let mut found = Vec::new();
    for (i, route) in spec.http.iter().enumerate() {
        let here = at.item("http", i);
        for (j, d) in route.route.iter().enumerate() {
            found.push((here.item("route", j).field("destination"), &d.destination));
        }
        if let Some(mirror) = &route.mirror {
            found.push((here.field("mirror"), mirror));
        }
        for (j, m) in route.mirrors.iter().enumerate() {
            found.push((here.item("mirrors", j).field("destination"), &m.destination));
        }
    }
    for (i, route) in spec.tls.iter().enumerate() {
        for (j, d) in route.route.iter().enumerate() {
            found.push((
                at.item("tls", i).item("route", j).field("destination"),
                &d.destination,
            ));
        }
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        for (j, d) in route.route.iter().enumerate() {
            found.push((
                at.item("tcp", i).item("route", j).field("destination"),
                &d.destination,
            ));
        }
    }
    found
}

/// Every gateway reference, with its path: `spec.gateways` and the routes' match gateways.
pub(crate) fn gateway_refs(spec: &VirtualServiceSpec) -> Vec<(FieldPath, &str)> {
    let at = FieldPath::spec();
    let mut found: Vec<(FieldPath, &str)> = spec
        .gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (at.item("gateways", i), g.as_str()))
        .collect();
    let http = spec
        .http
        .iter()
        .map(|r| r.matches.iter().map(|m| &m.gateways).collect());
    let tls = spec
        .tls
        .iter()
        .map(|r| r.matches.iter().map(|m| &m.gateways).collect());
    let tcp = spec
        .tcp
        .iter()
        .map(|r| r.matches.iter().map(|m| &m.gateways).collect());
    let kinds: [(&str, Vec<Vec<&Vec<String>>>); 3] = [
        ("http", http.collect()),
        ("tls", tls.collect()),
        ("tcp", tcp.collect()),
    ];
    for (kind, routes) in kinds {
        for (i, matches) in routes.into_iter().enumerate() {
            for (j, gateways) in matches.into_iter().enumerate() {
                for (k, gateway) in gateways.iter().enumerate() {
                    let here = at.item(kind, i).item("match", j).item("gateways", k);
                    found.push((here, gateway.as_str()));
                }
            }
        }
    }
    found
}
