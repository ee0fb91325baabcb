//! The proxy's own settings (not the mesh config it serves): flags with env fallbacks,
//! logged at start and shown on `/config_dump`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use serde::Serialize;

use crate::identity::{Identity, IdentityError};

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "mesh-proxy",
    version,
    about = "mesh's sidecar and gateway proxy",
    group(ArgGroup::new("source").required(true).args(["snapshot", "pilot"]))
)]
pub struct Config {
    /// Serve the snapshot in this file (YAML or JSON), reloaded when it changes.
    #[arg(long, env = "MESH_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,

    /// Take the config from pilot's discovery stream at this `host:port` instead of a file.
    #[arg(long, env = "MESH_PILOT_ADDR", value_parser = parse_host_port)]
    pub pilot: Option<String>,

    /// Who this proxy is to pilot; default `<workload>.<namespace>`.
    #[arg(long, env = "MESH_NODE_ID")]
    pub node_id: Option<String>,

    /// The workload's service account: its identity, and what pilot selects policies by.
    #[arg(long, env = "SERVICE_ACCOUNT", default_value = "default")]
    pub service_account: String,

    /// The workload's labels, `k=v,k=v`: what pilot selects Sidecars and policies by.
    #[arg(long, env = "MESH_LABELS", default_value = "", value_parser = parse_labels)]
    pub labels: BTreeMap<String, String>,

    /// The workload's IP addresses (repeat the flag, or a comma list).
    #[arg(long, env = "INSTANCE_IP", value_delimiter = ',')]
    pub instance_ip: Vec<IpAddr>,

    /// Where the application's outbound traffic reaches this proxy (`ip:port`), sent to
    /// pilot so that it binds the outbound listener there.
    #[arg(long, env = "MESH_OUTBOUND_ADDR")]
    pub outbound_addr: Option<SocketAddr>,

    /// `sidecar` (next to an app) or `gateway` (at the mesh's edge): pilot sends a
    /// gateway the listeners of the Gateways whose `selector` matches its `--labels`
    /// (bound at `--outbound-addr`'s IP when set), and no sidecar listeners.
    #[arg(
        long,
        env = "MESH_PROXY_MODE",
        value_enum,
        ignore_case = true,
        default_value = "sidecar"
    )]
    pub mode: ProxyMode,

    /// Gateway mode: where the Secrets a Gateway server's `credentialName` names are
    /// mounted, one directory per Secret (`<dir>/<credentialName>/tls.crt`, `tls.key`,
    /// `ca.crt`); in local mode, a directory laid out the same way.
    #[arg(long, env = "MESH_CREDENTIALS_DIR", default_value = DEFAULT_CREDENTIALS_DIR)]
    pub credentials_dir: PathBuf,

    /// `REDIRECT` (or `--capture` alone): the pod's traffic is redirected here by
    /// `mesh-proxy iptables`; the proxy serves it on `--capture-outbound-addr` and
    /// `--capture-inbound-addr` by original destination, and tells pilot so.
    #[arg(
        long = "capture",
        env = "MESH_INTERCEPTION",
        value_enum,
        ignore_case = true,
        num_args = 0..=1,
        default_missing_value = "REDIRECT",
        default_value = "NONE"
    )]
    pub interception: Interception,

    /// Capture mode: where redirected outbound traffic arrives (`[::]` takes IPv4 too;
    /// on a host without IPv6 the proxy binds `0.0.0.0` instead).
    #[arg(long, env = "MESH_CAPTURE_OUTBOUND_ADDR", default_value = "[::]:15001")]
    pub capture_outbound_addr: SocketAddr,

    /// Capture mode: where redirected inbound traffic arrives.
    #[arg(long, env = "MESH_CAPTURE_INBOUND_ADDR", default_value = "[::]:15006")]
    pub capture_inbound_addr: SocketAddr,

    /// How often the snapshot file is checked for changes.
    #[arg(long, env = "MESH_SNAPSHOT_POLL", default_value = "200ms", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub snapshot_poll: Duration,

    /// Admin endpoints (config dump, routes, clusters, quitquitquit): keep on loopback.
    #[arg(long, env = "MESH_ADMIN_ADDR", default_value = "127.0.0.1:15000")]
    pub admin_addr: SocketAddr,

    /// Readiness, `/healthz/ready`, for the kubelet and load balancers.
    #[arg(long, env = "MESH_HEALTH_ADDR", default_value = "0.0.0.0:15021")]
    pub health_addr: SocketAddr,

    /// Prometheus metrics, `/stats/prometheus`.
    #[arg(long, env = "MESH_METRICS_ADDR", default_value = "0.0.0.0:15020")]
    pub metrics_addr: SocketAddr,

    /// This workload's name, namespace, app and version: the `source_*` labels of metrics.
    #[arg(long, env = "MESH_WORKLOAD", default_value = "unknown")]
    pub workload: String,
    #[arg(long, env = "POD_NAMESPACE", default_value = "unknown")]
    pub namespace: String,
    #[arg(long, env = "MESH_APP", default_value = "unknown")]
    pub app: String,
    #[arg(
        long = "app-version",
        env = "MESH_APP_VERSION",
        default_value = "unknown"
    )]
    pub app_version: String,

    /// citadel's `host:port`: the proxy gets its workload certificate (its SPIFFE identity,
    /// `--trust-domain`, `--namespace`, `--service-account`) there and renews it at
    /// half-life; it is ready only once it has one. Without it the proxy has no identity.
    #[arg(long, env = "MESH_CA_ADDR", value_parser = parse_host_port, requires = "trust_bundle")]
    pub ca_addr: Option<String>,

    /// The credential for citadel, sent as a bearer token; read again for every request, as
    /// projected service-account tokens rotate.
    #[arg(long, env = "MESH_CA_TOKEN_FILE")]
    pub ca_token_file: Option<PathBuf>,

    /// The mesh's root certificates (PEM), to verify citadel's serving certificate.
    #[arg(long, env = "MESH_TRUST_BUNDLE")]
    pub trust_bundle: Option<PathBuf>,

    /// The trust domain of SPIFFE identities.
    #[arg(long, env = "MESH_TRUST_DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,

    /// The lifetime asked for workload certificates (the CA may shorten it).
    #[arg(long, env = "MESH_CERT_TTL", default_value = "24h", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub cert_ttl: Duration,

    /// The DNS server (`ip` or `ip:port`) that resolves `resolution: DNS` ServiceEntries;
    /// default: the system's, from /etc/resolv.conf.
    #[arg(long, env = "MESH_DNS_SERVER", value_parser = parse_dns_server)]
    pub dns_server: Option<SocketAddr>,

    /// Write a JSON access log line per request to stdout, whatever the Telemetry says
    /// (without it, the snapshot's `telemetry.accessLogging` turns the lines on and off).
    #[arg(long, env = "MESH_ACCESS_LOG")]
    pub access_log: bool,

    /// On SIGTERM, how long in-flight requests may take before the proxy exits anyway.
    #[arg(long, env = "MESH_DRAIN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub drain_timeout: Duration,

    /// Log filter, e.g. `info` or `mesh_proxy=debug`.
    #[arg(long, env = "MESH_LOG", default_value = "info")]
    pub log: String,
}

