//! Keeps the MutatingWebhookConfiguration's caBundle on the injector's serving certificate
//! (and its failurePolicy on the config's), so that a new or self-signed certificate is
//! trusted by the API server without anyone editing the configuration by hand.

use std::time::Duration;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, TestOperation};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::watch;

use crate::config::FailurePolicy;

#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error(
        "reading MutatingWebhookConfiguration {name}: {source} (is it installed, and may the injector's service account get and patch it?)"
    )]
    Get { name: String, source: kube::Error },
    #[error("patching MutatingWebhookConfiguration {name}: {source}")]
    Patch { name: String, source: kube::Error },
}

/// The JSON patch that sets every webhook's caBundle and failurePolicy, each guarded by a
/// test of the webhook's name so that a concurrent edit fails the patch instead of
/// landing on the wrong entry. Empty when everything is already current.
pub fn bundle_patch(
    configuration: &MutatingWebhookConfiguration,
    ca_pem: &str,
    policy: FailurePolicy,
) -> json_patch::Patch {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let encoded = serde_json::to_value(&bundle).unwrap_or(Value::Null);
    let mut ops = Vec::new();
    for (index, webhook) in configuration.webhooks.iter().flatten().enumerate() {
        let current = webhook.client_config.ca_bundle.as_ref() == Some(&bundle)
            && webhook.failure_policy.as_deref() == Some(policy.as_str());
        if current {
            continue;
        }
        let index = index.to_string();
        let path = |tokens: &[&str]| {
            PointerBuf::from_tokens(["webhooks", index.as_str()].iter().chain(tokens).copied())
        };
        ops.push(PatchOperation::Test(TestOperation {
            path: path(&["name"]),
            value: Value::String(webhook.name.clone()),
        }));
        ops.push(PatchOperation::Add(AddOperation {
            path: path(&["clientConfig", "caBundle"]),
            value: encoded.clone(),
        }));
        ops.push(PatchOperation::Add(AddOperation {
            path: path(&["failurePolicy"]),
            value: Value::String(policy.as_str().to_owned()),
        }));
    }
    json_patch::Patch(ops)
}

/// Brings the configuration `name` up to date; `true` when it had to be patched.
pub async fn update(
    client: &Client,
    name: &str,
    ca_pem: &str,
    policy: FailurePolicy,
) -> Result<bool, CaBundleError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let configuration = api.get(name).await.map_err(|source| CaBundleError::Get {
        name: name.to_owned(),
        source,
    })?;
    let patch = bundle_patch(&configuration, ca_pem, policy);
    if patch.0.is_empty() {
        return Ok(false);
    }
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map_err(|source| CaBundleError::Patch {
            name: name.to_owned(),
            source,
        })?;
    Ok(true)
}

/// Updates now, whenever the serving certificate's roots change, and every `every`, which
/// also repairs a caBundle that an upgrade of the chart put back to its template value.
pub async fn keep_current(
    client: Client,
    name: String,
    mut bundle: watch::Receiver<String>,
    policy: FailurePolicy,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    // Once the sender is gone the certificate no longer changes: repair on the tick only.
    let mut open = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = bundle.changed(), if open => open = changed.is_ok(),
        }
        let ca_pem = bundle.borrow_and_update().clone();
        match update(&client, &name, &ca_pem, policy).await {
            Ok(true) => tracing::info!(configuration = name, "caBundle updated"),
            Ok(false) => tracing::debug!(configuration = name, "caBundle current"),
            Err(error) => tracing::warn!(%error, "caBundle not updated; retrying"),
        }
    }
}
