//! What one proxy holds, as pilot believes it, and what to send it next.
//!
//! The belief moves only on an ACK: a NACKed response leaves the proxy on what it had, so
//! the next update is computed against that. When the proxy holds exactly the previous
//! generation of its scope, the scope's precomputed delta is the update (no per-proxy
//! diff); otherwise every resource's version is compared.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use mesh_proto::convert::ResourceKey;
use mesh_proto::discovery::v1 as pb;

use super::generation::{Desired, ScopeResources, key_of};

#[derive(Default)]
pub struct Held {
    versions: HashMap<ResourceKey, String>,
    /// The scope resources `versions` reflects exactly, when known.
    scope: Option<Arc<ScopeResources>>,
    own: BTreeSet<ResourceKey>,
}

/// The resources to send and the ones to remove.
#[derive(Default)]
pub struct Update {
    pub resources: Vec<Arc<pb::Resource>>,
    pub removed: Vec<ResourceKey>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.removed.is_empty()
    }
}

impl Held {
    /// What a reconnecting proxy says it has.
    pub fn from_initial(initial: &[pb::ResourceVersion]) -> Self {
        let versions = initial
            .iter()
            .filter_map(|r| {
                let kind = pb::ResourceType::try_from(r.r#type).ok()?;
                Some(((kind, r.name.clone()), r.version.clone()))
            })
            .collect();
        Self {
            versions,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    pub fn update_for(&self, desired: &Desired) -> Update {
        let (mut update, compared_all) = self.scope_update(desired);
        for (key, resource) in &desired.own {
            if self.versions.get(key) != Some(&resource.version) {
                update.resources.push(resource.clone());
            }
        }
        if !compared_all {
            update.removed.extend(
                self.own
                    .iter()
                    .filter(|key| desired.get(key).is_none())
                    .cloned(),
            );
        }
        update
    }

    /// The scope's part of the update, and whether every held resource was compared (so
    /// removals of the proxy's own resources are already in it).
    fn scope_update(&self, desired: &Desired) -> (Update, bool) {
        let scope = &desired.scope;
        if let Some(held) = &self.scope {
            if Arc::ptr_eq(held, scope) {
                return (Update::default(), false);
            }
            if let Some(delta) = &scope.delta
                && delta
                    .from
                    .upgrade()
                    .is_some_and(|from| Arc::ptr_eq(&from, held))
            {
                let update = Update {
                    resources: delta.changed.clone(),
                    removed: delta.removed.clone(),
                };
                return (update, false);
            }
        }
        let resources = scope
            .resources
            .iter()
            .filter(|(key, resource)| self.versions.get(*key) != Some(&resource.version))
            .map(|(_, resource)| resource.clone())
            .collect();
        let removed = self
            .versions
            .keys()
            .filter(|key| desired.get(key).is_none())
            .cloned()
            .collect();
        (Update { resources, removed }, true)
    }

    /// The proxy ACKed `update`: it now holds `desired`.
    pub fn acked(&mut self, update: &Update, desired: &Desired) {
        for resource in &update.resources {
            self.versions
                .insert(key_of(resource), resource.version.clone());
        }
        for key in &update.removed {
            self.versions.remove(key);
        }
        self.synced(desired);
    }

    /// The proxy holds `desired` already (nothing needed sending).
    pub fn synced(&mut self, desired: &Desired) {
        self.scope = Some(desired.scope.clone());
        self.own = desired.own.keys().cloned().collect();
    }
}
