//! What applies to one pod, read from pilot's `/debug/config_dump?proxy=ID` (the proxy's
//! node, the snapshot pilot would send it and its inbound policy) and, when reachable, the
//! proxy's own `/config_dump`. A function of those documents: no I/O here.
//!
//! The snapshot is translated config, so Services are recognised by what they became: a
//! Service selecting the pod is an outbound cluster with the pod among its endpoints. A
//! cluster names its DestinationRule and a virtual host its VirtualService (pilot's names,
//! `namespace/name`); a virtual host of an older pilot without the name counts as routed
//! by a VirtualService when its routes are not just pilot's `default` route.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cmd::proxy_config::tables::route_match;
use crate::cmd::proxy_config::view::{self, Cluster, RouteDestination, Snapshot};

/// The node as pilot's dump shows it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Node {
    id: String,
    workload: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    service_account: String,
    metadata: NodeMetadata,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NodeMetadata {
    ip_addresses: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PilotDump {
    proxy: Node,
    version: Option<String>,
    snapshot: Snapshot,
    inbound: Option<InboundPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct InboundPolicy {
    peer_authentications: Vec<Named>,
    authorization_policies: Vec<Named>,
    request_authentications: Vec<Named>,
}

/// A policy as pilot names it: `namespace/name` and its spec.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    name: String,
    spec: Value,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub node: String,
    pub workload: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// What pilot would send now.
    pub pilot_version: Option<String>,
    /// What the proxy runs, when its admin port answered.
    pub proxy_version: Option<String>,
    pub services: Vec<ServiceView>,
    pub destination_rules: Vec<RuleView>,
    pub virtual_services: Vec<RoutingView>,
    pub inbound_ports: Vec<PortView>,
    pub peer_authentications: Vec<PolicyView>,
    pub authorization_policies: Vec<PolicyView>,
    pub request_authentications: Vec<PolicyView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub host: String,
    pub port: u16,
}

/// A DestinationRule as the cluster shows it: the subsets the pod is in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// `namespace/name`, when pilot named it.
    pub name: Option<String>,
    pub host: String,
    pub port: u16,
    /// `name (k=v, ...)` of each subset whose labels the pod carries.
    pub subsets: Vec<String>,
    /// Subsets the pod is not in.
    pub other_subsets: Vec<String>,
    pub traffic_policy: Option<Value>,
}

/// A virtual host with VirtualService routes to one of the pod's services.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingView {
    /// `namespace/name`, when pilot named it.
    pub name: Option<String>,
    pub route_config: String,
    pub virtual_host: String,
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub name: String,
    /// As `proxy-config routes` writes MATCH.
    pub conditions: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct PortView {
    pub address: String,
    pub protocol: String,
    /// PeerAuthentication's effective mode on that port.
    pub mtls: String,
}

#[derive(Debug, Serialize)]
pub struct PolicyView {
    /// `namespace/name`.
    pub name: String,
    /// Why it applies: `mesh-wide (NS)`, `namespace NS`, `selector k=v`.
    pub scope: String,
    pub summary: String,
}

/// The pod as pilot and (when given) its proxy describe it.
pub fn describe(pilot: &Value, proxy: Option<&Value>) -> Description {
    let dump: PilotDump = view::read(pilot);
    let node = &dump.proxy;
    let ips: Vec<&str> = node
        .metadata
        .ip_addresses
        .split(',')
        .map(str::trim)
        .collect();
    let mine = |c: &Cluster| {
        !c.host.starts_with("inbound|")
            && c.endpoints.iter().any(|e| {
                let ip = e
                    .address
                    .rsplit_once(':')
                    .map_or(e.address.as_str(), |(ip, _)| ip);
                ips.contains(&ip.trim_matches(['[', ']']))
                    || (!node.workload.is_empty()
                        && e.labels.get("mesh.io/workload") == Some(&node.workload))
            })
    };
    let selecting: Vec<&Cluster> = dump.snapshot.clusters.iter().filter(|c| mine(c)).collect();
    let inbound = dump.inbound.unwrap_or_default();
    let scope = |named: &Named| scope(named, &node.namespace);
    Description {
        node: node.id.clone(),
        workload: node.workload.clone(),
        namespace: node.namespace.clone(),
        labels: node.labels.clone(),
        service_account: node.service_account.clone(),
        pilot_version: dump.version.clone(),
        proxy_version: proxy.and_then(|p| p["version"].as_str().map(str::to_owned)),
        services: selecting
            .iter()
            .map(|c| ServiceView {
                host: c.host.clone(),
                port: c.port,
            })
            .collect(),
        destination_rules: selecting
            .iter()
            .filter(|c| {
                c.destination_rule.is_some() || !c.subsets.is_empty() || c.traffic_policy.is_some()
            })
            .map(|c| rule(c, &node.labels))
            .collect(),
        virtual_services: routing(&dump.snapshot, &selecting),
        inbound_ports: dump
            .snapshot
            .listeners
            .iter()
            .filter_map(|l| {
                let inbound = l.inbound.as_ref()?;
                Some(PortView {
                    address: l.address.clone(),
                    protocol: l.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    mtls: inbound.mtls.clone().unwrap_or_else(|| "-".to_owned()),
                })
            })
            .collect(),
        peer_authentications: policies(&inbound.peer_authentications, scope, peer_summary),
        authorization_policies: policies(&inbound.authorization_policies, scope, authz_summary),
        request_authentications: policies(&inbound.request_authentications, scope, jwt_summary),
    }
}

