//! The Telemetry hierarchy: mesh-wide, namespace, workload, and provider resolution.

use mesh_core::config::MeshConfig;
use mesh_core::snapshot::TracingSpec;

use super::*;
use crate::index::Settings;
use crate::translate::tests::index_with;

const MESH_CONFIG: &str = r#"
extensionProviders:
- name: otel
  opentelemetry: {service: collector.observability, port: 4317}
- name: jaeger
  opentelemetry: {service: jaeger.tracing, port: 4317}
- name: file
  envoyFileAccessLog: {path: /dev/stdout}
"#;

fn index(mesh_config: &str, yaml: &str) -> Index {
    let settings = Settings {
        mesh_config: MeshConfig::parse(mesh_config, "mesh.yaml").expect("mesh config"),
        ..Settings::default()
    };
    index_with(yaml, settings)
}

/// A Telemetry `namespace/name` with `spec` (YAML indented by four).
fn telemetry_yaml(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}\n"
    )
}

fn node(namespace: &str, app: &str) -> Node {
    Node {
        id: format!("{app}.{namespace}"),
        namespace: namespace.into(),
        labels: [("app".to_owned(), app.to_owned())].into(),
        ..Node::default()
    }
}

/// mesh-wide: tracing to otel at 5%, logs on; shop: logs off, sampling 20;
/// shop's reviews: logs back on, tracing to jaeger, a tag.
fn hierarchy() -> String {
    [
        telemetry_yaml(
            "mesh-system",
            "mesh",
            "  tracing:\n  - providers: [{name: otel}]\n    randomSamplingPercentage: 5\n    customTags:\n      cluster: {literal: {value: east}}\n  accessLogging:\n  - providers: [{name: envoy}]",
        ),
        telemetry_yaml(
            "shop",
            "shop",
            "  tracing:\n  - randomSamplingPercentage: 20\n  accessLogging:\n  - disabled: true",
        ),
        telemetry_yaml(
            "shop",
            "reviews",
            "  selector: {matchLabels: {app: reviews}}\n  tracing:\n  - providers: [{name: jaeger}]\n    customTags:\n      pod: {environment: {name: POD_NAME, defaultValue: unknown}}\n  accessLogging:\n  - disabled: false",
        ),
    ]
    .concat()
}

#[test]
fn no_telemetry_no_spec() {
    let index = index("", "");
    assert_eq!(telemetry(&index, &node("shop", "reviews")), None);
}

#[test]
fn mesh_wide_applies_everywhere() {
    let index = index(MESH_CONFIG, &hierarchy());
    let spec = telemetry(&index, &node("other", "web")).expect("mesh-wide");
    assert!(spec.access_logging);
    assert_eq!(spec.sources, ["mesh-system/mesh"]);
    assert_eq!(
        spec.tracing,
        Some(TracingSpec {
            sampling_percentage: 5.0,
            collector: "collector.observability:4317".into(),
            custom_tags: [("cluster".to_owned(), "east".to_owned())].into(),
        })
    );
}

#[test]
fn a_namespace_overrides_the_mesh_field_by_field() {
    let index = index(MESH_CONFIG, &hierarchy());
    let spec = telemetry(&index, &node("shop", "cart")).expect("namespace");
    assert!(!spec.access_logging, "the namespace turned logs off");
    let tracing = spec.tracing.expect("tracing inherited");
    assert_eq!(tracing.sampling_percentage, 20.0);
    assert_eq!(
        tracing.collector, "collector.observability:4317",
        "providers inherited"
    );
    assert_eq!(spec.sources, ["mesh-system/mesh", "shop/shop"]);
}

