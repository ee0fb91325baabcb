//! The pod's namespace labels. The webhook sees only the pod, and a pod may opt in with its
//! label (the configuration's second, objectSelector entry) or annotation in a namespace
//! without the label, so the injector cannot tell from being called which namespace label
//! applies: it keeps a reflector on
//! Namespaces and asks the API server directly when a namespace is not in it yet (one
//! created a moment before its first pod).
//!
//! Without Kubernetes access (`--standalone`) the injector trusts the webhook's
//! namespaceSelector instead: every namespace it is called for counts as labelled.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_stream::StreamExt;

use crate::inject::NamespaceInfo;

#[derive(Clone)]
pub enum Namespaces {
    /// Labels from the reflector's store, else from a GET.
    Watched {
        store: Store<Namespace>,
        client: Option<Client>,
    },
    /// Every namespace is `mesh-injection=enabled`.
    TrustSelector,
}

impl Namespaces {
    /// Starts the reflector; the returned future runs it and must be spawned.
    pub fn watch(client: Client) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let api: Api<Namespace> = Api::all(client.clone());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        let run = async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(error) = event {
                    tracing::warn!(%error, "namespace watch");
                }
            }
        };
        let namespaces = Self::Watched {
            store,
            client: Some(client),
        };
        (namespaces, run)
    }

    pub async fn get(&self, name: &str) -> NamespaceInfo {
        let (store, client) = match self {
            Self::TrustSelector => return NamespaceInfo::enabled(name),
            Self::Watched { store, client } => (store, client),
        };
        if let Some(namespace) = store.get(&ObjectRef::new(name)) {
            return info(name, namespace.metadata.labels.clone());
        }
        let Some(client) = client else {
            return info(name, None);
        };
        match Api::<Namespace>::all(client.clone()).get_opt(name).await {
            Ok(found) => info(name, found.and_then(|n| n.metadata.labels)),
            Err(error) => {
                // The pod's annotation still counts; the label is unknown.
                tracing::warn!(namespace = name, %error, "reading the namespace's labels");
                info(name, None)
            }
        }
    }
}

fn info(name: &str, labels: Option<BTreeMap<String, String>>) -> NamespaceInfo {
    NamespaceInfo {
        name: name.to_owned(),
        labels: labels.unwrap_or_default(),
    }
}
