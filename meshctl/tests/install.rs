//! install, uninstall, precheck and version against a mocked API server (kube-rs's
//! `tower_test::mock::pair` pattern): every request is checked in order, method, path,
//! query, content type and body, and answered as the API server would.

use std::collections::BTreeSet;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use meshctl::Status;
use meshctl::cmd::install::apply::{self, InstallOptions};
use meshctl::cmd::install::manifest::{self, Manifest};
use meshctl::cmd::install::values::Values;
use meshctl::cmd::install::{kinds, precheck, version};
use serde_json::{Value, json};
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn mock_client() -> (kube::Client, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// One request the client must make next, and the answer.
struct Step {
    method: Method,
    path: String,
    /// Query parameters that must be present (`key=value`); no others allowed.
    query: Vec<&'static str>,
    /// For PATCH and POST: the body the request must carry.
    body: Option<Value>,
    status: StatusCode,
    reply: Value,
}

fn step(method: Method, path: impl Into<String>, reply: Value) -> Step {
    Step {
        method,
        path: path.into(),
        query: Vec::new(),
        body: None,
        status: StatusCode::OK,
        reply,
    }
}

fn not_found(method: Method, path: impl Into<String>) -> Step {
    Step {
        status: StatusCode::NOT_FOUND,
        ..step(
            method,
            path,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }
}

/// The path of an object, written out rather than asked from kube.
fn path_of(object: &Value) -> String {
    let target = kinds::target(object).expect("known kind");
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let namespace = target
        .namespace
        .map(|ns| format!("/namespaces/{ns}"))
        .unwrap_or_default();
    format!(
        "{prefix}{namespace}/{}/{}",
        target.resource.plural, target.name
    )
}

fn apply_step(object: &Value, dry_run: bool) -> Step {
    let mut query = vec!["fieldManager=meshctl", "force=true"];
    if dry_run {
        query.push("dryRun=All");
    }
    Step {
        query,
        body: Some(object.clone()),
        ..step(Method::PATCH, path_of(object), object.clone())
    }
}

fn established(crd: &Value) -> Step {
    let mut answer = crd.clone();
    answer["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
    step(Method::GET, path_of(crd), answer)
}

fn deployment_status(object: &Value, ready: i64) -> Step {
    let mut answer = object.clone();
    answer["metadata"]["generation"] = json!(1);
    answer["status"] = json!({"observedGeneration": 1, "updatedReplicas": ready,
                              "availableReplicas": ready, "readyReplicas": ready});
    step(Method::GET, path_of(object), answer)
}

/// Answers `steps` in order, checking each request; returns what was asked, as
/// `METHOD path?query`.
async fn serve(mut handle: Handle, steps: Vec<Step>) -> Vec<String> {
    let mut seen = Vec::new();
    for (index, expected) in steps.into_iter().enumerate() {
        let (request, send) = handle.next_request().await.unwrap_or_else(|| {
            panic!(
                "request {index} ({} {}) never came",
                expected.method, expected.path
            )
        });
        let (parts, body) = request.into_parts();
        let shown = format!("{} {}", parts.method, parts.uri);
        assert_eq!(parts.method, expected.method, "request {index}: {shown}");
        assert_eq!(parts.uri.path(), expected.path, "request {index}: {shown}");
        let query: BTreeSet<&str> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|q| !q.is_empty())
            .collect();
        let wanted: BTreeSet<&str> = expected.query.iter().copied().collect();
        assert_eq!(query, wanted, "request {index}: {shown}");
        if let Some(body_expected) = &expected.body {
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            if parts.method == Method::PATCH {
                assert_eq!(
                    content_type,
                    Some("application/apply-patch+yaml"),
                    "{shown}"
                );
            }
            let bytes = body.collect_bytes().await.expect("body");
            let sent: Value = serde_json::from_slice(&bytes).expect("JSON body");
            assert_eq!(
                &kinds::canonical(sent),
                &kinds::canonical(body_expected.clone()),
                "{shown}"
            );
        }
        seen.push(shown);
        let response = Response::builder()
            .status(expected.status)
            .header("content-type", "application/json")
            .body(Body::from(expected.reply.to_string().into_bytes()))
            .expect("response");
        send.send_response(response);
    }
    // Anything asked after the script fails: the handle is gone.
    drop(handle);
    seen
}

fn options(dry_run: bool) -> InstallOptions {
    InstallOptions {
        dry_run,
        timeout: Duration::from_secs(300),
    }
}

fn install_script(manifest: &Manifest, ready_after: usize) -> Vec<Step> {
    let mut steps: Vec<Step> = manifest.crds.iter().map(|c| apply_step(c, false)).collect();
    steps.extend(manifest.crds.iter().map(established));
    steps.extend(manifest.objects.iter().map(|o| apply_step(o, false)));
    for object in manifest
        .objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
    {
        for _ in 0..ready_after {
            steps.push(deployment_status(object, 0));
        }
        steps.push(deployment_status(object, 1));
    }
    let webhook = manifest
        .objects
        .last()
        .expect("the webhook configuration comes last");
    for _ in 0..ready_after {
        steps.push(step(Method::GET, path_of(webhook), webhook.clone()));
    }
    let mut filled = webhook.clone();
    for entry in filled["webhooks"].as_array_mut().into_iter().flatten() {
        entry["clientConfig"]["caBundle"] = json!("LS0tLS1CRUdJTg==");
    }
    steps.push(step(Method::GET, path_of(webhook), filled));
    steps
}

async fn run_install(
    manifest: &Manifest,
    steps: Vec<Step>,
    dry_run: bool,
) -> (String, Vec<String>) {
    let (client, handle) = mock_client();
    let mut out = Vec::new();
    let options = options(dry_run);
    let (result, seen) = tokio::join!(
        apply::install(&client, manifest, &options, &mut out),
        serve(handle, steps)
    );
    result.unwrap_or_else(|e| panic!("install failed: {e}"));
    (String::from_utf8(out).expect("UTF-8"), seen)
}

#[tokio::test]
async fn install_applies_in_order_waits_and_says_what_next() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let (out, seen) = run_install(&manifest, install_script(&manifest, 0), false).await;
    // A few requests spelt out, so the paths are not only derived from the same table.
    for expected in [
        "PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.mesh.io?",
        "PATCH /api/v1/namespaces/mesh-system?",
        "PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/mesh-pilot?",
        "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/mesh-system/roles/mesh-citadel?",
        "PATCH /apis/apps/v1/namespaces/mesh-system/deployments/pilot?",
        "PATCH /api/v1/namespaces/mesh-gateways?",
        "PATCH /api/v1/namespaces/mesh-gateways/services/ingressgateway?",
        "PATCH /apis/apps/v1/namespaces/mesh-gateways/deployments/ingressgateway?",
        "PATCH /apis/policy/v1/namespaces/mesh-gateways/poddisruptionbudgets/ingressgateway?",
        "GET /apis/apps/v1/namespaces/mesh-gateways/deployments/ingressgateway",
        "PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mesh-sidecar-injector?",
        "GET /apis/apps/v1/namespaces/mesh-system/deployments/mesh-sidecar-injector",
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(expected)),
            "{expected} not in {seen:#?}"
        );
    }
    let position = |prefix: &str| {
        seen.iter()
            .position(|s| s.starts_with(prefix))
            .expect(prefix)
    };
    assert!(
        position("PATCH /api/v1/namespaces/mesh-system?") > position("GET /apis/apiextensions")
    );
    assert!(
        position("PATCH /apis/apps/v1/namespaces/mesh-gateways/deployments/ingressgateway?")
            > position("PATCH /api/v1/namespaces/mesh-gateways?"),
        "the gateway's namespace before what lives in it"
    );
    assert!(out.contains("ingressgateway: 1/1 ready"), "{out}");
    assert_eq!(
        seen.last().map(String::as_str),
        Some(
            "GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mesh-sidecar-injector"
        ),
        "the injector's caBundle is waited for last"
    );
    assert!(out.contains("✔ 10 CRDs applied"), "{out}");
    assert!(out.contains("✔ CRDs established"), "{out}");
    assert!(out.contains("pilot: 1/1 ready"), "{out}");
    assert!(
        out.contains("kubectl label namespace <ns> mesh-injection=enabled"),
        "{out}"
    );
}

