//! Reading the sidecars of the local mesh: each one's `/stats/prometheus` on its metrics
//! address (from the state file), all at once, and a short history of scrapes to take
//! windows from.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::stats::{self, PROXY_LABEL, Stats, Workload};
use super::text::{self, Sample};
use super::window::Window;
use crate::cause::innermost;
use crate::local::State;

const TIMEOUT: Duration = Duration::from_secs(3);

/// A sidecar to scrape.
#[derive(Debug, Clone)]
pub struct Target {
    pub workload: Workload,
    pub metrics: SocketAddr,
    pub admin: SocketAddr,
}

/// The local mesh's sidecars, as its state file lists them, and its ingress gateway.
pub fn targets(state: &State) -> Vec<Target> {
    let sidecars = state.workloads.iter().map(|w| Target {
        workload: Workload {
            name: w.name.clone(),
            namespace: state.namespace.clone(),
            service: w.service.clone(),
            version: w.version.clone(),
            identity: w.identity.clone(),
            meshed: (0, 1),
        },
        metrics: w.sidecar.metrics,
        admin: w.sidecar.admin,
    });
    let name = crate::local::gateway::NAME;
    let gateway = state.gateway.iter().map(|g| Target {
        workload: Workload {
            name: name.to_owned(),
            namespace: state.namespace.clone(),
            service: name.to_owned(),
            version: String::new(),
            identity: format!("spiffe://cluster.local/ns/{}/sa/{name}", state.namespace),
            meshed: (0, 1),
        },
        // The state file does not record it: local mode puts every proxy's Prometheus
        // port on 15020 of its own address, as in a pod.
        metrics: SocketAddr::from((g.ip, 15020)),
        admin: g.admin,
    });
    sidecars.chain(gateway).collect()
}

/// Every sidecar's samples at one moment, each labelled with its workload
/// ([`PROXY_LABEL`]); a sidecar that did not answer is not meshed (0/1) and says why.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub at: Instant,
    pub samples: Vec<Sample>,
    pub workloads: Vec<Workload>,
    /// `<workload>: <why>` for every sidecar that did not answer with metrics.
    pub errors: Vec<String>,
}

pub async fn scrape(targets: &[Target]) -> Scrape {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().enumerate() {
        let addr = target.metrics;
        tasks.spawn(async move { (index, get_text(addr, "/stats/prometheus").await) });
    }
    let mut answers = vec![None; targets.len()];
    // A task that failed leaves its target's answer empty; the others are still read.
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, answer)) = joined {
            answers[index] = Some(answer);
        }
    }
    let mut scrape = Scrape {
        at: Instant::now(),
        samples: Vec::new(),
        workloads: Vec::new(),
        errors: Vec::new(),
    };
    for (target, answer) in targets.iter().zip(answers) {
        let mut workload = target.workload.clone();
        let parsed = answer
            .unwrap_or_else(|| Err("the scrape task failed".to_owned()))
            .and_then(|body| text::parse(&body).map_err(|e| e.to_string()));
        match parsed {
            Ok(samples) => {
                workload.meshed = (1, 1);
                scrape.samples.extend(samples.into_iter().map(|mut s| {
                    s.labels
                        .insert(PROXY_LABEL.to_owned(), workload.name.clone());
                    s
                }));
            }
            Err(error) => scrape.errors.push(format!(
                "{}: metrics {}/stats/prometheus: {error}",
                workload.name, target.metrics
            )),
        }
        scrape.workloads.push(workload);
    }
    scrape
}

/// `GET http://<addr><path>` as text; any failure as a message naming its cause.
pub async fn get_text(addr: SocketAddr, path: &str) -> Result<String, String> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| innermost(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| innermost(&e))?
            .to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let first: String = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(format!("answered {status}: {}", first.trim()));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_owned())
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
}

/// The scrapes of the last `span`, oldest first: a window is taken from the oldest to the
/// newest, so rates are smoothed over `span` however often the mesh is scraped.
#[derive(Debug)]
pub struct History {
    span: Duration,
    scrapes: VecDeque<Scrape>,
}

impl History {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            scrapes: VecDeque::new(),
        }
    }

    pub fn push(&mut self, scrape: Scrape) {
        let newest = scrape.at;
        self.scrapes.push_back(scrape);
        // Keep the newest scrape at least `span` old, so the window spans it.
        while self.scrapes.len() > 2
            && self
                .scrapes
                .get(1)
                .is_some_and(|s| newest.duration_since(s.at) >= self.span)
        {
            self.scrapes.pop_front();
        }
    }

    /// The golden metrics from the oldest scrape to the newest; None before two scrapes.
    pub fn stats(&self) -> Option<(Stats, Vec<String>)> {
        let (Some(first), Some(last)) = (self.scrapes.front(), self.scrapes.back()) else {
            return None;
        };
        if self.scrapes.len() < 2 {
            return None;
        }
        let seconds = last.at.duration_since(first.at).as_secs_f64();
        let window = Window::between(&first.samples, &last.samples, seconds);
        Some((
            stats::compute(&window, &last.workloads),
            last.errors.clone(),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64, requests: u32) -> Scrape {
        let text = format!(
            "mesh_requests_total{{reporter=\"destination\",destination_workload=\"a\",destination_workload_namespace=\"ns\"}} {requests}\n"
        );
        Scrape {
            at: start + Duration::from_secs(seconds),
            samples: text::parse(&text).unwrap(),
            workloads: vec![Workload {
                name: "a".into(),
                namespace: "ns".into(),
                service: "a".into(),
                version: "v1".into(),
                identity: String::new(),
                meshed: (1, 1),
            }],
            errors: Vec::new(),
        }
    }

    #[test]
    fn the_window_spans_the_newest_scrape_at_least_span_old() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(2));
        history.push(at(start, 0, 0));
        assert!(history.stats().is_none(), "one scrape is no window");
        history.push(at(start, 1, 10));
        let (stats, _) = history.stats().unwrap();
        assert_eq!(
            (stats.window_seconds, stats.workloads[0].golden.rps),
            (1.0, 10.0)
        );
        // At 3 s the scrape of 1 s is the newest one 2 s old: 0 s is dropped.
        history.push(at(start, 2, 30));
        history.push(at(start, 3, 40));
        let (stats, _) = history.stats().unwrap();
        assert_eq!(
            (stats.window_seconds, stats.workloads[0].golden.rps),
            (2.0, 15.0)
        );
    }
}
