//! Where the numbers come from: the local mesh's sidecars, scraped now and again after the
//! window, or Prometheus (`--prometheus URL`), asked for the window.

use std::time::Duration;

use super::ObserveError;
use super::scrape::{self, History, Target};
use super::stats::{self, Stats, Workload};
use crate::cmd::local::StateArgs;

pub enum Source {
    Local {
        namespace: String,
        targets: Vec<Target>,
        history: History,
    },
    Prometheus {
        url: String,
        window: Duration,
    },
}

/// One measurement, and what could not be read (a sidecar that did not answer).
pub struct Measured {
    pub stats: Stats,
    pub errors: Vec<String>,
}

impl Source {
    /// Prometheus when a URL is given, else the local mesh `state` names.
    pub fn open(
        state: &StateArgs,
        prometheus: Option<&str>,
        window: Duration,
    ) -> Result<Source, ObserveError> {
        if let Some(url) = prometheus {
            return Ok(Source::Prometheus {
                url: url.trim_end_matches('/').to_owned(),
                window,
            });
        }
        let dir = state.dir()?;
        let state = dir
            .read()
            .map_err(crate::local::LocalError::from)?
            .ok_or_else(|| ObserveError::NotRunning(dir.root.clone()))?;
        Ok(Source::Local {
            namespace: state.namespace.clone(),
            targets: scrape::targets(&state),
            history: History::new(window),
        })
    }

    /// The local mesh's sidecars (none in Prometheus mode).
    pub fn targets(&self) -> &[Target] {
        match self {
            Source::Local { targets, .. } => targets,
            Source::Prometheus { .. } => &[],
        }
    }

    /// The local mesh's namespace.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Source::Local { namespace, .. } => Some(namespace),
            Source::Prometheus { .. } => None,
        }
    }

    /// The golden metrics of the last window. Locally the first call scrapes, waits the
    /// window and scrapes again; later calls scrape once and measure from the oldest
    /// scrape still within the window.
    pub async fn measure(&mut self, window: Duration) -> Result<Measured, ObserveError> {
        match self {
            Source::Local {
                targets, history, ..
            } => {
                history.push(scrape::scrape(targets).await);
                let (stats, errors) = match history.stats() {
                    Some(measured) => measured,
                    None => {
                        tokio::time::sleep(window).await;
                        history.push(scrape::scrape(targets).await);
                        history.stats().unwrap_or_default()
                    }
                };
                Ok(Measured { stats, errors })
            }
            Source::Prometheus { url, window } => {
                let (window, workloads) = super::prometheus::measure(url, *window).await?;
                Ok(Measured {
                    stats: stats::compute(&window, &workloads),
                    errors: Vec::new(),
                })
            }
        }
    }
}

/// `stat`'s selection: the workloads `target` names (`<namespace>`, `deploy/<workload>`,
/// `<workload>` or `<workload>.<namespace>`); every one when None.
pub fn select(
    workloads: &[Workload],
    namespace: Option<&str>,
    target: Option<&str>,
) -> Result<Vec<String>, ObserveError> {
    let all = || workloads.iter().map(Workload::id).collect();
    let Some(target) = target else {
        return Ok(all());
    };
    let name = target.strip_prefix("deploy/").unwrap_or(target);
    let matching: Vec<String> = workloads
        .iter()
        .filter(|w| w.name == name || w.id() == name)
        .map(Workload::id)
        .collect();
    if !matching.is_empty() {
        return Ok(matching);
    }
    let in_namespace: Vec<String> = workloads
        .iter()
        .filter(|w| w.namespace == target)
        .map(Workload::id)
        .collect();
    if !in_namespace.is_empty() || namespace == Some(target) {
        return Ok(in_namespace);
    }
    let known: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    Err(ObserveError::UnknownTarget {
        name: target.to_owned(),
        namespace: namespace.unwrap_or("any").to_owned(),
        known: if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    })
}
