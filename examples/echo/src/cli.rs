//! The binary's flags, each with an `ECHO_*` environment fallback so a container or the local
//! demo can configure it without a command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use http::header::HeaderName;
use http::{StatusCode, Uri};

use crate::calls::{self, CallConfig, CallConfigError};
use crate::config::{Behaviour, EchoConfig, Protocol, system_hostname};
use crate::knobs;

/// An HTTP and gRPC echo server with version, latency and error knobs that can call other
/// services: the mesh's sample app.
///
/// Every knob can also be set per request with an x-echo-* header (x-echo-status,
/// x-echo-delay, x-echo-fail-percent, x-echo-body-size, x-echo-close; for gRPC also
/// x-echo-grpc-status), which wins.
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

    /// Call this URL on every request (repeatable; in order) and report the answers in
    /// "calls"; http:// only. The environment variable takes a comma-separated list.
    #[arg(long = "call", env = "ECHO_CALL", value_delimiter = ',', value_parser = calls::parse_url)]
    pub calls: Vec<Uri>,

    /// Send calls through this HTTP proxy (a sidecar's outbound listener), e.g.
    /// 127.0.0.1:15001 [default: $HTTP_PROXY or $http_proxy; none calls directly].
    #[arg(long, env = "ECHO_PROXY", value_parser = calls::parse_proxy)]
    pub proxy: Option<Uri>,

    /// Comma-separated hosts called directly despite a proxy (* for all)
    /// [default: $NO_PROXY or $no_proxy].
    #[arg(long, env = "ECHO_NO_PROXY")]
    pub no_proxy: Option<String>,

    /// How long each call may take, from connecting to the end of its answer.
    #[arg(long, env = "ECHO_CALL_TIMEOUT", value_parser = knobs::parse_duration, default_value = "5s")]
    pub call_timeout: Duration,

    /// Comma-separated request headers copied onto every call; "" for none [default: Istio
    /// bookinfo's list: x-request-id, end-user, user-agent, traceparent, tracestate, the
    /// x-b3-* and b3 headers, x-ot-span-context, cookie].
    #[arg(long, env = "ECHO_FORWARD_HEADERS", value_parser = parse_header_list)]
    pub forward_headers: Option<HeaderNames>,

    /// Answer 502 when a call got no answer or a 5xx (instead of 200 with the failure in
    /// "calls").
    #[arg(long, env = "ECHO_FAIL_ON_CALL_ERROR")]
    pub fail_on_call_error: bool,

    /// On SIGTERM or ctrl-c, how long in-flight requests get before the process exits anyway.
    #[arg(long, env = "ECHO_DRAIN_TIMEOUT", value_parser = knobs::parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,
}

/// A comma-separated list of header names, as one flag value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderNames(pub Vec<HeaderName>);

fn parse_header_list(text: &str) -> Result<HeaderNames, CallConfigError> {
    text.split(',')
        .filter(|name| !name.trim().is_empty())
        .map(calls::parse_header_name)
        .collect::<Result<_, _>>()
        .map(HeaderNames)
}

impl Args {
    /// The server's config, with the proxy environment (`HTTP_PROXY`, `NO_PROXY`) read from
    /// this process. Errors: `HTTP_PROXY` is set but is not an `http://` proxy address.
    pub fn config(&self) -> Result<EchoConfig, CallConfigError> {
        self.config_with_env(|name| std::env::var(name).ok())
    }

