//! Telemetry: selectors, sampling, custom tags, and the fields mesh accepts but does not
//! apply (said as warnings, so nobody believes them in force). Whether the providers it
//! names exist depends on the mesh config: [`check_providers`], which pilot and
//! `meshctl analyze --mesh-config` run.

use crate::config::{
    AccessLogging, ConfigObject, CustomTag, MeshConfig, Object, Provider, ProviderRef,
    TelemetrySpec, Tracing, TrafficMatch, WorkloadMode,
};
use crate::diagnostic::Diagnostic;
use crate::load::Located;

use super::security::check_label_selector;
use super::{FieldPath, Report};

pub(super) fn check(telemetry: &Object<TelemetrySpec>, report: &mut Report) {
    let spec = &telemetry.spec;
    let at = FieldPath::spec();
    check_label_selector(spec.selector.as_ref(), &at, report);
    let targets = spec.target_ref.is_some() || !spec.target_refs.is_empty();
    if targets && spec.selector.is_some() {
        report.error(
            &at.field("targetRefs"),
            "set either selector or targetRef(s), not both",
        );
    } else if targets {
        report.warning(
            &at.field("targetRefs"),
            "targetRefs select Gateway API objects, which mesh does not model: this Telemetry applies to no proxy; use selector.matchLabels",
        );
    }
    for (i, tracing) in spec.tracing.iter().enumerate() {
        check_tracing(tracing, &at.item("tracing", i), report);
    }
    for (i, logging) in spec.access_logging.iter().enumerate() {
        check_access_logging(logging, &at.item("accessLogging", i), report);
    }
    if !spec.metrics.is_empty() {
        report.warning(
            &at.field("metrics"),
            "metrics overrides are accepted but not applied: mesh reports its standard metrics unchanged",
        );
    }
}

fn check_tracing(tracing: &Tracing, at: &FieldPath, report: &mut Report) {
    check_match(tracing.matches.as_ref(), at, report);
    check_provider_names(&tracing.providers, at, report);
    if tracing.providers.len() > 1 {
        report.warning(
            &at.field("providers"),
            "only one tracing provider is used (the first), as in Istio",
        );
    }
    if let Some(percent) = tracing.random_sampling_percentage
        && !(0.0..=100.0).contains(&percent)
    {
        report.error(
            &at.field("randomSamplingPercentage"),
            format!("{percent} is not a percentage; use a number from 0 to 100"),
        );
    }
    for (name, tag) in &tracing.custom_tags {
        check_custom_tag(tag, &at.field("customTags").key(name), report);
    }
}

fn check_custom_tag(tag: &CustomTag, at: &FieldPath, report: &mut Report) {
    let set = [
        tag.literal.is_some(),
        tag.environment.is_some(),
        tag.header.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        report.error(at, "set exactly one of literal, environment or header");
        return;
    }
    if let Some(env) = &tag.environment
        && env.name.is_empty()
    {
        report.error(
            &at.field("environment").field("name"),
            "name the environment variable",
        );
    }
    if let Some(header) = &tag.header {
        if header.name.is_empty() {
            report.error(&at.field("header").field("name"), "name the header");
        } else {
            report.warning(
                &at.field("header"),
                "header tags are set to their defaultValue: mesh's span tags are fixed per proxy",
            );
        }
    }
}

fn check_access_logging(logging: &AccessLogging, at: &FieldPath, report: &mut Report) {
    check_match(logging.matches.as_ref(), at, report);
    check_provider_names(&logging.providers, at, report);
    if logging.filter.is_some() {
        report.warning(
            &at.field("filter"),
            "filter expressions are accepted but not applied: every request is logged",
        );
    }
}

fn check_match(matches: Option<&TrafficMatch>, at: &FieldPath, report: &mut Report) {
    if let Some(m) = matches
        && m.mode != WorkloadMode::ClientAndServer
    {
        report.warning(
            &at.field("match").field("mode"),
            "mesh applies telemetry to both directions: this entry acts as CLIENT_AND_SERVER",
        );
    }
}

fn check_provider_names(providers: &[ProviderRef], at: &FieldPath, report: &mut Report) {
    for (i, provider) in providers.iter().enumerate() {
        if provider.name.is_empty() {
            report.error(
                &at.item("providers", i).field("name"),
                "name a provider of the mesh config's extensionProviders (or envoy)",
            );
        }
    }
}

/// The providers a Telemetry names that `mesh` does not define for that use, each an error
/// at its field; nothing for other kinds.
pub fn check_providers(located: &Located<ConfigObject>, mesh: &MeshConfig) -> Vec<Diagnostic> {
    let ConfigObject::Telemetry(telemetry) = &located.object else {
        return Vec::new();
    };
    let mut report = Report::new(&located.origin);
    let at = FieldPath::spec();
    for (i, entry) in telemetry.spec.tracing.iter().enumerate() {
        for (j, provider) in entry.providers.iter().enumerate() {
            let field = at.item("tracing", i).item("providers", j).field("name");
            check_provider(&provider.name, true, mesh, &field, &mut report);
        }
    }
    for (i, entry) in telemetry.spec.access_logging.iter().enumerate() {
        for (j, provider) in entry.providers.iter().enumerate() {
            let field = at
                .item("accessLogging", i)
                .item("providers", j)
                .field("name");
            check_provider(&provider.name, false, mesh, &field, &mut report);
        }
    }
    report.into_diagnostics()
}

fn check_provider(
    name: &str,
    tracing: bool,
    mesh: &MeshConfig,
    at: &FieldPath,
    report: &mut Report,
) {
    let message = match mesh.provider(name) {
        Some(Provider::Tracing { .. }) if tracing => return,
        Some(Provider::AccessLog { .. }) if !tracing => return,
        None => format!(
            "no provider named {name:?}: define it in the mesh config's extensionProviders (pilot --mesh-config){}",
            if tracing {
                ""
            } else {
                " or use the built-in envoy"
            }
        ),
        Some(_) if tracing => {
            format!("provider {name:?} is not a tracing provider (opentelemetry)")
        }
        Some(_) => {
            format!("provider {name:?} is not an access log provider (envoyFileAccessLog or envoy)")
        }
    };
    report.error(at, message);
}
