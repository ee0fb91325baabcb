//! The shipped examples are real Istio YAML: they must load with no parse error, and
//! together they must exercise every kind mesh accepts.

use std::collections::BTreeSet;

use mesh_core::config::Kind;
use mesh_core::load::load_paths;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config");

#[test]
fn every_example_loads_and_every_kind_is_covered() {
    let set = load_paths(&[EXAMPLES]);
    let problems: Vec<String> = set.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        problems.is_empty(),
        "examples must load cleanly:\n{}",
        problems.join("\n")
    );
    let kinds: BTreeSet<Kind> = set.objects.iter().map(|o| o.object.kind()).collect();
    let missing: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !kinds.contains(k))
        .collect();
    assert!(missing.is_empty(), "no example uses {missing:?}");
    assert!(
        set.skipped.iter().any(|s| s.origin.kind == "Deployment"),
        "some example mixes in Kubernetes kinds, which must be skipped"
    );
}
