//! Putting the manifest into a cluster and taking it out again: server-side apply with
//! field manager `meshctl` in [`Manifest::all`] order (CRDs, which must be Established
//! before anything uses them, then the namespace, RBAC, config, Services, Deployments,
//! the webhook configuration last so no pod waits on an injector that is not there yet),
//! then a wait for every Deployment with a line of progress each time one changes.
//! Uninstall deletes in the reverse order.

use std::io::Write;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;
use tokio::time::Instant;

use super::InstallError;
use super::crds::ISTIO_MARKER;
use super::kinds::{self, Target};
use super::manifest::{self, Manifest};
use super::rbac;

pub const FIELD_MANAGER: &str = "meshctl";
/// How often readiness is checked while waiting.
const POLL: Duration = Duration::from_secs(2);

pub struct InstallOptions {
    pub dry_run: bool,
    /// How long to wait for the CRDs and the Deployments.
    pub timeout: Duration,
}

fn api(client: &Client, target: &Target) -> Api<DynamicObject> {
    match &target.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &target.resource),
        None => Api::all_with(client.clone(), &target.resource),
    }
}

fn kube_error(what: String) -> impl FnOnce(kube::Error) -> InstallError {
    move |source| InstallError::Kube { what, source }
}

async fn apply(client: &Client, object: &Value, dry_run: bool) -> Result<Target, InstallError> {
    let target = kinds::target(object).map_err(InstallError::Manifest)?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    api(client, &target)
        .patch(&target.name, &params, &Patch::Apply(object))
        .await
        .map_err(kube_error(format!("applying {}", target.describe())))?;
    Ok(target)
}

pub async fn install(
    client: &Client,
    manifest: &Manifest,
    options: &InstallOptions,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    let dry = if options.dry_run { " (dry run)" } else { "" };
    let mut crds: Vec<&Value> = manifest.crds.iter().collect();
    if !manifest.istio_crds.is_empty() {
        if istio_present(client).await? {
            writeln!(
                out,
                "Istio's CRDs are already installed: leaving them as they are"
            )?;
        } else {
            crds.extend(&manifest.istio_crds);
        }
    }
    let mut names = Vec::new();
    for crd in &crds {
        names.push(apply(client, crd, options.dry_run).await?);
    }
    writeln!(out, "✔ {} CRDs applied{dry}", names.len())?;
    let deadline = Instant::now() + options.timeout;
    if !options.dry_run {
        for target in &names {
            wait_established(client, target, deadline).await?;
        }
        writeln!(out, "✔ CRDs established")?;
    }
    // A dry run creates no namespace, so on a fresh cluster the API server cannot check
    // what goes into it: those objects are listed, not sent.
    let unchecked = options.dry_run && !namespace_exists(client).await?;
    let mut deployments = Vec::new();
    let mut webhooks = Vec::new();
    for object in &manifest.objects {
        if unchecked && object["metadata"]["namespace"] == manifest::NAMESPACE {
            let target = kinds::target(object).map_err(InstallError::Manifest)?;
            writeln!(
                out,
                "  {} (not checked: {} does not exist yet)",
                target.describe(),
                manifest::NAMESPACE
            )?;
            continue;
        }
        let target = apply(client, object, options.dry_run).await?;
        writeln!(out, "  {}", target.describe())?;
        match target.resource.kind.as_str() {
            "Deployment" => deployments.push(target),
            "MutatingWebhookConfiguration" => webhooks.push(target),
            _ => {}
        }
    }
    writeln!(out, "✔ {} objects applied{dry}", manifest.objects.len())?;
    if options.dry_run {
        return Ok(());
    }
    for target in &deployments {
        wait_for_deployment(client, target, deadline, out).await?;
    }
    // Until the injector has put its certificate in, the API server cannot call it and
    // (failurePolicy Fail) refuses pods in labelled namespaces.
    for target in &webhooks {
        wait_for_ca_bundle(client, target, deadline).await?;
    }
    writeln!(out, "✔ control plane ready in {}", manifest::NAMESPACE)?;
    writeln!(
        out,
        "\nNext:\n  kubectl label namespace <ns> mesh-injection=enabled\n  \
        kubectl -n <ns> rollout restart deployment   # existing pods get their sidecar\n  \
        meshctl proxy-status"
    )?;
    Ok(())
}

