//! The pod annotations the injector reads and writes, and their parsing. A value that does
//! not parse is an error that names the annotation: the pod is refused with that message
//! rather than meshed differently from what its author asked.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// `"true"` opts a pod in (also in a namespace without the label), `"false"` out. Read as
/// a pod label first (what the webhook's objectSelector sees, Istio's preferred form, see
/// [`crate::inject::pod_choice`]) and as an annotation second.
pub const INJECT: &str = "sidecar.mesh.io/inject";
/// Written by the injector: what it added. Its presence means "already injected".
pub const STATUS: &str = "sidecar.mesh.io/status";
pub const PROXY_CPU: &str = "sidecar.mesh.io/proxyCPU";
pub const PROXY_MEMORY: &str = "sidecar.mesh.io/proxyMemory";
pub const PROXY_CPU_LIMIT: &str = "sidecar.mesh.io/proxyCPULimit";
pub const PROXY_MEMORY_LIMIT: &str = "sidecar.mesh.io/proxyMemoryLimit";
pub const LOG_LEVEL: &str = "sidecar.mesh.io/logLevel";
/// `"true"` / `"false"`: the proxy as a native sidecar or as a regular container.
pub const NATIVE_SIDECAR: &str = "sidecar.mesh.io/nativeSidecar";
/// `"false"` leaves the app's HTTP probes as they are.
pub const REWRITE_PROBES: &str = "sidecar.mesh.io/rewriteAppHTTPProbers";
pub const EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.mesh.io/excludeInboundPorts";
pub const EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.mesh.io/excludeOutboundPorts";
pub const EXCLUDE_OUTBOUND_CIDRS: &str = "traffic.sidecar.mesh.io/excludeOutboundIPRanges";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {reason}")]
pub struct BadAnnotation {
    pub annotation: &'static str,
    pub reason: String,
}

/// A pod's per-pod settings; `None` means "the config's value".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub inject: Option<bool>,
    pub proxy_cpu: Option<String>,
    pub proxy_memory: Option<String>,
    pub proxy_cpu_limit: Option<String>,
    pub proxy_memory_limit: Option<String>,
    pub log_level: Option<String>,
    pub native_sidecar: Option<bool>,
    pub rewrite_probes: Option<bool>,
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    pub exclude_outbound_cidrs: Vec<String>,
}

impl Overrides {
    pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> Result<Self, BadAnnotation> {
        let empty = BTreeMap::new();
        let all = annotations.unwrap_or(&empty);
        let get = |name: &str| all.get(name).map(|v| v.trim());
        let quantity = |name: &'static str| {
            get(name)
                .map(|v| {
                    check_quantity(v).map_err(|reason| BadAnnotation {
                        annotation: name,
                        reason,
                    })?;
                    Ok(v.to_owned())
                })
                .transpose()
        };
        Ok(Self {
            inject: get(INJECT).map(|v| boolean(INJECT, v)).transpose()?,
            proxy_cpu: quantity(PROXY_CPU)?,
            proxy_memory: quantity(PROXY_MEMORY)?,
            proxy_cpu_limit: quantity(PROXY_CPU_LIMIT)?,
            proxy_memory_limit: quantity(PROXY_MEMORY_LIMIT)?,
            log_level: get(LOG_LEVEL)
                .map(|v| log_level(LOG_LEVEL, v))
                .transpose()?,
            native_sidecar: get(NATIVE_SIDECAR)
                .map(|v| boolean(NATIVE_SIDECAR, v))
                .transpose()?,
            rewrite_probes: get(REWRITE_PROBES)
                .map(|v| boolean(REWRITE_PROBES, v))
                .transpose()?,
            exclude_inbound_ports: ports(EXCLUDE_INBOUND_PORTS, get(EXCLUDE_INBOUND_PORTS))?,
            exclude_outbound_ports: ports(EXCLUDE_OUTBOUND_PORTS, get(EXCLUDE_OUTBOUND_PORTS))?,
            exclude_outbound_cidrs: cidrs(EXCLUDE_OUTBOUND_CIDRS, get(EXCLUDE_OUTBOUND_CIDRS))?,
        })
    }
}

