//! Several directories are one config set: merged in order, each file read once, each
//! finding naming the file it is in.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

const SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
"#;

fn route(weight: u32) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: shop}}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http: [{{route: [{{destination: {{host: reviews.shop.svc.cluster.local}}, weight: {weight}}}]}}]
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn kinds(inputs: &Inputs) -> Vec<String> {
    let mut kinds: Vec<String> = inputs
        .configs
        .iter()
        .map(|c| c.origin.kind.clone())
        .collect();
    kinds.sort();
    kinds
}

fn errors(inputs: &Inputs) -> Vec<String> {
    inputs
        .status
        .iter()
        .filter(|s| s.diagnostic.is_error())
        .map(|s| s.diagnostic.to_string())
        .collect()
}

#[test]
fn objects_of_every_directory_make_one_set() {
    let (user, generated) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(user.path(), "routes.yaml", &route(100));
    write(generated.path(), "services.yaml", SERVICE);
    let inputs = Loader::default().load(&[user.path(), generated.path()]);
    assert_eq!(kinds(&inputs), ["ServiceEntry", "VirtualService"]);
    assert_eq!(
        inputs.registry.services.len(),
        1,
        "the second dir's registry"
    );
    assert!(errors(&inputs).is_empty(), "{:?}", errors(&inputs));
}

#[test]
fn a_finding_names_the_file_in_its_own_directory() {
    let (user, applied) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(user.path(), "services.yaml", SERVICE);
    write(applied.path(), "routes.yaml", &route(150));
    let inputs = Loader::default().load(&[user.path(), applied.path()]);
    let errors = errors(&inputs);
    let path = applied.path().join("routes.yaml").display().to_string();
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&path) && e.contains("weight")),
        "{errors:?}"
    );
    assert_eq!(
        kinds(&inputs),
        ["ServiceEntry"],
        "the invalid route is skipped"
    );
}

#[test]
fn an_edit_in_one_directory_is_seen_and_the_others_stay_in_force() {
    let (user, applied) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(user.path(), "services.yaml", SERVICE);
    let mut loader = Loader::default();
    let first = loader.load(&[user.path(), applied.path()]);
    assert_eq!(kinds(&first), ["ServiceEntry"]);

    write(applied.path(), "routes.yaml", &route(100));
    let second = loader.load(&[user.path(), applied.path()]);
    assert_eq!(kinds(&second), ["ServiceEntry", "VirtualService"]);

    std::fs::remove_file(applied.path().join("routes.yaml")).unwrap();
    let third = loader.load(&[user.path(), applied.path()]);
    assert_eq!(
        kinds(&third),
        ["ServiceEntry"],
        "a removed file's objects go"
    );
}

#[test]
fn a_file_reached_through_two_directories_is_read_once() {
    let outer = tempfile::tempdir().unwrap();
    let inner = outer.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    write(&inner, "services.yaml", SERVICE);
    let inputs = Loader::default().load(&[outer.path(), &inner]);
    assert_eq!(kinds(&inputs), ["ServiceEntry"]);
    assert!(
        errors(&inputs).is_empty(),
        "no duplicate: {:?}",
        errors(&inputs)
    );
}

#[test]
fn a_missing_directory_is_reported_and_the_others_still_load() {
    let user = tempfile::tempdir().unwrap();
    write(user.path(), "services.yaml", SERVICE);
    let missing = user.path().join("gone");
    let inputs = Loader::default().load(&[missing.as_path(), user.path()]);
    assert_eq!(kinds(&inputs), ["ServiceEntry"]);
    let errors = errors(&inputs);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&missing.display().to_string())),
        "{errors:?}"
    );
}

#[test]
fn the_fingerprint_covers_every_directory() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let before = fingerprint(&dirs);
    write(b.path(), "routes.yaml", &route(100));
    assert_ne!(fingerprint(&dirs), before);
}
