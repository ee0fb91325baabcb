use super::*;
use crate::config::{ConfigObject, MtlsMode, UNSUPPORTED_MESSAGE};

fn load(text: &str) -> ConfigSet {
    load_str(text, "test.yaml")
}

fn only_error(set: &ConfigSet) -> &Diagnostic {
    assert_eq!(set.diagnostics.len(), 1, "{:#?}", set.diagnostics);
    &set.diagnostics[0]
}

const REVIEWS: &str = r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
"#;

#[test]
fn loads_istio_yaml_as_it_is() {
    let set = load(REVIEWS);
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let [located] = set.objects.as_slice() else {
        panic!("one object expected")
    };
    let ConfigObject::VirtualService(vs) = &located.object else {
        panic!("a VirtualService expected")
    };
    assert_eq!(
        vs.metadata.namespace, "default",
        "kubectl's default namespace"
    );
    assert_eq!(vs.spec.http.len(), 2);
    let header = &vs.spec.http[0].matches[0].headers["end-user"];
    assert_eq!(header.exact.as_deref(), Some("jason"));
    assert_eq!(
        located.origin.to_string(),
        "test.yaml[0] VirtualService default/reviews"
    );
}

#[test]
fn multi_document_files_skip_foreign_kinds() {
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: reviews-v1}}\nspec: {{replicas: 1}}\n---\n{REVIEWS}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: reviews, namespace: bookinfo}}\nspec: {{ports: [{{port: 9080}}]}}\n---\n"
    );
    let set = load(&text);
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    assert_eq!(set.objects.len(), 1);
    assert_eq!(set.objects[0].origin.index, Some(1));
    let skipped: Vec<_> = set.skipped.iter().map(|s| s.origin.kind.as_str()).collect();
    assert_eq!(skipped, ["Deployment", "Service"]);
    assert_eq!(set.skipped[1].origin.namespace, "bookinfo");
}

#[test]
fn every_accepted_group_and_version_loads() {
    for api in [
        "networking.mesh.io/v1",
        "networking.istio.io/v1alpha3",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1",
    ] {
        let set = load(&format!(
            "apiVersion: {api}\nkind: DestinationRule\nmetadata: {{name: r}}\nspec: {{host: reviews}}\n"
        ));
        assert!(
            set.diagnostics.is_empty() && set.objects.len() == 1,
            "{api}: {:#?}",
            set.diagnostics
        );
    }
    for api in [
        "security.mesh.io/v1",
        "security.istio.io/v1beta1",
        "security.istio.io/v1",
    ] {
        let set = load(&format!(
            "apiVersion: {api}\nkind: PeerAuthentication\nmetadata: {{name: p}}\nspec: {{mtls: {{mode: STRICT}}}}\n"
        ));
        assert!(set.diagnostics.is_empty(), "{api}: {:#?}", set.diagnostics);
        let ConfigObject::PeerAuthentication(pa) = &set.objects[0].object else {
            panic!()
        };
        assert_eq!(
            pa.spec.mtls.as_ref().map(|m| m.mode),
            Some(MtlsMode::Strict)
        );
    }
}

#[test]
fn a_typo_is_an_error_naming_the_field() {
    let set = load(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      weigth: 100\n",
    );
    let error = only_error(&set);
    assert_eq!(error.field, "spec.http[0].route[0].weigth");
    assert!(
        error.message.contains("unknown field `weigth`"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("`weight`"),
        "suggests the real names: {}",
        error.message
    );
    assert!(set.objects.is_empty());
}

#[test]
fn an_unsupported_istio_field_says_so() {
    let set = load(
        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: r, namespace: prod}\nspec:\n  host: r\n  trafficPolicy:\n    loadBalancer:\n      localityLbSetting: {enabled: true}\n",
    );
    let error = only_error(&set);
    assert_eq!(
        error.field,
        "spec.trafficPolicy.loadBalancer.localityLbSetting"
    );
    assert_eq!(error.message, UNSUPPORTED_MESSAGE);
    assert_eq!(
        error.to_string(),
        format!(
            "error: test.yaml[0] DestinationRule prod/r: spec.trafficPolicy.loadBalancer.localityLbSetting: {UNSUPPORTED_MESSAGE}"
        )
    );
}

#[test]
fn unsupported_kinds_in_istio_groups_are_errors() {
    let set = load(
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\nspec: {}\n",
    );
    let error = only_error(&set);
    assert!(error.message.contains("EnvoyFilter"), "{}", error.message);
    assert!(set.skipped.is_empty(), "must not be skipped silently");
}

