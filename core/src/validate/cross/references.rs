//! What routes refer to: destination hosts, subsets and gateways must exist.

use std::collections::BTreeSet;

use crate::diagnostic::Diagnostic;

use super::super::hosts::{covers, resolve};
use super::super::names::is_istio_label;
use super::super::virtual_service::{
    MESH_GATEWAY, check_destination_host, check_gateway_ref, destinations, gateway_refs,
};
use super::{Entry, Index};
use crate::config::VirtualServiceSpec;

pub(super) fn check(index: &Index, found: &mut Vec<Diagnostic>) {
    for vs in &index.virtual_services {
        check_destinations(index, vs, found);
        check_gateways(index, vs, found);
    }
}

fn check_destinations(index: &Index, vs: &Entry<VirtualServiceSpec>, found: &mut Vec<Diagnostic>) {
    let namespace = &vs.object.metadata.namespace;
    let mut warned = BTreeSet::new();
    for (at, destination) in destinations(&vs.object.spec) {
        let host = &destination.host;
        if check_destination_host(host).is_err() {
            continue; // the object's own checks report it
        }
        let fqdn = resolve(host, namespace);
        if !index.defines(&fqdn) && warned.insert(fqdn.clone()) {
            found.push(Diagnostic::warning(
                vs.origin,
                at.field("host"),
                format!(
                    "referenced host {host:?} ({fqdn}) not found in any ServiceEntry or Kubernetes Service analyzed; fine if it exists in the cluster, otherwise define it with a ServiceEntry"
                ),
            ));
        }
        let Some(subset) = destination.subset.as_ref().filter(|s| is_istio_label(s)) else {
            continue;
        };
        let defined = subsets_for(index, &fqdn);
        if !defined.contains(subset.as_str()) {
            let hint = if defined.is_empty() {
                format!("add a DestinationRule for {fqdn} with subset {subset:?}")
            } else {
                let names: Vec<&str> = defined.into_iter().collect();
                format!("its DestinationRules define {}", names.join(", "))
            };
            found.push(Diagnostic::error(
                vs.origin,
                at.field("subset"),
                format!("referenced subset {subset:?} not found in any DestinationRule for host {host}; {hint}"),
            ));
        }
    }
}

/// The subset names of every DestinationRule whose host covers `fqdn`.
fn subsets_for<'a>(index: &'a Index, fqdn: &str) -> BTreeSet<&'a str> {
    index
        .destination_rules
        .iter()
        .filter(|dr| {
            covers(
                &resolve(&dr.object.spec.host, &dr.object.metadata.namespace),
                fqdn,
            )
        })
        .flat_map(|dr| dr.object.spec.subsets.iter().map(|s| s.name.as_str()))
        .collect()
}

/// The `namespace/name` a gateway reference means, written in `namespace`.
pub(super) fn gateway_key(reference: &str, namespace: &str) -> String {
    match reference.split_once('/') {
        Some(_) => reference.to_owned(),
        // The legacy FQDN form: `name.namespace.svc.cluster.local`.
        None => match reference.split_once('.') {
            Some((name, rest)) => {
                let ns = rest.split('.').next().unwrap_or(namespace);
                format!("{ns}/{name}")
            }
            None => format!("{namespace}/{reference}"),
        },
    }
}

fn check_gateways(index: &Index, vs: &Entry<VirtualServiceSpec>, found: &mut Vec<Diagnostic>) {
    let namespace = &vs.object.metadata.namespace;
    for (at, reference) in gateway_refs(&vs.object.spec) {
        if reference == MESH_GATEWAY || check_gateway_ref(reference).is_err() {
            continue;
        }
        let key = gateway_key(reference, namespace);
        if !index.gateways.contains(&key) {
            let (ns, name) = key.split_once('/').unwrap_or((namespace, reference));
            found.push(Diagnostic::error(
                vs.origin,
                at,
                format!("referenced gateway {key:?} not found; define a Gateway named {name} in namespace {ns}, or fix the reference"),
            ));
        }
    }
}
