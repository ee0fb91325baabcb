//! Least-privilege RBAC: what each component calls on the API server, written next to the
//! names of the code that calls it, and rendered into Roles and ClusterRoles. A test reads
//! the rendered rules back and checks they grant exactly this.

use serde_json::{Value, json};

use super::crds;
use super::manifest::{NAMESPACE, part_of};

/// Where a permission applies: every namespace (ClusterRole) or only mesh-system (Role).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Cluster,
    ControlPlane,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub group: String,
    pub resource: String,
    pub verbs: Vec<&'static str>,
    pub scope: Scope,
    /// Only these objects, when the code names them (never for `create`/`list`/`watch`).
    pub names: Vec<&'static str>,
}

fn permission(group: &str, resource: &str, verbs: &[&'static str], scope: Scope) -> Permission {
    Permission {
        group: group.to_owned(),
        resource: resource.to_owned(),
        verbs: verbs.to_vec(),
        scope,
        names: Vec::new(),
    }
}

const READ: &[&str] = &["list", "watch"];

/// pilot/src/source/kubernetes/runtime.rs: reflectors on Services, EndpointSlices, Pods and
/// Namespaces, and on every config kind in mesh's and Istio's groups (discovery.rs picks
/// the version; API discovery itself needs no grant).
pub fn pilot() -> Vec<Permission> {
    let mut needs = vec![
        permission("", "services", READ, Scope::Cluster),
        permission("", "pods", READ, Scope::Cluster),
        permission("", "namespaces", READ, Scope::Cluster),
        permission("discovery.k8s.io", "endpointslices", READ, Scope::Cluster),
    ];
    let mut config = crds::mesh().unwrap_or_default();
    config.extend(crds::istio().unwrap_or_default());
    for crd in config {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        needs.push(permission(group, plural, READ, Scope::Cluster));
    }
    needs
}

/// citadel/src/ca/store/secret.rs (the CA Secret: `get_opt`, `create`, `replace`;
/// mesh-system only),
/// auth/token_review.rs (TokenReview create), bundle/publish.rs (watch labelled
/// Namespaces, server-side apply ConfigMap `mesh-ca-root-cert` in each).
pub fn citadel() -> Vec<Permission> {
    vec![
        Permission {
            names: vec![CA_SECRET],
            ..permission("", "secrets", &["get", "update"], Scope::ControlPlane)
        },
        // A name cannot narrow `create`: the object does not exist yet.
        permission("", "secrets", &["create"], Scope::ControlPlane),
        permission(
            "authentication.k8s.io",
            "tokenreviews",
            &["create"],
            Scope::Cluster,
        ),
        permission("", "namespaces", READ, Scope::Cluster),
        Permission {
            names: vec![ROOT_CERT_CONFIG_MAP],
            ..permission("", "configmaps", &["get", "patch"], Scope::Cluster)
        },
        // Server-side apply of an object that is not there yet is also a create.
        permission("", "configmaps", &["create"], Scope::Cluster),
    ]
}

/// citadel's `--ca-secret` default (citadel/src/config.rs).
pub const CA_SECRET: &str = "mesh-ca";
/// citadel/src/bundle/publish.rs `CONFIG_MAP`.
pub const ROOT_CERT_CONFIG_MAP: &str = "mesh-ca-root-cert";

/// injector/src/namespaces.rs (a Namespace reflector and a GET for one not seen yet) and
/// ca_bundle.rs (GET and JSON-patch its own MutatingWebhookConfiguration's caBundle).
pub fn injector() -> Vec<Permission> {
    vec![
        permission("", "namespaces", &["get", "list", "watch"], Scope::Cluster),
        Permission {
            names: vec![super::manifest::INJECTOR],
            ..permission(
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                &["get", "patch"],
                Scope::Cluster,
            )
        },
    ]
}

/// Every component's service account and permissions.
pub fn components() -> Vec<(&'static str, Vec<Permission>)> {
    vec![
        (super::manifest::PILOT, pilot()),
        (super::manifest::CITADEL, citadel()),
        (super::manifest::INJECTOR, injector()),
    ]
}

/// (API group, verbs, names, resources): one rule.
type Rule<'a> = (String, Vec<&'a str>, Vec<&'a str>, Vec<String>);

/// One rule per permission group: same API group, verbs and names share a rule.
fn rules(needs: &[&Permission]) -> Vec<Value> {
    let mut rules: Vec<Rule<'_>> = Vec::new();
    for need in needs {
        let found = rules.iter_mut().find(|(group, verbs, names, _)| {
            *group == need.group && *verbs == need.verbs && *names == need.names
        });
        match found {
            Some((.., resources)) => resources.push(need.resource.clone()),
            None => rules.push((
                need.group.clone(),
                need.verbs.clone(),
                need.names.clone(),
                vec![need.resource.clone()],
            )),
        }
    }
    rules
        .into_iter()
        .map(|(group, verbs, names, resources)| {
            let mut rule = json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
            if !names.is_empty() {
                rule["resourceNames"] = json!(names);
            }
            rule
        })
        .collect()
}

/// ClusterRoles and their bindings, then Roles and theirs, for every component.
pub fn objects() -> Vec<Value> {
    let mut cluster = Vec::new();
    let mut local = Vec::new();
    for (name, needs) in components() {
        let role_name = format!("mesh-{name}");
        for (scope, out) in [
            (Scope::Cluster, &mut cluster),
            (Scope::ControlPlane, &mut local),
        ] {
            let scoped: Vec<&Permission> = needs.iter().filter(|n| n.scope == scope).collect();
            if scoped.is_empty() {
                continue;
            }
            let (role_kind, binding_kind, namespace) = match scope {
                Scope::Cluster => ("ClusterRole", "ClusterRoleBinding", None),
                Scope::ControlPlane => ("Role", "RoleBinding", Some(NAMESPACE)),
            };
            let mut metadata = json!({"name": role_name, "labels": part_of(name)});
            if let Some(namespace) = namespace {
                metadata["namespace"] = json!(namespace);
            }
            out.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": role_kind,
                "metadata": metadata, "rules": rules(&scoped),
            }));
            out.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind,
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                            "name": role_name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            }));
        }
    }
    cluster.extend(local);
    cluster
}