#[tokio::test(start_paused = true)]
async fn install_shows_progress_until_deployments_are_available() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let (out, _) = run_install(&manifest, install_script(&manifest, 2), false).await;
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("pilot:")).collect();
    assert_eq!(lines, ["  pilot: 0/1 ready", "  pilot: 1/1 ready"], "{out}");
}

#[tokio::test]
async fn install_again_sends_the_same_requests() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let (_, first) = run_install(&manifest, install_script(&manifest, 0), false).await;
    let again = manifest::render(&Values::default()).expect("renders");
    assert_eq!(again, manifest, "rendering is deterministic");
    let (_, second) = run_install(&again, install_script(&again, 0), false).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn dry_run_sends_everything_with_dry_run_and_waits_for_nothing() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let mut steps: Vec<Step> = manifest.crds.iter().map(|o| apply_step(o, true)).collect();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "mesh-system"}});
    steps.push(step(
        Method::GET,
        "/api/v1/namespaces/mesh-system",
        namespace,
    ));
    steps.extend(manifest.objects.iter().map(|o| apply_step(o, true)));
    let (out, seen) = run_install(&manifest, steps, true).await;
    assert!(
        seen.iter().filter(|s| s.starts_with("PATCH")).count() == manifest.all().count(),
        "{seen:#?}"
    );
    assert!(out.contains("applied (dry run)"), "{out}");
}

