//! Subsets: the endpoints a DestinationRule subset (e.g. `version: v1`) stands for.

use crate::model::{Endpoint, Subset};

/// The endpoints whose labels include all of the subset's labels, in their original order.
pub fn select_subset<'e>(
    endpoints: &'e [Endpoint],
    subset: &'e Subset,
) -> impl Iterator<Item = &'e Endpoint> + 'e {
    endpoints
        .iter()
        .filter(|endpoint| subset.contains(endpoint))
}
