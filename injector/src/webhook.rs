//! An AdmissionReview in, its answer out. Anything that cannot be read is answered with an
//! error AdmissionReview, never a failed connection: the API server then applies the
//! webhook's failurePolicy and shows the user the message.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;

use crate::config::Config;
use crate::inject::{self, NamespaceInfo};
use crate::namespaces::Namespaces;

const ADMISSION_V1: &str = "admission.k8s.io/v1";
const ADMISSION_V1BETA1: &str = "admission.k8s.io/v1beta1";

pub struct Injector {
    pub config: Arc<Config>,
    pub namespaces: Namespaces,
}

impl Injector {
    /// The JSON answer to one AdmissionReview body.
    pub async fn review(&self, body: &[u8]) -> Vec<u8> {
        let response = match parse(body) {
            Err(reason) => AdmissionResponse::invalid(reason),
            Ok(request) => {
                let namespace = match target_namespace(&request) {
                    Some(name) => self.namespaces.get(&name).await,
                    None => NamespaceInfo::default(),
                };
                answer(&request, &namespace, &self.config)
            }
        };
        encode(response)
    }
}

/// The request inside an AdmissionReview, or why there is none.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)
        .map_err(|e| format!("mesh injector: not an AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|_| "mesh injector: the AdmissionReview has no request".to_owned())
}

/// The namespace the pod is created in: the request's (a pod created from a template has
/// none in its own metadata).
fn target_namespace(request: &AdmissionRequest<DynamicObject>) -> Option<String> {
    request.namespace.clone().or_else(|| {
        request
            .object
            .as_ref()
            .and_then(|o| o.metadata.namespace.clone())
    })
}

/// The answer for one request, given its namespace's labels.
pub fn answer(
    request: &AdmissionRequest<DynamicObject>,
    namespace: &NamespaceInfo,
    config: &Config,
) -> AdmissionResponse {
    let allowed = AdmissionResponse::from(request);
    let pod_create = request.kind.kind == "Pod"
        && request.operation == Operation::Create
        && request
            .sub_resource
            .as_deref()
            .unwrap_or_default()
            .is_empty();
    if !pod_create {
        return allowed;
    }
    let pod = match pod(request) {
        Ok(pod) => pod,
        Err(reason) => return allowed.deny(format!("mesh injector: {reason}")),
    };
    let name = pod
        .metadata
        .name
        .clone()
        .or(pod.metadata.generate_name.clone())
        .unwrap_or_default();
    match inject::plan(&pod, namespace, config) {
        Ok(Ok(patch)) => {
            tracing::debug!(
                pod = name,
                namespace = namespace.name,
                dry_run = request.dry_run,
                "injecting"
            );
            match allowed.clone().with_patch(patch) {
                Ok(patched) => patched,
                Err(error) => allowed.deny(format!("mesh injector: {error}")),
            }
        }
        Ok(Err(skip)) => {
            tracing::debug!(
                pod = name,
                namespace = namespace.name,
                reason = skip.as_str(),
                "not injecting"
            );
            allowed
        }
        Err(error) => allowed.deny(format!("mesh injector: pod {name}: {error}")),
    }
}

fn pod(request: &AdmissionRequest<DynamicObject>) -> Result<Pod, String> {
    let object = request.object.as_ref().ok_or("the request has no object")?;
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".to_owned(), Value::from("v1"));
        map.insert("kind".to_owned(), Value::from("Pod"));
    }
    serde_json::from_value(value).map_err(|e| format!("the object is not a Pod: {e}"))
}

/// kube's AdmissionResponse writes the patch as an array of numbers; the API server's
/// own clients (and every other webhook) send `[]byte` as base64, a third of the size.
fn encode(mut response: AdmissionResponse) -> Vec<u8> {
    use base64::Engine;
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review()).unwrap_or(Value::Null);
    if let (Some(patch), Some(answer)) = (patch, review.get_mut("response")) {
        answer["patch"] = Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    // The answer's type echoes the request's; whatever a request claimed, it is an
    // AdmissionReview of a version the API server speaks.
    if let Value::Object(map) = &mut review {
        let version = map.get("apiVersion").and_then(Value::as_str);
        if !matches!(version, Some(ADMISSION_V1 | ADMISSION_V1BETA1)) {
            map.insert("apiVersion".to_owned(), Value::from(ADMISSION_V1));
        }
        map.insert("kind".to_owned(), Value::from("AdmissionReview"));
    }
    serde_json::to_vec(&review).unwrap_or_else(|error| {
        // Serialising a Value does not fail; should it, still answer.
        tracing::error!(%error, "encoding an AdmissionReview");
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":false,"status":{"message":"mesh injector: internal error"}}}"#.to_vec()
    })
}
