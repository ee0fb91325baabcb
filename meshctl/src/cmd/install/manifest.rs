//! Every object an installation consists of, rendered from [`Values`]: the one description
//! that `meshctl install` applies, `meshctl manifest generate` prints and `cargo xtask
//! codegen` turns into the Helm chart's templates. Objects are written as the JSON the API
//! server takes and each is checked against its k8s-openapi type ([`kinds::check`]).

use mesh_injector::annotations::INJECT as INJECT_LABEL;
use mesh_injector::inject::{NAMESPACE_LABEL, SYSTEM_NAMESPACES};
use serde_json::{Value, json};

use super::values::Values;
use super::{crds, gateways, kinds, rbac};

pub const NAMESPACE: &str = "mesh-system";
pub const PILOT: &str = "pilot";
pub const CITADEL: &str = "citadel";
/// The injector's Deployment, Service, ServiceAccount, ConfigMap and webhook configuration
/// (the names its serving certificate and caBundle keeper expect).
pub const INJECTOR: &str = "mesh-sidecar-injector";
/// Where the injector's config file is mounted (`--config`).
const INJECTOR_CONFIG: &str = "/etc/mesh/injector/config.yaml";
/// Every object carries it; `meshctl version` finds the control plane by it.
pub const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "mesh");

/// What an installation applies, in the order it applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// mesh's CRDs (the chart's `crds/`).
    pub crds: Vec<Value>,
    /// Istio's groups, when `istioApi` is set.
    pub istio_crds: Vec<Value>,
    /// Namespace, ServiceAccounts, RBAC, ConfigMap, Services, Deployments,
    /// PodDisruptionBudgets, the webhook configuration.
    pub objects: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Crd(#[from] crds::CrdError),
    #[error("{0}; this is a bug in meshctl's manifest")]
    Invalid(String),
}

pub fn part_of(name: &str) -> Value {
    json!({"app": name, "app.kubernetes.io/name": name, PART_OF.0: PART_OF.1})
}

fn metadata(name: &str, component: &str) -> Value {
    json!({"name": name, "namespace": NAMESPACE, "labels": part_of(component)})
}

pub fn render(values: &Values) -> Result<Manifest, ManifestError> {
    let manifest = Manifest {
        crds: crds::mesh()?,
        istio_crds: if values.istio_api {
            crds::istio()?
        } else {
            Vec::new()
        },
        objects: objects(values),
    };
    for object in manifest.all() {
        kinds::check(object).map_err(ManifestError::Invalid)?;
    }
    Ok(manifest)
}

impl Manifest {
    /// CRDs first, then everything else, in apply order.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.crds
            .iter()
            .chain(&self.istio_crds)
            .chain(&self.objects)
    }

    /// Multi-document YAML, as `kubectl apply -f` and `meshctl manifest generate` use it.
    pub fn to_yaml(&self) -> String {
        to_yaml(self.all())
    }
}

pub fn to_yaml<'a>(objects: impl Iterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&kinds::canonical(object.clone())).unwrap_or_default());
    }
    out
}

/// Everything but the CRDs.
pub fn objects(values: &Values) -> Vec<Value> {
    let components = [PILOT, CITADEL, INJECTOR];
    let mut objects = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            PART_OF.0: PART_OF.1,
            // The control plane never gets a sidecar.
            "mesh-injection": "disabled",
        }},
    })];
    objects.push(gateways::namespace());
    objects.extend(components.iter().map(|name| {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, name)})
    }));
    objects.extend(rbac::objects());
    objects.push(injector_config(values));
    objects.extend([pilot_service(), citadel_service(), injector_service()]);
    objects.extend([
        pilot_deployment(values),
        citadel_deployment(values),
        injector_deployment(values),
    ]);
    objects.extend(components.iter().map(|name| {
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(name, name),
            // A drain may take one at a time, and never blocks on a single replica.
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
        })
    }));
    objects.push(super::dashboards::config_map());
    // Before the webhook, which comes last: install waits on its caBundle at the end.
    objects.extend(gateways::objects(values));
    objects.push(webhook(values));
    objects
}