/// Checks every [`POLL`] until the CRD is Established, or fails at `deadline`.
async fn wait_established(
    client: &Client,
    target: &Target,
    deadline: Instant,
) -> Result<(), InstallError> {
    while !established(client, target).await? {
        pause_until_next_poll(deadline).await.ok_or_else(|| {
            InstallError::Timeout(format!(
                "{} is not Established; see `kubectl get crd {}`",
                target.describe(),
                target.name
            ))
        })?;
    }
    Ok(())
}

/// Checks every [`POLL`], with a line each time the count of ready replicas changes.
async fn wait_for_deployment(
    client: &Client,
    target: &Target,
    deadline: Instant,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    let mut last = None;
    loop {
        let (ready, wanted) = deployment_progress(client, target).await?;
        if last != Some(ready) {
            writeln!(out, "  {}: {ready}/{wanted} ready", target.name)?;
            last = Some(ready);
        }
        if ready >= wanted {
            return Ok(());
        }
        pause_until_next_poll(deadline).await.ok_or_else(|| {
            InstallError::Timeout(format!(
                "Deployment {ns}/{name} is not ready; see `kubectl -n {ns} describe deployment {name}`",
                ns = manifest::NAMESPACE,
                name = target.name
            ))
        })?;
    }
}

/// Checks every [`POLL`] until every webhook of the configuration has a caBundle.
async fn wait_for_ca_bundle(
    client: &Client,
    target: &Target,
    deadline: Instant,
) -> Result<(), InstallError> {
    loop {
        let configuration = api(client, target)
            .get(&target.name)
            .await
            .map_err(kube_error(format!("reading {}", target.describe())))?;
        let webhooks = configuration.data["webhooks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let filled = webhooks.iter().all(|webhook| {
            webhook["clientConfig"]["caBundle"]
                .as_str()
                .is_some_and(|bundle| !bundle.is_empty())
        });
        if filled {
            return Ok(());
        }
        pause_until_next_poll(deadline).await.ok_or_else(|| {
            InstallError::Timeout(format!(
                "the injector has not put its certificate into {}; see `kubectl -n {} logs deployment/{}`",
                target.describe(),
                manifest::NAMESPACE,
                manifest::INJECTOR
            ))
        })?;
    }
}

/// `None` when the next check would come after `deadline`.
async fn pause_until_next_poll(deadline: Instant) -> Option<()> {
    let next = Instant::now() + POLL;
    if next > deadline {
        return None;
    }
    tokio::time::sleep_until(next).await;
    Some(())
}

async fn established(client: &Client, target: &Target) -> Result<bool, InstallError> {
    let crd = api(client, target)
        .get(&target.name)
        .await
        .map_err(kube_error(format!("reading {}", target.describe())))?;
    let conditions = crd.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(conditions
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True"))
}

/// (available and up to date, wanted)
async fn deployment_progress(client: &Client, target: &Target) -> Result<(i64, i64), InstallError> {
    let deployment = api(client, target)
        .get(&target.name)
        .await
        .map_err(kube_error(format!("reading {}", target.describe())))?;
    let wanted = deployment.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &deployment.data["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let current = deployment.metadata.generation.unwrap_or(0);
    if observed < current {
        return Ok((0, wanted));
    }
    let updated = status["updatedReplicas"].as_i64().unwrap_or(0);
    let available = status["availableReplicas"].as_i64().unwrap_or(0);
    Ok((updated.min(available), wanted))
}

async fn namespace_exists(client: &Client) -> Result<bool, InstallError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let found = api
        .get_opt(manifest::NAMESPACE)
        .await
        .map_err(kube_error(format!(
            "reading Namespace {}",
            manifest::NAMESPACE
        )))?;
    Ok(found.is_some())
}

/// Whether Istio's CRDs are there and not ours.
pub async fn istio_present(client: &Client) -> Result<bool, InstallError> {
    let crds = crd_api(client);
    let found = crds
        .get_opt(ISTIO_MARKER)
        .await
        .map_err(kube_error(format!(
            "reading CustomResourceDefinition {ISTIO_MARKER}"
        )))?;
    Ok(found.is_some_and(|crd| !is_ours(&crd)))
}

fn crd_api(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<CustomResourceDefinition>(&());
    Api::all_with(client.clone(), &resource)
}

fn is_ours(object: &DynamicObject) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(manifest::PART_OF.0))
        .is_some_and(|value| value == manifest::PART_OF.1)
}

