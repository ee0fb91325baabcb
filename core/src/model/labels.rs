//! Label sets and the selector rule shared by route matching and subsets.

use std::collections::BTreeMap;

/// Kubernetes-style labels. A `BTreeMap` so that printing and hashing are deterministic.
pub type Labels = BTreeMap<String, String>;

/// Whether `selector` selects `labels`: every selector entry is present in `labels` with the
/// same value. An empty selector selects everything, as in Kubernetes and Istio.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}
