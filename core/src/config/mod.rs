//! The config API users write: Istio's kinds, field for field, under Istio's groups and
//! mesh's own. [`crate::load`] reads them from YAML; [`crate::validate`] checks them.

mod common;
mod destination_rule;
mod duration;
mod gateway;
mod mesh_config;
mod security;
mod service_entry;
mod sidecar;
mod telemetry;
mod virtual_service;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use common::*;
pub use destination_rule::*;
pub use duration::{Duration, ParseDurationError};
pub use gateway::*;
pub use mesh_config::*;
pub use security::*;
pub use service_entry::*;
pub use sidecar::*;
pub use telemetry::*;
pub use virtual_service::*;

/// The namespace an object without `metadata.namespace` lands in, as with kubectl.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The metadata mesh reads. Lenient on purpose: `kubectl get -o yaml` output carries
/// uid, resourceVersion, managedFields... which mean nothing here and must not fail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One config object: its metadata and its typed spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Object<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
}

/// The kinds mesh understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    VirtualService,
    DestinationRule,
    Gateway,
    ServiceEntry,
    WorkloadEntry,
    Sidecar,
    PeerAuthentication,
    AuthorizationPolicy,
    RequestAuthentication,
    Telemetry,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Gateway,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Sidecar,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
        Kind::Telemetry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::Gateway => "Gateway",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Sidecar => "Sidecar",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::Telemetry => "Telemetry",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn family(self) -> ApiFamily {
        match self {
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                ApiFamily::Security
            }
            Kind::Telemetry => ApiFamily::Telemetry,
            _ => ApiFamily::Networking,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Networking, security and telemetry kinds live in different API groups, in Istio and
/// in mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiFamily {
    Networking,
    Security,
    Telemetry,
}

impl ApiFamily {
    pub const ALL: [ApiFamily; 3] = [
        ApiFamily::Networking,
        ApiFamily::Security,
        ApiFamily::Telemetry,
    ];
}

/// Every group and version a family is accepted under: mesh's own first, then Istio's.
pub fn accepted_versions(family: ApiFamily) -> &'static [(&'static str, &'static [&'static str])] {
    match family {
        ApiFamily::Networking => &[
            ("networking.mesh.io", &["v1"]),
            ("networking.istio.io", &["v1alpha3", "v1beta1", "v1"]),
        ],
        ApiFamily::Security => &[
            ("security.mesh.io", &["v1"]),
            ("security.istio.io", &["v1beta1", "v1"]),
        ],
        ApiFamily::Telemetry => &[
            ("telemetry.mesh.io", &["v1"]),
            ("telemetry.istio.io", &["v1alpha1", "v1"]),
        ],
    }
}

/// What an (apiVersion, kind) pair is to mesh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeMatch {
    Ours(Kind),
    /// Not a mesh or Istio API (Deployment, Service...): skipped, not rejected.
    Foreign,
    /// In a mesh or Istio group but not something mesh can honour: an error, because
    /// silently ignoring it would change what the user's traffic does.
    Unsupported(String),
}