/// Deletes every object in reverse order; the namespace (with the CA's root) and the CRDs
/// (and with them every mesh config object) only with `purge`, Istio's CRDs only when
/// meshctl made them.
pub async fn uninstall(
    client: &Client,
    manifest: &Manifest,
    purge: bool,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    for object in manifest.objects.iter().rev() {
        if object["kind"] == "Namespace" && !purge {
            // Deleting it would delete the CA's root (Secret mesh-ca) with it.
            writeln!(
                out,
                "  Namespace {} kept: it holds the CA's root",
                manifest::NAMESPACE
            )?;
            continue;
        }
        delete(client, object, out).await?;
    }
    if purge {
        for crd in manifest.istio_crds.iter().rev() {
            let name = crd["metadata"]["name"].as_str().unwrap_or_default();
            let found = crd_api(client)
                .get_opt(name)
                .await
                .map_err(kube_error(format!(
                    "reading CustomResourceDefinition {name}"
                )))?;
            if found.as_ref().is_some_and(is_ours) {
                delete(client, crd, out).await?;
            }
        }
        for crd in manifest.crds.iter().rev() {
            delete(client, crd, out).await?;
        }
        delete_root_cert_copies(client, out).await?;
    } else {
        writeln!(
            out,
            "CRDs, mesh config and the CA's root kept; `meshctl uninstall --purge` removes them"
        )?;
    }
    writeln!(out, "✔ mesh removed")?;
    Ok(())
}

async fn delete(client: &Client, object: &Value, out: &mut dyn Write) -> Result<(), InstallError> {
    let target = kinds::target(object).map_err(InstallError::Manifest)?;
    match api(client, &target)
        .delete(&target.name, &DeleteParams::background())
        .await
    {
        Ok(_) => writeln!(out, "  deleted {}", target.describe())?,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            writeln!(out, "  {} was not there", target.describe())?;
        }
        Err(source) => {
            return Err(kube_error(format!("deleting {}", target.describe()))(
                source,
            ));
        }
    }
    Ok(())
}

/// citadel's copies of the trust bundle in every meshed namespace (ConfigMap
/// `mesh-ca-root-cert`, label `app=citadel`): with `--purge` nothing of mesh is left.
async fn delete_root_cert_copies(client: &Client, out: &mut dyn Write) -> Result<(), InstallError> {
    let api: Api<ConfigMap> = Api::all(client.clone());
    let params = ListParams::default()
        .fields(&format!("metadata.name={}", rbac::ROOT_CERT_CONFIG_MAP))
        .labels("app=citadel");
    let copies = api.list(&params).await.map_err(kube_error(
        "listing citadel's trust bundle ConfigMaps".to_owned(),
    ))?;
    for copy in copies.items {
        let namespace = copy.metadata.namespace.unwrap_or_default();
        let name = copy.metadata.name.unwrap_or_default();
        let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}});
        delete(client, &object, out).await?;
    }
    Ok(())
}
