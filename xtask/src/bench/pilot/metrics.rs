//! pilot's own view, from its `/metrics`: how long indexing a generation took, how many
//! pushes and resources went out, and its convergence histogram.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The series the report uses, read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PilotMetrics {
    pub build_sum_s: f64,
    pub builds: f64,
    pub pushes: f64,
    pub pushed_resources: f64,
    pub acks: f64,
    pub convergence_sum_s: f64,
    pub convergences: f64,
    pub connected: f64,
}

impl PilotMetrics {
    pub fn parse(text: &str) -> Self {
        let series = parse_series(text);
        let sum = |name: &str| {
            series
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .sum()
        };
        PilotMetrics {
            build_sum_s: sum("pilot_generation_build_seconds_sum"),
            builds: sum("pilot_generation_build_seconds_count"),
            pushes: sum("pilot_xds_pushes_total"),
            pushed_resources: sum("pilot_xds_pushed_resources_total"),
            acks: sum("pilot_xds_acks_total"),
            convergence_sum_s: sum("pilot_proxy_convergence_seconds_sum"),
            convergences: sum("pilot_proxy_convergence_seconds_count"),
            connected: sum("pilot_xds_connected"),
        }
    }

    /// What happened between `earlier` and `self` (the gauge stays as read now).
    pub fn since(&self, earlier: &Self) -> Self {
        PilotMetrics {
            build_sum_s: self.build_sum_s - earlier.build_sum_s,
            builds: self.builds - earlier.builds,
            pushes: self.pushes - earlier.pushes,
            pushed_resources: self.pushed_resources - earlier.pushed_resources,
            acks: self.acks - earlier.acks,
            convergence_sum_s: self.convergence_sum_s - earlier.convergence_sum_s,
            convergences: self.convergences - earlier.convergences,
            connected: self.connected,
        }
    }

    /// Mean time to index one generation, seconds.
    pub fn mean_build_s(&self) -> Option<f64> {
        (self.builds > 0.0).then(|| self.build_sum_s / self.builds)
    }

    /// Mean of pilot's own convergence measure (from noticing the change to the ACK).
    pub fn mean_convergence_s(&self) -> Option<f64> {
        (self.convergences > 0.0).then(|| self.convergence_sum_s / self.convergences)
    }
}

/// `(metric name, value)` for every sample line of the Prometheus text format; labels are
/// dropped, so series of one name can be summed.
pub fn parse_series(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.trim().rsplit_once(' ')?;
            let name = series.split('{').next()?;
            Some((name, value.parse().ok()?))
        })
        .collect()
}

/// Reads pilot's `/metrics`.
pub async fn scrape(monitoring: SocketAddr) -> anyhow::Result<PilotMetrics> {
    let body = http_get(monitoring, "/metrics").await?;
    Ok(PilotMetrics::parse(&body))
}

/// A plain HTTP/1.1 GET on loopback, the body as text.
async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to pilot's monitoring port {addr}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: pilot\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers in pilot's answer")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE pilot_xds_pushes_total counter
pilot_xds_pushes_total 2010
pilot_xds_pushed_resources_total 6000
pilot_xds_acks_total 2008
pilot_xds_connected 2000
pilot_generation_build_seconds_bucket{le=\"0.1\"} 3
pilot_generation_build_seconds_sum 0.25
pilot_generation_build_seconds_count 4
pilot_proxy_convergence_seconds_sum 30
pilot_proxy_convergence_seconds_count 200
pilot_xds_nacks_total{reason=\"route\"} 1
pilot_xds_nacks_total{reason=\"cluster\"} 2
";

    #[test]
    fn parses_the_series_the_report_uses() {
        let m = PilotMetrics::parse(TEXT);
        assert_eq!(m.pushes, 2010.0);
        assert_eq!(m.pushed_resources, 6000.0);
        assert_eq!(m.connected, 2000.0);
        assert_eq!(m.mean_build_s(), Some(0.0625));
        assert_eq!(m.mean_convergence_s(), Some(0.15));
        let nacks: f64 = parse_series(TEXT)
            .iter()
            .filter(|(n, _)| *n == "pilot_xds_nacks_total")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(nacks, 3.0);
    }

    #[test]
    fn a_difference_counts_what_happened_between() {
        let before = PilotMetrics::parse(TEXT);
        let after = PilotMetrics {
            pushes: 4010.0,
            builds: 5.0,
            build_sum_s: 0.35,
            ..before
        };
        let delta = after.since(&before);
        assert_eq!(delta.pushes, 2000.0);
        assert_eq!(delta.builds, 1.0);
        assert!((delta.mean_build_s().unwrap_or(0.0) - 0.1).abs() < 1e-9);
        assert_eq!(delta.connected, 2000.0);
        assert_eq!(delta.mean_convergence_s(), None);
    }
}
