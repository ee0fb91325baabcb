//! Checks across the objects of a set, as `istioctl analyze` does: the references a route
//! makes (hosts, subsets, gateways) and objects that claim the same thing.

mod conflicts;
mod references;

use std::collections::BTreeSet;

use crate::config::{
    ConfigObject, DestinationRuleSpec, Object, SidecarSpec, TelemetrySpec, VirtualServiceSpec,
};
use crate::diagnostic::{Diagnostic, Origin};
use crate::load::ConfigSet;

use super::hosts::{covers, resolve};

pub(super) fn check(set: &ConfigSet) -> Vec<Diagnostic> {
    let index = Index::new(set);
    let mut found = Vec::new();
    references::check(&index, &mut found);
    conflicts::check(&index, &mut found);
    found
}

/// A typed object of the set and where it came from.
struct Entry<'a, S> {
    origin: &'a Origin,
    object: &'a Object<S>,
}

/// The set's objects, by kind, and what they define.
struct Index<'a> {
    /// Every object's origin, in the set's order.
    origins: Vec<&'a Origin>,
    virtual_services: Vec<Entry<'a, VirtualServiceSpec>>,
    destination_rules: Vec<Entry<'a, DestinationRuleSpec>>,
    sidecars: Vec<Entry<'a, SidecarSpec>>,
    telemetries: Vec<Entry<'a, TelemetrySpec>>,
    /// `namespace/name` of every Gateway.
    gateways: BTreeSet<String>,
    /// Resolved hosts of ServiceEntries (wildcards included) and Kubernetes Services.
    services: BTreeSet<String>,
}

impl<'a> Index<'a> {
    fn new(set: &'a ConfigSet) -> Self {
        let mut index = Index {
            origins: set.objects.iter().map(|o| &o.origin).collect(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            sidecars: Vec::new(),
            telemetries: Vec::new(),
            gateways: BTreeSet::new(),
            services: BTreeSet::new(),
        };
        for located in &set.objects {
            let origin = &located.origin;
            match &located.object {
                ConfigObject::VirtualService(object) => {
                    index.virtual_services.push(Entry { origin, object })
                }
                ConfigObject::DestinationRule(object) => {
                    index.destination_rules.push(Entry { origin, object })
                }
                ConfigObject::Sidecar(object) => index.sidecars.push(Entry { origin, object }),
                ConfigObject::Telemetry(object) => index.telemetries.push(Entry { origin, object }),
                ConfigObject::Gateway(gw) => {
                    index
                        .gateways
                        .insert(format!("{}/{}", gw.metadata.namespace, gw.metadata.name));
                }
                ConfigObject::ServiceEntry(se) => {
                    for host in &se.spec.hosts {
                        // Istio matches ServiceEntry hosts as written; a short one is also
                        // taken as the in-namespace name, as local-mode configs write it.
                        index
                            .services
                            .insert(host.trim_end_matches('.').to_ascii_lowercase());
                        index.services.insert(resolve(host, &se.metadata.namespace));
                    }
                }
                _ => {}
            }
        }
        for skipped in &set.skipped {
            let origin = &skipped.origin;
            if origin.kind == "Service" && skipped.api_version == "v1" {
                index
                    .services
                    .insert(resolve(&origin.name, &origin.namespace));
            }
        }
        index
    }

    /// Whether a ServiceEntry or Kubernetes Service defines the resolved `host`.
    fn defines(&self, host: &str) -> bool {
        self.services.iter().any(|service| covers(service, host))
    }
}

/// How one object names another in a message: `VirtualService default/reviews (routes.yaml[0])`.
fn describe(origin: &Origin) -> String {
    let text = format!("{} {}/{}", origin.kind, origin.namespace, origin.name);
    match place(origin) {
        Some(place) => format!("{text} ({place})"),
        None => text,
    }
}

/// Where an object was read: `routes.yaml[0]`; `None` for objects from the API server.
fn place(origin: &Origin) -> Option<String> {
    match (origin.file.as_str(), origin.index) {
        ("", _) => None,
        (file, Some(index)) => Some(format!("{file}[{index}]")),
        (file, None) => Some(file.to_owned()),
    }
}
