//! The ingress and egress gateways: `mesh-proxy --mode gateway` as a Deployment, its
//! Service and PodDisruptionBudget, in a namespace of their own.
//!
//! Why not mesh-system: a gateway needs the trust bundle to ask citadel for its certificate,
//! and citadel publishes it (ConfigMap `mesh-ca-root-cert`) only in namespaces labelled
//! `mesh-injection=enabled`, a label mesh-system cannot carry without the injector being
//! asked about its own pods. So the gateways live in [`GATEWAY_NAMESPACE`], labelled, and
//! their pods opt out of injection (the label `sidecar.mesh.io/inject: "false"`, so the
//! webhook is not even called for them), as Istio's gateway chart installs into an
//! injected `istio-ingress` namespace.
//!
//! No RBAC: a gateway calls no API; its projected ServiceAccount token is what citadel
//! reviews (citadel holds the TokenReview grant).

use mesh_injector::annotations::INJECT as INJECT_LABEL;
use serde_json::{Value, json};

use super::manifest::{CITADEL, NAMESPACE, PART_OF, PILOT, part_of};
use super::values::{Gateway, Values};

pub const GATEWAY_NAMESPACE: &str = "mesh-gateways";
pub const INGRESS: &str = "ingressgateway";
pub const EGRESS: &str = "egressgateway";
/// mesh-proxy's readiness port (`--health-addr`), as the injector's sidecar uses it.
pub const HEALTH_PORT: u16 = 15021;
/// The proxy's uid, as the injector's sidecar runs it; the sysctl lets it bind 80 and 443.
const PROXY_UID: i64 = 1337;
/// The injector's names (injector/src/inject/sidecar.rs), so a gateway is set up as a
/// sidecar is.
const TOKEN_VOLUME: &str = "mesh-token";
const TOKEN_DIR: &str = "/var/run/secrets/mesh/tokens";
const ROOT_VOLUME: &str = "mesh-ca-root";
const ROOT_DIR: &str = "/var/run/secrets/mesh/ca";
const ROOT_CONFIG_MAP: &str = "mesh-ca-root-cert";
/// citadel's token audience (the injector's `tokenAudience` default).
const TOKEN_AUDIENCE: &str = "mesh-ca";
/// mesh-proxy's `--credentials-dir` default: one directory per `credentialName`.
pub const CREDENTIALS_DIR: &str = "/etc/mesh/credentials";
pub const CREDENTIALS_VOLUME: &str = "credentials";
/// The keys a TLS Secret may hold, in Kubernetes' and Istio's spelling.
const CREDENTIAL_KEYS: [&str; 6] = ["tls.crt", "tls.key", "ca.crt", "cert", "key", "cacert"];

/// The labels a gateway pod carries and tells pilot (`--labels`): Istio's selector
/// `istio: ingressgateway` matches it, and so does mesh's `mesh: ingressgateway`.
pub fn selector_labels(name: &str) -> [(&'static str, String); 2] {
    [("istio", name.to_owned()), ("mesh", name.to_owned())]
}

/// The labelled namespace, always installed, so enabling a gateway later is one apply.
pub fn namespace() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": GATEWAY_NAMESPACE, "labels": {
            PART_OF.0: PART_OF.1,
            // citadel publishes the trust bundle here; the pods themselves opt out.
            "mesh-injection": "enabled",
        }},
    })
}

/// The enabled gateways' objects, ServiceAccounts first.
pub fn objects(values: &Values) -> Vec<Value> {
    let enabled: Vec<(&str, &Gateway)> = [
        (INGRESS, &values.gateways.ingress),
        (EGRESS, &values.gateways.egress),
    ]
    .into_iter()
    .filter(|(_, gateway)| gateway.enabled)
    .collect();
    let mut objects: Vec<Value> = enabled
        .iter()
        .map(|(name, _)| {
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name)})
        })
        .collect();
    objects.extend(enabled.iter().map(|(name, g)| service(name, g)));
    objects.extend(enabled.iter().map(|(name, g)| deployment(values, name, g)));
    objects.extend(enabled.iter().map(|(name, _)| {
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(name),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
        })
    }));
    objects
}

fn metadata(name: &str) -> Value {
    json!({"name": name, "namespace": GATEWAY_NAMESPACE, "labels": labels(name)})
}

fn labels(name: &str) -> Value {
    let mut labels = part_of(name);
    for (key, value) in selector_labels(name) {
        labels[key] = json!(value);
    }
    labels
}

/// The pod's labels: the gateway's, and the opt-out the webhook's objectSelector reads.
fn pod_labels(name: &str) -> Value {
    let mut labels = labels(name);
    labels[INJECT_LABEL] = json!("false");
    labels
}

