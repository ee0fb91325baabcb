//! The topology file of a local mesh, `<dir>/topology.yaml`: which services exist, which
//! versions of them run, and the command that runs each workload. It is mesh-local (no
//! Istio kind, pilot never reads it); the Istio config for the mesh is in `<dir>/config/`.
//!
//! ```yaml
//! namespace: default                   # optional
//! services:
//!   - name: reviews
//!     ports: [{number: 9080, protocol: HTTP}]   # name optional
//! workloads:
//!   - service: reviews
//!     version: v2                      # optional, v1
//!     serviceAccount: reviews          # optional, the service's name
//!     replicas: 1                      # optional
//!     command: ["{echo}", "--listen", "{listen}", "--name", "{service}", "--version-label", "{version}"]
//!     env: {ECHO_DELAY: 50ms}
//! gateway:                             # optional: an ingress gateway on its own address
//!   ports: [8080]                      # the ports its Gateway servers use
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file `meshctl local up <dir>` reads in its directory.
pub const TOPOLOGY_FILE: &str = "topology.yaml";

/// The Istio config directory beside it, watched by pilot.
pub const CONFIG_DIR: &str = "config";

/// Istio's MeshConfig beside it (telemetry providers), passed to pilot when present.
pub const MESH_CONFIG_FILE: &str = "mesh.yaml";

/// Ports a sidecar takes on its workload's address: outbound, inbound (unused without
/// capture, kept free as in a pod), admin, metrics, health.
pub const SIDECAR_PORTS: [u16; 5] = [15001, 15006, 15000, 15020, 15021];

/// Ports per service: each takes an app port on 127.0.0.1 for every instance.
pub const MAX_PORTS: usize = 10;

/// The command a workload runs when the topology gives none: the sample echo app.
pub const DEFAULT_COMMAND: [&str; 7] = [
    "{echo}",
    "--listen",
    "{listen}",
    "--name",
    "{service}",
    "--version-label",
    "{version}",
];

/// What a command and its environment may name: `{listen}` is the app's `ip:port` (its
/// first port; `{port}` alone), `{outbound}` its sidecar's outbound listener, `{host}` its
/// service's host name, `{echo}` mesh-echo's path.
pub const PLACEHOLDERS: [&str; 9] = [
    "echo",
    "listen",
    "port",
    "outbound",
    "service",
    "version",
    "workload",
    "namespace",
    "host",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Topology {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub services: Vec<Service>,
    pub workloads: Vec<Workload>,
    /// An ingress gateway (`mesh-proxy --mode gateway`, labelled `istio: ingressgateway`,
    /// `mesh: ingressgateway`) on the address after the workloads'.
    #[serde(default)]
    pub gateway: Option<Gateway>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gateway {
    /// The ports the Gateway servers selecting it listen on (checked free before `up`,
    /// shown by `status`); the servers themselves come from the Gateway config.
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Port {
    /// The service port: where the sidecar's inbound listener takes peers' traffic on the
    /// workload's address.
    pub number: u16,
    /// Default `<protocol>-<number>`, lower-case.
    pub name: Option<String>,
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Http,
    Http2,
    Grpc,
    Tcp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::Tcp => "TCP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    pub service: String,
    #[serde(default = "default_version")]
    pub version: String,
    /// Default `<service>-<version>`, with `-<n>` per replica when there are several.
    pub name: Option<String>,
    pub service_account: Option<String>,
    #[serde(default = "one")]
    pub replicas: u16,
    /// argv with placeholders; default [`DEFAULT_COMMAND`].
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_version() -> String {
    "v1".to_owned()
}

fn one() -> u16 {
    1
}

impl Port {
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.protocol.as_str().to_lowercase(), self.number))
    }
}

impl Workload {
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or(&self.service)
    }

    pub fn command(&self) -> Vec<String> {
        self.command
            .clone()
            .unwrap_or_else(|| DEFAULT_COMMAND.iter().map(|s| (*s).to_owned()).collect())
    }

    /// The name of replica `n` (from 0) of `replicas`.
    pub fn instance_name(&self, n: u16) -> String {
        let base = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.service, self.version));
        if self.replicas > 1 {
            format!("{base}-{}", n + 1)
        } else {
            base
        }
    }
}

/// A topology file that cannot be used, with the file and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read the topology {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {field}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

