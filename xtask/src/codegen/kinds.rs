//! What codegen knows about each kind beyond its Rust type: the CRD extras Istio ships
//! (short names, categories, printer columns) and a one-line summary for the docs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use mesh_core::config::{self as config, ApiFamily, Kind};

/// An extra `kubectl get` column.
pub struct Column {
    pub name: &'static str,
    pub json_path: &'static str,
    pub description: &'static str,
}

pub struct KindInfo {
    pub kind: Kind,
    /// The CRD kube derives from the type, before codegen's post-processing.
    pub crd: fn() -> CustomResourceDefinition,
    /// The spec's schema with named definitions (`$ref`), which the docs need to tell a
    /// `Duration` or an `Unsupported` field from a plain string.
    pub spec_schema: fn() -> schemars::Schema,
    /// Istio's short names, so `kubectl get vs` works the same.
    pub short_names: &'static [&'static str],
    /// Columns before `Age` (which is always last when any are set, as in Istio).
    pub columns: &'static [Column],
    pub summary: &'static str,
}

impl KindInfo {
    pub fn categories(&self) -> Vec<String> {
        let family = match self.kind.family() {
            ApiFamily::Networking => "networking-mesh-io",
            ApiFamily::Security => "security-mesh-io",
            ApiFamily::Telemetry => "telemetry-mesh-io",
        };
        vec!["mesh-io".to_owned(), family.to_owned()]
    }
}

/// Every kind, in [`Kind::ALL`]'s order.
pub fn all() -> Vec<KindInfo> {
    Kind::ALL.into_iter().map(info).collect()
}

/// A `match`, so that a new [`Kind`] does not compile until codegen knows about it.
pub fn info(kind: Kind) -> KindInfo {
    match kind {
        Kind::VirtualService => KindInfo {
            kind,
            crd: config::VirtualService::crd,
            spec_schema: || schemars::schema_for!(config::VirtualServiceSpec),
            short_names: &["vs"],
            columns: &[
                Column {
                    name: "Gateways",
                    json_path: ".spec.gateways",
                    description: "The gateways and sidecars these routes apply to",
                },
                Column {
                    name: "Hosts",
                    json_path: ".spec.hosts",
                    description: "The destination hosts these routes apply to",
                },
            ],
            summary: "How requests for a host are routed: matches, weighted destinations, \
                      redirects, rewrites, timeouts, retries, fault injection, mirroring.",
        },
        Kind::DestinationRule => KindInfo {
            kind,
            crd: config::DestinationRule::crd,
            spec_schema: || schemars::schema_for!(config::DestinationRuleSpec),
            short_names: &["dr"],
            columns: &[Column {
                name: "Host",
                json_path: ".spec.host",
                description: "The service these policies apply to",
            }],
            summary: "What happens to traffic for a host after routing: subsets, load \
                      balancing, connection pools, outlier detection and TLS.",
        },
        Kind::Gateway => KindInfo {
            kind,
            crd: config::Gateway::crd,
            spec_schema: || schemars::schema_for!(config::GatewaySpec),
            short_names: &["gw"],
            columns: &[],
            summary: "A load balancer at the edge of the mesh: the ports, hosts and TLS it \
                      serves.",
        },
        Kind::ServiceEntry => KindInfo {
            kind,
            crd: config::ServiceEntry::crd,
            spec_schema: || schemars::schema_for!(config::ServiceEntrySpec),
            short_names: &["se"],
            columns: &[
                Column {
                    name: "Hosts",
                    json_path: ".spec.hosts",
                    description: "The hosts of the service",
                },
                Column {
                    name: "Location",
                    json_path: ".spec.location",
                    description: "Whether the service is outside the mesh (MESH_EXTERNAL) or \
                                  part of it (MESH_INTERNAL)",
                },
                Column {
                    name: "Resolution",
                    json_path: ".spec.resolution",
                    description: "How the hosts resolve to endpoints (NONE, STATIC, DNS, \
                                  DNS_ROUND_ROBIN)",
                },
            ],
            summary: "A service in the registry that is not a Kubernetes Service: external \
                      hosts, and in local mode every service and its addresses.",
        },
        Kind::WorkloadEntry => KindInfo {
            kind,
            crd: config::WorkloadEntry::crd,
            spec_schema: || schemars::schema_for!(config::WorkloadEntrySpec),
            short_names: &["we"],
            columns: &[Column {
                name: "Address",
                json_path: ".spec.address",
                description: "The workload's address",
            }],
            summary: "One workload that is not a pod (a VM, or a process in local mode), \
                      selected by ServiceEntries through its labels.",
        },
        Kind::Sidecar => KindInfo {
            kind,
            crd: config::Sidecar::crd,
            spec_schema: || schemars::schema_for!(config::SidecarSpec),
            short_names: &[],
            columns: &[],
            summary: "Narrows what a proxy sees and how it listens.",
        },
        Kind::PeerAuthentication => KindInfo {
            kind,
            crd: config::PeerAuthentication::crd,
            spec_schema: || schemars::schema_for!(config::PeerAuthenticationSpec),
            short_names: &["pa"],
            columns: &[Column {
                name: "Mode",
                json_path: ".spec.mtls.mode",
                description: "The mutual TLS mode for incoming connections",
            }],
            summary: "Whether incoming connections must use mutual TLS, for a namespace, a \
                      workload or a port.",
        },
        Kind::AuthorizationPolicy => KindInfo {
            kind,
            crd: config::AuthorizationPolicy::crd,
            spec_schema: || schemars::schema_for!(config::AuthorizationPolicySpec),
            short_names: &["ap"],
            columns: &[Column {
                name: "Action",
                json_path: ".spec.action",
                description: "What a matching request gets (ALLOW, DENY, AUDIT, CUSTOM)",
            }],
            summary: "Who may call what: rules on the caller's identity, the request and \
                      its attributes.",
        },
        Kind::RequestAuthentication => KindInfo {
            kind,
            crd: config::RequestAuthentication::crd,
            spec_schema: || schemars::schema_for!(config::RequestAuthenticationSpec),
            short_names: &["ra"],
            columns: &[],
            summary: "Which JSON Web Tokens a workload accepts, and what it does with their \
                      claims.",
        },
        Kind::Telemetry => KindInfo {
            kind,
            crd: config::Telemetry::crd,
            spec_schema: || schemars::schema_for!(config::TelemetrySpec),
            short_names: &["telemetry"],
            columns: &[],
            summary: "Access logs and tracing (providers, sampling, custom tags) for the \
                      mesh, a namespace or a workload.",
        },
    }
}