pub fn classify(api_version: &str, kind: &str) -> TypeMatch {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if !(group.ends_with(".istio.io") || group.ends_with(".mesh.io")) {
        return TypeMatch::Foreign;
    }
    let Some(known) = Kind::from_name(kind) else {
        return TypeMatch::Unsupported(format!(
            "kind {kind} ({api_version}) is not supported by mesh yet"
        ));
    };
    let accepted = accepted_versions(known.family());
    match accepted.iter().find(|(g, _)| *g == group) {
        Some((_, versions)) if versions.contains(&version) => TypeMatch::Ours(known),
        Some((_, versions)) => TypeMatch::Unsupported(format!(
            "apiVersion {api_version} is not accepted for {kind}; use {group}/{}",
            versions.join(", or ")
        )),
        None => TypeMatch::Unsupported(format!(
            "{kind} does not belong to group {group}; use {}",
            accepted
                .iter()
                .map(|(g, v)| format!("{g}/{}", v.last().copied().unwrap_or("v1")))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

/// A config object of any kind mesh understands.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
#[expect(
    clippy::large_enum_variant,
    reason = "objects are loaded once and kept in a Vec; boxing would only add indirection"
)]
pub enum ConfigObject {
    VirtualService(Object<VirtualServiceSpec>),
    DestinationRule(Object<DestinationRuleSpec>),
    Gateway(Object<GatewaySpec>),
    ServiceEntry(Object<ServiceEntrySpec>),
    WorkloadEntry(Object<WorkloadEntrySpec>),
    Sidecar(Object<SidecarSpec>),
    PeerAuthentication(Object<PeerAuthenticationSpec>),
    AuthorizationPolicy(Object<AuthorizationPolicySpec>),
    RequestAuthentication(Object<RequestAuthenticationSpec>),
    Telemetry(Object<TelemetrySpec>),
}

impl ConfigObject {
    pub fn kind(&self) -> Kind {
        match self {
            ConfigObject::VirtualService(_) => Kind::VirtualService,
            ConfigObject::DestinationRule(_) => Kind::DestinationRule,
            ConfigObject::Gateway(_) => Kind::Gateway,
            ConfigObject::ServiceEntry(_) => Kind::ServiceEntry,
            ConfigObject::WorkloadEntry(_) => Kind::WorkloadEntry,
            ConfigObject::Sidecar(_) => Kind::Sidecar,
            ConfigObject::PeerAuthentication(_) => Kind::PeerAuthentication,
            ConfigObject::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            ConfigObject::RequestAuthentication(_) => Kind::RequestAuthentication,
            ConfigObject::Telemetry(_) => Kind::Telemetry,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            ConfigObject::VirtualService(o) => &o.metadata,
            ConfigObject::DestinationRule(o) => &o.metadata,
            ConfigObject::Gateway(o) => &o.metadata,
            ConfigObject::ServiceEntry(o) => &o.metadata,
            ConfigObject::WorkloadEntry(o) => &o.metadata,
            ConfigObject::Sidecar(o) => &o.metadata,
            ConfigObject::PeerAuthentication(o) => &o.metadata,
            ConfigObject::AuthorizationPolicy(o) => &o.metadata,
            ConfigObject::RequestAuthentication(o) => &o.metadata,
            ConfigObject::Telemetry(o) => &o.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_groups_and_versions() {
        for version in [
            "networking.istio.io/v1alpha3",
            "networking.istio.io/v1beta1",
        ] {
            assert_eq!(
                classify(version, "VirtualService"),
                TypeMatch::Ours(Kind::VirtualService)
            );
        }
        assert_eq!(
            classify("networking.mesh.io/v1", "Gateway"),
            TypeMatch::Ours(Kind::Gateway)
        );
        assert_eq!(
            classify("security.istio.io/v1", "AuthorizationPolicy"),
            TypeMatch::Ours(Kind::AuthorizationPolicy)
        );
        for version in [
            "telemetry.istio.io/v1alpha1",
            "telemetry.istio.io/v1",
            "telemetry.mesh.io/v1",
        ] {
            assert_eq!(
                classify(version, "Telemetry"),
                TypeMatch::Ours(Kind::Telemetry)
            );
        }
        assert_eq!(classify("apps/v1", "Deployment"), TypeMatch::Foreign);
        assert_eq!(classify("v1", "Service"), TypeMatch::Foreign);
        let TypeMatch::Unsupported(why) = classify("networking.istio.io/v1alpha3", "EnvoyFilter")
        else {
            panic!("EnvoyFilter must be refused")
        };
        assert!(why.contains("EnvoyFilter"), "{why}");
        let TypeMatch::Unsupported(why) =
            classify("security.istio.io/v1alpha3", "PeerAuthentication")
        else {
            panic!("an unknown version must be refused")
        };
        assert!(
            why.contains("use security.istio.io/v1beta1, or v1"),
            "{why}"
        );
        let TypeMatch::Unsupported(why) = classify("security.istio.io/v1", "VirtualService") else {
            panic!("a kind in the wrong group must be refused")
        };
        assert!(why.contains("networking.mesh.io/v1"), "{why}");
    }
}
