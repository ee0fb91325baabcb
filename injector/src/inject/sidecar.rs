//! The objects the injector adds: the init step, the proxy container and their volumes,
//! as the JSON the patch carries.

use serde_json::{Value, json};

use crate::annotations::Overrides;
use crate::config::{Config, Quantities};

pub const INIT_NAME: &str = "mesh-init";
pub const PROXY_NAME: &str = "mesh-proxy";
pub const TOKEN_VOLUME: &str = "mesh-token";
pub const ROOT_VOLUME: &str = "mesh-ca-root";
/// citadel publishes the trust bundle in every labelled namespace under this name.
pub const ROOT_CONFIG_MAP: &str = "mesh-ca-root-cert";
pub const HEALTH_PORT: u16 = 15021;
pub const METRICS_PORT: u16 = 15020;
pub const PROXY_UID: i64 = 1337;
const TOKEN_DIR: &str = "/var/run/secrets/mesh/tokens";
const ROOT_DIR: &str = "/var/run/secrets/mesh/ca";

/// Who the workload is, as the proxy's env tells it.
pub struct Workload {
    pub name: String,
    pub app: Option<String>,
    pub version: Option<String>,
    /// `k=v,k=v`
    pub labels: String,
}

/// Everything that differs between pods, resolved from config and annotations.
pub struct Settings<'a> {
    pub config: &'a Config,
    pub overrides: &'a Overrides,
    pub native: bool,
    /// `MESH_KUBE_APP_PROBERS`, when some probe was rewritten.
    pub app_probers: Option<String>,
}

