//! The example snapshots the README points at must compile.

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;

#[test]
fn every_example_snapshot_compiles() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/snapshot");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("examples/snapshot exists") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let snapshot =
            Snapshot::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        compile(&snapshot).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked > 0, "no example snapshots found");
}
