//! ServiceEntry and WorkloadEntry: hosts, addresses, ports, resolution and endpoints.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Object, Resolution, ServiceEntrySpec, WorkloadEntrySpec};

use super::hosts::{check_domain, check_wildcard_domain};
use super::meta::{ExportNone, check_export_to, check_selector};
use super::names::{DNS_LABEL_RULE, check_labels, is_istio_label};
use super::net::{check_ip_or_cidr, check_port, check_unix_path, is_ip};
use super::vocabulary::{Protocol, check_protocol, protocol};
use super::{FieldPath, Report};

pub(super) fn check_service_entry(se: &Object<ServiceEntrySpec>, report: &mut Report) {
    let spec = &se.spec;
    let at = FieldPath::spec();
    check_hosts(spec, &at, report);
    for (i, address) in spec.addresses.iter().enumerate() {
        let here = at.item("addresses", i);
        report.check(&here, check_ip_or_cidr(address));
        let static_or_none = matches!(spec.resolution, Resolution::None | Resolution::Static);
        if address.contains('/') && !static_or_none {
            report.error(
                &here,
                format!("CIDR address {address} needs resolution NONE or STATIC"),
            );
        }
    }
    let port_names = check_ports(spec, &at, report);
    if let Some(selector) = &spec.workload_selector {
        check_selector(
            &selector.labels,
            &at.field("workloadSelector").field("labels"),
            report,
        );
        if !spec.endpoints.is_empty() {
            report.error(
                &at.field("workloadSelector"),
                "set only one of endpoints and workloadSelector",
            );
        }
    }
    check_resolution(spec, &at, report);
    let endpoints = match spec.resolution {
        Resolution::Static => Endpoints::Static,
        _ => Endpoints::Dns,
    };
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        check_endpoint(
            endpoint,
            endpoints,
            Some(&port_names),
            &at.item("endpoints", i),
            report,
        );
    }
    check_export_to(
        &spec.export_to,
        &se.metadata.namespace,
        ExportNone::Allowed,
        &at.field("exportTo"),
        report,
    );
}

fn check_hosts(spec: &ServiceEntrySpec, at: &FieldPath, report: &mut Report) {
    if spec.hosts.is_empty() {
        report.error(&at.field("hosts"), "a ServiceEntry needs at least one host");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        let here = at.item("hosts", i);
        if host == "*" {
            report.error(&here, "host * is not allowed in a ServiceEntry; name the hosts (a wildcard such as *.example.com is allowed)");
            continue;
        }
        match check_wildcard_domain(host) {
            Err(why) => report.error(&here, why),
            Ok(()) if host.starts_with('*') && !host.starts_with("*.") => report.warning(
                &here,
                format!(
                    "partial wildcard {host:?}; write a whole first label, as in *.example.com"
                ),
            ),
            Ok(()) => {}
        }
    }
}

/// Port numbers and names are unique; returns the names, which endpoints refer to.
fn check_ports<'a>(
    spec: &'a ServiceEntrySpec,
    at: &FieldPath,
    report: &mut Report,
) -> BTreeSet<&'a str> {
    let mut numbers: BTreeMap<u32, usize> = BTreeMap::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let several_hosts = spec.hosts.len() > 1 && spec.resolution != Resolution::None;
    for (i, port) in spec.ports.iter().enumerate() {
        let here = at.item("ports", i);
        report.check(&here.field("number"), check_port(port.number));
        if let Some(first) = numbers.insert(port.number, i) {
            report.error(
                &here.field("number"),
                format!("port {} is already defined by ports[{first}]", port.number),
            );
        }
        if port.name.is_empty() {
            report.error(
                &here.field("name"),
                "port name is required; name the port, e.g. http",
            );
        } else if !is_istio_label(&port.name) {
            report.error(
                &here.field("name"),
                format!("port name {:?} is invalid: {DNS_LABEL_RULE}", port.name),
            );
        } else if let Some(first) = names.insert(&port.name, i) {
            report.error(
                &here.field("name"),
                format!(
                    "port name {:?} is already defined by ports[{first}]",
                    port.name
                ),
            );
        }
        report.check(
            &here.field("protocol"),
            check_protocol(&port.protocol, true),
        );
        if let Some(target) = port.target_port {
            report.check(&here.field("targetPort"), check_port(target));
            if spec.resolution == Resolution::None {
                report.warning(
                    &here.field("targetPort"),
                    "targetPort has no effect with resolution NONE; remove it",
                );
            }
        }
        let opaque = !matches!(
            protocol(&port.protocol),
            Some(Protocol::Http | Protocol::Tls)
        );
        if several_hosts && opaque {
            report.error(
                &here.field("protocol"),
                "with several hosts, a TCP port cannot tell them apart; use HTTP or TLS ports, one host per ServiceEntry, or resolution NONE",
            );
        }
    }
    names.into_keys().collect()
}