#[tokio::test]
async fn dry_run_on_a_fresh_cluster_checks_what_it_can() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let mut steps: Vec<Step> = manifest.crds.iter().map(|o| apply_step(o, true)).collect();
    steps.push(not_found(Method::GET, "/api/v1/namespaces/mesh-system"));
    steps.extend(
        manifest
            .objects
            .iter()
            .filter(|o| o["metadata"]["namespace"] != "mesh-system")
            .map(|o| apply_step(o, true)),
    );
    let (out, _) = run_install(&manifest, steps, true).await;
    assert!(
        out.contains("Deployment mesh-system/pilot (not checked: mesh-system does not exist yet)"),
        "{out}"
    );
}

#[tokio::test]
async fn istio_api_skips_crds_istio_already_has() {
    let manifest = istio_api_manifest();
    assert_eq!(manifest.istio_crds.len(), 10);
    let marker = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io";
    let istios = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                        "metadata": {"name": "virtualservices.networking.istio.io",
                                     "labels": {"app.kubernetes.io/part-of": "istio"}}});
    let mut steps = vec![step(Method::GET, marker, istios)];
    steps.extend(install_script(&manifest, 0));
    let (out, seen) = run_install(&manifest, steps, false).await;
    assert!(out.contains("Istio's CRDs are already installed"), "{out}");
    assert!(
        !seen
            .iter()
            .any(|s| s.starts_with("PATCH") && s.contains("istio.io"))
    );
}

/// The manifest with `--istio-api`.
fn istio_api_manifest() -> manifest::Manifest {
    let values = Values {
        istio_api: true,
        ..Values::default()
    };
    manifest::render(&values).expect("renders")
}

