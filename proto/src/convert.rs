//! Between the wire and mesh-core's snapshot: pilot encodes one proxy's [`Snapshot`] as
//! resources, the proxy decodes the resources it holds back into a [`Snapshot`] and compiles
//! it. Both directions live here so they cannot drift apart; a round-trip test holds them
//! together.
//!
//! Decoding never panics on what arrives: every error names the resource and the field.

use std::collections::BTreeMap;

use mesh_core::balance::stable_hash;
use mesh_core::config::{
    Destination, Duration, PortSelector, RouteDestination, Subset, TrafficPolicy,
};
use mesh_core::snapshot::{
    AppProtocol, ClusterSpec, EndpointSpec, InboundSpec, ListenerProtocol, ListenerSpec,
    NamedPolicy, NamedRequestAuthentication, PeerMode, RouteConfigSpec, Snapshot, TelemetrySpec,
    VirtualHostSpec,
};
use serde::de::DeserializeOwned;

use crate::discovery::v1 as pb;
use pb::resource::Kind;

/// A resource's identity on the stream.
pub type ResourceKey = (pb::ResourceType, String);

/// The name a cluster and its endpoints go by: Istio's `outbound|<port>||<host>`.
pub fn cluster_name(host: &str, port: u16) -> String {
    format!("outbound|{port}||{host}")
}

#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: {message}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub name: String,
    pub message: String,
}

/// A resource with its version: a digest of its encoded content, so equal content gives an
/// equal version in every pilot replica and across restarts.
pub fn resource(name: String, kind: Kind) -> pb::Resource {
    let mut bytes = Vec::with_capacity(kind.encoded_len());
    kind.encode(&mut bytes);
    pb::Resource {
        name,
        version: format!("{:016x}", stable_hash(&bytes)),
        kind: Some(kind),
    }
}

pub fn resource_type(resource: &pb::Resource) -> pb::ResourceType {
    match &resource.kind {
        Some(Kind::Listener(_)) => pb::ResourceType::Listener,
        Some(Kind::RouteConfiguration(_)) => pb::ResourceType::RouteConfiguration,
        Some(Kind::Cluster(_)) => pb::ResourceType::Cluster,
        Some(Kind::Endpoints(_)) => pb::ResourceType::Endpoints,
        Some(Kind::InboundPolicy(_)) => pb::ResourceType::InboundPolicy,
        Some(Kind::VirtualHost(_)) => pb::ResourceType::VirtualHost,
        Some(Kind::Telemetry(_)) => pb::ResourceType::Telemetry,
        None => pb::ResourceType::Unspecified,
    }
}

// ---- encoding (pilot) ----

pub fn encode_listener(spec: &ListenerSpec) -> pb::Resource {
    let protocol = match spec.protocol {
        ListenerProtocol::Http => pb::listener::Protocol::Http,
        ListenerProtocol::Tcp => pb::listener::Protocol::Tcp,
        ListenerProtocol::Auto => pb::listener::Protocol::Auto,
    };
    let listener = pb::Listener {
        address: spec.address.to_string(),
        protocol: protocol as i32,
        route_configuration: spec.route_config.clone().unwrap_or_default(),
        tcp_route: spec.tcp_route.iter().map(encode_destination).collect(),
        app_protocol: spec.app_protocol.map(app_protocol_text).unwrap_or_default(),
        server_first_ports: spec
            .server_first_ports
            .iter()
            .map(|p| u32::from(*p))
            .collect(),
        detect_timeout: spec
            .detect_timeout
            .map(|d| d.to_string())
            .unwrap_or_default(),
        inbound: spec.inbound.map(|inbound| pb::InboundListener {
            mtls: match inbound.mtls {
                PeerMode::Permissive => pb::inbound_listener::PeerMode::Permissive,
                PeerMode::Strict => pb::inbound_listener::PeerMode::Strict,
                PeerMode::Disable => pb::inbound_listener::PeerMode::Disable,
            } as i32,
        }),
        tls_json: spec.tls.as_ref().map(json).unwrap_or_default(),
    };
    resource(spec.name.clone(), Kind::Listener(listener))
}

fn encode_destination(route: &RouteDestination) -> pb::WeightedDestination {
    pb::WeightedDestination {
        host: route.destination.host.clone(),
        subset: route.destination.subset.clone().unwrap_or_default(),
        port: route.destination.port.as_ref().map_or(0, |p| p.number),
        weight: route.weight.unwrap_or(0),
    }
}