#[test]
fn legacy_and_current_percentages_and_durations() {
    let set = load(
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - fault:\n      delay: {percent: 10, fixedDelay: 1.5s}\n      abort: {percentage: {value: 0.5}, httpStatus: 503}\n    mirror: {host: r}\n    mirrorPercent: 5\n    timeout: 30s\n    route:\n    - destination: {host: r}\n",
    );
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let ConfigObject::VirtualService(vs) = &set.objects[0].object else {
        panic!()
    };
    let route = &vs.spec.http[0];
    let fault = route.fault.as_ref().expect("fault");
    let delay = fault.delay.as_ref().expect("delay");
    assert_eq!(delay.percent, Some(10));
    assert_eq!(
        delay.fixed_delay.and_then(|d| d.to_std()),
        Some(std::time::Duration::from_millis(1500))
    );
    assert_eq!(
        fault
            .abort
            .as_ref()
            .and_then(|a| a.percentage)
            .map(|p| p.value),
        Some(0.5)
    );
    assert_eq!(route.mirror_percent, Some(5));
    assert_eq!(
        route.timeout.and_then(|d| d.to_std()),
        Some(std::time::Duration::from_secs(30))
    );
}

#[test]
fn a_bad_duration_names_its_field() {
    let set = load(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - timeout: 10 seconds\n",
    );
    let error = only_error(&set);
    assert_eq!(error.field, "spec.http[0].timeout");
    assert!(
        error.message.contains("invalid duration"),
        "{}",
        error.message
    );
}

#[test]
fn an_unknown_enum_value_lists_the_valid_ones() {
    let set = load(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {mtls: {mode: strict}}\n",
    );
    let error = only_error(&set);
    assert_eq!(error.field, "spec.mtls.mode");
    assert!(error.message.contains("STRICT"), "{}", error.message);
}

#[test]
fn kubectl_output_loads() {
    let set = load(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: istio-system\n  uid: 1234\n  resourceVersion: \"99\"\n  managedFields: [{manager: kubectl}]\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\nstatus: {}\n",
    );
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    assert_eq!(set.objects[0].origin.namespace, "istio-system");
}

#[test]
fn one_bad_document_does_not_hide_the_others() {
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: bad}}\nspec: {{hostz: []}}\n---\n{REVIEWS}"
    );
    let set = load(&text);
    assert_eq!(set.objects.len(), 1);
    let error = only_error(&set);
    assert_eq!(error.origin.name, "bad");
    assert_eq!(error.field, "spec.hostz");
}

#[test]
fn not_kubernetes_objects_and_broken_yaml_are_errors() {
    assert!(
        only_error(&load("just a string\n"))
            .message
            .contains("not a Kubernetes object")
    );
    assert!(
        only_error(&load("kind: VirtualService\n"))
            .message
            .contains("apiVersion is missing")
    );
    let broken = load("apiVersion: v1\nkind: [unclosed\n");
    assert!(
        only_error(&broken).message.contains("invalid YAML"),
        "{:#?}",
        broken.diagnostics
    );
}

#[test]
fn yaml_merge_keys_are_applied() {
    let set = load(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  subsets:\n  - &base {name: v1, labels: {version: v1}}\n  - <<: *base\n    name: v2\n",
    );
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let ConfigObject::DestinationRule(dr) = &set.objects[0].object else {
        panic!()
    };
    assert_eq!(dr.spec.subsets[1].name, "v2");
    assert_eq!(dr.spec.subsets[1].labels["version"], "v1");
}

