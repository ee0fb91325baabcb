//! Objects that claim the same thing: a host routed by two VirtualServices, a host with two
//! DestinationRules, a namespace with two default Sidecars or Telemetries.

use std::collections::BTreeMap;

use crate::config::VirtualServiceSpec;
use crate::diagnostic::{Diagnostic, Origin};

use super::super::FieldPath;
use super::super::hosts::resolve;
use super::super::virtual_service::{MESH_GATEWAY, applies_to_mesh};
use super::references::gateway_key;
use super::{Entry, Index, describe, place};

pub(super) fn check(index: &Index, found: &mut Vec<Diagnostic>) {
    check_identities(index, found);
    check_virtual_services(index, found);
    check_destination_rules(index, found);
    check_sidecars(index, found);
    check_telemetries(index, found);
}

/// One kind, namespace and name is one object: applying two keeps only the last.
fn check_identities(index: &Index, found: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(&str, &str, &str), &Origin> = BTreeMap::new();
    for origin in &index.origins {
        let key = (
            origin.kind.as_str(),
            origin.namespace.as_str(),
            origin.name.as_str(),
        );
        match seen.get(&key) {
            Some(first) => found.push(Diagnostic::error(
                origin,
                FieldPath::metadata().field("name"),
                format!(
                    "{} {}/{} is also defined at {}; applying both keeps only the last, so rename or remove one",
                    origin.kind,
                    origin.namespace,
                    origin.name,
                    place(first).unwrap_or_else(|| describe(first))
                ),
            )),
            None => {
                seen.insert(key, origin);
            }
        }
    }
}

/// Two definitions of one object are reported once, by [`check_identities`].
fn same_object<S>(a: &Entry<S>, b: &Entry<S>) -> bool {
    a.object.metadata.namespace == b.object.metadata.namespace
        && a.object.metadata.name == b.object.metadata.name
}

/// Where a VirtualService applies: `mesh` and the `namespace/name` of its gateways.
fn bindings(vs: &Entry<VirtualServiceSpec>) -> Vec<String> {
    let spec = &vs.object.spec;
    let namespace = &vs.object.metadata.namespace;
    let mut bindings: Vec<String> = spec
        .gateways
        .iter()
        .filter(|g| *g != MESH_GATEWAY)
        .map(|g| gateway_key(g, namespace))
        .collect();
    if applies_to_mesh(spec) {
        bindings.push(MESH_GATEWAY.to_owned());
    }
    bindings
}

/// Whether two objects' `exportTo` let some namespace see both.
fn visible_together(a: &Entry<VirtualServiceSpec>, b: &Entry<VirtualServiceSpec>) -> bool {
    let scope = |vs: &Entry<VirtualServiceSpec>| -> Option<Vec<String>> {
        let export_to = &vs.object.spec.export_to;
        if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
            return None; // everywhere
        }
        let own = &vs.object.metadata.namespace;
        Some(
            export_to
                .iter()
                .map(|e| if e == "." { own.clone() } else { e.clone() })
                .collect(),
        )
    };
    match (scope(a), scope(b)) {
        (Some(a), Some(b)) => a.iter().any(|ns| b.contains(ns)),
        _ => true,
    }
}

/// Two VirtualServices for one host on the mesh make sidecars pick one at random (Istio
/// analyze's IST0109); on a gateway Istio merges them, in an order no one controls.
fn check_virtual_services(index: &Index, found: &mut Vec<Diagnostic>) {
    let mut claims: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, vs) in index.virtual_services.iter().enumerate() {
        let namespace = &vs.object.metadata.namespace;
        let mut reported = Vec::new();
        for (h, host) in vs.object.spec.hosts.iter().enumerate() {
            let fqdn = resolve(host, namespace);
            for binding in bindings(vs) {
                let key = (fqdn.clone(), binding.clone());
                let Some(&first) = claims.get(&key) else {
                    claims.insert(key, i);
                    continue;
                };
                let other = &index.virtual_services[first];
                if reported.contains(&fqdn)
                    || same_object(vs, other)
                    || !visible_together(vs, other)
                {
                    continue;
                }
                reported.push(fqdn.clone());
                let at = FieldPath::spec().item("hosts", h);
                if binding == MESH_GATEWAY {
                    found.push(Diagnostic::error(
                        vs.origin,
                        at,
                        format!("host {fqdn} is also routed for the mesh by {}; sidecars would use only one of them, so merge them into one VirtualService", describe(other.origin)),
                    ));
                } else {
                    found.push(Diagnostic::warning(
                        vs.origin,
                        at,
                        format!("host {fqdn} is also routed on gateway {binding} by {}; their routes are merged in an undefined order, so merge them into one VirtualService", describe(other.origin)),
                    ));
                }
            }
        }
    }
}

