//! The resources the proxy holds from pilot, by type and name: what the running snapshot
//! was decoded from, and what a reconnect reports as `initial_resource_versions`.
//!
//! A response is applied to a copy ([`Store::updated`]); the copy replaces the store only
//! once the snapshot it makes has been applied, so a refused response leaves no trace.

use std::collections::BTreeMap;

use mesh_core::snapshot::Snapshot;
use mesh_proto::convert::{self, DecodeError, ResourceKey};
use mesh_proto::discovery::v1 as pb;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("resources[{index}] ({name}): has no content, so no type")]
    Untyped { index: usize, name: String },
    #[error("removedResources[{index}] ({name}): unknown resource type {kind}")]
    UnknownRemovedType {
        index: usize,
        name: String,
        kind: i32,
    },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    resources: BTreeMap<ResourceKey, pb::Resource>,
}

impl Store {
    /// This store with `response`'s removals and then its additions applied. Removing what
    /// is not held is not an error: pilot may not know exactly what the proxy holds.
    pub fn updated(&self, response: &pb::DiscoveryResponse) -> Result<Store, StoreError> {
        let mut next = self.clone();
        for (index, key) in response.removed_resources.iter().enumerate() {
            let kind = pb::ResourceType::try_from(key.r#type).map_err(|_| {
                StoreError::UnknownRemovedType {
                    index,
                    name: key.name.clone(),
                    kind: key.r#type,
                }
            })?;
            next.resources.remove(&(kind, key.name.clone()));
        }
        for (index, resource) in response.resources.iter().enumerate() {
            let kind = convert::resource_type(resource);
            if kind == pb::ResourceType::Unspecified {
                return Err(StoreError::Untyped {
                    index,
                    name: resource.name.clone(),
                });
            }
            next.resources
                .insert((kind, resource.name.clone()), resource.clone());
        }
        Ok(next)
    }

    /// The snapshot these resources make, stamped with pilot's `version`.
    pub fn snapshot(&self, version: &str) -> Result<Snapshot, StoreError> {
        Ok(convert::decode_snapshot(version, self.resources.values())?)
    }

    /// What is held, for the first request of a stream.
    pub fn versions(&self) -> Vec<pb::ResourceVersion> {
        self.resources
            .iter()
            .map(|((kind, name), resource)| pb::ResourceVersion {
                r#type: *kind as i32,
                name: name.clone(),
                version: resource.version.clone(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