fn check_resolution(spec: &ServiceEntrySpec, at: &FieldPath, report: &mut Report) {
    let name = resolution_name(spec.resolution);
    match spec.resolution {
        Resolution::None => {
            if !spec.endpoints.is_empty() {
                report.error(&at.field("endpoints"), "resolution NONE forwards to the address the caller used, so endpoints are not allowed; remove them or use STATIC or DNS");
            }
        }
        Resolution::Static => {
            if spec.endpoints.is_empty() && spec.workload_selector.is_none() {
                report.error(&at.field("resolution"), "resolution STATIC needs endpoints or a workloadSelector; add the service's addresses");
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if spec.endpoints.is_empty() {
                for (i, host) in spec
                    .hosts
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.starts_with('*'))
                {
                    report.error(
                        &at.item("hosts", i),
                        format!("resolution {name} cannot resolve the wildcard host {host:?}; use resolution NONE, or add endpoints"),
                    );
                }
            }
            if spec.resolution == Resolution::DnsRoundRobin && spec.endpoints.len() > 1 {
                report.error(
                    &at.field("endpoints"),
                    "resolution DNS_ROUND_ROBIN allows at most one endpoint; use DNS for several",
                );
            }
        }
    }
    if spec.workload_selector.is_some() && spec.resolution != Resolution::Static {
        report.warning(
            &at.field("workloadSelector"),
            format!("workloadSelector has no effect with resolution {name}; use STATIC"),
        );
    }
}

fn resolution_name(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::None => "NONE",
        Resolution::Static => "STATIC",
        Resolution::Dns => "DNS",
        Resolution::DnsRoundRobin => "DNS_ROUND_ROBIN",
    }
}

pub(super) fn check_workload_entry(we: &Object<WorkloadEntrySpec>, report: &mut Report) {
    check_endpoint(
        &we.spec,
        Endpoints::Standalone,
        None,
        &FieldPath::spec(),
        report,
    );
}

/// Where a workload entry appears decides which addresses it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoints {
    /// A WorkloadEntry object: an IP, a DNS name or a unix socket.
    Standalone,
    /// In a STATIC ServiceEntry: an IP or a unix socket.
    Static,
    /// In a DNS ServiceEntry: an IP or a DNS name.
    Dns,
}

fn check_endpoint(
    endpoint: &WorkloadEntrySpec,
    kind: Endpoints,
    service_ports: Option<&BTreeSet<&str>>,
    at: &FieldPath,
    report: &mut Report,
) {
    check_address(endpoint, kind, &at.field("address"), report);
    for (name, port) in &endpoint.ports {
        let here = at.field("ports").key(name);
        if !is_istio_label(name) {
            report.error(
                &here,
                format!("port name {name:?} is invalid: {DNS_LABEL_RULE}"),
            );
        } else if let Some(ports) = service_ports.filter(|p| !p.contains(name.as_str())) {
            let known: Vec<&str> = ports.iter().copied().collect();
            report.error(
                &here,
                format!("port name {name:?} is not a port of this ServiceEntry ({}); use one of its port names", known.join(", ")),
            );
        }
        report.check(&here, check_port(*port));
    }
    check_labels(&endpoint.labels, &at.field("labels"), report);
}

fn check_address(
    endpoint: &WorkloadEntrySpec,
    kind: Endpoints,
    at: &FieldPath,
    report: &mut Report,
) {
    let address = endpoint.address.as_str();
    if address.is_empty() {
        if endpoint.network.is_none() {
            report.error(
                at,
                "address is required; write the workload's IP address or DNS name",
            );
        }
        return;
    }
    if let Some(path) = address.strip_prefix("unix://") {
        if kind == Endpoints::Dns {
            report.error(at, "a unix socket address needs resolution STATIC");
        }
        report.check(at, check_unix_path(path));
        if !endpoint.ports.is_empty() {
            report.error(at, "a unix socket endpoint cannot have ports; remove them");
        }
        return;
    }
    if is_ip(address) {
        return;
    }
    if kind == Endpoints::Static {
        report.error(at, format!("endpoint address {address:?} must be an IP address with resolution STATIC; use resolution DNS for host names"));
    } else if check_domain(address).is_err() {
        report.error(
            at,
            format!("address {address:?} is not an IP address or a DNS name"),
        );
    }
}
