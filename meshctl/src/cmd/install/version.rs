//! `meshctl version`: this meshctl, and what runs in mesh-system.

use std::io::Write;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ListParams};

use super::InstallError;
use super::manifest::{NAMESPACE, PART_OF};

pub fn client_line() -> String {
    format!("client version: {}", env!("CARGO_PKG_VERSION"))
}

pub async fn control_plane(client: &Client, out: &mut dyn Write) -> Result<(), InstallError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = format!("{}={}", PART_OF.0, PART_OF.1);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| InstallError::Kube {
            what: format!("listing Deployments in {NAMESPACE}"),
            source,
        })?;
    if list.items.is_empty() {
        writeln!(out, "control plane: not installed (run `meshctl install`)")?;
        return Ok(());
    }
    for deployment in list.items {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let image = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let version = image.rsplit_once(':').map_or("unknown", |(_, tag)| tag);
        let wanted = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        writeln!(out, "{name} version: {version} ({ready}/{wanted} ready)")?;
    }
    Ok(())
}
