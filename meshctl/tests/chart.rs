//! The Helm chart and `meshctl manifest generate` install the same objects from the same
//! values, every object parses as its k8s-openapi type, and the RBAC grants exactly what
//! the components' code calls.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use meshctl::cmd::install::manifest::{self, Manifest};
use meshctl::cmd::install::rbac::{self, Scope};
use meshctl::cmd::install::values::Values;
use meshctl::cmd::install::{chart, kinds};
use serde_json::Value;

fn chart_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/mesh"))
}

/// What Helm would install: `crds/` as they are, then every template rendered.
fn helm_template(values: &Values) -> Vec<Value> {
    let mut objects = Vec::new();
    let mut dirs = Vec::new();
    for dir in ["crds", "templates"] {
        let mut entries: Vec<_> = std::fs::read_dir(chart_dir().join(dir))
            .expect("chart directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        dirs.push((dir, entries));
    }
    for (dir, files) in dirs {
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            let text = if dir == "templates" {
                chart::render(&text, values).expect("renders")
            } else {
                text
            };
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value: Option<Value> = serde::Deserialize::deserialize(document).expect("YAML");
                if let Some(value) = value.filter(|v| !v.is_null()) {
                    objects.push(value);
                }
            }
        }
    }
    objects
}

fn by_address(objects: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|o| {
            let target = kinds::target(&o).expect("a kind meshctl installs");
            (target.describe(), kinds::canonical(o))
        })
        .collect()
}

fn custom() -> Values {
    let sets: Vec<String> = [
        "image.registry=registry.example.org:5000/mesh",
        // A tag YAML would read as a number if the template did not quote it.
        "image.tag=1.0",
        "image.pullPolicy=Always",
        "trustDomain=example.org",
        "istioApi=true",
        "pilot.replicas=3",
        "citadel.replicas=2",
        "injector.replicas=1",
        "injector.failurePolicy=Ignore",
        // The ingress off, the egress on with its own ports and type.
        "gateways.ingress.enabled=false",
        "gateways.egress.enabled=true",
        "gateways.egress.replicas=2",
        "gateways.egress.serviceType=NodePort",
        "gateways.egress.httpPort=8080",
        "gateways.egress.httpsPort=8443",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    Values::load(&[] as &[&Path], &sets).expect("valid values")
}

#[test]
fn chart_and_manifest_agree_for_default_and_custom_values() {
    let mut with_credentials = Values::default();
    with_credentials.gateways.ingress.credentials =
        vec!["shop-example-com".to_owned(), "beta.example.com".to_owned()];
    for values in [Values::default(), custom(), with_credentials] {
        let ours: Manifest = manifest::render(&values).expect("renders");
        let helm = helm_template(&values);
        for object in &helm {
            kinds::check(object).unwrap_or_else(|e| panic!("chart object: {e}"));
        }
        let ours = by_address(ours.all().cloned());
        let helm = by_address(helm);
        let ingress = values.gateways.ingress.enabled;
        assert_eq!(
            ours.keys().any(|a| a.contains("ingressgateway")),
            ingress,
            "the ingress gateway is installed exactly when enabled"
        );
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            helm.keys().collect::<Vec<_>>(),
            "the same objects"
        );
        for (address, object) in &ours {
            assert_eq!(Some(object), helm.get(address), "{address} differs");
        }
    }
}

#[test]
fn values_yaml_is_the_default() {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let values: Values = serde_yaml::from_str(&text).expect("parses");
    assert_eq!(values, Values::default());
}

#[test]
fn the_custom_values_reach_the_objects() {
    let yaml = manifest::render(&custom()).expect("renders").to_yaml();
    for expected in [
        "image: registry.example.org:5000/mesh/pilot:'1.0'",
        "proxyImage: registry.example.org:5000/mesh/mesh-proxy:1.0",
        "failurePolicy: Ignore",
        "- example.org",
        "replicas: 3",
        "name: virtualservices.networking.istio.io",
        "name: egressgateway",
        "type: NodePort",
        "port: 8443",
    ] {
        // serde_yaml quotes the tag only where it stands alone; accept either form.
        let unquoted = expected.replace('\'', "");
        assert!(
            yaml.contains(expected) || yaml.contains(&unquoted),
            "{expected} missing"
        );
    }
}

/// (component, group, resource, verb, cluster-wide, names)
type Grant = (String, String, String, String, bool, Vec<String>);

fn granted(objects: &[Value]) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        let component = object["metadata"]["labels"]["app.kubernetes.io/name"]
            .as_str()
            .expect("component label")
            .to_owned();
        for rule in object["rules"].as_array().expect("rules") {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        grants.insert((
                            component.clone(),
                            group.clone(),
                            resource.clone(),
                            verb,
                            kind == "ClusterRole",
                            list("resourceNames"),
                        ));
                    }
                }
            }
        }
    }
    grants
}

fn needed() -> BTreeSet<Grant> {
    let mut needs = BTreeSet::new();
    for (component, permissions) in rbac::components() {
        for p in permissions {
            for verb in &p.verbs {
                needs.insert((
                    component.to_owned(),
                    p.group.clone(),
                    p.resource.clone(),
                    (*verb).to_owned(),
                    p.scope == Scope::Cluster,
                    p.names.iter().map(|n| (*n).to_owned()).collect(),
                ));
            }
        }
    }
    needs
}

#[test]
fn rbac_grants_exactly_what_the_code_uses() {
    let helm = helm_template(&Values::default());
    assert_eq!(granted(&helm), needed(), "the chart's roles");
    let ours = manifest::render(&Values::default()).expect("renders");
    assert_eq!(granted(&ours.objects), needed(), "meshctl's roles");
    // Bindings name each component's own ServiceAccount and role.
    for object in &ours.objects {
        if object["kind"]
            .as_str()
            .is_some_and(|k| k.ends_with("Binding"))
        {
            let component = object["metadata"]["labels"]["app"].as_str().expect("label");
            assert_eq!(object["subjects"][0]["name"], component);
            assert_eq!(object["roleRef"]["name"], format!("mesh-{component}"));
        }
    }
}

#[test]
fn pilot_may_watch_every_config_kind_in_every_group_it_reads() {
    let watched: BTreeSet<(String, String)> = rbac::pilot()
        .into_iter()
        .filter(|p| p.group.ends_with(".mesh.io") || p.group.ends_with(".istio.io"))
        .map(|p| (p.group, p.resource))
        .collect();
    for kind in mesh_core::config::Kind::ALL {
        let family = kind.family();
        for (group, _) in mesh_core::config::accepted_versions(family) {
            let singular = kind.name().to_lowercase();
            let plural = match singular.strip_suffix('y') {
                Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{stem}ies"),
                _ => format!("{singular}s"),
            };
            let wanted = ((*group).to_owned(), plural);
            assert!(watched.contains(&wanted), "{wanted:?}");
        }
    }
    // Nothing broader than list and watch on config or the built-in kinds.
    for permission in rbac::pilot() {
        assert_eq!(permission.verbs, ["list", "watch"], "{permission:?}");
    }
}
