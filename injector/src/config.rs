//! What the injector adds and how: images, addresses, resources, the sidecar's form. Read
//! from a YAML file (the `mesh-sidecar-injector` ConfigMap, mounted); every field has a
//! default, so an empty file is a working config.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The injector's config; logged at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// The mesh-proxy image, for both the init step and the sidecar. Its entrypoint is
    /// `mesh-proxy`.
    pub proxy_image: String,
    /// `Always`, `IfNotPresent` or `Never`; unset leaves it to Kubernetes.
    pub image_pull_policy: Option<String>,
    /// pilot's config discovery address, `host:port`.
    pub pilot_address: String,
    /// citadel's certificate signing address, `host:port`.
    pub ca_address: String,
    pub trust_domain: String,
    /// The audience of the projected token the proxy shows citadel.
    pub token_audience: String,
    /// The proxy as a native sidecar (an init container with `restartPolicy: Always`,
    /// Kubernetes 1.29 and later). Off: a regular first container that holds the app's
    /// start until it is ready. A pod's `sidecar.mesh.io/nativeSidecar` overrides it.
    pub native_sidecar: bool,
    /// Rewrite the app's HTTP probes to go through the proxy's health port.
    pub rewrite_app_probes: bool,
    pub proxy_resources: Resources,
    pub init_resources: Resources,
    /// The proxy's log filter (`MESH_LOG`).
    pub log_level: String,
    /// Never captured, for every pod (the proxy's own ports never are).
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    pub exclude_outbound_cidrs: Vec<String>,
    /// What the API server does when the injector cannot answer; written into the
    /// MutatingWebhookConfiguration with the caBundle.
    pub failure_policy: FailurePolicy,
    /// The MutatingWebhookConfiguration whose caBundle the injector keeps current.
    pub webhook_configuration: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            proxy_image: format!("ghcr.io/mesh/mesh-proxy:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: None,
            pilot_address: "pilot.mesh-system.svc:15010".to_owned(),
            ca_address: "citadel.mesh-system.svc:8060".to_owned(),
            trust_domain: "cluster.local".to_owned(),
            token_audience: "mesh-ca".to_owned(),
            native_sidecar: true,
            rewrite_app_probes: true,
            proxy_resources: Resources {
                requests: Quantities::new("100m", "128Mi"),
                limits: Quantities::new("2", "1Gi"),
            },
            init_resources: Resources {
                requests: Quantities::new("10m", "16Mi"),
                limits: Quantities::new("100m", "64Mi"),
            },
            log_level: "info".to_owned(),
            exclude_inbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
            exclude_outbound_cidrs: Vec::new(),
            failure_policy: FailurePolicy::Fail,
            webhook_configuration: "mesh-sidecar-injector".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Resources {
    pub requests: Quantities,
    pub limits: Quantities,
}

/// Kubernetes quantities (`100m`, `128Mi`); an unset one is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quantities {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

impl Quantities {
    fn new(cpu: &str, memory: &str) -> Self {
        Self {
            cpu: Some(cpu.to_owned()),
            memory: Some(memory.to_owned()),
        }
    }
}

/// The webhook's `failurePolicy`: `Fail` keeps unmeshed pods out while the injector is
/// down; `Ignore` lets them start without a sidecar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "Fail",
            Self::Ignore => "Ignore",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the injector config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the injector config {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("the injector config {path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl Config {
    /// Reads a YAML config file; unknown fields are errors, so a typo is not ignored.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|error| match error {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: shown.clone(),
                source,
            },
            ConfigError::Invalid { reason, .. } => ConfigError::Invalid {
                path: shown.clone(),
                reason,
            },
            other => other,
        })
    }

    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        // An empty file (or one with only comments) is the default config.
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str::<Option<Config>>(text)
                .map_err(|source| ConfigError::Parse {
                    path: String::new(),
                    source,
                })?
                .unwrap_or_default()
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: String::new(),
            reason,
        };
        for (name, value) in [
            ("proxyImage", &self.proxy_image),
            ("pilotAddress", &self.pilot_address),
            ("caAddress", &self.ca_address),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("{name} must not be empty")));
            }
        }
        for cidr in &self.exclude_outbound_cidrs {
            crate::annotations::check_cidr(cidr)
                .map_err(|e| invalid(format!("excludeOutboundCidrs: {e}")))?;
        }
        for quantity in [&self.proxy_resources, &self.init_resources]
            .into_iter()
            .flat_map(|r| [&r.requests, &r.limits])
            .flat_map(|q| [&q.cpu, &q.memory])
            .flatten()
        {
            crate::annotations::check_quantity(quantity)
                .map_err(|e| invalid(format!("resources: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(Config::from_yaml("").ok(), Some(Config::default()));
        assert_eq!(
            Config::from_yaml("# nothing\n").ok(),
            Some(Config::default())
        );
    }

    #[test]
    fn fields_override_defaults() {
        let config = Config::from_yaml(
            "proxyImage: reg/p:1\nnativeSidecar: false\nfailurePolicy: Ignore\n\
             proxyResources: {requests: {cpu: 50m}}\n",
        )
        .expect("valid");
        assert_eq!(config.proxy_image, "reg/p:1");
        assert!(!config.native_sidecar);
        assert_eq!(config.failure_policy, FailurePolicy::Ignore);
        assert_eq!(config.proxy_resources.requests.cpu.as_deref(), Some("50m"));
        assert_eq!(config.proxy_resources.limits.memory, None);
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(Config::from_yaml("proxyImge: x\n").is_err());
        assert!(Config::from_yaml("failurePolicy: Sometimes\n").is_err());
        assert!(Config::from_yaml("excludeOutboundCidrs: [10.0.0.0/33]\n").is_err());
        assert!(Config::from_yaml("initResources: {limits: {cpu: lots}}\n").is_err());
    }
}
