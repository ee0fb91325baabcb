//! Checks beyond parsing, as Istio's validation webhook and `istioctl analyze` do.
//!
//! [`validate_object`] checks one object on its own (what an admission webhook can know);
//! [`validate`] adds the checks across objects of a whole [`ConfigSet`]: subsets and
//! gateways that routes name, hosts nothing defines, VirtualServices that claim the same
//! host. Every finding is a [`Diagnostic`] naming the object's origin and the field, with
//! a message that says what to change. Loading problems are not repeated here: they are
//! already in [`ConfigSet::diagnostics`].

mod authorization;
mod cross;
mod destination_rule;
mod gateway;
mod hosts;
mod http_match;
mod http_policy;
mod http_route;
mod l4_route;
mod meta;
mod names;
mod net;
mod path;
mod report;
mod security;
mod service_entry;
mod sidecar;
mod string_match;
mod telemetry;
mod values;
mod virtual_service;
mod vocabulary;

use crate::config::ConfigObject;
use crate::diagnostic::Diagnostic;
use crate::load::{ConfigSet, Located};

pub use path::FieldPath;
use report::Report;
pub use telemetry::check_providers as check_telemetry_providers;

/// Every problem in `set`: each object's own, then those across objects. Does not include
/// the loader's `set.diagnostics`.
pub fn validate(set: &ConfigSet) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = set.objects.iter().flat_map(validate_object).collect();
    found.extend(cross::check(set));
    found
}

/// Only the problems across the objects of `set` (what [`validate`] adds to each object's
/// own), for callers that keep per-object results between loads.
pub fn validate_across(set: &ConfigSet) -> Vec<Diagnostic> {
    cross::check(set)
}

/// The problems one object has on its own, whatever else exists.
pub fn validate_object(located: &Located<ConfigObject>) -> Vec<Diagnostic> {
    let mut report = Report::new(&located.origin);
    let object = &located.object;
    meta::check_metadata(object.kind(), object.metadata(), &mut report);
    match object {
        ConfigObject::VirtualService(vs) => virtual_service::check(vs, &mut report),
        ConfigObject::DestinationRule(dr) => destination_rule::check(dr, &mut report),
        ConfigObject::Gateway(gw) => gateway::check(gw, &mut report),
        ConfigObject::ServiceEntry(se) => service_entry::check_service_entry(se, &mut report),
        ConfigObject::WorkloadEntry(we) => service_entry::check_workload_entry(we, &mut report),
        ConfigObject::Sidecar(sc) => sidecar::check(sc, &mut report),
        ConfigObject::PeerAuthentication(pa) => {
            security::check_peer_authentication(pa, &mut report)
        }
        ConfigObject::AuthorizationPolicy(ap) => authorization::check(ap, &mut report),
        ConfigObject::RequestAuthentication(ra) => {
            security::check_request_authentication(ra, &mut report)
        }
        ConfigObject::Telemetry(t) => telemetry::check(t, &mut report),
    }
    report.into_diagnostics()
}

#[cfg(test)]
mod tests;
