//! A real Prometheus (the Debian package's `/usr/bin/prometheus`) scraping given targets
//! every second, and its query API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::support::{DEADLINE, HttpClient, client, wait_for};

const BINARY: &str = "/usr/bin/prometheus";

pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    client: HttpClient,
}

impl Prometheus {
    /// Starts Prometheus on `listen` (an address only this test uses) scraping
    /// `/stats/prometheus` of `targets` every second, and waits until it is ready.
    pub async fn start(listen: SocketAddr, targets: &[SocketAddr]) -> Prometheus {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: install Prometheus (`apt-get install prometheus`; .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: mesh\n  metrics_path: /stats/prometheus\n  static_configs: [{{targets: [{}]}}]\n",
            targets.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BINARY}: {e}"));
        let prometheus = Prometheus {
            child,
            addr: listen,
            dir,
            client: client(),
        };
        wait_for("Prometheus ready", || async {
            let (status, _) = prometheus.get("/-/ready").await?;
            (status == StatusCode::OK).then_some(())
        })
        .await;
        prometheus
    }

    async fn get(&self, path_and_query: &str) -> Option<(StatusCode, Bytes)> {
        let request = Request::get(format!("http://{}{path_and_query}", self.addr))
            .body(Full::default())
            .unwrap();
        let response = tokio::time::timeout(DEADLINE, self.client.request(request))
            .await
            .ok()?
            .ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    }

    /// An instant query at `time` (Unix seconds; now if `None`): Prometheus' whole answer,
    /// or its error text.
    pub async fn query(&self, promql: &str, time: Option<f64>) -> Result<Value, String> {
        let mut path = format!("/api/v1/query?query={}", encode(promql));
        if let Some(time) = time {
            path.push_str(&format!("&time={time:.3}"));
        }
        let (status, body) = self
            .get(&path)
            .await
            .ok_or_else(|| "Prometheus did not answer".to_owned())?;
        let answer: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if status != StatusCode::OK || answer["status"] != "success" {
            return Err(format!("{status}: {answer}"));
        }
        Ok(answer["data"].clone())
    }

    /// The single value of a query that must return one sample.
    pub async fn scalar(&self, promql: &str, time: Option<f64>) -> Option<f64> {
        let data = self
            .query(promql, time)
            .await
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
        let result = data["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// What Prometheus logged, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter (RFC 3986 unreserved characters stay).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
