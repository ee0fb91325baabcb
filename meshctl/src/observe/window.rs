//! What changed between two scrapes: the increase of every counter series, as Prometheus's
//! `increase()` sees it (a counter that went down was reset, and its new value is the
//! increase), and the golden metrics of a group of request series over that window.

use std::collections::BTreeMap;

use serde::Serialize;

use super::quantile::histogram_quantile;
use super::text::{Sample, number};

pub const REQUESTS: &str = "mesh_requests_total";
pub const DURATION_BUCKET: &str = "mesh_request_duration_milliseconds_bucket";
pub const TCP_OPENED: &str = "mesh_tcp_connections_opened_total";
pub const TCP_CLOSED: &str = "mesh_tcp_connections_closed_total";

/// Two scrapes of the same proxies, `seconds` apart.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub seconds: f64,
    /// Each series' increase over the window (series that appeared count from 0).
    pub deltas: Vec<Sample>,
    /// Each series' value at the end of the window.
    pub latest: Vec<Sample>,
}

type SeriesKey<'a> = (&'a str, &'a BTreeMap<String, String>);

impl Window {
    pub fn between(before: &[Sample], after: &[Sample], seconds: f64) -> Window {
        let earlier: BTreeMap<SeriesKey, f64> = before
            .iter()
            .map(|s| ((s.name.as_str(), &s.labels), s.value))
            .collect();
        let deltas = after
            .iter()
            .map(|s| {
                let start = earlier.get(&(s.name.as_str(), &s.labels)).copied();
                let value = match start {
                    Some(start) if s.value >= start => s.value - start,
                    // Reset (the proxy restarted) or new: all of it is in the window.
                    _ => s.value,
                };
                Sample { value, ..s.clone() }
            })
            .collect();
        Window {
            seconds,
            deltas,
            latest: after.to_vec(),
        }
    }
}

/// Rate, success and latency of some requests, as `meshctl stat` and the dashboard show
/// them. Latencies are in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Golden {
    /// Requests in the window.
    pub requests: f64,
    pub rps: f64,
    /// Share of responses that are not 5xx (Istio's `response_code!~"5.*"`); None without
    /// requests.
    pub success: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Sums request series (and their duration buckets) into one [`Golden`].
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    requests: f64,
    ok: f64,
    mtls: f64,
    buckets: BTreeMap<String, (f64, f64)>,
}

impl Accumulator {
    /// Adds a `mesh_requests_total` or `..._bucket` sample; others are ignored.
    pub fn add(&mut self, sample: &Sample) {
        if sample.name == REQUESTS {
            self.requests += sample.value;
            if !sample.label("response_code").starts_with('5') {
                self.ok += sample.value;
            }
            if sample.label("connection_security_policy") == "mutual_tls" {
                self.mtls += sample.value;
            }
        } else if sample.name == DURATION_BUCKET {
            let le = sample.label("le");
            if let Some(bound) = number(le) {
                let bucket = self.buckets.entry(le.to_owned()).or_insert((bound, 0.0));
                bucket.1 += sample.value;
            }
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &Accumulator) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.mtls += other.mtls;
        for (le, (bound, count)) in &other.buckets {
            self.buckets.entry(le.clone()).or_insert((*bound, 0.0)).1 += count;
        }
    }

    pub fn requests(&self) -> f64 {
        self.requests
    }

    /// Every request counted went over mutual TLS (and there was at least one).
    pub fn all_mtls(&self) -> bool {
        self.requests > 0.0 && self.mtls >= self.requests
    }

    pub fn golden(&self, seconds: f64) -> Golden {
        let buckets: Vec<(f64, f64)> = self.buckets.values().copied().collect();
        let quantile = |q| histogram_quantile(q, &buckets);
        Golden {
            requests: self.requests,
            rps: if seconds > 0.0 {
                self.requests / seconds
            } else {
                0.0
            },
            success: (self.requests > 0.0).then(|| self.ok / self.requests),
            p50: quantile(0.5),
            p95: quantile(0.95),
            p99: quantile(0.99),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::text::parse;
    use super::*;

    const BEFORE: &str = r#"
mesh_requests_total{reporter="source",response_code="200"} 100
mesh_requests_total{reporter="source",response_code="503"} 10
mesh_request_duration_milliseconds_bucket{reporter="source",le="5"} 50
mesh_request_duration_milliseconds_bucket{reporter="source",le="10"} 110
mesh_request_duration_milliseconds_bucket{reporter="source",le="+Inf"} 110
"#;

    // 10 s later: 18 more 200s, 2 more 503s, a new 500 series with 0 (appeared, counted
    // from 0), and 20 new durations: 10 in (0, 5], 10 in (5, 10].
    const AFTER: &str = r#"
mesh_requests_total{reporter="source",response_code="200"} 118
mesh_requests_total{reporter="source",response_code="503"} 12
mesh_requests_total{reporter="source",response_code="500"} 0
mesh_request_duration_milliseconds_bucket{reporter="source",le="5"} 60
mesh_request_duration_milliseconds_bucket{reporter="source",le="10"} 130
mesh_request_duration_milliseconds_bucket{reporter="source",le="+Inf"} 130
"#;

    fn golden(before: &str, after: &str, seconds: f64) -> Golden {
        let window = Window::between(&parse(before).unwrap(), &parse(after).unwrap(), seconds);
        let mut acc = Accumulator::default();
        window.deltas.iter().for_each(|s| acc.add(s));
        acc.golden(window.seconds)
    }

    #[test]
    fn rates_success_and_quantiles_over_the_window() {
        let golden = golden(BEFORE, AFTER, 10.0);
        assert_eq!(golden.requests, 20.0);
        assert_eq!(golden.rps, 2.0);
        assert_eq!(golden.success, Some(0.9));
        assert_eq!(golden.p50, Some(5.0));
        assert_eq!(golden.p95, Some(9.5));
        assert_eq!(golden.p99, Some(9.9));
    }

    #[test]
    fn a_counter_that_went_down_was_reset() {
        let after = "mesh_requests_total{response_code=\"200\"} 7\n";
        let before = "mesh_requests_total{response_code=\"200\"} 500\n";
        assert_eq!(golden(before, after, 1.0).requests, 7.0);
    }

    #[test]
    fn no_requests_has_no_success_or_latency() {
        let golden = golden(BEFORE, BEFORE, 10.0);
        assert_eq!(golden.rps, 0.0);
        assert_eq!((golden.success, golden.p50, golden.p99), (None, None, None));
    }

    #[test]
    fn mtls_is_every_request_over_mutual_tls() {
        let mut acc = Accumulator::default();
        assert!(!acc.all_mtls());
        let text = "mesh_requests_total{connection_security_policy=\"mutual_tls\"} 3\n";
        parse(text).unwrap().iter().for_each(|s| acc.add(s));
        assert!(acc.all_mtls());
        let text = "mesh_requests_total{connection_security_policy=\"unknown\"} 1\n";
        parse(text).unwrap().iter().for_each(|s| acc.add(s));
        assert!(!acc.all_mtls());
    }
}
