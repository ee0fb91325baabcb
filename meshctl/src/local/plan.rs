//! From a topology to what runs: each workload instance's address, its sidecar's ports, its
//! app's command line, and the Istio objects that tell pilot about them. Pure: no files,
//! no processes, so every rule here is tested without starting anything.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde_json::{Value, json};

use super::topology::{Protocol, Topology, Workload, expand};

/// The label that selects exactly one instance (its Sidecar), beside `app` and `version`.
pub const WORKLOAD_LABEL: &str = "mesh.io/workload";

/// One running copy of a workload: an app and its sidecar on their own loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub service: String,
    pub version: String,
    pub service_account: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub ports: Vec<PlannedPort>,
    /// The app's argv and environment, placeholders expanded.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    pub name: String,
    pub number: u16,
    pub protocol: Protocol,
    pub app_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{count} workloads from {base} run past 127.255.255.254; give a lower --base-ip (in 127.0.0.0/8)"
    )]
    OutOfAddresses { base: Ipv4Addr, count: usize },
    #[error("--base-ip {0} is not in 127.0.0.0/8 (or is 127.0.0.0): local mode uses loopback only")]
    NotLoopback(Ipv4Addr),
    #[error("{count} app ports from {base} run past 65535; give a lower --app-port-base")]
    OutOfPorts { base: u16, count: usize },
    #[error("workload {workload}: {message}")]
    Command { workload: String, message: String },
}

impl Instance {
    pub fn node_id(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }

    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    pub fn outbound(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 15001))
    }

    pub fn admin(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 15000))
    }

    pub fn metrics(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 15020))
    }

    pub fn health(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 15021))
    }

    /// Where the app listens (its first port). On 127.0.0.1, as in a pod: the sidecar's
    /// inbound listener forwards there (Istio's `defaultEndpoint` is 127.0.0.1:PORT).
    pub fn app_addr(&self) -> SocketAddr {
        SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            self.ports.first().map_or(0, |p| p.app_port),
        ))
    }

    /// The sidecar's inbound listeners: peers reach the app here.
    pub fn inbound(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|p| SocketAddr::from((self.ip, p.number)))
            .collect()
    }

    /// Every address this instance binds, for checking before anything starts.
    pub fn binds(&self) -> Vec<SocketAddr> {
        let mut all = vec![self.outbound(), self.admin(), self.metrics(), self.health()];
        all.extend(self.inbound());
        all.extend(
            self.ports
                .iter()
                .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p.app_port))),
        );
        all
    }

    /// `app=..,version=..,...` for the proxy's `--labels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_owned(), self.service.clone()),
            ("version".to_owned(), self.version.clone()),
            ("security.istio.io/tlsMode".to_owned(), "istio".to_owned()),
            (WORKLOAD_LABEL.to_owned(), self.name.clone()),
        ])
    }
}

/// Every instance of `topology`, the first on `base` and each next one on the next address;
/// the apps' ports on 127.0.0.1 are numbered from `app_ports` in the same order.
pub fn plan(
    topology: &Topology,
    base: Ipv4Addr,
    app_ports: u16,
    echo: &Path,
) -> Result<Vec<Instance>, PlanError> {
    if base.octets()[0] != 127 || base == Ipv4Addr::new(127, 0, 0, 0) {
        return Err(PlanError::NotLoopback(base));
    }
    let count = topology.instances().count();
    let last = u32::from(base).checked_add(count.saturating_sub(1) as u32);
    if count > u32::MAX as usize
        || last.is_none_or(|last| last >= u32::from(Ipv4Addr::new(127, 255, 255, 255)))
    {
        return Err(PlanError::OutOfAddresses { base, count });
    }
    let ports: usize = topology
        .instances()
        .map(|(w, _)| topology.service(&w.service).map_or(0, |s| s.ports.len()))
        .sum();
    if usize::from(app_ports) + ports > usize::from(u16::MAX) + 1 || app_ports == 0 {
        return Err(PlanError::OutOfPorts {
            base: app_ports,
            count: ports,
        });
    }
    let mut next_port = app_ports;
    topology
        .instances()
        .enumerate()
        .map(|(i, (workload, n))| {
            let ip = Ipv4Addr::from(u32::from(base) + i as u32);
            instance(topology, workload, n, ip, &mut next_port, echo)
        })
        .collect()
}