fn rule(cluster: &Cluster, labels: &BTreeMap<String, String>) -> RuleView {
    let (mine, others): (Vec<_>, Vec<_>) = cluster
        .subsets
        .iter()
        .partition(|s| s.labels.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let show = |s: &&view::Subset| format!("{} ({})", s.name, pairs(&s.labels));
    RuleView {
        name: cluster.destination_rule.clone(),
        host: cluster.host.clone(),
        port: cluster.port,
        subsets: mine.iter().map(show).collect(),
        other_subsets: others.iter().map(|s| s.name.clone()).collect(),
        traffic_policy: cluster.traffic_policy.clone(),
    }
}

/// Virtual hosts with a route to one of `services` that pilot did not make on its own.
fn routing(snapshot: &Snapshot, services: &[&Cluster]) -> Vec<RoutingView> {
    let to_service = |d: &RouteDestination| services.iter().any(|c| c.host == d.destination.host);
    let mut views = Vec::new();
    for config in &snapshot.route_configs {
        for host in &config.virtual_hosts {
            let from_config = host.virtual_service.is_some()
                || host
                    .routes
                    .iter()
                    .any(|r| !(r.name == "default" && r.matches.is_empty()));
            if !from_config || !host.routes.iter().any(|r| r.route.iter().any(to_service)) {
                continue;
            }
            views.push(RoutingView {
                name: host.virtual_service.clone(),
                route_config: config.name.clone(),
                virtual_host: host.name.clone(),
                routes: host
                    .routes
                    .iter()
                    .map(|r| RouteView {
                        name: if r.name.is_empty() {
                            "-".to_owned()
                        } else {
                            r.name.clone()
                        },
                        conditions: route_match(&r.matches),
                        to: destinations(&r.route),
                    })
                    .collect(),
            });
        }
    }
    views
}

fn destinations(route: &[RouteDestination]) -> String {
    if route.is_empty() {
        return "(no destination: redirect or direct response)".to_owned();
    }
    let each: Vec<String> = route
        .iter()
        .map(|d| {
            let mut text = d.weight.map(|w| format!("{w}% ")).unwrap_or_default();
            text.push_str(&d.destination.host);
            if let Some(port) = &d.destination.port {
                text.push_str(&format!(":{}", port.number));
            }
            if let Some(subset) = &d.destination.subset {
                text.push_str(&format!(" subset {subset}"));
            }
            text
        })
        .collect();
    each.join(", ")
}

/// Why a policy applies to a pod of `namespace`: its selector, else its namespace, and a
/// policy of another namespace can only be the root namespace's, mesh-wide.
fn scope(named: &Named, namespace: &str) -> String {
    let selector = named.spec["selector"]["matchLabels"]
        .as_object()
        .filter(|m| !m.is_empty());
    let policy_namespace = named.name.split_once('/').map_or("", |(ns, _)| ns);
    match selector {
        Some(labels) => {
            let labels: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            format!("selector {}", pairs(&labels))
        }
        None if policy_namespace == namespace => format!("namespace {namespace}"),
        None => format!("mesh-wide (root namespace {policy_namespace})"),
    }
}

fn policies(
    named: &[Named],
    scope: impl Fn(&Named) -> String,
    summary: fn(&Value) -> String,
) -> Vec<PolicyView> {
    named
        .iter()
        .map(|n| PolicyView {
            name: n.name.clone(),
            scope: scope(n),
            summary: summary(&n.spec),
        })
        .collect()
}

fn peer_summary(spec: &Value) -> String {
    let mode = spec["mtls"]["mode"].as_str().unwrap_or("UNSET");
    let mut text = format!("mode {mode}");
    if let Some(ports) = spec["portLevelMtls"].as_object() {
        for (port, level) in ports {
            let mode = level["mode"].as_str().unwrap_or("UNSET");
            text.push_str(&format!(", port {port}: {mode}"));
        }
    }
    text
}

fn authz_summary(spec: &Value) -> String {
    let action = spec["action"].as_str().unwrap_or("ALLOW");
    match spec["rules"].as_array().map_or(0, Vec::len) {
        0 if action == "ALLOW" => "ALLOW, no rules: denies every request".to_owned(),
        0 => format!("{action}, no rules: matches nothing"),
        1 => format!("{action}, 1 rule"),
        n => format!("{action}, {n} rules"),
    }
}

fn jwt_summary(spec: &Value) -> String {
    let issuers: Vec<&str> = spec["jwtRules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["issuer"].as_str())
        .collect();
    if issuers.is_empty() {
        "no JWT rules".to_owned()
    } else {
        format!("issuers {}", issuers.join(", "))
    }
}

fn pairs(labels: &BTreeMap<String, String>) -> String {
    let each: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    each.join(", ")
}

/// The description as istioctl's `x describe pod` lays it out.
pub fn write(d: &Description, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Pod: {} (proxy {})", d.workload, d.node)?;
    writeln!(out, "   Namespace: {}", d.namespace)?;
    writeln!(out, "   Labels: {}", pairs(&d.labels))?;
    writeln!(out, "   Service account: {}", d.service_account)?;
    write_sync(d, out)?;
    if d.services.is_empty() {
        writeln!(out, "\nNo Service selects this pod")?;
    }
    for service in &d.services {
        writeln!(out, "\nService: {} port {}", service.host, service.port)?;
    }
    for rule in &d.destination_rules {
        let name = rule
            .name
            .as_deref()
            .map(|n| format!("{n} "))
            .unwrap_or_default();
        writeln!(
            out,
            "\nDestinationRule {name}for {} port {}",
            rule.host, rule.port
        )?;
        match rule.subsets.as_slice() {
            [] => writeln!(out, "   Matching subsets: none")?,
            mine => writeln!(out, "   Matching subsets: {}", mine.join("; "))?,
        }
        if !rule.other_subsets.is_empty() {
            writeln!(
                out,
                "      (Non-matching subsets {})",
                rule.other_subsets.join(", ")
            )?;
        }
        match &rule.traffic_policy {
            Some(policy) => writeln!(out, "   Traffic policy: {policy}")?,
            None => writeln!(out, "   No traffic policy")?,
        }
    }
    for vs in &d.virtual_services {
        writeln!(
            out,
            "\nVirtualService {}routes (route config {}, host {}):",
            vs.name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            vs.route_config,
            vs.virtual_host
        )?;
        for route in &vs.routes {
            writeln!(
                out,
                "   {}: {} -> {}",
                route.name, route.conditions, route.to
            )?;
        }
    }
    if !d.inbound_ports.is_empty() {
        writeln!(out)?;
    }
    for port in &d.inbound_ports {
        writeln!(
            out,
            "Inbound {} ({}): mTLS {}",
            port.address, port.protocol, port.mtls
        )?;
    }
    write_policies("PeerAuthentication", &d.peer_authentications, out)?;
    write_policies("AuthorizationPolicy", &d.authorization_policies, out)?;
    write_policies("RequestAuthentication", &d.request_authentications, out)
}

fn write_sync(d: &Description, out: &mut impl Write) -> io::Result<()> {
    let pilot = d.pilot_version.as_deref().unwrap_or("-");
    match d.proxy_version.as_deref() {
        Some(v) if v == pilot => writeln!(out, "   Config: version {v}, as pilot would send it"),
        Some(v) => writeln!(
            out,
            "   Config: the proxy runs {v}, pilot would send {pilot} (`meshctl proxy-status` says why)"
        ),
        None => writeln!(
            out,
            "   Config: pilot would send {pilot} (the proxy's admin port was not read)"
        ),
    }
}

fn write_policies(kind: &str, all: &[PolicyView], out: &mut impl Write) -> io::Result<()> {
    if all.is_empty() {
        return writeln!(out, "No {kind} applies");
    }
    for p in all {
        writeln!(out, "{kind} {} ({}): {}", p.name, p.scope, p.summary)?;
    }
    Ok(())
}