#[test]
fn a_workload_overrides_its_namespace() {
    let index = index(MESH_CONFIG, &hierarchy());
    let mut reviews = node("shop", "reviews");
    let spec = telemetry(&index, &reviews).expect("workload");
    assert!(spec.access_logging, "disabled: false turns logs back on");
    let tracing = spec.tracing.expect("tracing");
    assert_eq!(tracing.collector, "jaeger.tracing:4317");
    assert_eq!(tracing.sampling_percentage, 20.0, "from the namespace");
    assert_eq!(tracing.custom_tags["cluster"], "east", "tags merge by name");
    assert_eq!(
        tracing.custom_tags["pod"], "unknown",
        "no metadata: default"
    );
    assert_eq!(
        spec.sources,
        ["mesh-system/mesh", "shop/shop", "shop/reviews"]
    );

    reviews
        .metadata
        .insert("POD_NAME".into(), "reviews-v1-abc".into());
    let tracing = telemetry(&index, &reviews).and_then(|s| s.tracing);
    assert_eq!(
        tracing.expect("tracing").custom_tags["pod"],
        "reviews-v1-abc"
    );
}

#[test]
fn a_selector_applies_only_in_its_namespace() {
    let yaml = telemetry_yaml(
        "shop",
        "reviews",
        "  selector: {matchLabels: {app: reviews}}\n  accessLogging:\n  - {}",
    );
    let index = index("", &yaml);
    assert!(telemetry(&index, &node("shop", "reviews")).is_some_and(|s| s.access_logging));
    assert_eq!(telemetry(&index, &node("other", "reviews")), None);
    assert_eq!(telemetry(&index, &node("shop", "cart")), None);
}

#[test]
fn span_reporting_off_and_no_provider_mean_no_tracing() {
    let off = telemetry_yaml(
        "mesh-system",
        "mesh",
        "  tracing:\n  - providers: [{name: otel}]\n    disableSpanReporting: true",
    );
    let index1 = index(MESH_CONFIG, &off);
    let spec = telemetry(&index1, &node("shop", "a")).expect("a spec");
    assert_eq!(spec.tracing, None);
    assert!(!spec.access_logging);

    let no_provider = telemetry_yaml("mesh-system", "mesh", "  tracing:\n  - {}");
    let index2 = index(MESH_CONFIG, &no_provider);
    assert_eq!(
        telemetry(&index2, &node("shop", "a")).and_then(|s| s.tracing),
        None
    );
}

#[test]
fn default_providers_turn_telemetry_on_without_a_resource() {
    let mesh =
        format!("{MESH_CONFIG}defaultProviders:\n  tracing: [otel]\n  accessLogging: [file]\n");
    let index = index(&mesh, "");
    let spec = telemetry(&index, &node("shop", "a")).expect("defaults");
    assert!(spec.access_logging);
    let tracing = spec.tracing.expect("tracing");
    assert_eq!(tracing.collector, "collector.observability:4317");
    assert_eq!(tracing.sampling_percentage, DEFAULT_SAMPLING_PERCENTAGE);
    assert!(spec.sources.is_empty());
}

#[test]
fn unknown_providers_are_errors_naming_the_field() {
    let yaml = [
        telemetry_yaml(
            "mesh-system",
            "mesh",
            "  tracing:\n  - providers: [{name: zipkin}]",
        ),
        telemetry_yaml(
            "shop",
            "logs",
            "  accessLogging:\n  - providers: [{name: otel}]",
        ),
    ]
    .concat();
    let index = index(MESH_CONFIG, &yaml);
    assert!(index.telemetries.is_empty(), "both left out");
    let found: Vec<String> = index
        .telemetry_problems
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].contains("Telemetry mesh-system/mesh: spec.tracing[0].providers[0].name: no provider named \"zipkin\""),
        "{found:#?}"
    );
    assert!(
        found[1].contains("Telemetry shop/logs: spec.accessLogging[0].providers[0].name: provider \"otel\" is not an access log provider"),
        "{found:#?}"
    );
    assert_eq!(telemetry(&index, &node("shop", "a")), None);
}

#[test]
fn target_refs_select_no_sidecar() {
    let yaml = telemetry_yaml(
        "shop",
        "gw",
        "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  accessLogging:\n  - {}",
    );
    let index = index("", &yaml);
    assert_eq!(telemetry(&index, &node("shop", "a")), None);
}