fn service(name: &str, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service", "metadata": metadata(name, name),
        "spec": {"selector": {"app": name}, "ports": ports},
    })
}

fn pilot_service() -> Value {
    service(
        PILOT,
        json!([
            {"name": "grpc-xds", "port": 15010, "targetPort": 15010, "protocol": "TCP"},
            {"name": "http-monitoring", "port": 15014, "targetPort": 15014, "protocol": "TCP"},
        ]),
    )
}

fn citadel_service() -> Value {
    service(
        CITADEL,
        json!([
            {"name": "grpc-ca", "port": 8060, "targetPort": 8060, "protocol": "TCP"},
            {"name": "http-monitoring", "port": 15015, "targetPort": 15015, "protocol": "TCP"},
        ]),
    )
}

fn injector_service() -> Value {
    service(
        INJECTOR,
        json!([{"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"}]),
    )
}

/// The injector's config file (injector/src/config.rs), every other field at its default.
fn injector_config(values: &Values) -> Value {
    let config = format!(
        "proxyImage: {proxy}\nimagePullPolicy: {pull}\npilotAddress: {PILOT}.{NAMESPACE}.svc:15010\n\
         caAddress: {CITADEL}.{NAMESPACE}.svc:8060\ntrustDomain: {domain}\n\
         failurePolicy: {policy}\nwebhookConfiguration: {INJECTOR}\n",
        proxy = values.image("mesh-proxy"),
        pull = values.image.pull_policy,
        domain = values.trust_domain,
        policy = values.injector.failure_policy,
    );
    json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(INJECTOR, INJECTOR),
        "data": {"config.yaml": config},
    })
}

/// A Deployment of one container, non-root with a read-only root, probed on `ready`.
struct Workload<'a> {
    name: &'a str,
    image: String,
    args: Vec<String>,
    ports: Value,
    /// The readiness check: path, port, scheme.
    ready: (&'a str, u16, &'a str),
    volumes: Value,
    mounts: Value,
}

fn deployment(values: &Values, replicas: i32, w: Workload<'_>) -> Value {
    let (path, port, scheme) = w.ready;
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(w.name, w.name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": w.name}},
            "template": {
                "metadata": {"labels": part_of(w.name)},
                "spec": {
                    "serviceAccountName": w.name,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": w.name,
                        "image": w.image,
                        "imagePullPolicy": values.image.pull_policy,
                        "args": w.args,
                        "ports": w.ports,
                        "readinessProbe": {"httpGet": {"path": path, "port": port, "scheme": scheme},
                                           "periodSeconds": 5},
                        "livenessProbe": {"tcpSocket": {"port": port},
                                          "initialDelaySeconds": 5, "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "readOnlyRootFilesystem": true,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": w.mounts,
                    }],
                    "volumes": w.volumes,
                },
            },
        },
    });
    // No empty lists: an applied `[]` would claim the field for nothing.
    let pod = &mut deployment["spec"]["template"]["spec"];
    if pod["volumes"].as_array().is_some_and(Vec::is_empty) {
        pod.as_object_mut().map(|p| p.remove("volumes"));
        pod["containers"][0]
            .as_object_mut()
            .map(|c| c.remove("volumeMounts"));
    }
    deployment
}

/// The ConfigMap holding Istio's MeshConfig (key `mesh`: telemetry providers), as Istio's
/// `istio` ConfigMap. Not created by install, so that edits survive a re-install: create it
/// with `kubectl -n mesh-system create configmap mesh --from-file=mesh=mesh.yaml`.
pub const MESH_CONFIG_MAP: &str = "mesh";
/// Where pilot finds it (`--mesh-config`); absent until the ConfigMap exists.
const MESH_CONFIG_FILE: &str = "/etc/mesh/config/mesh";

