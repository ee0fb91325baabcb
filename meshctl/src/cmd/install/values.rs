//! What an installation can change: the same values for `meshctl install` and the Helm
//! chart (`charts/mesh/values.yaml` is written from [`Values::default`] by codegen).
//! Defaults first, then `-f` files in order, then every `--set`, as Helm does.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Values {
    pub image: Image,
    /// The SPIFFE trust domain: identities are `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`.
    pub trust_domain: String,
    /// Also install CRDs for Istio's groups, so existing Istio YAML applies unchanged.
    /// Skipped by `meshctl install` when Istio's CRDs are already there.
    pub istio_api: bool,
    pub pilot: Component,
    pub citadel: Component,
    pub injector: Injector,
    pub gateways: Gateways,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Gateways {
    /// `mesh-proxy --mode gateway` labelled `istio: ingressgateway`, `mesh: ingressgateway`.
    pub ingress: Gateway,
    /// The same, labelled `egressgateway`: for traffic leaving through it.
    pub egress: Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Gateway {
    pub enabled: bool,
    pub replicas: i32,
    /// The Service's type: `LoadBalancer`, `NodePort` or `ClusterIP`.
    pub service_type: String,
    /// The Service's ports, forwarded to the same container ports: a Gateway server's
    /// `port.number` must be one of them.
    pub http_port: i32,
    pub https_port: i32,
    /// The Secrets Gateway servers name in `credentialName`, each mounted (optional: a
    /// missing one mounts nothing) at `/etc/mesh/credentials/<name>`. A Secret not listed
    /// here is not in the pod: its server refuses connections.
    pub credentials: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Image {
    /// Images are `<registry>/<name>:<tag>`: pilot, citadel, injector, mesh-proxy.
    pub registry: String,
    pub tag: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub pull_policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Component {
    pub replicas: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Injector {
    /// Each replica makes its own self-signed certificate and puts it in the caBundle,
    /// so more than one needs a shared certificate (not in the manifest yet).
    pub replicas: i32,
    /// The webhook's failurePolicy: `Fail` keeps the pods it selects (those of labelled
    /// namespaces, and pods labelled `sidecar.mesh.io/inject: "true"`) from starting without
    /// a sidecar while the injector is down; `Ignore` lets them start unmeshed.
    pub failure_policy: String,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            image: Image::default(),
            trust_domain: "cluster.local".to_owned(),
            istio_api: false,
            pilot: Component { replicas: 1 },
            citadel: Component { replicas: 1 },
            injector: Injector::default(),
            gateways: Gateways::default(),
        }
    }
}

impl Default for Gateways {
    fn default() -> Self {
        Self {
            ingress: Gateway::default(),
            egress: Gateway {
                enabled: false,
                service_type: "ClusterIP".to_owned(),
                ..Gateway::default()
            },
        }
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            enabled: true,
            replicas: 1,
            service_type: "LoadBalancer".to_owned(),
            http_port: 80,
            https_port: 443,
            credentials: Vec::new(),
        }
    }
}

impl Default for Image {
    fn default() -> Self {
        Self {
            registry: "ghcr.io/mesh".to_owned(),
            tag: env!("CARGO_PKG_VERSION").to_owned(),
            pull_policy: "IfNotPresent".to_owned(),
        }
    }
}

impl Default for Component {
    fn default() -> Self {
        Self { replicas: 1 }
    }
}

impl Default for Injector {
    fn default() -> Self {
        Self {
            replicas: 1,
            failure_policy: "Fail".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("cannot read the values file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the values file {path} is not YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("--set {0}: expected key=value, e.g. --set pilot.replicas=2")]
    SetSyntax(String),
    #[error("{0} (see charts/mesh/values.yaml for every value)")]
    Invalid(String),
}

impl Values {
    /// Defaults, then each file, then each `key=value`.
    pub fn load(files: &[impl AsRef<Path>], sets: &[String]) -> Result<Self, ValuesError> {
        let mut tree = serde_json::to_value(Values::default()).unwrap_or(Value::Null);
        for path in files {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ValuesError::Read {
                path: shown.clone(),
                source,
            })?;
            let layer: Option<Value> =
                serde_yaml::from_str(&text).map_err(|source| ValuesError::Yaml {
                    path: shown,
                    source,
                })?;
            merge(&mut tree, layer.unwrap_or(Value::Null));
        }
        for set in sets {
            apply_set(&mut tree, set)?;
        }
        Self::from_tree(tree)
    }

    fn from_tree(tree: Value) -> Result<Self, ValuesError> {
        let values: Values = serde_path_to_error::deserialize(tree)
            .map_err(|e| ValuesError::Invalid(format!("value {}: {}", e.path(), e.inner())))?;
        values.validate()?;
        Ok(values)
    }

    fn validate(&self) -> Result<(), ValuesError> {
        let invalid = |s: String| Err(ValuesError::Invalid(s));
        for (name, replicas) in [
            ("pilot", self.pilot.replicas),
            ("citadel", self.citadel.replicas),
            ("injector", self.injector.replicas),
            ("gateways.ingress", self.gateways.ingress.replicas),
            ("gateways.egress", self.gateways.egress.replicas),
        ] {
            if replicas < 1 {
                return invalid(format!(
                    "{name}.replicas must be at least 1, not {replicas}"
                ));
            }
        }
        for (name, gateway) in [
            ("gateways.ingress", &self.gateways.ingress),
            ("gateways.egress", &self.gateways.egress),
        ] {
            gateway.validate(name)?;
        }
        if !matches!(self.injector.failure_policy.as_str(), "Fail" | "Ignore") {
            return invalid(format!(
                "injector.failurePolicy must be Fail or Ignore, not {:?}",
                self.injector.failure_policy
            ));
        }
        if !matches!(
            self.image.pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return invalid(format!(
                "image.pullPolicy must be Always, IfNotPresent or Never, not {:?}",
                self.image.pull_policy
            ));
        }
        for (name, value) in [
            ("image.registry", &self.image.registry),
            ("image.tag", &self.image.tag),
            ("trustDomain", &self.trust_domain),
        ] {
            if value.trim().is_empty() {
                return invalid(format!("{name} must not be empty"));
            }
        }
        Ok(())
    }

    /// `<registry>/<name>:<tag>`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}:{}", self.image.registry, self.image.tag)
    }
}

impl Gateway {
    fn validate(&self, name: &str) -> Result<(), ValuesError> {
        if !matches!(
            self.service_type.as_str(),
            "LoadBalancer" | "NodePort" | "ClusterIP"
        ) {
            return Err(ValuesError::Invalid(format!(
                "{name}.serviceType must be LoadBalancer, NodePort or ClusterIP, not {:?}",
                self.service_type
            )));
        }
        for (field, port) in [("httpPort", self.http_port), ("httpsPort", self.https_port)] {
            if !(1..=65535).contains(&port) {
                return Err(ValuesError::Invalid(format!(
                    "{name}.{field} must be a port, 1 to 65535, not {port}"
                )));
            }
        }
        for (i, secret) in self.credentials.iter().enumerate() {
            let valid = !secret.is_empty()
                && secret.len() <= 253
                && secret
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && !secret.starts_with(['-', '.'])
                && !secret.ends_with(['-', '.']);
            if !valid {
                return Err(ValuesError::Invalid(format!(
                    "{name}.credentials[{i}] {secret:?} is not a Secret name (lower-case letters, digits, '-' and '.')"
                )));
            }
        }
        if self.http_port == self.https_port {
            return Err(ValuesError::Invalid(format!(
                "{name}.httpPort and httpsPort must differ, both are {}",
                self.http_port
            )));
        }
        Ok(())
    }
}

/// Maps merge key by key; anything else replaces.
fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) => {
            for (key, value) in layer {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (_, Value::Null) => {}
        (base, layer) => *base = layer,
    }
}

/// `a.b.c=value`, the value typed as Helm's `--set` types it: integers, `true`/`false`,
/// otherwise a string.
fn apply_set(tree: &mut Value, set: &str) -> Result<(), ValuesError> {
    let (path, raw) = set
        .split_once('=')
        .filter(|(path, _)| !path.is_empty() && path.split('.').all(|p| !p.is_empty()))
        .ok_or_else(|| ValuesError::SetSyntax(set.to_owned()))?;
    let value = match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
    };
    let mut layer = value;
    for key in path.rsplit('.') {
        layer = Value::Object(serde_json::Map::from_iter([(key.to_owned(), layer)]));
    }
    merge(tree, layer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(sets: &[&str]) -> Result<Values, ValuesError> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        Values::load(&[] as &[&Path], &sets)
    }

    #[test]
    fn set_types_values_as_helm_does() {
        let values = load(&["pilot.replicas=3", "istioApi=true", "image.tag=1.0"]).expect("valid");
        assert_eq!(values.pilot.replicas, 3);
        assert!(values.istio_api);
        assert_eq!(values.image.tag, "1.0");
    }

    #[test]
    fn files_then_sets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, "pilot:\n  replicas: 2\ntrustDomain: example.org\n").expect("write");
        let sets = vec!["pilot.replicas=4".to_owned()];
        let values = Values::load(&[&file], &sets).expect("valid");
        assert_eq!(values.pilot.replicas, 4);
        assert_eq!(values.trust_domain, "example.org");
        assert_eq!(values.citadel.replicas, 1, "untouched defaults stay");
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        let cases = [
            (&["pilot.replica=2"][..], "unknown field `replica`"),
            (&["pilot.replicas=two"][..], "value pilot.replicas"),
            (&["pilot.replicas=0"][..], "at least 1"),
            (&["injector.failurePolicy=Maybe"][..], "Fail or Ignore"),
            (&["replicas"][..], "expected key=value"),
            (&["=1"][..], "expected key=value"),
            (
                &["gateways.ingress.serviceType=Ingress"][..],
                "LoadBalancer, NodePort",
            ),
            (&["gateways.egress.httpPort=0"][..], "1 to 65535"),
            (&["gateways.ingress.replicas=0"][..], "at least 1"),
            (
                &["gateways.ingress.credentials=Shop_Cert"][..],
                "value gateways.ingress.credentials",
            ),
        ];
        for (sets, expected) in cases {
            let error = load(sets).expect_err("invalid").to_string();
            assert!(error.contains(expected), "{sets:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
