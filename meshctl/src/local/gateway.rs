//! The local ingress gateway: `mesh-proxy --mode gateway` on the loopback address after the
//! workloads', labelled as Istio's and mesh's ingress gateway so the Gateways of
//! `<dir>/config/` (`selector: {istio: ingressgateway}`) select it. Pure: its address,
//! ports and command line; `launch` starts it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use super::plan::PlanError;
use super::topology::Topology;

/// Its workload name, service account and label value.
pub const NAME: &str = "ingressgateway";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGateway {
    pub namespace: String,
    pub ip: Ipv4Addr,
    /// Where its Gateway servers listen.
    pub ports: Vec<u16>,
}

/// Where the control plane is, for its command line.
pub struct Control<'a> {
    pub pilot: SocketAddr,
    pub citadel: SocketAddr,
    pub trust_bundle: &'a Path,
    pub token: &'a Path,
}

/// The gateway of `topology`, if it has one, on the address after its `instances`
/// workload instances (the first on `base`).
pub fn plan(
    topology: &Topology,
    base: Ipv4Addr,
    instances: usize,
) -> Result<Option<PlannedGateway>, PlanError> {
    let Some(gateway) = &topology.gateway else {
        return Ok(None);
    };
    let count = instances.saturating_add(1);
    let ip = u32::try_from(instances)
        .ok()
        .and_then(|n| u32::from(base).checked_add(n))
        .filter(|&ip| ip < u32::from(Ipv4Addr::new(127, 255, 255, 255)))
        .ok_or(PlanError::OutOfAddresses { base, count })?;
    Ok(Some(PlannedGateway {
        namespace: topology.namespace.clone(),
        ip: Ipv4Addr::from(ip),
        ports: gateway.ports.clone(),
    }))
}

impl PlannedGateway {
    pub fn node_id(&self) -> String {
        format!("{NAME}.{}", self.namespace)
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

    /// Its Gateway servers' addresses.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|&p| SocketAddr::from((self.ip, p)))
            .collect()
    }

    /// Every address it binds, for checking before anything starts.
    pub fn binds(&self) -> Vec<SocketAddr> {
        let mut all = vec![self.admin(), self.metrics(), self.health()];
        all.extend(self.listeners());
        all
    }

    /// `mesh-proxy`'s arguments. `--outbound-addr <ip>:0` gives the listeners their IP
    /// (docs/gateways.md) and binds no sidecar listener of its own.
    pub fn args(&self, control: &Control<'_>) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        [
            "--mode",
            "gateway",
            "--pilot",
            &control.pilot.to_string(),
            "--workload",
            NAME,
            "--namespace",
            &self.namespace,
            "--service-account",
            NAME,
            "--labels",
            &format!("istio={NAME},mesh={NAME}"),
            "--app",
            NAME,
            "--instance-ip",
            &self.ip.to_string(),
            "--outbound-addr",
            &SocketAddr::from((self.ip, 0)).to_string(),
            "--admin-addr",
            &self.admin().to_string(),
            "--metrics-addr",
            &self.metrics().to_string(),
            "--health-addr",
            &self.health().to_string(),
            "--ca-addr",
            &control.citadel.to_string(),
            "--trust-bundle",
            &path(control.trust_bundle),
            "--ca-token-file",
            &path(control.token),
            "--access-log",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn topology(gateway: &str) -> Topology {
        let text = format!(
            "namespace: shop\nservices: [{{name: web, ports: [{{number: 9080}}]}}]\n\
             workloads: [{{service: web, replicas: 2}}]\n{gateway}"
        );
        Topology::parse(&text, Path::new("topology.yaml")).unwrap()
    }

    #[test]
    fn the_gateway_takes_the_address_after_the_workloads() {
        let base = Ipv4Addr::new(127, 0, 0, 2);
        let gateway = plan(&topology("gateway: {ports: [8080, 8443]}"), base, 2)
            .unwrap()
            .unwrap();
        assert_eq!(gateway.ip, Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(gateway.node_id(), "ingressgateway.shop");
        assert_eq!(
            gateway.listeners(),
            [
                "127.0.0.4:8080".parse().unwrap(),
                "127.0.0.4:8443".parse().unwrap()
            ]
        );
        assert!(plan(&topology(""), base, 2).unwrap().is_none());
    }

    #[test]
    fn no_address_left_is_an_error() {
        let base = Ipv4Addr::new(127, 255, 255, 253);
        let error = plan(&topology("gateway: {ports: [8080]}"), base, 2).unwrap_err();
        assert!(error.to_string().contains("--base-ip"), "{error}");
    }

    #[test]
    fn bad_gateway_ports_are_refused() {
        for (gateway, expected) in [
            ("gateway: {ports: []}", "no ports"),
            ("gateway: {ports: [15021]}", "gateway proxy's own"),
            ("gateway: {ports: [8080, 8080]}", "twice"),
            ("gateway: {ports: [0]}", "port 0"),
            ("gateway: {port: 8080}", "unknown field"),
        ] {
            let text = format!(
                "services: [{{name: web, ports: [{{number: 9080}}]}}]\n\
                 workloads: [{{service: web}}]\n{gateway}"
            );
            let error = Topology::parse(&text, Path::new("t.yaml")).unwrap_err();
            assert!(error.to_string().contains(expected), "{gateway}: {error}");
        }
    }

    #[test]
    fn the_command_line_is_a_gateway_on_its_own_address() {
        let gateway = plan(
            &topology("gateway: {ports: [8080]}"),
            Ipv4Addr::new(127, 0, 0, 2),
            2,
        )
        .unwrap()
        .unwrap();
        let control = Control {
            pilot: "127.0.0.1:15010".parse().unwrap(),
            citadel: "127.0.0.1:8060".parse().unwrap(),
            trust_bundle: Path::new("/s/ca/trust-bundle.pem"),
            token: Path::new("/s/tokens/ingressgateway"),
        };
        let args = gateway.args(&control).join(" ");
        let line = std::iter::once("mesh-proxy".to_owned()).chain(gateway.args(&control));
        let parsed = <mesh_proxy::config::Config as clap::Parser>::try_parse_from(line).unwrap();
        assert_eq!(parsed.mode, mesh_proxy::config::ProxyMode::Gateway);
        assert_eq!(
            parsed.node_id(),
            gateway.node_id(),
            "what status looks up in pilot"
        );
        for expected in [
            "--mode gateway",
            "--labels istio=ingressgateway,mesh=ingressgateway",
            "--outbound-addr 127.0.0.4:0",
            "--health-addr 127.0.0.4:15021",
            "--ca-token-file /s/tokens/ingressgateway",
        ] {
            assert!(args.contains(expected), "{expected} not in {args}");
        }
    }
}