/// An install's requests after the Istio CRD check, when Istio's CRDs are applied too: every
/// CRD applied, every CRD Established, then the rest of a plain install.
fn with_istio_crds(manifest: &manifest::Manifest) -> Vec<Step> {
    let crds: Vec<&Value> = manifest.crds.iter().chain(&manifest.istio_crds).collect();
    let mut steps: Vec<Step> = crds.iter().map(|c| apply_step(c, false)).collect();
    steps.extend(crds.iter().map(|c| established(c)));
    steps.extend(
        install_script(manifest, 0)
            .into_iter()
            .skip(2 * manifest.crds.len()),
    );
    steps
}

#[tokio::test]
async fn istio_api_installs_istios_groups_when_istio_is_absent() {
    let manifest = istio_api_manifest();
    let marker = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io";
    let mut steps = vec![not_found(Method::GET, marker)];
    steps.extend(with_istio_crds(&manifest));
    let (out, _) = run_install(&manifest, steps, false).await;
    assert!(out.contains("✔ 20 CRDs applied"), "{out}");
}

#[tokio::test]
async fn istio_api_applies_again_the_istio_crds_it_made() {
    let manifest = istio_api_manifest();
    let ours = manifest
        .istio_crds
        .iter()
        .find(|c| c["metadata"]["name"] == "virtualservices.networking.istio.io")
        .expect("virtualservices")
        .clone();
    let mut steps = vec![step(Method::GET, path_of(&ours), ours.clone())];
    steps.extend(with_istio_crds(&manifest));
    let (out, _) = run_install(&manifest, steps, false).await;
    assert!(out.contains("✔ 20 CRDs applied"), "{out}");
}

#[tokio::test]
async fn uninstall_purge_deletes_only_the_istio_crds_it_made() {
    let manifest = istio_api_manifest();
    let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    let mut steps: Vec<Step> = manifest
        .objects
        .iter()
        .rev()
        .map(|o| step(Method::DELETE, path_of(o), gone.clone()))
        .collect();
    for (index, crd) in manifest.istio_crds.iter().rev().enumerate() {
        if index == 0 {
            // Istio's own (no mesh label): left alone.
            let mut theirs = crd.clone();
            theirs["metadata"]["labels"] = json!({"app": "istio"});
            steps.push(step(Method::GET, path_of(crd), theirs));
        } else {
            steps.push(step(Method::GET, path_of(crd), crd.clone()));
            steps.push(step(Method::DELETE, path_of(crd), gone.clone()));
        }
    }
    steps.extend(
        manifest
            .crds
            .iter()
            .rev()
            .map(|c| step(Method::DELETE, path_of(c), gone.clone())),
    );
    steps.push(Step {
        query: vec![
            "fieldSelector=metadata.name%3Dmesh-ca-root-cert",
            "labelSelector=app%3Dcitadel",
        ],
        ..step(
            Method::GET,
            "/api/v1/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": []}),
        )
    });
    let (client, handle) = mock_client();
    let mut out = Vec::new();
    let (result, seen) = tokio::join!(
        apply::uninstall(&client, &manifest, true, &mut out),
        serve(handle, steps)
    );
    result.unwrap_or_else(|e| panic!("uninstall failed: {e}"));
    let deleted_istio = seen
        .iter()
        .filter(|s| s.starts_with("DELETE") && s.contains("istio.io"))
        .count();
    assert_eq!(deleted_istio, manifest.istio_crds.len() - 1);
}

