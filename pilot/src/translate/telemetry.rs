//! A proxy's telemetry: access logging and tracing from the Telemetry resources that select
//! it, as one [`TelemetrySpec`].
//!
//! Istio's hierarchy: the root namespace's Telemetry without a selector applies mesh-wide,
//! a namespace's without a selector to the namespace, one with a selector to the workloads
//! it selects (in its own namespace). They apply in that order, each more specific one's
//! set fields over the less specific one's: providers when it names any, `disabled`,
//! `randomSamplingPercentage` and `disableSpanReporting` when set, custom tags by name.
//! Where Istio allows one resource per level and finds several, the first by name is used.
//!
//! A Telemetry that names a provider the mesh config does not define is an error: the
//! index leaves it out (core's `validate::check_telemetry_providers`) and
//! `/debug/config_status` shows why.

use std::collections::BTreeMap;

use mesh_core::config::{
    CustomTag, MeshConfig, Object, Provider, ProviderRef, TelemetrySpec as TelemetryResource,
};
use mesh_core::model::selects;
use mesh_core::snapshot::{TelemetrySpec, TracingSpec};

use super::Node;
use crate::index::Index;

/// Istio's sampling when no Telemetry sets `randomSamplingPercentage`.
pub const DEFAULT_SAMPLING_PERCENTAGE: f64 = 1.0;

/// The effective telemetry of `node`, or `None` when nothing turns any on.
pub fn telemetry(index: &Index, node: &Node) -> Option<TelemetrySpec> {
    let applying = applying(index, node);
    let mesh = &index.settings.mesh_config;
    let defaults = &mesh.default_providers;
    if applying.is_empty() && defaults.tracing.is_empty() && defaults.access_logging.is_empty() {
        return None;
    }
    let mut merged = Merged::default();
    for telemetry in &applying {
        merged.apply(&telemetry.spec);
    }
    let spec = TelemetrySpec {
        access_logging: merged.access_logging(mesh),
        tracing: merged.tracing(mesh, node),
        sources: applying
            .iter()
            .map(|t| format!("{}/{}", t.metadata.namespace, t.metadata.name))
            .collect(),
    };
    Some(spec)
}

/// The Telemetry resources for `node`, least specific first: mesh-wide, namespace, workload.
fn applying<'a>(index: &'a Index, node: &Node) -> Vec<&'a Object<TelemetryResource>> {
    let root = &index.settings.root_namespace;
    // Gateway API targets select no sidecar.
    let candidates = || {
        index
            .telemetries
            .iter()
            .filter(|t| t.spec.target_ref.is_none() && t.spec.target_refs.is_empty())
    };
    let namespace_wide = |namespace: &str| {
        candidates().find(|t| t.metadata.namespace == namespace && t.spec.selector.is_none())
    };
    let mut found = Vec::new();
    if *root != node.namespace {
        found.extend(namespace_wide(root));
    }
    found.extend(namespace_wide(&node.namespace));
    found.extend(candidates().find(|t| {
        t.metadata.namespace == node.namespace
            && t.spec
                .selector
                .as_ref()
                .is_some_and(|s| selects(&s.match_labels, &node.labels))
    }));
    found
}

/// What the applying resources set, the more specific over the less.
#[derive(Default)]
struct Merged {
    /// Some entry anywhere asked for access logging.
    logging: bool,
    log_providers: Vec<String>,
    log_disabled: Option<bool>,
    tracing: bool,
    trace_providers: Vec<String>,
    sampling: Option<f64>,
    spans_disabled: Option<bool>,
    tags: BTreeMap<String, CustomTag>,
}

impl Merged {
    fn apply(&mut self, spec: &TelemetryResource) {
        for entry in &spec.access_logging {
            self.logging = true;
            if !entry.providers.is_empty() {
                self.log_providers = names(&entry.providers);
            }
            if entry.disabled.is_some() {
                self.log_disabled = entry.disabled;
            }
        }
        for entry in &spec.tracing {
            self.tracing = true;
            if !entry.providers.is_empty() {
                self.trace_providers = names(&entry.providers);
            }
            if entry.random_sampling_percentage.is_some() {
                self.sampling = entry.random_sampling_percentage;
            }
            if entry.disable_span_reporting.is_some() {
                self.spans_disabled = entry.disable_span_reporting;
            }
            self.tags.extend(entry.custom_tags.clone());
        }
    }

    /// On when some level asked for it (or the mesh config has default providers), no
    /// level below turned it off, and a provider writes it. No provider anywhere: the
    /// built-in `envoy`.
    fn access_logging(&self, mesh: &MeshConfig) -> bool {
        let defaults = &mesh.default_providers.access_logging;
        let asked = self.logging || !defaults.is_empty();
        if !asked || self.log_disabled == Some(true) {
            return false;
        }
        let providers = if self.log_providers.is_empty() {
            defaults
        } else {
            &self.log_providers
        };
        providers.is_empty()
            || providers
                .iter()
                .any(|name| matches!(mesh.provider(name), Some(Provider::AccessLog { .. })))
    }

    fn tracing(&self, mesh: &MeshConfig, node: &Node) -> Option<TracingSpec> {
        let defaults = &mesh.default_providers.tracing;
        let asked = self.tracing || !defaults.is_empty();
        if !asked || self.spans_disabled == Some(true) {
            return None;
        }
        let providers = if self.trace_providers.is_empty() {
            defaults
        } else {
            &self.trace_providers
        };
        // Istio uses one tracing provider: the first.
        let collector = providers
            .iter()
            .find_map(|name| match mesh.provider(name) {
                Some(Provider::Tracing { collector }) => Some(collector),
                _ => None,
            })?;
        Some(TracingSpec {
            sampling_percentage: self.sampling.unwrap_or(DEFAULT_SAMPLING_PERCENTAGE),
            collector,
            custom_tags: self
                .tags
                .iter()
                .map(|(name, tag)| (name.clone(), tag_value(tag, node)))
                .collect(),
        })
    }
}

fn names(providers: &[ProviderRef]) -> Vec<String> {
    providers.iter().map(|p| p.name.clone()).collect()
}

/// A literal as it is; an environment variable from the proxy's metadata when it sent
/// it, else its default; a header's default (span tags are fixed per proxy).
fn tag_value(tag: &CustomTag, node: &Node) -> String {
    if let Some(literal) = &tag.literal {
        return literal.value.clone();
    }
    if let Some(env) = &tag.environment {
        return node
            .metadata
            .get(&env.name)
            .cloned()
            .unwrap_or_else(|| env.default_value.clone());
    }
    tag.header
        .as_ref()
        .map(|h| h.default_value.clone())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "telemetry_tests.rs"]
mod tests;