fn app_protocol_text(protocol: AppProtocol) -> String {
    serde_json::to_value(protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A route configuration with its virtual hosts inside.
pub fn encode_route_config(spec: &RouteConfigSpec) -> pb::Resource {
    let virtual_hosts = spec
        .virtual_hosts
        .iter()
        .map(|host| encode_virtual_host_body("", host))
        .collect();
    resource(
        spec.name.clone(),
        Kind::RouteConfiguration(pb::RouteConfiguration { virtual_hosts }),
    )
}

/// A route configuration and each of its virtual hosts as resources of their own, so a
/// change to one host resends only that host.
pub fn encode_route_config_split(spec: &RouteConfigSpec) -> Vec<pb::Resource> {
    let mut resources = vec![resource(
        spec.name.clone(),
        Kind::RouteConfiguration(pb::RouteConfiguration::default()),
    )];
    resources.extend(
        spec.virtual_hosts
            .iter()
            .map(|host| encode_virtual_host(&spec.name, host)),
    );
    resources
}

/// One virtual host of route configuration `route_config`, named `<route_config>/<host>`.
pub fn encode_virtual_host(route_config: &str, host: &VirtualHostSpec) -> pb::Resource {
    resource(
        format!("{route_config}/{}", host.name),
        Kind::VirtualHost(encode_virtual_host_body(route_config, host)),
    )
}

fn encode_virtual_host_body(route_config: &str, host: &VirtualHostSpec) -> pb::VirtualHost {
    pb::VirtualHost {
        route_configuration: route_config.to_owned(),
        name: host.name.clone(),
        domains: host.domains.clone(),
        routes_json: json(&host.routes),
        virtual_service: host.virtual_service.clone().unwrap_or_default(),
    }
}

/// The cluster without its endpoints: those travel as their own resource.
pub fn encode_cluster(spec: &ClusterSpec) -> pb::Resource {
    let cluster = pb::Cluster {
        host: spec.host.clone(),
        port: u32::from(spec.port),
        traffic_policy_json: spec.traffic_policy.as_ref().map(json).unwrap_or_default(),
        subsets_json: if spec.subsets.is_empty() {
            String::new()
        } else {
            json(&spec.subsets)
        },
        destination_rule: spec.destination_rule.clone().unwrap_or_default(),
        dns_json: spec.dns.as_ref().map(json).unwrap_or_default(),
    };
    resource(cluster_name(&spec.host, spec.port), Kind::Cluster(cluster))
}

pub fn encode_endpoints(host: &str, port: u16, endpoints: &[EndpointSpec]) -> pb::Resource {
    let endpoints = endpoints
        .iter()
        .map(|e| pb::Endpoint {
            address: e.address.to_string(),
            labels: e
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            weight: e.weight.unwrap_or(0),
            identity: e.identity.clone().unwrap_or_default(),
            workload: e.workload.clone().unwrap_or_default(),
        })
        .collect();
    resource(
        cluster_name(host, port),
        Kind::Endpoints(pb::ClusterEndpoints { endpoints }),
    )
}

/// Every resource of a snapshot, endpoints split from their clusters.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<pb::Resource> {
    let mut resources: Vec<pb::Resource> = snapshot.listeners.iter().map(encode_listener).collect();
    resources.extend(
        snapshot
            .route_configs
            .iter()
            .flat_map(encode_route_config_split),
    );
    if !snapshot.authorization_policies.is_empty() || !snapshot.request_authentications.is_empty() {
        resources.push(encode_inbound_policy(
            &snapshot.authorization_policies,
            &snapshot.request_authentications,
        ));
    }
    if let Some(telemetry) = &snapshot.telemetry {
        resources.push(encode_telemetry(telemetry));
    }
    for cluster in &snapshot.clusters {
        resources.push(encode_cluster(cluster));
        resources.push(encode_endpoints(
            &cluster.host,
            cluster.port,
            &cluster.endpoints,
        ));
    }
    resources
}

/// The workload's telemetry resource, named `telemetry`.
pub fn encode_telemetry(telemetry: &TelemetrySpec) -> pb::Resource {
    resource(
        "telemetry".into(),
        Kind::Telemetry(pb::Telemetry {
            telemetry_json: json(telemetry),
        }),
    )
}

/// The workload's inbound policy resource, named `inbound`.
pub fn encode_inbound_policy(
    authorization_policies: &[NamedPolicy],
    request_authentications: &[NamedRequestAuthentication],
) -> pb::Resource {
    resource(
        "inbound".into(),
        Kind::InboundPolicy(pb::InboundPolicy {
            peer_authentications_json: "[]".into(),
            authorization_policies_json: json(&authorization_policies),
            request_authentications_json: json(&request_authentications),
        }),
    )
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("config types always serialize")
}

// ---- decoding (proxy) ----

/// Assembles the snapshot the resources describe. Resources are taken in name order, so the
/// same set always gives the same snapshot; a cluster's endpoints are joined by name.
pub fn decode_snapshot<'a>(
    version: &str,
    resources: impl IntoIterator<Item = &'a pb::Resource>,
) -> Result<Snapshot, DecodeError> {
    let mut by_name: BTreeMap<(i32, &str), &pb::Resource> = BTreeMap::new();
    for resource in resources {
        by_name.insert(
            (resource_type(resource) as i32, resource.name.as_str()),
            resource,
        );
    }
    let mut endpoints: BTreeMap<&str, &pb::ClusterEndpoints> = BTreeMap::new();
    for resource in by_name.values() {
        if let Some(Kind::Endpoints(e)) = &resource.kind {
            endpoints.insert(&resource.name, e);
        }
    }
    let mut hosts: BTreeMap<&str, Vec<(&str, &pb::VirtualHost)>> = BTreeMap::new();
    for resource in by_name.values() {
        if let Some(Kind::VirtualHost(host)) = &resource.kind {
            hosts
                .entry(host.route_configuration.as_str())
                .or_default()
                .push((&resource.name, host));
        }
    }
    let mut snapshot = Snapshot {
        version: version.to_owned(),
        ..Snapshot::default()
    };
    for resource in by_name.values() {
        let name = resource.name.as_str();
        match &resource.kind {
            Some(Kind::Listener(l)) => snapshot.listeners.push(decode_listener(name, l)?),
            Some(Kind::RouteConfiguration(r)) => {
                let apart = hosts.remove(name).unwrap_or_default();
                snapshot
                    .route_configs
                    .push(decode_route_config(name, r, &apart)?)
            }
            Some(Kind::Cluster(c)) => {
                let mut cluster = decode_cluster(name, c)?;
                if let Some(e) = endpoints.get(name) {
                    cluster.endpoints = decode_endpoints(name, e)?;
                }
                snapshot.clusters.push(cluster);
            }
            Some(Kind::InboundPolicy(policy)) => {
                snapshot.request_authentications = if policy.request_authentications_json.is_empty()
                {
                    Vec::new()
                } else {
                    from_json(&policy.request_authentications_json).map_err(|e| {
                        error("inbound policy", name, format!("requestAuthentications{e}"))
                    })?
                };
                snapshot.authorization_policies = if policy.authorization_policies_json.is_empty() {
                    Vec::new()
                } else {
                    from_json(&policy.authorization_policies_json).map_err(|e| {
                        error("inbound policy", name, format!("authorizationPolicies{e}"))
                    })?
                };
            }
            Some(Kind::Telemetry(telemetry)) => {
                snapshot.telemetry = Some(
                    from_json(&telemetry.telemetry_json)
                        .map_err(|e| error("telemetry", name, format!("telemetry{e}")))?,
                );
            }
            Some(Kind::Endpoints(_) | Kind::VirtualHost(_)) => {}
            None => return Err(error("resource", name, "has no content")),
        }
    }
    if let Some((route_config, apart)) = hosts.into_iter().next() {
        return Err(error(
            "virtual host",
            apart[0].0,
            format!("names route configuration {route_config:?}, which is not held"),
        ));
    }
    Ok(snapshot)
}

