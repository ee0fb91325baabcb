use super::*;

const FILE: &str = "\
# the shop
apiVersion: v1
kind: Service
metadata:
  name: web   # kept as written
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: web:1
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: '@daily'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: report:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: opted-out
  annotations: {sidecar.mesh.io/inject: 'false'}
spec:
  containers: [{name: app, image: app:1}]
";

fn documents(text: &str) -> Vec<serde_json::Value> {
    split_documents(text)
        .into_iter()
        .map(|d| serde_yaml::from_str(d).expect("YAML"))
        .collect()
}

fn container_names(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

#[test]
fn workloads_are_injected_and_everything_else_is_copied() {
    let out = inject_yaml(FILE, &Config::default()).expect("injects");
    // The Service and the opted-out Pod are byte for byte what they were.
    assert!(out.starts_with(
        "# the shop\napiVersion: v1\nkind: Service\nmetadata:\n  name: web   # kept as written\n"
    ));
    assert!(out.ends_with(split_documents(FILE)[3]));
    let docs = documents(&out);
    assert_eq!(docs.len(), 4);
    let deployment = &docs[1]["spec"]["template"];
    assert_eq!(
        container_names(&deployment["spec"]["initContainers"]),
        ["mesh-init", "mesh-proxy"]
    );
    assert_eq!(container_names(&deployment["spec"]["containers"]), ["app"]);
    // The proxy knows its workload by the Deployment's name; the template gains no name.
    let env = &deployment["spec"]["initContainers"][1]["env"];
    let workload = env
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "MESH_WORKLOAD");
    assert_eq!(
        workload.map(|e| &e["value"]),
        Some(&serde_json::json!("web"))
    );
    assert!(deployment["metadata"].get("generateName").is_none());
    assert!(deployment["metadata"]["annotations"]["sidecar.mesh.io/status"].is_string());
    let cron = &docs[2]["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        container_names(&cron["spec"]["initContainers"]),
        ["mesh-init", "mesh-proxy"]
    );
    assert_eq!(cron["spec"]["restartPolicy"], "OnFailure");
}

#[test]
fn running_it_twice_changes_nothing_more() {
    let once = inject_yaml(FILE, &Config::default()).expect("injects");
    let twice = inject_yaml(&once, &Config::default()).expect("injects");
    assert_eq!(once, twice);
}

#[test]
fn lists_are_injected_item_by_item() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: app}]}\n";
    let out = inject_yaml(list, &Config::default()).expect("injects");
    let docs = documents(&out);
    assert_eq!(
        container_names(&docs[0]["items"][0]["spec"]["initContainers"]),
        ["mesh-init", "mesh-proxy"]
    );
}

#[test]
fn errors_name_the_document() {
    let bad = "kind: Service\n---\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: 3}}}\n";
    let error = inject_yaml(bad, &Config::default()).expect_err("invalid");
    assert!(
        error.to_string().starts_with("document 2 (Deployment web)"),
        "{error}"
    );
    let error = inject_yaml("a: [\n", &Config::default()).expect_err("invalid");
    assert!(error.to_string().starts_with("document 1"), "{error}");
}

#[test]
fn empty_input_gives_empty_output() {
    assert_eq!(inject_yaml("", &Config::default()).expect("ok"), "");
    assert_eq!(inject_yaml("---\n", &Config::default()).expect("ok"), "");
}
