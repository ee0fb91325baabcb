//! The binary's flags, each with an `ECHO_*` environment fallback so a container or the local
//! demo can configure it without a command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use http::StatusCode;

use crate::config::{Behaviour, EchoConfig, Protocol, system_hostname};
use crate::knobs;

/// An echo server with version, latency and error knobs: the mesh's sample app.
///
/// Every knob can also be set per request with an x-echo-* header (x-echo-status,
/// x-echo-delay, x-echo-fail-percent, x-echo-body-size, x-echo-close), which wins.
#[derive(Clone, Debug, Parser)]
#[command(name = "mesh-echo")]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, env = "ECHO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Version label reported in the body and the x-echo-version header.
    #[arg(long, env = "ECHO_VERSION", default_value = "v1")]
    pub version_label: String,

    /// Service name reported in the body and the x-echo-name header.
    #[arg(long, env = "ECHO_NAME", default_value = "echo")]
    pub name: String,

    /// Host name reported in the body [default: $HOSTNAME or the system's].
    #[arg(long, env = "ECHO_HOSTNAME")]
    pub hostname: Option<String>,

    /// http (HTTP/1.1 and h2c, with upgrades) or tcp (raw byte echo).
    #[arg(long, env = "ECHO_PROTOCOL", value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,

    /// TCP mode: a line sent to each client on connect, before reading anything.
    #[arg(long, env = "ECHO_BANNER")]
    pub banner: Option<String>,

    /// Default response status, 200 to 599.
    #[arg(long, env = "ECHO_STATUS", value_parser = knobs::parse_status, default_value = "200")]
    pub status: StatusCode,

    /// Default delay before answering, e.g. 200ms or 1.5s.
    #[arg(long, env = "ECHO_DELAY", value_parser = knobs::parse_duration, default_value = "0")]
    pub delay: Duration,

    /// Default share of requests answered with 503, 0 to 100, spread evenly and
    /// deterministically (50 fails every second request).
    #[arg(long, env = "ECHO_FAIL_PERCENT", value_parser = knobs::parse_percent, default_value = "0")]
    pub fail_percent: u8,

    /// Default: answer with this many bytes instead of the JSON echo.
    #[arg(long, env = "ECHO_BODY_SIZE", value_parser = knobs::parse_body_size)]
    pub body_size: Option<u64>,

    /// Default: close the connection after every response.
    #[arg(long, env = "ECHO_CLOSE")]
    pub close: bool,

    /// On SIGTERM or ctrl-c, how long in-flight requests get before the process exits anyway.
    #[arg(long, env = "ECHO_DRAIN_TIMEOUT", value_parser = knobs::parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,
}

impl Args {
    pub fn config(&self) -> EchoConfig {
        EchoConfig {
            name: self.name.clone(),
            version: self.version_label.clone(),
            listen: self.listen,
            protocol: self.protocol,
            hostname: self.hostname.clone().unwrap_or_else(system_hostname),
            banner: self.banner.clone(),
            behaviour: Behaviour {
                status: self.status,
                delay: self.delay,
                fail_percent: self.fail_percent,
                body_size: self.body_size,
                close: self.close,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_become_the_config() {
        let args = Args::try_parse_from([
            "mesh-echo",
            "--listen",
            "127.0.0.1:0",
            "--version-label",
            "v2",
            "--name",
            "reviews",
            "--hostname",
            "pod-1",
            "--status",
            "504",
            "--delay",
            "20ms",
            "--fail-percent",
            "50",
            "--body-size",
            "10",
            "--close",
        ])
        .expect("valid flags");
        let config = args.config();
        assert_eq!(config.listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(
            (config.name.as_str(), config.version.as_str()),
            ("reviews", "v2")
        );
        assert_eq!(config.hostname, "pod-1");
        assert_eq!(
            config.behaviour,
            Behaviour {
                status: StatusCode::GATEWAY_TIMEOUT,
                delay: Duration::from_millis(20),
                fail_percent: 50,
                body_size: Some(10),
                close: true,
            }
        );
    }

    #[test]
    fn bad_knobs_are_refused_with_the_reason() {
        let err = Args::try_parse_from(["mesh-echo", "--delay", "200"]).expect_err("no unit");
        assert!(err.to_string().contains("200ms or 1.5s"), "{err}");
        assert!(Args::try_parse_from(["mesh-echo", "--fail-percent", "101"]).is_err());
        assert!(Args::try_parse_from(["mesh-echo", "--status", "99"]).is_err());
        assert!(Args::try_parse_from(["mesh-echo", "--protocol", "udp"]).is_err());
    }
}