#[tokio::test]
async fn uninstall_deletes_in_reverse_and_crds_only_with_purge() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    for purge in [false, true] {
        let mut steps: Vec<Step> = manifest
            .objects
            .iter()
            .rev()
            .filter(|o| purge || o["kind"] != "Namespace")
            .enumerate()
            // One object already gone: not an error.
            .map(|(i, o)| if i == 0 { not_found(Method::DELETE, path_of(o)) } else {
                Step { query: vec![], ..step(Method::DELETE, path_of(o), json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})) }
            })
            .collect();
        if purge {
            steps.extend(
                manifest
                    .crds
                    .iter()
                    .rev()
                    .map(|c| step(Method::DELETE, path_of(c), c.clone())),
            );
            steps.push(Step {
                query: vec![
                    "fieldSelector=metadata.name%3Dmesh-ca-root-cert",
                    "labelSelector=app%3Dcitadel",
                ],
                ..step(
                    Method::GET,
                    "/api/v1/configmaps",
                    json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [
                        {"metadata": {"name": "mesh-ca-root-cert", "namespace": "shop"}}]}),
                )
            });
            steps.push(step(
                Method::DELETE,
                "/api/v1/namespaces/shop/configmaps/mesh-ca-root-cert",
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ));
        }
        let (client, handle) = mock_client();
        let mut out = Vec::new();
        let (result, seen) = tokio::join!(
            apply::uninstall(&client, &manifest, purge, &mut out),
            serve(handle, steps)
        );
        result.unwrap_or_else(|e| panic!("uninstall failed: {e}"));
        let out = String::from_utf8(out).expect("UTF-8");
        assert_eq!(
            seen.first().map(String::as_str),
            Some(
                "DELETE /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mesh-sidecar-injector?"
            ),
            "the webhook goes first, so no pod creation waits on a missing injector"
        );
        assert!(out.contains("was not there"), "{out}");
        assert_eq!(
            out.contains("deleted ConfigMap shop/mesh-ca-root-cert"),
            purge,
            "{out}"
        );
        assert_eq!(out.contains("meshctl uninstall --purge"), !purge, "{out}");
        assert_eq!(
            seen.iter().any(|s| s.contains("customresourcedefinitions")),
            purge
        );
        assert_eq!(
            seen.iter()
                .any(|s| s == "DELETE /api/v1/namespaces/mesh-system?"),
            purge,
            "the namespace holds the CA's root: only with --purge"
        );
    }
}

fn review(verb: &str, resource: &str, group: &str, namespace: Option<&str>, allowed: bool) -> Step {
    let mut attributes = json!({"group": group, "resource": resource, "verb": verb});
    if let Some(ns) = namespace {
        attributes["namespace"] = json!(ns);
    }
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "metadata": {}, "spec": {"resourceAttributes": attributes}});
    let mut reply = body.clone();
    reply["status"] = json!({"allowed": allowed});
    Step {
        body: Some(body),
        ..step(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            reply,
        )
    }
}

/// What precheck asks, in order: the version, create and patch on every kind (sorted by
/// group, resource, namespace) with `denied` refused, the webhook configurations, Istio's
/// marker CRD.
fn precheck_steps(minor: &str, denied: &str, webhooks: Value, istio: bool) -> Vec<Step> {
    let ns = Some("mesh-system");
    // The ingress gateway's namespace (installed by default) sorts first.
    let gw = Some("mesh-gateways");
    let version = json!({"major": "1", "minor": minor, "gitVersion": format!("v1.{minor}"),
        "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "",
        "platform": ""});
    let mut steps = vec![step(Method::GET, "/version", version)];
    let rbac = "rbac.authorization.k8s.io";
    for (resource, group, namespace) in [
        ("configmaps", "", ns),
        ("namespaces", "", None),
        ("serviceaccounts", "", gw),
        ("serviceaccounts", "", ns),
        ("services", "", gw),
        ("services", "", ns),
        (
            "mutatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            None,
        ),
        ("customresourcedefinitions", "apiextensions.k8s.io", None),
        ("deployments", "apps", gw),
        ("deployments", "apps", ns),
        ("poddisruptionbudgets", "policy", gw),
        ("poddisruptionbudgets", "policy", ns),
        ("clusterrolebindings", rbac, None),
        ("clusterroles", rbac, None),
        ("rolebindings", rbac, ns),
        ("roles", rbac, ns),
    ] {
        steps.push(review(
            "create",
            resource,
            group,
            namespace,
            resource != denied,
        ));
        steps.push(review("patch", resource, group, namespace, true));
    }
    steps.push(step(
        Method::GET,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        json!({"apiVersion": "admissionregistration.k8s.io/v1",
               "kind": "MutatingWebhookConfigurationList", "metadata": {}, "items": webhooks}),
    ));
    let marker = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io";
    steps.push(if istio {
        step(
            Method::GET,
            marker,
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "virtualservices.networking.istio.io"}}),
        )
    } else {
        not_found(Method::GET, marker)
    });
    steps
}