fn instance(
    topology: &Topology,
    workload: &Workload,
    replica: u16,
    ip: Ipv4Addr,
    next_port: &mut u16,
    echo: &Path,
) -> Result<Instance, PlanError> {
    let ports = topology
        .service(&workload.service)
        .map(|s| s.ports.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let app_port = *next_port;
            *next_port = next_port.saturating_add(1);
            PlannedPort {
                name: p.name(),
                number: p.number,
                protocol: p.protocol,
                app_port,
            }
        })
        .collect();
    let mut instance = Instance {
        name: workload.instance_name(replica),
        service: workload.service.clone(),
        version: workload.version.clone(),
        service_account: workload.service_account().to_owned(),
        namespace: topology.namespace.clone(),
        ip,
        ports,
        command: Vec::new(),
        env: BTreeMap::new(),
    };
    let fail = |message| PlanError::Command {
        workload: instance.name.clone(),
        message,
    };
    let value = |name: &str| -> Result<String, String> {
        Ok(match name {
            "echo" => echo.display().to_string(),
            "listen" => instance.app_addr().to_string(),
            "port" => instance.app_addr().port().to_string(),
            "outbound" => instance.outbound().to_string(),
            "service" => instance.service.clone(),
            "version" => instance.version.clone(),
            "workload" => instance.name.clone(),
            "namespace" => instance.namespace.clone(),
            "host" => instance.host(),
            other => return Err(format!("unknown placeholder {{{other}}}")),
        })
    };
    let command = workload
        .command()
        .iter()
        .map(|arg| expand(arg, value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    // Apps reach other services only through their sidecar: as their HTTP proxy.
    let proxy = format!("http://{}", instance.outbound());
    let mut env = BTreeMap::from([
        ("HTTP_PROXY".to_owned(), proxy.clone()),
        ("http_proxy".to_owned(), proxy),
        ("MESH_SIDECAR".to_owned(), instance.outbound().to_string()),
    ]);
    for (key, text) in &workload.env {
        env.insert(key.clone(), expand(text, value).map_err(fail)?);
    }
    instance.command = command;
    instance.env = env;
    Ok(instance)
}

/// The Istio objects that make pilot see the topology: per service a ServiceEntry
/// selecting its instances; per instance a WorkloadEntry (its address, labels and
/// identity) and a Sidecar whose ingress puts the inbound listener on the service port in
/// front of the app. As one multi-document YAML text.
pub fn generated_config(topology: &Topology, instances: &[Instance]) -> String {
    let namespace = &topology.namespace;
    let mut objects: Vec<Value> = Vec::new();
    for service in &topology.services {
        let ports: Vec<Value> = service
            .ports
            .iter()
            .map(|p| json!({"number": p.number, "name": p.name(), "protocol": p.protocol.as_str()}))
            .collect();
        objects.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": service.name, "namespace": namespace},
            "spec": {
                "hosts": [format!("{}.{namespace}.svc.cluster.local", service.name)],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": ports,
                "workloadSelector": {"labels": {"app": service.name}},
            },
        }));
    }
    for instance in instances {
        objects.push(workload_entry(instance));
        objects.push(sidecar(instance));
    }
    let documents: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap_or_default())
        .collect();
    format!(
        "# Generated by `meshctl local up` from the topology; rewritten on every up.\n{}",
        documents.join("---\n")
    )
}

fn workload_entry(instance: &Instance) -> Value {
    let ports: BTreeMap<&str, u16> = instance
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.number))
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": instance.name, "namespace": instance.namespace},
        "spec": {
            "address": instance.ip.to_string(),
            "ports": ports,
            "labels": instance.labels(),
            "serviceAccount": instance.service_account,
        },
    })
}

fn sidecar(instance: &Instance) -> Value {
    let ingress: Vec<Value> = instance
        .ports
        .iter()
        .map(|p| {
            json!({
                "port": {"number": p.number, "name": p.name, "protocol": p.protocol.as_str()},
                "bind": instance.ip.to_string(),
                "defaultEndpoint": SocketAddr::from((Ipv4Addr::LOCALHOST, p.app_port)).to_string(),
                "captureMode": "NONE",
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": instance.name, "namespace": instance.namespace},
        "spec": {
            "workloadSelector": {"labels": {WORKLOAD_LABEL: instance.name}},
            "ingress": ingress,
        },
    })
}

#[cfg(test)]
mod tests;