fn pilot_deployment(values: &Values) -> Value {
    let workload = Workload {
        name: PILOT,
        image: values.image(PILOT),
        args: strings(&[
            "--kubernetes",
            "--trust-domain",
            &values.trust_domain,
            "--mesh-config",
            MESH_CONFIG_FILE,
        ]),
        ports: json!([{"name": "grpc-xds", "containerPort": 15010},
                      {"name": "http-monitoring", "containerPort": 15014}]),
        ready: ("/ready", 15014, "HTTP"),
        volumes: json!([{"name": "mesh-config",
                         "configMap": {"name": MESH_CONFIG_MAP, "optional": true}}]),
        mounts: json!([{"name": "mesh-config", "mountPath": "/etc/mesh/config", "readOnly": true}]),
    };
    deployment(values, values.pilot.replicas, workload)
}

fn citadel_deployment(values: &Values) -> Value {
    let workload = Workload {
        name: CITADEL,
        image: values.image(CITADEL),
        args: strings(&["--kubernetes", "--trust-domain", &values.trust_domain]),
        ports: json!([{"name": "grpc-ca", "containerPort": 8060},
                      {"name": "http-monitoring", "containerPort": 15015}]),
        ready: ("/ready", 15015, "HTTP"),
        volumes: json!([]),
        mounts: json!([]),
    };
    deployment(values, values.citadel.replicas, workload)
}

fn injector_deployment(values: &Values) -> Value {
    let workload = Workload {
        name: INJECTOR,
        image: values.image("injector"),
        args: strings(&["--config", INJECTOR_CONFIG]),
        ports: json!([{"name": "https-webhook", "containerPort": 15017}]),
        ready: ("/healthz", 15017, "HTTPS"),
        volumes: json!([{"name": "config", "configMap": {"name": INJECTOR}}]),
        mounts: json!([{"name": "config", "mountPath": "/etc/mesh/injector", "readOnly": true}]),
    };
    deployment(values, values.injector.replicas, workload)
}

/// Two entries, as Istio's: pods of `mesh-injection=enabled` namespaces unless labelled
/// `sidecar.mesh.io/inject: "false"`, and pods labelled `"true"` in namespaces without the
/// namespace label; neither in the cluster's own namespaces. The API server reads only labels, so only labels keep
/// a pod from being sent at all; the injector decides the rest, annotations included
/// (injector/src/inject/mod.rs). The caBundle is left out: the injector fills it
/// (injector/src/ca_bundle.rs), and a second apply leaves a field it does not set alone.
fn webhook(values: &Values) -> Value {
    let entry = |name: &str, namespaces: Value, pods: Value| {
        json!({
            "name": name,
            "clientConfig": {"service": {"name": INJECTOR, "namespace": NAMESPACE,
                                         "path": "/inject", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": namespaces,
            "objectSelector": pods,
            "failurePolicy": values.injector.failure_policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "reinvocationPolicy": "Never",
            "timeoutSeconds": 10,
        })
    };
    let pod_label = |operator: &str, value: &str| {
        json!({"matchExpressions": [{"key": INJECT_LABEL, "operator": operator,
                                     "values": [value]}]})
    };
    // Every namespace carries its name as this label (Kubernetes 1.21+). The injector
    // skips these anyway; excluded here, their pods never wait on it.
    let not_system = json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                            "values": SYSTEM_NAMESPACES});
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": INJECTOR, "labels": part_of(INJECTOR)},
        "webhooks": [
            entry(
                "namespace.sidecar-injector.mesh.io",
                json!({"matchExpressions": [
                    {"key": NAMESPACE_LABEL, "operator": "In", "values": ["enabled"]},
                    not_system.clone(),
                ]}),
                pod_label("NotIn", "false"),
            ),
            entry(
                "object.sidecar-injector.mesh.io",
                json!({"matchExpressions": [
                    {"key": NAMESPACE_LABEL, "operator": "DoesNotExist"},
                    not_system,
                ]}),
                pod_label("In", "true"),
            ),
        ],
    })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
