//! `meshctl precheck`: whether `meshctl install` can work here and what would get in its
//! way: the Kubernetes version (native sidecars need 1.29), the caller's permissions for
//! every kind the manifest applies, another webhook that injects sidecars, Istio.

use std::collections::BTreeSet;
use std::io::Write;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use super::InstallError;
use super::apply::istio_present;
use super::kinds;
use super::manifest::{self, Manifest};
use crate::Status;

/// Native sidecars (init containers with `restartPolicy: Always`) are on by default since.
const MIN_MINOR: u32 = 29;

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn ok(&mut self, out: &mut dyn Write, line: &str) -> std::io::Result<()> {
        writeln!(out, "✔ {line}")
    }
    fn warn(&mut self, out: &mut dyn Write, line: &str) -> std::io::Result<()> {
        writeln!(out, "! {line}")
    }
    fn fail(&mut self, out: &mut dyn Write, line: &str) -> std::io::Result<()> {
        self.failed = true;
        writeln!(out, "✘ {line}")
    }
}

pub async fn precheck(
    client: &Client,
    manifest: &Manifest,
    out: &mut dyn Write,
) -> Result<Status, InstallError> {
    let mut report = Report::default();
    check_version(client, &mut report, out).await?;
    check_permissions(client, manifest, &mut report, out).await?;
    check_webhooks(client, &mut report, out).await?;
    if istio_present(client).await? {
        report.warn(
            out,
            "Istio is installed: mesh reads its config as it is (no --istio-api needed); \
             label a namespace for one injector only (mesh-injection or istio-injection)",
        )?;
    } else {
        report.ok(out, "no Istio installed")?;
    }
    Ok(if report.failed {
        Status::Failed
    } else {
        Status::Success
    })
}

async fn check_version(
    client: &Client,
    report: &mut Report,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|source| InstallError::Kube {
            what: "reading the cluster's version".to_owned(),
            source,
        })?;
    let digits = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    let version = (
        digits(&info.major).parse::<u32>(),
        digits(&info.minor).parse::<u32>(),
    );
    let shown = format!("{}.{}", info.major, info.minor);
    match version {
        (Ok(1), Ok(minor)) if minor >= MIN_MINOR => {
            report.ok(out, &format!("Kubernetes {shown} (1.{MIN_MINOR} or later)"))?;
        }
        _ => report.fail(
            out,
            &format!("Kubernetes {shown}: mesh needs 1.{MIN_MINOR} or later for native sidecars"),
        )?,
    }
    Ok(())
}

/// What server-side apply needs on every kind the manifest applies, where it applies it:
/// `create` for an object that is not there yet, `patch` for every apply.
const VERBS: [&str; 2] = ["create", "patch"];

async fn check_permissions(
    client: &Client,
    manifest: &Manifest,
    report: &mut Report,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    let mut wanted = BTreeSet::new();
    for object in manifest.all() {
        let target = kinds::target(object).map_err(InstallError::Manifest)?;
        wanted.insert((
            target.resource.group.clone(),
            target.resource.plural.clone(),
            target.namespace.clone(),
        ));
    }
    let mut denied = Vec::new();
    for (group, resource, namespace) in wanted {
        for verb in VERBS {
            if !allowed(client, &group, &resource, namespace.as_deref(), verb).await? {
                let what = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                denied.push(format!("{verb} {what}"));
            }
        }
    }
    if denied.is_empty() {
        report.ok(out, "you may create and patch everything install applies")?;
    } else {
        report.fail(
            out,
            &format!("you may not {}: ask a cluster admin", denied.join(", ")),
        )?;
    }
    Ok(())
}

async fn allowed(
    client: &Client,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    verb: &str,
) -> Result<bool, InstallError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                namespace: namespace.map(str::to_owned),
                verb: Some(verb.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|source| InstallError::Kube {
            what: "asking the API server what you may do".to_owned(),
            source,
        })?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn check_webhooks(
    client: &Client,
    report: &mut Report,
    out: &mut dyn Write,
) -> Result<(), InstallError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| InstallError::Kube {
            what: "listing MutatingWebhookConfigurations".to_owned(),
            source,
        })?;
    let mut clean = true;
    for configuration in list.items {
        let name = configuration.metadata.name.clone().unwrap_or_default();
        let ours = configuration
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(manifest::PART_OF.0))
            .is_some_and(|v| v == manifest::PART_OF.1);
        if name == manifest::INJECTOR && !ours {
            clean = false;
            report.fail(
                out,
                &format!("MutatingWebhookConfiguration {name} exists and is not mesh's: remove it"),
            )?;
        } else if !ours && (name.contains("sidecar-injector") || name.contains("proxy-injector")) {
            clean = false;
            report.warn(
                out,
                &format!(
                    "MutatingWebhookConfiguration {name} injects sidecars too: \
                     never label a namespace for both"
                ),
            )?;
        }
    }
    if clean {
        report.ok(out, "no other sidecar injector")?;
    }
    Ok(())
}