fn service_ports(gateway: &Gateway) -> Value {
    json!([
        {"name": "http", "port": gateway.http_port, "targetPort": gateway.http_port,
         "protocol": "TCP"},
        {"name": "https", "port": gateway.https_port, "targetPort": gateway.https_port,
         "protocol": "TCP"},
    ])
}

fn service(name: &str, gateway: &Gateway) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service", "metadata": metadata(name),
        "spec": {"type": gateway.service_type, "selector": {"app": name},
                 "ports": service_ports(gateway)},
    })
}

fn env(values: &Values, name: &str) -> Value {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}});
    let value = |name: &str, value: &str| json!({"name": name, "value": value});
    let labels: Vec<String> = selector_labels(name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!([
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        field("INSTANCE_IP", "status.podIP"),
        value("MESH_PILOT_ADDR", &format!("{PILOT}.{NAMESPACE}.svc:15010")),
        value("MESH_CA_ADDR", &format!("{CITADEL}.{NAMESPACE}.svc:8060")),
        value("MESH_TRUST_DOMAIN", &values.trust_domain),
        value("MESH_TRUST_BUNDLE", &format!("{ROOT_DIR}/root-cert.pem")),
        value("MESH_CA_TOKEN_FILE", &format!("{TOKEN_DIR}/{TOKEN_VOLUME}")),
        value("MESH_WORKLOAD", name),
        value("MESH_APP", name),
        value("MESH_LABELS", &labels.join(",")),
    ])
}

/// One projected volume of every listed Secret, each under its own name: a Secret's keys
/// cannot collide with another's, and `optional` lets a pod start before its Secrets exist
/// (the proxy rereads the files when they appear).
fn credentials_volume(secrets: &[String]) -> Value {
    let sources: Vec<Value> = secrets
        .iter()
        .map(|secret| {
            let items: Vec<Value> = CREDENTIAL_KEYS
                .iter()
                .map(|key| json!({"key": key, "path": format!("{secret}/{key}")}))
                .collect();
            json!({"secret": {"name": secret, "optional": true, "items": items}})
        })
        .collect();
    json!({"name": CREDENTIALS_VOLUME, "projected": {"sources": sources}})
}

fn deployment(values: &Values, name: &str, gateway: &Gateway) -> Value {
    let mut deployment = pod_deployment(values, name, gateway);
    if !gateway.credentials.is_empty() {
        let pod = &mut deployment["spec"]["template"]["spec"];
        if let Some(volumes) = pod["volumes"].as_array_mut() {
            volumes.push(credentials_volume(&gateway.credentials));
        }
        if let Some(mounts) = pod["containers"][0]["volumeMounts"].as_array_mut() {
            mounts.push(
                json!({"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR,
                               "readOnly": true}),
            );
        }
    }
    deployment
}

fn pod_deployment(values: &Values, name: &str, gateway: &Gateway) -> Value {
    let ready = json!({"path": "/healthz/ready", "port": HEALTH_PORT, "scheme": "HTTP"});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(name),
        "spec": {
            "replicas": gateway.replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": pod_labels(name)},
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": PROXY_UID, "runAsGroup": PROXY_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        // A safe sysctl: uid 1337 binds the Gateway servers' 80 and 443.
                        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start",
                                     "value": "0"}],
                    },
                    "containers": [{
                        "name": "mesh-proxy",
                        "image": values.image("mesh-proxy"),
                        "imagePullPolicy": values.image.pull_policy,
                        "args": ["--mode", "gateway"],
                        "env": env(values, name),
                        "ports": [
                            {"name": "http", "containerPort": gateway.http_port},
                            {"name": "https", "containerPort": gateway.https_port},
                            {"name": "mesh-health", "containerPort": HEALTH_PORT},
                            {"name": "mesh-metrics", "containerPort": 15020},
                        ],
                        "readinessProbe": {"httpGet": ready, "periodSeconds": 5},
                        "livenessProbe": {"tcpSocket": {"port": HEALTH_PORT},
                                          "initialDelaySeconds": 5, "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                      "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "readOnlyRootFilesystem": true,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [
                            {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true},
                            {"name": ROOT_VOLUME, "mountPath": ROOT_DIR, "readOnly": true},
                        ],
                    }],
                    "volumes": [
                        {"name": TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
                            "audience": TOKEN_AUDIENCE, "expirationSeconds": 43200,
                            "path": TOKEN_VOLUME}}]}},
                        {"name": ROOT_VOLUME, "configMap": {"name": ROOT_CONFIG_MAP}},
                    ],
                },
            },
        },
    })
}