fn error(kind: &'static str, name: &str, message: impl Into<String>) -> DecodeError {
    DecodeError {
        kind,
        name: name.to_owned(),
        message: message.into(),
    }
}

fn decode_listener(name: &str, l: &pb::Listener) -> Result<ListenerSpec, DecodeError> {
    let fail = |message: String| error("listener", name, message);
    let protocol = match pb::listener::Protocol::try_from(l.protocol) {
        Ok(pb::listener::Protocol::Http) => ListenerProtocol::Http,
        Ok(pb::listener::Protocol::Tcp) => ListenerProtocol::Tcp,
        Ok(pb::listener::Protocol::Auto) => ListenerProtocol::Auto,
        Err(_) => return Err(fail(format!("protocol: unknown value {}", l.protocol))),
    };
    let address = l
        .address
        .parse()
        .map_err(|e| fail(format!("address: {:?}: {e}", l.address)))?;
    let app_protocol = if l.app_protocol.is_empty() {
        None
    } else {
        Some(
            serde_json::from_value(serde_json::Value::String(l.app_protocol.clone()))
                .map_err(|e| fail(format!("appProtocol: {e}")))?,
        )
    };
    let server_first_ports = l
        .server_first_ports
        .iter()
        .map(|p| {
            u16::try_from(*p).map_err(|_| fail(format!("serverFirstPorts: {p} is not a port")))
        })
        .collect::<Result<_, _>>()?;
    let detect_timeout = if l.detect_timeout.is_empty() {
        None
    } else {
        Some(Duration::parse(&l.detect_timeout).map_err(|e| fail(format!("detectTimeout: {e}")))?)
    };
    let inbound = match &l.inbound {
        None => None,
        Some(inbound) => Some(InboundSpec {
            mtls: match pb::inbound_listener::PeerMode::try_from(inbound.mtls) {
                Ok(pb::inbound_listener::PeerMode::Permissive) => PeerMode::Permissive,
                Ok(pb::inbound_listener::PeerMode::Strict) => PeerMode::Strict,
                Ok(pb::inbound_listener::PeerMode::Disable) => PeerMode::Disable,
                Err(_) => {
                    return Err(fail(format!(
                        "inbound.mtls: unknown value {}",
                        inbound.mtls
                    )));
                }
            },
        }),
    };
    let tls = optional_json(&l.tls_json).map_err(|e| fail(format!("tlsJson{e}")))?;
    Ok(ListenerSpec {
        tls,
        inbound,
        name: name.to_owned(),
        address,
        protocol,
        route_config: Some(l.route_configuration.clone()).filter(|r| !r.is_empty()),
        tcp_route: l.tcp_route.iter().map(decode_destination).collect(),
        app_protocol,
        server_first_ports,
        detect_timeout,
    })
}