async fn run_precheck(steps: Vec<Step>) -> (Status, String) {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let (client, handle) = mock_client();
    let mut out = Vec::new();
    let (result, _) = tokio::join!(
        precheck::precheck(&client, &manifest, &mut out),
        serve(handle, steps)
    );
    let status = result.unwrap_or_else(|e| panic!("precheck failed to run: {e}"));
    (status, String::from_utf8(out).expect("UTF-8"))
}

#[tokio::test]
async fn precheck_reports_old_clusters_missing_rights_other_injectors_and_istio() {
    let webhooks = json!([{"metadata": {"name": "istio-sidecar-injector"}}]);
    let steps = precheck_steps("28+", "mutatingwebhookconfigurations", webhooks, true);
    let (status, out) = run_precheck(steps).await;
    assert_eq!(status, Status::Failed);
    for expected in [
        "✘ Kubernetes 1.28+: mesh needs 1.29 or later for native sidecars",
        "✘ you may not create mutatingwebhookconfigurations.admissionregistration.k8s.io: ask a cluster admin",
        "! MutatingWebhookConfiguration istio-sidecar-injector injects sidecars too",
        "! Istio is installed",
    ] {
        assert!(out.contains(expected), "{expected} not in:\n{out}");
    }
}

#[tokio::test]
async fn precheck_passes_a_ready_cluster_and_a_previous_mesh_install() {
    let ours = json!([{"metadata": {"name": "mesh-sidecar-injector",
                                    "labels": {"app.kubernetes.io/part-of": "mesh"}}}]);
    let (status, out) = run_precheck(precheck_steps("31", "", ours, false)).await;
    assert_eq!(status, Status::Success, "{out}");
    assert_eq!(
        out,
        "✔ Kubernetes 1.31 (1.29 or later)\n\
         ✔ you may create and patch everything install applies\n\
         ✔ no other sidecar injector\n\
         ✔ no Istio installed\n"
    );
}

#[tokio::test]
async fn precheck_fails_on_a_foreign_webhook_with_meshs_name() {
    let foreign = json!([{"metadata": {"name": "mesh-sidecar-injector"}}]);
    let (status, out) = run_precheck(precheck_steps("30", "", foreign, false)).await;
    assert_eq!(status, Status::Failed);
    assert!(
        out.contains(
            "✘ MutatingWebhookConfiguration mesh-sidecar-injector exists and is not mesh's"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn version_shows_the_control_planes_images() {
    let manifest = manifest::render(&Values::default()).expect("renders");
    let mut pilot = manifest
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .cloned()
        .expect("a Deployment");
    pilot["status"] = json!({"readyReplicas": 1});
    let steps = vec![Step {
        query: vec!["labelSelector=app.kubernetes.io%2Fpart-of%3Dmesh"],
        ..step(
            Method::GET,
            "/apis/apps/v1/namespaces/mesh-system/deployments",
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [pilot]}),
        )
    }];
    let (client, handle) = mock_client();
    let mut out = Vec::new();
    let (result, _) = tokio::join!(
        version::control_plane(&client, &mut out),
        serve(handle, steps)
    );
    result.expect("version");
    let out = String::from_utf8(out).expect("UTF-8");
    assert_eq!(
        out,
        format!("pilot version: {} (1/1 ready)\n", env!("CARGO_PKG_VERSION"))
    );
}