#[test]
fn directories_load_recursively_in_name_order() {
    let dir = std::env::temp_dir().join(format!("mesh-load-test-{}", std::process::id()));
    let nested = dir.join("nested");
    std::fs::create_dir_all(&nested).expect("temp dir");
    std::fs::write(dir.join("b.yaml"), REVIEWS).expect("write");
    std::fs::write(
        nested.join("a.yml"),
        REVIEWS.replace("name: reviews", "name: nested"),
    )
    .expect("write");
    std::fs::write(dir.join("notes.txt"), "not config").expect("write");
    std::fs::write(dir.join(".swap.yaml"), "{{{").expect("write");
    let set = load_paths(&[&dir]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let names: Vec<_> = set.objects.iter().map(|o| o.origin.name.as_str()).collect();
    assert_eq!(names, ["reviews", "nested"]);
}

#[test]
fn a_missing_path_is_an_error() {
    let set = load_paths(&["/nonexistent/mesh/config"]);
    assert!(only_error(&set).message.contains("cannot read"));
}

#[test]
fn istio_proto_field_name_aliases_and_integer_port_keys() {
    let set = load(
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - mirror: {host: r}\n    mirror_percent: 7\n    route:\n    - destination: {host: r}\n---\napiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\nmetadata: {name: j}\nspec:\n  jwtRules:\n  - issuer: https://issuer.example.com\n    jwks_uri: https://issuer.example.com/jwks\n---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n  selector: {matchLabels: {app: r}}\n  portLevelMtls:\n    9090: {mode: DISABLE}\n",
    );
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let ConfigObject::VirtualService(vs) = &set.objects[0].object else {
        panic!()
    };
    assert_eq!(vs.spec.http[0].mirror_percent, Some(7));
    let ConfigObject::RequestAuthentication(ra) = &set.objects[1].object else {
        panic!()
    };
    assert_eq!(
        ra.spec.jwt_rules[0].jwks_uri.as_deref(),
        Some("https://issuer.example.com/jwks")
    );
    let ConfigObject::PeerAuthentication(pa) = &set.objects[2].object else {
        panic!()
    };
    assert_eq!(pa.spec.port_level_mtls["9090"].mode, MtlsMode::Disable);
}

#[test]
fn istio_zero_value_defaults() {
    use crate::config::{OutboundMode, ServerTlsMode};
    let set = load(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n  outboundTrafficPolicy: {}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n    tls: {httpsRedirect: true}\n",
    );
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let ConfigObject::Sidecar(sidecar) = &set.objects[0].object else {
        panic!()
    };
    assert_eq!(
        sidecar
            .spec
            .outbound_traffic_policy
            .as_ref()
            .map(|p| p.mode),
        Some(OutboundMode::RegistryOnly)
    );
    let ConfigObject::Gateway(gateway) = &set.objects[1].object else {
        panic!()
    };
    assert_eq!(
        gateway.spec.servers[0].tls.as_ref().map(|t| t.mode),
        Some(ServerTlsMode::Passthrough)
    );
}

const TELEMETRY: &str = r#"
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: reviews, namespace: shop}
spec:
  selector:
    matchLabels: {app: reviews}
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: 10
    customTags:
      region: {literal: {value: eu}}
      pod: {environment: {name: POD_NAME, defaultValue: none}}
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: "response.code >= 400"}
    match: {mode: SERVER}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT}
      tagOverrides: {request_protocol: {operation: REMOVE}}
"#;

#[test]
fn loads_istios_telemetry() {
    for api in ["telemetry.istio.io/v1", "telemetry.mesh.io/v1"] {
        let set = load(&TELEMETRY.replace("telemetry.istio.io/v1alpha1", api));
        assert!(set.diagnostics.is_empty(), "{api}: {:#?}", set.diagnostics);
    }
    let set = load(TELEMETRY);
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    let ConfigObject::Telemetry(t) = &set.objects[0].object else {
        panic!("a Telemetry expected")
    };
    let tracing = &t.spec.tracing[0];
    assert_eq!(tracing.providers[0].name, "otel");
    assert_eq!(tracing.random_sampling_percentage, Some(10.0));
    let pod = tracing.custom_tags["pod"]
        .environment
        .as_ref()
        .expect("env");
    assert_eq!(
        (pod.name.as_str(), pod.default_value.as_str()),
        ("POD_NAME", "none")
    );
    assert_eq!(t.spec.access_logging[0].disabled, None, "unset inherits");
    assert_eq!(
        t.spec
            .selector
            .as_ref()
            .map(|s| s.match_labels["app"].as_str()),
        Some("reviews")
    );
}

#[test]
fn telemetry_errors_name_the_field() {
    let cases = [
        (
            "  accessLogging: [{disabled: maybe}]",
            "spec.accessLogging[0].disabled",
        ),
        (
            "  tracing: [{randomSamplingPercentage: lots}]",
            "spec.tracing[0].randomSamplingPercentage",
        ),
        (
            "  tracing: [{customTags: {a: {literal: {valu: x}}}}]",
            "spec.tracing[0].customTags.a.literal.valu",
        ),
        (
            "  tracing: [{useRequestIdForTraceSampling: true}]",
            "spec.tracing[0].useRequestIdForTraceSampling",
        ),
        (
            "  accessLogging: [{match: {mode: BOTH}}]",
            "spec.accessLogging[0].match.mode",
        ),
    ];
    for (spec, field) in cases {
        let set = load(&format!(
            "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: t}}\nspec:\n{spec}\n"
        ));
        let error = only_error(&set);
        assert_eq!(error.field, field, "{error}");
        assert!(error.to_string().contains("Telemetry default/t"), "{error}");
    }
    let set =
        load("apiVersion: telemetry.istio.io/v1beta1\nkind: Telemetry\nmetadata: {name: t}\n");
    assert!(
        only_error(&set)
            .message
            .contains("use telemetry.istio.io/v1alpha1, or v1")
    );
}
