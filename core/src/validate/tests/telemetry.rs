//! Telemetry.

use super::*;

fn telemetry(spec: &str) -> Vec<Diagnostic> {
    check("Telemetry", spec)
}

#[test]
fn a_full_istio_telemetry_is_clean() {
    assert_clean(&telemetry(
        r#"
        selector: {matchLabels: {app: reviews}}
        tracing:
        - providers: [{name: otel}]
          randomSamplingPercentage: 12.5
          disableSpanReporting: false
          customTags:
            cluster: {literal: {value: east}}
            pod: {environment: {name: POD_NAME, defaultValue: unknown}}
        accessLogging:
        - providers: [{name: envoy}]
          disabled: false
        "#,
    ));
    assert_clean(&telemetry("accessLogging: [{disabled: true}]"));
}

#[test]
fn sampling_is_a_percentage() {
    assert_error(
        &telemetry("tracing: [{randomSamplingPercentage: 150}]"),
        "spec.tracing[0].randomSamplingPercentage",
        "150 is not a percentage",
    );
}

#[test]
fn a_custom_tag_sets_exactly_one_source() {
    assert_error(
        &telemetry("tracing: [{customTags: {t: {}}}]"),
        "spec.tracing[0].customTags[t]",
        "exactly one of literal, environment or header",
    );
    assert_error(
        &telemetry("tracing: [{customTags: {t: {literal: {value: a}, environment: {name: B}}}}]"),
        "spec.tracing[0].customTags[t]",
        "exactly one",
    );
    assert_error(
        &telemetry("tracing: [{customTags: {t: {environment: {name: ''}}}}]"),
        "spec.tracing[0].customTags[t].environment.name",
        "name the environment variable",
    );
    assert_warning(
        &telemetry("tracing: [{customTags: {t: {header: {name: x-user}}}}]"),
        "spec.tracing[0].customTags[t].header",
        "defaultValue",
    );
}

#[test]
fn provider_names_are_required() {
    assert_error(
        &telemetry("accessLogging: [{providers: [{name: ''}]}]"),
        "spec.accessLogging[0].providers[0].name",
        "name a provider",
    );
}

#[test]
fn accepted_but_unapplied_fields_warn() {
    assert_warning(
        &telemetry("metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]"),
        "spec.metrics",
        "not applied",
    );
    assert_warning(
        &telemetry("accessLogging: [{filter: {expression: 'response.code >= 400'}}]"),
        "spec.accessLogging[0].filter",
        "not applied",
    );
    assert_warning(
        &telemetry("accessLogging: [{match: {mode: SERVER}}]"),
        "spec.accessLogging[0].match.mode",
        "CLIENT_AND_SERVER",
    );
    assert_warning(
        &telemetry("targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]"),
        "spec.targetRefs",
        "applies to no proxy",
    );
    assert_error(
        &telemetry("selector: {matchLabels: {app: a}}\ntargetRef: {kind: Service, name: a}"),
        "spec.targetRefs",
        "not both",
    );
}

#[test]
fn one_telemetry_per_namespace_and_per_selector() {
    let t = |namespace: &str, name: &str, spec: &str| document("Telemetry", namespace, name, spec);
    let found = super::super::validate(&load(
        &[
            t("shop", "b-logs", "accessLogging: [{}]"),
            t("shop", "a-logs", "accessLogging: [{disabled: true}]"),
            t("other", "logs", "accessLogging: [{}]"),
            t(
                "shop",
                "r1",
                "selector: {matchLabels: {app: r}}\naccessLogging: [{}]",
            ),
            t(
                "shop",
                "r2",
                "selector: {matchLabels: {app: r}}\ntracing: [{}]",
            ),
            t(
                "shop",
                "r3",
                "selector: {matchLabels: {app: other}}\ntracing: [{}]",
            ),
        ]
        .join("---\n"),
    ));
    let errors: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("Telemetry shop/b-logs: spec: namespace shop already has a Telemetry without selector: Telemetry shop/a-logs"),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("Telemetry shop/r2: spec: namespace shop already has a Telemetry with the same selector: Telemetry shop/r1"),
        "{errors:#?}"
    );
}

#[test]
fn providers_are_checked_against_the_mesh_config() {
    use crate::config::MeshConfig;
    use crate::validate::check_telemetry_providers;
    let mesh = MeshConfig::parse(
        "extensionProviders:\n- name: otel\n  opentelemetry: {service: c, port: 4317}\n",
        "mesh.yaml",
    )
    .expect("mesh config");
    let set = load(&document(
        "Telemetry",
        "shop",
        "t",
        "tracing: [{providers: [{name: otel}]}, {providers: [{name: envoy}]}]\naccessLogging: [{providers: [{name: envoy}, {name: nope}]}]",
    ));
    let found = check_telemetry_providers(&set.objects[0], &mesh);
    assert_eq!(found.len(), 2, "{}", lines(&found));
    assert_has(
        &found,
        Severity::Error,
        "spec.tracing[1].providers[0].name",
        "\"envoy\" is not a tracing provider",
    );
    assert_has(
        &found,
        Severity::Error,
        "spec.accessLogging[0].providers[1].name",
        "no provider named \"nope\"",
    );
    assert!(check_telemetry_providers(&set.objects[0], &MeshConfig::default()).len() == 3);
}
