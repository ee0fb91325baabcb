//! A proxy's telemetry: access logging and tracing from the Telemetry resources that select
//! it (workload over namespace over mesh-wide), as one [`TelemetrySpec`].

use mesh_core::snapshot::TelemetrySpec;

use super::Node;
use crate::index::Index;

/// The effective telemetry of `node`, or `None` when no Telemetry resource applies.
pub fn telemetry(_index: &Index, _node: &Node) -> Option<TelemetrySpec> {
    // Filled in when the index holds Telemetry resources.
    None
}