/// How the application's traffic reaches the proxy (Istio's names).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[clap(rename_all = "UPPER")]
#[serde(rename_all = "UPPERCASE")]
pub enum Interception {
    /// The application addresses the proxy (local mode).
    None,
    /// iptables redirects the pod's TCP to the capture ports.
    Redirect,
}

/// Where a gateway's Secrets are mounted unless `--credentials-dir` says otherwise.
pub const DEFAULT_CREDENTIALS_DIR: &str = "/etc/mesh/credentials";

/// What the proxy stands for.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[clap(rename_all = "lower")]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// Beside one workload: outbound and inbound listeners.
    Sidecar,
    /// An ingress or egress gateway: the Gateways' servers.
    Gateway,
}

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Pilot(String),
}

#[derive(Debug, thiserror::Error)]
#[error("give exactly one of --snapshot FILE and --pilot HOST:PORT")]
pub struct NoSource;

impl Config {
    /// The config source; clap already requires exactly one, this holds for configs built
    /// in code too.
    pub fn source(&self) -> Result<Source, NoSource> {
        match (&self.snapshot, &self.pilot) {
            (Some(path), None) => Ok(Source::File(path.clone())),
            (None, Some(address)) => Ok(Source::Pilot(address.clone())),
            _ => Err(NoSource),
        }
    }

    /// The workload's SPIFFE identity.
    pub fn identity(&self) -> Result<Identity, IdentityError> {
        Identity::new(&self.trust_domain, &self.namespace, &self.service_account)
    }

    /// The capture ports, in capture mode.
    pub fn capture(&self) -> Option<crate::capture::Ports> {
        (self.interception == Interception::Redirect).then_some(crate::capture::Ports {
            outbound: self.capture_outbound_addr,
            inbound: self.capture_inbound_addr,
        })
    }

    /// The node id sent to pilot.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .unwrap_or_else(|| format!("{}.{}", self.workload, self.namespace))
    }
}

/// `host:port`, the host a name or an IP (`[::1]:15010` for IPv6).
fn parse_host_port(text: &str) -> Result<String, String> {
    let usage = || format!("{text:?}: expected host:port, e.g. pilot.mesh-system:15010");
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Err(usage());
    }
    Ok(text.to_owned())
}