impl Topology {
    /// Reads and checks `<dir>/topology.yaml`.
    pub fn load(dir: &Path) -> Result<Topology, TopologyError> {
        let file = dir.join(TOPOLOGY_FILE);
        let text = std::fs::read_to_string(&file).map_err(|source| TopologyError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and checks a topology; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Topology, TopologyError> {
        let invalid = |field: String, message: String| TopologyError::Invalid {
            file: file.to_path_buf(),
            field,
            message,
        };
        let topology: Topology = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(text),
        )
        .map_err(|err| {
            let field = match err.path().to_string() {
                path if path == "." => "(top level)".to_owned(),
                path => path,
            };
            invalid(field, err.into_inner().to_string())
        })?;
        match topology.check() {
            Some((field, message)) => Err(invalid(field, message)),
            None => Ok(topology),
        }
    }

    /// Every instance, in order: `(workload, replica)`.
    pub fn instances(&self) -> impl Iterator<Item = (&Workload, u16)> {
        self.workloads
            .iter()
            .flat_map(|w| (0..w.replicas).map(move |n| (w, n)))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The first problem, as `(field, message)`.
    fn check(&self) -> Option<(String, String)> {
        if !is_dns_label(&self.namespace) {
            return Some(("namespace".into(), dns_label_message(&self.namespace)));
        }
        let mut names = BTreeSet::new();
        for (i, service) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            if let Some(problem) = check_service(service, &at) {
                return Some(problem);
            }
            if !names.insert(&service.name) {
                return Some((
                    format!("{at}.name"),
                    format!("service {:?} is defined twice", service.name),
                ));
            }
        }
        if self.workloads.is_empty() {
            return Some((
                "workloads".into(),
                "no workloads: add at least one, e.g. {service: <name>, version: v1}".into(),
            ));
        }
        let mut instances = BTreeSet::new();
        for (i, workload) in self.workloads.iter().enumerate() {
            let at = format!("workloads[{i}]");
            if let Some(problem) = self.check_workload(workload, &at) {
                return Some(problem);
            }
            for n in 0..workload.replicas {
                let name = workload.instance_name(n);
                if !instances.insert(name.clone()) {
                    return Some((
                        format!("{at}.name"),
                        format!("two workloads are named {name:?}; set a distinct name"),
                    ));
                }
            }
        }
        self.gateway.as_ref().and_then(check_gateway)
    }

    fn check_workload(&self, workload: &Workload, at: &str) -> Option<(String, String)> {
        if self.service(&workload.service).is_none() {
            let known: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
            return Some((
                format!("{at}.service"),
                format!(
                    "no service {:?} in services (defined: {})",
                    workload.service,
                    known.join(", ")
                ),
            ));
        }
        if !is_label_value(&workload.version) {
            return Some((
                format!("{at}.version"),
                format!(
                    "{:?} is not a label value: use letters, digits, '-', '_' or '.'",
                    workload.version
                ),
            ));
        }
        if !is_dns_label(workload.service_account()) {
            return Some((
                format!("{at}.serviceAccount"),
                dns_label_message(workload.service_account()),
            ));
        }
        if workload.replicas == 0 {
            return Some((format!("{at}.replicas"), "must be at least 1".into()));
        }
        if let Some(name) = &workload.name
            && !is_dns_label(name)
        {
            return Some((format!("{at}.name"), dns_label_message(name)));
        }
        let command = workload.command();
        if command.is_empty() {
            return Some((
                format!("{at}.command"),
                "is empty: give the program and its arguments".into(),
            ));
        }
        for (j, arg) in command.iter().enumerate() {
            if let Err(message) = check_placeholders(arg) {
                return Some((format!("{at}.command[{j}]"), message));
            }
        }
        for (key, value) in &workload.env {
            if let Err(message) = check_placeholders(value) {
                return Some((format!("{at}.env.{key}"), message));
            }
        }
        None
    }
}

fn check_gateway(gateway: &Gateway) -> Option<(String, String)> {
    if gateway.ports.is_empty() {
        return Some((
            "gateway.ports".into(),
            "no ports: list the Gateway servers' ports, e.g. [8080]".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, &port) in gateway.ports.iter().enumerate() {
        let at = format!("gateway.ports[{i}]");
        if port == 0 {
            return Some((at, "port 0: give the Gateway server's port".into()));
        }
        if SIDECAR_PORTS.contains(&port) {
            return Some((
                at,
                format!("port {port} is the gateway proxy's own (admin, metrics, health)"),
            ));
        }
        if !seen.insert(port) {
            return Some((at, format!("port {port} is listed twice")));
        }
    }
    None
}

fn check_service(service: &Service, at: &str) -> Option<(String, String)> {
    if !is_dns_label(&service.name) {
        return Some((format!("{at}.name"), dns_label_message(&service.name)));
    }
    if service.ports.is_empty() {
        return Some((
            format!("{at}.ports"),
            "no ports: add one, e.g. {number: 9080, protocol: HTTP}".into(),
        ));
    }
    if service.ports.len() > MAX_PORTS {
        return Some((
            format!("{at}.ports"),
            format!("at most {MAX_PORTS} ports per service"),
        ));
    }
    // The service ports share the workload's address with the sidecar's own.
    let mut taken: BTreeSet<u16> = SIDECAR_PORTS.into_iter().collect();
    let mut names = BTreeSet::new();
    for (j, port) in service.ports.iter().enumerate() {
        let here = format!("{at}.ports[{j}]");
        if port.number == 0 {
            return Some((format!("{here}.number"), "must be 1 to 65535".into()));
        }
        if SIDECAR_PORTS.contains(&port.number) {
            return Some((
                format!("{here}.number"),
                format!(
                    "{} is one of the sidecar's own ports ({}) on the workload's address; choose another",
                    port.number,
                    SIDECAR_PORTS.map(|p| p.to_string()).join(", ")
                ),
            ));
        }
        if !taken.insert(port.number) {
            return Some((
                format!("{here}.number"),
                format!("port {} is listed twice", port.number),
            ));
        }
        if !is_dns_label(&port.name()) {
            return Some((format!("{here}.name"), dns_label_message(&port.name())));
        }
        if !names.insert(port.name()) {
            return Some((
                format!("{here}.name"),
                format!("port name {:?} is used twice", port.name()),
            ));
        }
    }
    None
}

/// Checks `{name}` placeholders (`{{` and `}}` are literal braces).
pub fn check_placeholders(text: &str) -> Result<(), String> {
    expand(text, |name| {
        PLACEHOLDERS
            .contains(&name)
            .then(String::new)
            .ok_or_else(|| {
                format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                )
            })
    })
    .map(|_| ())
}

/// Replaces every `{name}` with `value(name)`; `{{` and `}}` stand for braces.
pub fn expand(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err(format!(
                "unmatched '}}' in {text:?}; write '}}}}' for a brace"
            ));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "unclosed '{{' in {text:?}; write '{{{{' for a brace"
                ));
            };
            out.push_str(&value(&tail[1..end])?);
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_dns_label(value: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    value.len() <= 63
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value.chars().all(|c| alnum(c) || c == '-')
}

fn dns_label_message(value: &str) -> String {
    format!(
        "{value:?} is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    )
}

fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests;