fn check_destination_rules(index: &Index, found: &mut Vec<Diagnostic>) {
    let mut hosts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, dr) in index.destination_rules.iter().enumerate() {
        let namespace = dr.object.metadata.namespace.clone();
        let fqdn = resolve(&dr.object.spec.host, &namespace);
        let first = hosts.get(&(namespace.clone(), fqdn.clone())).copied();
        if let Some(first) = first.filter(|&f| !same_object(dr, &index.destination_rules[f])) {
            found.push(Diagnostic::warning(
                dr.origin,
                FieldPath::spec().field("host"),
                format!(
                    "host {fqdn} already has a DestinationRule in namespace {namespace}: {}; Istio merges them in an undefined order, so keep one",
                    describe(index.destination_rules[first].origin)
                ),
            ));
        } else if first.is_none() {
            hosts.insert((namespace, fqdn), i);
        }
    }
}

fn check_sidecars(index: &Index, found: &mut Vec<Diagnostic>) {
    let mut defaults: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, sidecar) in index.sidecars.iter().enumerate() {
        if sidecar.object.spec.workload_selector.is_some() {
            continue;
        }
        let namespace = sidecar.object.metadata.namespace.as_str();
        match defaults.get(namespace) {
            Some(&first) if same_object(sidecar, &index.sidecars[first]) => {}
            Some(&first) => found.push(Diagnostic::error(
                sidecar.origin,
                FieldPath::spec(),
                format!(
                    "namespace {namespace} already has a Sidecar without workloadSelector: {}; only one can apply to the whole namespace, so merge them or add a workloadSelector",
                    describe(index.sidecars[first].origin)
                ),
            )),
            None => {
                defaults.insert(namespace, i);
            }
        }
    }
}

/// Istio allows one Telemetry without selector per namespace and one per workload; mesh
/// uses the first by name. Workloads are not known here: equal selectors are compared.
fn check_telemetries(index: &Index, found: &mut Vec<Diagnostic>) {
    // (namespace, selector) -> the first Telemetry by name.
    type Scope<'a> = (&'a str, Option<&'a crate::model::Labels>);
    let mut first: BTreeMap<Scope<'_>, usize> = BTreeMap::new();
    let mut order: Vec<usize> = (0..index.telemetries.len()).collect();
    order.sort_by_key(|&i| {
        let metadata = &index.telemetries[i].object.metadata;
        (metadata.namespace.as_str(), metadata.name.as_str())
    });
    for i in order {
        let telemetry = &index.telemetries[i];
        let spec = &telemetry.object.spec;
        if spec.target_ref.is_some() || !spec.target_refs.is_empty() {
            continue;
        }
        let namespace = telemetry.object.metadata.namespace.as_str();
        let selector = spec.selector.as_ref().map(|s| &s.match_labels);
        match first.get(&(namespace, selector)) {
            Some(&used) if same_object(telemetry, &index.telemetries[used]) => {}
            Some(&used) => {
                let what = if selector.is_some() {
                    "a Telemetry with the same selector"
                } else {
                    "a Telemetry without selector"
                };
                found.push(Diagnostic::error(
                    telemetry.origin,
                    FieldPath::spec(),
                    format!(
                        "namespace {namespace} already has {what}: {}; only one applies (the first by name), so merge them",
                        describe(index.telemetries[used].origin)
                    ),
                ));
            }
            None => {
                first.insert((namespace, selector), i);
            }
        }
    }
}