/// `ip:port`, or an `ip` on port 53.
fn parse_dns_server(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{text:?}: expected an IP or IP:port, e.g. 10.96.0.10:53"))
}

/// `k=v,k=v`; empty for none.
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(format!("{pair:?}: expected key=value")),
        })
        .collect()
}

/// Durations on the command line use the config language's syntax ("200ms", "5s").
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = mesh_core::config::Duration::parse(text).map_err(|e| e.to_string())?;
    parsed.to_std().ok_or_else(|| format!("{text} is negative"))
}

mod duration_text {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}ms", d.as_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("mesh-proxy").chain(args.iter().copied()))
    }

    #[test]
    fn exactly_one_source_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--snapshot", "s.yaml", "--pilot", "pilot:15010"]).is_err());
        let file = parse(&["--snapshot", "s.yaml"]).expect("file mode");
        assert_eq!(file.source().ok(), Some(Source::File("s.yaml".into())));
        let pilot = parse(&["--pilot", "pilot:15010"]).expect("pilot mode");
        assert_eq!(
            pilot.source().ok(),
            Some(Source::Pilot("pilot:15010".into()))
        );
    }

    #[test]
    fn pilot_address_is_host_and_port() {
        for good in ["pilot:15010", "127.0.0.1:1", "[::1]:15010"] {
            assert!(parse(&["--pilot", good]).is_ok(), "{good}");
        }
        for bad in ["pilot", "http://pilot:15010", ":15010", "pilot:http"] {
            assert!(parse(&["--pilot", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn certificate_flags() {
        let plain = parse(&["--pilot=p:1"]).expect("parses");
        assert_eq!(plain.ca_addr, None);
        assert_eq!(plain.cert_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(
            plain.identity().map(|i| i.to_string()),
            Ok("spiffe://cluster.local/ns/unknown/sa/default".to_owned())
        );
        let meshed = parse(&[
            "--pilot=p:1",
            "--ca-addr=citadel.mesh-system.svc:8060",
            "--trust-bundle=/etc/mesh/root-cert.pem",
            "--ca-token-file=/var/run/secrets/tokens/mesh-token",
            "--trust-domain=example.org",
            "--namespace=shop",
            "--service-account=cart",
            "--cert-ttl=1h",
        ])
        .expect("parses");
        assert_eq!(meshed.cert_ttl, Duration::from_secs(3600));
        assert_eq!(
            meshed.identity().map(|i| i.to_string()),
            Ok("spiffe://example.org/ns/shop/sa/cart".to_owned())
        );
        assert!(
            parse(&["--pilot=p:1", "--ca-addr=citadel:8060"]).is_err(),
            "no bundle"
        );
        assert!(parse(&["--pilot=p:1", "--ca-addr=citadel", "--trust-bundle=r"]).is_err());
        let bad = parse(&["--pilot=p:1", "--trust-domain=Not Valid"]).expect("parses");
        assert!(bad.identity().is_err());
    }

    #[test]
    fn node_identity_flags() {
        let config = parse(&[
            "--pilot=p:1",
            "--workload=reviews-v1",
            "--namespace=shop",
            "--labels=app=reviews, version=v1",
            "--instance-ip=10.0.0.1,10.0.0.2",
            "--instance-ip=fd00::1",
        ])
        .expect("parses");
        assert_eq!(config.node_id(), "reviews-v1.shop");
        assert_eq!(config.service_account, "default");
        assert_eq!(config.labels["app"], "reviews");
        assert_eq!(config.labels["version"], "v1");
        assert_eq!(config.instance_ip.len(), 3);
        assert!(parse(&["--pilot=p:1", "--labels=novalue"]).is_err());
        let named = parse(&["--pilot=p:1", "--node-id=n1"]).expect("parses");
        assert_eq!(named.node_id(), "n1");
    }

    #[test]
    fn capture_mode_flags() {
        let plain = parse(&["--pilot=p:1"]).expect("parses");
        assert!(plain.capture().is_none());
        for args in [
            &["--pilot=p:1", "--capture"][..],
            &["--pilot=p:1", "--capture=redirect"],
            &["--pilot=p:1", "--capture", "REDIRECT"],
        ] {
            let capture = parse(args).expect("parses").capture().expect("capture");
            assert_eq!(capture.outbound.to_string(), "[::]:15001");
            assert_eq!(capture.inbound.to_string(), "[::]:15006");
        }
        assert!(
            parse(&["--pilot=p:1", "--capture=NONE"])
                .expect("parses")
                .capture()
                .is_none()
        );
        assert!(parse(&["--pilot=p:1", "--capture=TPROXY"]).is_err());
    }
}