fn decode_destination(d: &pb::WeightedDestination) -> RouteDestination {
    RouteDestination {
        destination: Destination {
            host: d.host.clone(),
            subset: Some(d.subset.clone()).filter(|s| !s.is_empty()),
            port: (d.port != 0).then_some(PortSelector { number: d.port }),
        },
        weight: (d.weight != 0).then_some(d.weight),
    }
}

fn decode_route_config(
    name: &str,
    r: &pb::RouteConfiguration,
    apart: &[(&str, &pb::VirtualHost)],
) -> Result<RouteConfigSpec, DecodeError> {
    let inside = r.virtual_hosts.iter().enumerate().map(|(i, host)| {
        decode_virtual_host(host).map_err(|e| {
            error(
                "route configuration",
                name,
                format!("virtualHosts[{i}] ({}): routes{e}", host.name),
            )
        })
    });
    let outside = apart.iter().map(|(resource, host)| {
        decode_virtual_host(host).map_err(|e| error("virtual host", resource, format!("routes{e}")))
    });
    let virtual_hosts = inside.chain(outside).collect::<Result<_, _>>()?;
    Ok(RouteConfigSpec {
        name: name.to_owned(),
        virtual_hosts,
    })
}

fn decode_virtual_host(host: &pb::VirtualHost) -> Result<VirtualHostSpec, String> {
    Ok(VirtualHostSpec {
        name: host.name.clone(),
        domains: host.domains.clone(),
        routes: from_json(&host.routes_json)?,
        virtual_service: Some(host.virtual_service.clone()).filter(|v| !v.is_empty()),
    })
}

fn decode_cluster(name: &str, c: &pb::Cluster) -> Result<ClusterSpec, DecodeError> {
    let fail = |message: String| error("cluster", name, message);
    let port =
        u16::try_from(c.port).map_err(|_| fail(format!("port: {} is not a port", c.port)))?;
    let traffic_policy: Option<TrafficPolicy> =
        optional_json(&c.traffic_policy_json).map_err(|e| fail(format!("trafficPolicy{e}")))?;
    let subsets: Vec<Subset> = if c.subsets_json.is_empty() {
        Vec::new()
    } else {
        from_json(&c.subsets_json).map_err(|e| fail(format!("subsets{e}")))?
    };
    let dns = optional_json(&c.dns_json).map_err(|e| fail(format!("dns{e}")))?;
    Ok(ClusterSpec {
        host: c.host.clone(),
        port,
        endpoints: Vec::new(),
        traffic_policy,
        subsets,
        destination_rule: Some(c.destination_rule.clone()).filter(|d| !d.is_empty()),
        dns,
    })
}

fn decode_endpoints(
    name: &str,
    e: &pb::ClusterEndpoints,
) -> Result<Vec<EndpointSpec>, DecodeError> {
    e.endpoints
        .iter()
        .enumerate()
        .map(|(i, endpoint)| {
            let address = endpoint.address.parse().map_err(|err| {
                error(
                    "endpoints",
                    name,
                    format!("endpoints[{i}].address: {:?}: {err}", endpoint.address),
                )
            })?;
            Ok(EndpointSpec {
                address,
                labels: endpoint
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                weight: (endpoint.weight != 0).then_some(endpoint.weight),
                identity: (!endpoint.identity.is_empty()).then(|| endpoint.identity.clone()),
                workload: (!endpoint.workload.is_empty()).then(|| endpoint.workload.clone()),
            })
        })
        .collect()
}

/// An optional JSON field: empty is `None`.
fn optional_json<T: DeserializeOwned>(text: &str) -> Result<Option<T>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        from_json(text).map(Some)
    }
}

/// Parses JSON, the error starting with the path of the field (`[0].route[1].weight: ...`).
fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let path = if path.is_empty() || path.starts_with('[') {
            path
        } else {
            format!(".{path}")
        };
        format!("{path}: {}", err.into_inner())
    })
}

#[cfg(test)]
mod tests;