    /// As [`Args::config`], with the environment looked up by `env`.
    pub fn config_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EchoConfig, CallConfigError> {
        let first_set = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|name| env(name).filter(|value| !value.trim().is_empty()))
        };
        let proxy = match &self.proxy {
            Some(proxy) => Some(proxy.clone()),
            None => first_set(["HTTP_PROXY", "http_proxy"])
                .map(|text| calls::parse_proxy(&text))
                .transpose()?,
        };
        let no_proxy = self
            .no_proxy
            .clone()
            .or_else(|| first_set(["NO_PROXY", "no_proxy"]))
            .map(|list| list.split(',').map(|host| host.trim().to_owned()).collect())
            .unwrap_or_default();
        let defaults = CallConfig::default();
        let calls = CallConfig {
            urls: self.calls.clone(),
            proxy,
            no_proxy,
            timeout: self.call_timeout,
            forward_headers: self
                .forward_headers
                .clone()
                .map_or(defaults.forward_headers, |names| names.0),
            fail_on_error: self.fail_on_call_error,
        };
        Ok(EchoConfig {
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
            calls,
        })
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
        let config = args.config_with_env(|_| None).expect("valid config");
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
    fn call_flags_become_the_call_config() {
        let args = Args::try_parse_from([
            "mesh-echo",
            "--call",
            "http://reviews:9080/reviews/0",
            "--call",
            "http://ratings:9080/",
            "--proxy",
            "127.0.0.5:15001",
            "--call-timeout",
            "1.5s",
            "--forward-headers",
            "End-User, x-request-id",
            "--fail-on-call-error",
        ])
        .expect("valid flags");
        let calls = args.config_with_env(|_| None).expect("valid config").calls;
        let urls: Vec<_> = calls.urls.iter().map(ToString::to_string).collect();
        assert_eq!(
            urls,
            ["http://reviews:9080/reviews/0", "http://ratings:9080/"]
        );
        assert_eq!(
            calls.proxy.map(|p| p.to_string()).as_deref(),
            Some("http://127.0.0.5:15001/")
        );
        assert_eq!(calls.timeout, Duration::from_millis(1500));
        assert_eq!(calls.forward_headers, ["end-user", "x-request-id"]);
        assert!(calls.fail_on_error);
    }

    #[test]
    fn call_defaults_and_the_proxy_environment() {
        let args = Args::try_parse_from(["mesh-echo"]).expect("no flags");
        let calls = args.config_with_env(|_| None).expect("valid config").calls;
        assert!(calls.urls.is_empty() && calls.proxy.is_none() && calls.no_proxy.is_empty());
        assert_eq!(calls.timeout, Duration::from_secs(5));
        assert_eq!(calls.forward_headers, CallConfig::default().forward_headers);

        let env = |name: &str| match name {
            "http_proxy" => Some("http://10.0.0.1:3128".to_owned()),
            "HTTP_PROXY" => Some(" ".to_owned()),
            "NO_PROXY" => Some("localhost, .local".to_owned()),
            _ => None,
        };
        let calls = args.config_with_env(env).expect("valid config").calls;
        assert_eq!(
            calls
                .proxy
                .and_then(|p| p.host().map(str::to_owned))
                .as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(calls.no_proxy, ["localhost", ".local"]);

        let flagged = Args::try_parse_from(["mesh-echo", "--proxy", "p:1", "--no-proxy", "a"])
            .expect("valid flags");
        let calls = flagged.config_with_env(env).expect("valid config").calls;
        assert_eq!(
            calls.proxy.and_then(|p| p.port_u16()),
            Some(1),
            "the flag wins"
        );
        assert_eq!(calls.no_proxy, ["a"]);

        let bad = |name: &str| (name == "HTTP_PROXY").then(|| "https://p:1".to_owned());
        assert!(args.config_with_env(bad).is_err());

        let none = Args::try_parse_from(["mesh-echo", "--forward-headers", ""]).expect("valid");
        let calls = none.config_with_env(|_| None).expect("valid config").calls;
        assert!(calls.forward_headers.is_empty());
    }

    #[test]
    fn bad_knobs_are_refused_with_the_reason() {
        let err = Args::try_parse_from(["mesh-echo", "--delay", "200"]).expect_err("no unit");
        assert!(err.to_string().contains("200ms or 1.5s"), "{err}");
        assert!(Args::try_parse_from(["mesh-echo", "--fail-percent", "101"]).is_err());
        assert!(Args::try_parse_from(["mesh-echo", "--status", "99"]).is_err());
        assert!(Args::try_parse_from(["mesh-echo", "--protocol", "udp"]).is_err());
        let err =
            Args::try_parse_from(["mesh-echo", "--call", "reviews:9080"]).expect_err("no scheme");
        assert!(err.to_string().contains("http://host"), "{err}");
        assert!(Args::try_parse_from(["mesh-echo", "--forward-headers", "a b"]).is_err());
    }
}