/// `mesh-proxy iptables ...`: redirects the pod's traffic to the proxy, then exits.
pub fn init_container(settings: &Settings) -> Value {
    let config = settings.config;
    let overrides = settings.overrides;
    // The proxy's own ports (15000, 15001, 15006, 15020, 15021) are never captured;
    // `mesh-proxy iptables` excludes them itself.
    let inbound: Vec<u16> = config
        .exclude_inbound_ports
        .iter()
        .chain(&overrides.exclude_inbound_ports)
        .copied()
        .collect();
    let outbound: Vec<u16> = config
        .exclude_outbound_ports
        .iter()
        .chain(&overrides.exclude_outbound_ports)
        .copied()
        .collect();
    let cidrs: Vec<&str> = config
        .exclude_outbound_cidrs
        .iter()
        .chain(&overrides.exclude_outbound_cidrs)
        .map(String::as_str)
        .collect();
    let mut args = vec!["iptables".to_owned()];
    if !inbound.is_empty() {
        args.extend(["--exclude-inbound-ports".to_owned(), join(&inbound)]);
    }
    if !outbound.is_empty() {
        args.extend(["--exclude-outbound-ports".to_owned(), join(&outbound)]);
    }
    if !cidrs.is_empty() {
        args.extend(["--exclude-outbound-cidrs".to_owned(), cidrs.join(",")]);
    }
    let mut container = json!({
        "name": INIT_NAME,
        "image": config.proxy_image,
        "args": args,
        "resources": resources(&config.init_resources.requests, &config.init_resources.limits),
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": false,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    });
    pull_policy(&mut container, config);
    container
}

/// The proxy. Native: an init container that keeps running (`restartPolicy: Always`)
/// whose startup probe holds the next containers until it is ready. Regular: the first
/// container, whose postStart hook holds the app's start the same way.
pub fn proxy_container(settings: &Settings, workload: &Workload) -> Value {
    let config = settings.config;
    let overrides = settings.overrides;
    let requests = Quantities {
        cpu: overrides
            .proxy_cpu
            .clone()
            .or(config.proxy_resources.requests.cpu.clone()),
        memory: overrides
            .proxy_memory
            .clone()
            .or(config.proxy_resources.requests.memory.clone()),
    };
    let limits = Quantities {
        cpu: overrides
            .proxy_cpu_limit
            .clone()
            .or(config.proxy_resources.limits.cpu.clone()),
        memory: overrides.proxy_memory_limit.clone().or(config
            .proxy_resources
            .limits
            .memory
            .clone()),
    };
    let ready = json!({"path": "/healthz/ready", "port": HEALTH_PORT, "scheme": "HTTP"});
    let mut container = json!({
        "name": PROXY_NAME,
        "image": config.proxy_image,
        "ports": [
            {"name": "mesh-health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "mesh-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "env": env(settings, workload),
        "resources": resources(&requests, &limits),
        "startupProbe": {
            "httpGet": ready, "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 600,
        },
        "readinessProbe": {
            "httpGet": ready, "periodSeconds": 15, "timeoutSeconds": 3, "failureThreshold": 4,
        },
        "volumeMounts": [
            {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true},
            {"name": ROOT_VOLUME, "mountPath": ROOT_DIR, "readOnly": true},
        ],
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if settings.native {
        container["restartPolicy"] = json!("Always");
    } else {
        // `mesh-proxy wait` returns once the health port answers ready; the kubelet
        // starts the next container only after this hook returns.
        container["lifecycle"] =
            json!({"postStart": {"exec": {"command": ["mesh-proxy", "wait"]}}});
    }
    pull_policy(&mut container, config);
    container
}

fn env(settings: &Settings, workload: &Workload) -> Vec<Value> {
    let config = settings.config;
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}});
    let value = |name: &str, value: &str| json!({"name": name, "value": value});
    let log = settings
        .overrides
        .log_level
        .as_deref()
        .unwrap_or(&config.log_level);
    let mut env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        field("NODE_NAME", "spec.nodeName"),
        field("INSTANCE_IP", "status.podIP"),
        value("MESH_PILOT_ADDR", &config.pilot_address),
        value("MESH_CA_ADDR", &config.ca_address),
        value("MESH_TRUST_DOMAIN", &config.trust_domain),
        value("MESH_TRUST_BUNDLE", &format!("{ROOT_DIR}/root-cert.pem")),
        value("MESH_CA_TOKEN_FILE", &format!("{TOKEN_DIR}/{TOKEN_VOLUME}")),
        value("MESH_INTERCEPTION", "REDIRECT"),
        value("MESH_WORKLOAD", &workload.name),
        value("MESH_LABELS", &workload.labels),
        value("MESH_LOG", log),
    ];
    if let Some(app) = &workload.app {
        env.push(value("MESH_APP", app));
    }
    if let Some(version) = &workload.version {
        env.push(value("MESH_APP_VERSION", version));
    }
    if let Some(probers) = &settings.app_probers {
        env.push(value(crate::inject::probes::PROBERS_ENV, probers));
    }
    env
}

/// The projected token citadel checks (audience `mesh-ca`) and the trust bundle.
pub fn volumes(config: &Config) -> Vec<Value> {
    vec![
        json!({
            "name": TOKEN_VOLUME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": config.token_audience,
                "expirationSeconds": 43200,
                "path": TOKEN_VOLUME,
            }}]},
        }),
        json!({
            "name": ROOT_VOLUME,
            "configMap": {"name": ROOT_CONFIG_MAP},
        }),
    ]
}

fn resources(requests: &Quantities, limits: &Quantities) -> Value {
    let map = |q: &Quantities| {
        let mut map = serde_json::Map::new();
        if let Some(cpu) = &q.cpu {
            map.insert("cpu".to_owned(), json!(cpu));
        }
        if let Some(memory) = &q.memory {
            map.insert("memory".to_owned(), json!(memory));
        }
        map
    };
    let mut resources = serde_json::Map::new();
    for (name, quantities) in [("requests", requests), ("limits", limits)] {
        let quantities = map(quantities);
        if !quantities.is_empty() {
            resources.insert(name.to_owned(), Value::Object(quantities));
        }
    }
    Value::Object(resources)
}

fn pull_policy(container: &mut Value, config: &Config) {
    if let Some(policy) = &config.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
}

fn join(ports: &[u16]) -> String {
    let mut unique = ports.to_vec();
    unique.sort_unstable();
    unique.dedup();
    unique
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
