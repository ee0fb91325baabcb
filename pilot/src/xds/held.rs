//! What one proxy holds, as pilot believes it, and what to send it next.
//!
//! The belief moves only on an ACK: a NACKed response leaves the proxy on what it had, so
//! the next update is computed against that. After an ACK the proxy holds exactly what pilot
//! computed for it, so the belief is just that computation (shared with every proxy of the
//! scope), not a per-proxy copy of thousands of names and versions. When the proxy holds
//! the previous generation of its scope, the scope's precomputed delta is the update.

use std::collections::HashMap;
use std::sync::Arc;

use mesh_proto::convert::ResourceKey;
use mesh_proto::discovery::v1 as pb;

use super::generation::{Desired, Resources, ScopeResources};
use super::wire::Encoded;

pub enum Held {
    /// What a (re)connecting proxy said it has: names and versions.
    Reported(HashMap<ResourceKey, String>),
    /// Exactly what pilot computed for it: a scope's resources and its own.
    Synced {
        scope: Arc<ScopeResources>,
        own: Resources,
    },
}

impl Default for Held {
    fn default() -> Self {
        Self::Reported(HashMap::new())
    }
}

/// The resources to send and the ones to remove.
#[derive(Default)]
pub struct Update {
    pub resources: Vec<Arc<Encoded>>,
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
        Self::Reported(versions)
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Reported(versions) => versions.len(),
            Self::Synced { scope, own } => scope.resources.len() + own.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn update_for(&self, desired: &Desired) -> Update {
        match self {
            Self::Reported(versions) => {
                let resources = desired
                    .iter()
                    .filter(|(key, r)| versions.get(*key) != Some(&r.version))
                    .map(|(_, r)| r.clone())
                    .collect();
                let removed = versions
                    .keys()
                    .filter(|key| desired.get(key).is_none())
                    .cloned()
                    .collect();
                Update { resources, removed }
            }
            Self::Synced { scope, own } => {
                let mut update = scope_update(scope, &desired.scope);
                let (changed, removed) = compare(own, &desired.own);
                update.resources.extend(changed);
                update.removed.extend(removed);
                update
            }
        }
    }

    /// The proxy ACKed an update to `desired`: it now holds exactly that.
    pub fn acked(&mut self, desired: &Desired) {
        self.synced(desired);
    }

    /// The proxy holds `desired` already (nothing needed sending).
    pub fn synced(&mut self, desired: &Desired) {
        *self = Self::Synced {
            scope: desired.scope.clone(),
            own: desired.own.clone(),
        };
    }
}

/// From the scope resources a proxy holds to those of `desired`: nothing when they are the
/// same, the precomputed delta when it was computed from them, else a comparison.
fn scope_update(held: &Arc<ScopeResources>, desired: &Arc<ScopeResources>) -> Update {
    if Arc::ptr_eq(held, desired) {
        return Update::default();
    }
    if let Some(delta) = &desired.delta
        && delta
            .from
            .upgrade()
            .is_some_and(|from| Arc::ptr_eq(&from, held))
    {
        return Update {
            resources: delta.changed.clone(),
            removed: delta.removed.clone(),
        };
    }
    let (resources, removed) = compare(&held.resources, &desired.resources);
    Update { resources, removed }
}

/// What differs from `held` to `desired`: resources new or changed, and keys gone.
fn compare(held: &Resources, desired: &Resources) -> (Vec<Arc<Encoded>>, Vec<ResourceKey>) {
    let changed = desired
        .iter()
        .filter(|(key, r)| held.get(*key).is_none_or(|h| h.version != r.version))
        .map(|(_, r)| r.clone())
        .collect();
    let removed = held
        .keys()
        .filter(|key| !desired.contains_key(*key))
        .cloned()
        .collect();
    (changed, removed)
}
