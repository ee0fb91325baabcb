//! What a server is (name, version, address, protocol) and how it behaves by default.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::StatusCode;
use serde::{Serialize, Serializer};

use crate::calls::CallConfig;

/// Everything [`crate::start`] needs. `Default` is a ready-to-use HTTP server on an
/// ephemeral loopback port, so a test only spells out what it cares about.
#[derive(Clone, Debug, Serialize)]
pub struct EchoConfig {
    /// Reported as `service` in the JSON body and in `x-echo-name`.
    pub name: String,
    /// Reported as `version` in the JSON body and in `x-echo-version`, so a test of traffic
    /// splitting can tell which subset answered.
    pub version: String,
    /// Where to listen; port 0 picks a free port, read it back with `EchoServer::addr`.
    pub listen: SocketAddr,
    pub protocol: Protocol,
    /// Reported as `hostname` in the JSON body; defaults to this machine's host name.
    pub hostname: String,
    /// TCP mode only: a line (`<banner>\r\n`) sent as soon as a client connects, before
    /// reading anything, like an SMTP or MySQL server greets its clients.
    pub banner: Option<String>,
    /// Server-wide knobs, used when a request does not carry its own `x-echo-*` header.
    /// They can be changed while running with `EchoServer::set_behaviour`.
    pub behaviour: Behaviour,
    /// HTTP mode: upstreams called on every request, reported in the answer's `calls`.
    pub calls: CallConfig,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            name: "echo".to_owned(),
            version: "v1".to_owned(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            protocol: Protocol::Http,
            hostname: system_hostname(),
            banner: None,
            behaviour: Behaviour::default(),
            calls: CallConfig::default(),
        }
    }
}

/// What the server speaks on its port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the same port, plus HTTP/1.1 upgrades.
    #[default]
    Http,
    /// Raw TCP: every byte received is written back unchanged.
    Tcp,
}

/// The knobs that steer responses. Each has a per-request header (see [`crate::knobs`]) that
/// wins over the value here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Behaviour {
    /// Status of every response that no other knob decides.
    #[serde(serialize_with = "serialize_status")]
    pub status: StatusCode,
    /// Wait this long after reading the request body, before answering.
    #[serde(serialize_with = "serialize_duration")]
    pub delay: Duration,
    /// Answer 503 to this share of requests, 0 to 100 (larger values count as 100). The
    /// choice is deterministic; see [`crate::plan::fails`].
    pub fail_percent: u8,
    /// Answer with this many bytes instead of the JSON echo.
    pub body_size: Option<u64>,
    /// Close the connection after each response.
    pub close: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: StatusCode::OK,
            delay: Duration::ZERO,
            fail_percent: 0,
            body_size: None,
            close: false,
        }
    }
}

/// As `200ms` or `1.5s`, the way the flags take it, rather than serde's `{secs, nanos}`.
fn serialize_duration<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{duration:?}"))
}

fn serialize_status<S: Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

/// The name this host goes by: `$HOSTNAME` (what Kubernetes sets to the pod name), else the
/// kernel's, else `localhost`.
pub fn system_hostname() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
    };
    from_env
        .or_else(from_kernel)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