pub(crate) fn boolean(annotation: &'static str, value: &str) -> Result<bool, BadAnnotation> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(BadAnnotation {
            annotation,
            reason: format!("{value:?} is neither \"true\" nor \"false\""),
        }),
    }
}

/// A log filter goes into an env var unquoted: keep it to what filters are made of.
fn log_level(annotation: &'static str, value: &str) -> Result<String, BadAnnotation> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_=,:.-".contains(c);
    if value.is_empty() || !value.chars().all(allowed) {
        return Err(BadAnnotation {
            annotation,
            reason: format!(
                "{value:?} is not a log filter such as \"debug\" or \"mesh_proxy=debug,info\""
            ),
        });
    }
    Ok(value.to_owned())
}

fn items(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn ports(annotation: &'static str, value: Option<&str>) -> Result<Vec<u16>, BadAnnotation> {
    items(value)
        .map(|item| match item.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(BadAnnotation {
                annotation,
                reason: format!("{item:?} is not a port (1-65535); give a comma-separated list"),
            }),
        })
        .collect()
}

fn cidrs(annotation: &'static str, value: Option<&str>) -> Result<Vec<String>, BadAnnotation> {
    items(value)
        .map(|item| {
            check_cidr(item).map_err(|reason| BadAnnotation { annotation, reason })?;
            Ok(item.to_owned())
        })
        .collect()
}

/// `10.0.0.0/8`, `fd00::/8`, or a single address.
pub fn check_cidr(value: &str) -> Result<(), String> {
    let (address, prefix) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (value, None),
    };
    let bad = || format!("{value:?} is not an address range such as 10.0.0.0/8");
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    match prefix.map(str::parse::<u8>) {
        None => Ok(()),
        Some(Ok(bits)) if bits <= max => Ok(()),
        Some(_) => Err(bad()),
    }
}

/// A Kubernetes quantity as resources take it: a decimal number and an optional suffix.
pub fn check_quantity(value: &str) -> Result<(), String> {
    const SUFFIXES: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if number_ok && SUFFIXES.contains(&suffix) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Overrides, BadAnnotation> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Overrides::parse(Some(&map))
    }

    #[test]
    fn no_annotations_override_nothing() {
        assert_eq!(Overrides::parse(None), Ok(Overrides::default()));
    }

    #[test]
    fn every_annotation_is_read() {
        let overrides = parse(&[
            (INJECT, "True"),
            (PROXY_CPU, "250m"),
            (PROXY_MEMORY, "64Mi"),
            (PROXY_CPU_LIMIT, "1"),
            (PROXY_MEMORY_LIMIT, "0.5Gi"),
            (LOG_LEVEL, "mesh_proxy=debug,info"),
            (NATIVE_SIDECAR, "false"),
            (REWRITE_PROBES, "false"),
            (EXCLUDE_INBOUND_PORTS, "8080, 9090"),
            (EXCLUDE_OUTBOUND_PORTS, "5432"),
            (
                EXCLUDE_OUTBOUND_CIDRS,
                "10.0.0.0/8,fd00::/8,169.254.169.254",
            ),
        ])
        .expect("valid");
        assert_eq!(overrides.inject, Some(true));
        assert_eq!(overrides.proxy_cpu.as_deref(), Some("250m"));
        assert_eq!(overrides.proxy_memory_limit.as_deref(), Some("0.5Gi"));
        assert_eq!(overrides.native_sidecar, Some(false));
        assert_eq!(overrides.rewrite_probes, Some(false));
        assert_eq!(overrides.exclude_inbound_ports, vec![8080, 9090]);
        assert_eq!(overrides.exclude_outbound_ports, vec![5432]);
        assert_eq!(overrides.exclude_outbound_cidrs.len(), 3);
    }

    #[test]
    fn bad_values_name_their_annotation() {
        for (name, value) in [
            (INJECT, "yes please"),
            (PROXY_CPU, "a lot"),
            (PROXY_MEMORY, "12Qi"),
            (LOG_LEVEL, "debug; rm -rf"),
            (EXCLUDE_INBOUND_PORTS, "80,http"),
            (EXCLUDE_OUTBOUND_PORTS, "70000"),
            (EXCLUDE_OUTBOUND_CIDRS, "10.0.0.0/40"),
        ] {
            let error = parse(&[(name, value)]).expect_err(name);
            assert_eq!(error.annotation, name);
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
