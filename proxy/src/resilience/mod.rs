//! What the proxy remembers about each cluster across snapshots: its circuit breaker
//! counters and its endpoints' outlier state. A reload must not forget either.

mod circuit;
mod outlier;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use circuit::{Admission, Circuit, Refused, RetryPermit};
pub use outlier::{HealthView, Outcome, Outliers};

#[derive(Default)]
pub struct ClusterHealth {
    pub circuit: Arc<Circuit>,
    pub outliers: Outliers,
}

/// Cluster health by cluster name, kept for the proxy's lifetime.
#[derive(Default)]
pub struct HealthRegistry(Mutex<HashMap<String, Arc<ClusterHealth>>>);

impl HealthRegistry {
    pub fn cluster(&self, name: &str) -> Arc<ClusterHealth> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }
}
