use mesh_core::load::load_str;

use super::*;

const GOOD: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"#;

const INVALID: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}, weight: 150}]}]
"#;

const UNPARSEABLE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  htp: []
"#;

const OTHER: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings]
  http: [{route: [{destination: {host: ratings, subset: missing}}]}]
"#;

fn admit(
    last_good: &mut LastGood,
    docs: &[&str],
) -> (Vec<Located<ConfigObject>>, Vec<StatusEntry>) {
    last_good.admit(load_str(&docs.join("\n---\n"), "config.yaml"))
}

fn routes_weight(objects: &[Located<ConfigObject>], name: &str) -> Option<Option<u32>> {
    objects.iter().find_map(|o| match &o.object {
        ConfigObject::VirtualService(vs) if vs.metadata.name == name => {
            Some(vs.spec.http[0].route[0].weight)
        }
        _ => None,
    })
}

#[test]
fn an_invalid_edit_keeps_the_previous_version_and_others_are_untouched() {
    let mut last_good = LastGood::default();
    let (used, status) = admit(&mut last_good, &[GOOD, OTHER]);
    assert_eq!(used.len(), 2);
    // The dangling subset is a problem across objects: reported, and the object used.
    assert!(
        status.iter().all(|s| s.action == Action::Used),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|s| s.diagnostic.message.contains("missing"))
    );

    let (used, status) = admit(&mut last_good, &[INVALID, OTHER]);
    assert_eq!(used.len(), 2, "both still in force");
    assert_eq!(
        routes_weight(&used, "reviews"),
        Some(None),
        "the previous version"
    );
    let kept: Vec<_> = status
        .iter()
        .filter(|s| s.action == Action::KeptPrevious)
        .collect();
    assert_eq!(kept.len(), 1, "{status:?}");
    assert_eq!(kept[0].diagnostic.field, "spec.http[0].route[0].weight");
    assert_eq!(kept[0].diagnostic.origin.name, "reviews");
}

#[test]
fn an_edit_that_no_longer_parses_keeps_the_previous_version_too() {
    let mut last_good = LastGood::default();
    admit(&mut last_good, &[GOOD]);
    let (used, status) = admit(&mut last_good, &[UNPARSEABLE]);
    assert_eq!(routes_weight(&used, "reviews"), Some(None));
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].action, Action::KeptPrevious);
    assert!(status[0].diagnostic.message.contains("htp"), "{status:?}");
}

#[test]
fn an_invalid_object_never_seen_valid_is_skipped_and_a_fix_is_taken() {
    let mut last_good = LastGood::default();
    let (used, status) = admit(&mut last_good, &[INVALID]);
    assert!(used.is_empty());
    assert_eq!(status[0].action, Action::Skipped);

    let (used, status) = admit(&mut last_good, &[GOOD]);
    assert_eq!(used.len(), 1);
    // Only the warning that no ServiceEntry defines the host is left.
    assert!(
        status.iter().all(|s| !s.diagnostic.is_error()),
        "{status:?}"
    );
}

#[test]
fn a_deleted_object_is_forgotten() {
    let mut last_good = LastGood::default();
    admit(&mut last_good, &[GOOD]);
    let (used, _) = admit(&mut last_good, &[OTHER]);
    assert_eq!(used.len(), 1);
    // Broken after deletion: there is no previous version to fall back to any more.
    let (used, status) = admit(&mut last_good, &[OTHER, INVALID]);
    assert_eq!(used.len(), 1);
    assert!(status.iter().any(|s| s.action == Action::Skipped));
}
