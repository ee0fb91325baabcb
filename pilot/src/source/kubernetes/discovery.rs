//! Which config CRDs to watch. A cluster may serve mesh's groups, Istio's, both or neither,
//! each at several versions; a CRD serves every object under every version it has, so
//! pilot watches exactly one version per group and kind, or it would see each object twice.

use kube::Client;
use kube::api::ApiResource;
use kube::discovery::{ApiGroup, Discovery, verbs};
use mesh_core::config::{ApiFamily, Kind, accepted_versions};

/// What discovery reported for one API group.
#[derive(Clone, Debug, Default)]
pub struct ServedGroup {
    pub name: String,
    /// The version the API server prefers (for a CRD: its storage version's choice).
    pub preferred: Option<String>,
    /// Every resource the group serves and that can be listed and watched, at every version.
    pub resources: Vec<ApiResource>,
}

/// A config kind to watch, at the group and version chosen for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigResource {
    pub kind: Kind,
    pub resource: ApiResource,
}

/// The API groups mesh reads config from: mesh's own and Istio's, networking, security
/// and telemetry.
pub fn config_groups() -> Vec<&'static str> {
    ApiFamily::ALL
        .iter()
        .flat_map(|family| accepted_versions(*family).iter().map(|(group, _)| *group))
        .collect()
}

/// For each config group in `groups` and each kind mesh knows in that group's family, the
/// one version to watch: the group's preferred version when it serves the kind and mesh
/// accepts it, otherwise the most stable accepted version that serves it. Groups mesh does
/// not read and kinds a group does not serve are left out; the result is sorted by group
/// and kind.
pub fn choose_resources(groups: &[ServedGroup]) -> Vec<ConfigResource> {
    let mut chosen: Vec<ConfigResource> = groups
        .iter()
        .filter_map(|group| Some((group, accepted_for(&group.name)?)))
        .flat_map(|(group, (family, accepted))| {
            Kind::ALL
                .into_iter()
                .filter(move |kind| kind.family() == family)
                .filter_map(move |kind| {
                    let resource = choose_version(group, accepted, kind)?.clone();
                    Some(ConfigResource { kind, resource })
                })
        })
        .collect();
    chosen.sort_by(|a, b| (&a.resource.group, a.kind).cmp(&(&b.resource.group, b.kind)));
    chosen
}

/// The family of a config group and the versions mesh accepts in it, least stable first.
fn accepted_for(group: &str) -> Option<(ApiFamily, &'static [&'static str])> {
    ApiFamily::ALL.into_iter().find_map(|family| {
        accepted_versions(family)
            .iter()
            .find(|(name, _)| *name == group)
            .map(|(_, versions)| (family, *versions))
    })
}

fn choose_version<'a>(
    group: &'a ServedGroup,
    accepted: &[&str],
    kind: Kind,
) -> Option<&'a ApiResource> {
    let serving = |version: &str| {
        group
            .resources
            .iter()
            .find(|r| r.kind == kind.name() && r.version == version)
    };
    let preferred = group
        .preferred
        .as_deref()
        .filter(|version| accepted.contains(version));
    preferred
        .and_then(serving)
        .or_else(|| accepted.iter().rev().find_map(|version| serving(version)))
}

/// Asks the API server which config resources it serves; only mesh's and Istio's groups
/// are queried, and a group the cluster lacks is simply absent.
pub(super) async fn discover(client: &Client) -> Result<Vec<ConfigResource>, kube::Error> {
    let discovery = Discovery::new(client.clone())
        .filter(&config_groups())
        .run()
        .await?;
    let served: Vec<ServedGroup> = discovery.groups().map(served_group).collect();
    Ok(choose_resources(&served))
}

fn served_group(group: &ApiGroup) -> ServedGroup {
    let resources = group
        .versions()
        .flat_map(|version| group.versioned_resources(version))
        .filter(|(_, caps)| {
            caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::WATCH)
        })
        .map(|(resource, _)| resource)
        .collect();
    ServedGroup {
        name: group.name().to_owned(),
        preferred: group.preferred_version().map(str::to_owned),
        resources,
    }
}
