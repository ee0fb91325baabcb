//! The live picture of the mesh: the golden metrics (rate, success, latency, open
//! connections) per workload, per service and per edge of the service graph, for `meshctl
//! stat`, `meshctl top` and `meshctl dashboard`.
//!
//! ```text
//! scrape (local: each sidecar's /stats/prometheus) -> text (parse) -> window (two scrapes:
//! increases) -> stats (per workload, service, edge; quantile for the latencies)
//! prometheus (Kubernetes: PromQL over the same metrics) -> window -------------> stats
//! source: which of the two; format: the terminal cells of stat and top
//! routes (each sidecar's /config_dump, or the cluster's VirtualServices) -> routes in force
//! ```

pub mod format;
pub mod prometheus;
pub mod quantile;
pub mod routes;
pub mod scrape;
pub mod source;
pub mod stats;
pub mod text;
pub mod window;

use std::path::PathBuf;

/// Why the mesh could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(
        "no local mesh runs with state in {}: start one with `meshctl local up <dir>` (with the same --state-dir), or give --prometheus URL",
        .0.display()
    )]
    NotRunning(PathBuf),
    #[error(
        "{name:?} is neither the local mesh's namespace ({namespace}) nor one of its workloads: {known}"
    )]
    UnknownTarget {
        name: String,
        namespace: String,
        known: String,
    },
    #[error("Prometheus at {url}: {error}")]
    Prometheus { url: String, error: String },
    #[error("cannot serve the dashboard on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
}
