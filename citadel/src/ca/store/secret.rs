//! Kubernetes mode's store: one Secret (`mesh-system/mesh-ca` by default) whose data keys are
//! the directory store's file names. Creation is a POST (409: another replica was first);
//! rotation replaces it at the resourceVersion it read, so two rotations cannot interleave.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::{CaStore, Files, Snapshot, StoreError};

pub struct SecretStore {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl SecretStore {
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn secret(&self, files: &Files, version: Option<&str>) -> Secret {
        let data: BTreeMap<String, ByteString> = files
            .iter()
            .map(|(name, text)| (name.to_owned(), ByteString(text.as_bytes().to_vec())))
            .collect();
        let labels = BTreeMap::from([("app".to_owned(), "citadel".to_owned())]);
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                resource_version: version.map(str::to_owned),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }

    fn failed(&self, error: &kube::Error) -> StoreError {
        StoreError::Kubernetes {
            store: self.describe(),
            message: error.to_string(),
        }
    }
}

impl CaStore for SecretStore {
    async fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        let secret = match self.api.get_opt(&self.name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.failed(&e)),
        };
        let mut files = Files::default();
        for (name, bytes) in secret.data.unwrap_or_default() {
            let text = String::from_utf8(bytes.0).map_err(|_| StoreError::NotText {
                name: format!("{} key {name}", self.describe()),
            })?;
            files.insert(&name, &text);
        }
        Ok(Some(Snapshot {
            files,
            version: secret.metadata.resource_version,
        }))
    }

    async fn create(&self, files: &Files) -> Result<bool, StoreError> {
        match self
            .api
            .create(&PostParams::default(), &self.secret(files, None))
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.code == 409 => {
                Ok(false)
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    async fn replace(&self, files: &Files, version: Option<&str>) -> Result<(), StoreError> {
        let secret = self.secret(files, version);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &secret)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_conflict() => Err(StoreError::Conflict {
                store: self.describe(),
            }),
            Err(e) => Err(self.failed(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.name)
    }
}
