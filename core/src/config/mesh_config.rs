//! The mesh config: the subset of Istio's MeshConfig that mesh reads, the telemetry
//! providers Telemetry resources name. pilot reads it from `--mesh-config` (in Kubernetes,
//! the `mesh` ConfigMap in mesh-system mounted as a file).

use serde::{Deserialize, Serialize};

/// The access log provider that exists without being defined, as in Istio: JSON lines on
/// the proxy's stdout.
pub const BUILTIN_ACCESS_LOG_PROVIDER: &str = "envoy";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_providers: Vec<ExtensionProvider>,
    #[serde(default)]
    pub default_providers: DefaultProviders,
    /// Every other MeshConfig field: read by Istio, not by mesh. Kept so that an Istio
    /// mesh config loads, and named in pilot's start-up log.
    #[serde(flatten, skip_serializing)]
    pub ignored: std::collections::BTreeMap<String, serde_yaml::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultProviders {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracing: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_logging: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
}

/// One named provider; exactly one kind is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionProvider {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opentelemetry: Option<OpenTelemetryProvider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_file_access_log: Option<FileAccessLogProvider>,
}

/// Spans over OTLP/gRPC to `service:port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetryProvider {
    pub service: String,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tag_length: Option<u32>,
}

/// Access log lines to a file; mesh writes to stdout only (`/dev/stdout`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileAccessLogProvider {
    #[serde(default)]
    pub path: String,
}

/// What a provider name resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider<'a> {
    /// Spans to the OTLP/gRPC collector at `host:port`.
    Tracing {
        collector: String,
    },
    AccessLog {
        path: &'a str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MeshConfigError {
    #[error("mesh config {file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

impl MeshConfig {
    /// Parses Istio's MeshConfig YAML (the `mesh` key of Istio's ConfigMap, as a file);
    /// `file` names it in errors, which name the field.
    pub fn parse(text: &str, file: &str) -> Result<Self, MeshConfigError> {
        let invalid = |field: String, message: String| MeshConfigError::Invalid {
            file: file.to_owned(),
            field,
            message,
        };
        let config: MeshConfig = if text.trim().is_empty() {
            MeshConfig::default()
        } else {
            let document = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(document).map_err(|err| {
                let field = err.path().to_string();
                invalid(field, err.into_inner().to_string())
            })?
        };
        config
            .check()
            .map_err(|(field, message)| invalid(field, message))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, provider) in self.extension_providers.iter().enumerate() {
            let at = format!("extensionProviders[{i}]");
            if provider.name.is_empty() {
                return Err((format!("{at}.name"), "a provider needs a name".into()));
            }
            if !seen.insert(provider.name.as_str()) {
                return Err((
                    format!("{at}.name"),
                    format!("provider {:?} is defined twice", provider.name),
                ));
            }
            match (&provider.opentelemetry, &provider.envoy_file_access_log) {
                (Some(otel), None) => {
                    if otel.service.is_empty() || !(1..=65535).contains(&otel.port) {
                        return Err((
                            format!("{at}.opentelemetry"),
                            "set service (a host name) and port (1 to 65535)".into(),
                        ));
                    }
                    // The proxies refuse a whole snapshot whose collector is not
                    // `host:port`: catch it here, once, by name.
                    if !collector_address(&otel.service, otel.port) {
                        return Err((
                            format!("{at}.opentelemetry.service"),
                            format!(
                                "{:?} is not a host name or address (no scheme, path, port or spaces)",
                                otel.service
                            ),
                        ));
                    }
                }
                (None, Some(_)) => {}
                _ => {
                    return Err((
                        at,
                        "set exactly one of opentelemetry or envoyFileAccessLog (the provider kinds mesh supports)".into(),
                    ));
                }
            }
        }
        let lists = [
            ("tracing", &self.default_providers.tracing),
            ("accessLogging", &self.default_providers.access_logging),
        ];
        for (field, names) in lists {
            for (i, name) in names.iter().enumerate() {
                if self.provider(name).is_none() {
                    return Err((
                        format!("defaultProviders.{field}[{i}]"),
                        format!("no extension provider is named {name:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The provider named `name`: an extension provider, or the built-in `envoy` log.
    pub fn provider(&self, name: &str) -> Option<Provider<'_>> {
        if let Some(found) = self.extension_providers.iter().find(|p| p.name == name) {
            if let Some(otel) = &found.opentelemetry {
                return Some(Provider::Tracing {
                    collector: format!("{}:{}", otel.service, otel.port),
                });
            }
            if let Some(log) = &found.envoy_file_access_log {
                return Some(Provider::AccessLog { path: &log.path });
            }
            return None;
        }
        (name == BUILTIN_ACCESS_LOG_PROVIDER).then_some(Provider::AccessLog {
            path: "/dev/stdout",
        })
    }
}

/// Whether `service:port` is an address the proxy's OTLP exporter takes: `host:port` and
/// nothing else (the proxy's `trace::export::endpoint` makes the same check).
fn collector_address(service: &str, port: u32) -> bool {
    let collector = format!("{service}:{port}");
    !collector.contains('/')
        && format!("http://{collector}")
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.port_u16().map(u32::from) == Some(port) && uri.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISTIO: &str = r#"
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
enableTracing: true
defaultProviders:
  tracing: [otel]
extensionProviders:
- name: otel
  opentelemetry:
    service: collector.observability.svc.cluster.local
    port: 4317
- name: stdout
  envoyFileAccessLog:
    path: /dev/stdout
"#;

    #[test]
    fn reads_istios_mesh_config() {
        let config = MeshConfig::parse(ISTIO, "mesh.yaml").expect("parses");
        assert_eq!(config.default_providers.tracing, ["otel"]);
        assert_eq!(
            config.provider("otel"),
            Some(Provider::Tracing {
                collector: "collector.observability.svc.cluster.local:4317".into()
            })
        );
        assert_eq!(
            config.provider("envoy"),
            Some(Provider::AccessLog {
                path: "/dev/stdout"
            })
        );
        assert_eq!(config.provider("zipkin"), None);
        assert!(config.ignored.contains_key("enableTracing"));
        assert!(MeshConfig::parse("", "empty").is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let bad = [
            (
                "extensionProviders:\n- name: a\n  opentelemetry: {service: c, port: 0}\n",
                "extensionProviders[0].opentelemetry",
            ),
            (
                "extensionProviders:\n- name: a\n  zipkin: {service: c, port: 9411}\n",
                "extensionProviders[0].zipkin",
            ),
            ("extensionProviders:\n- name: a\n", "extensionProviders[0]"),
            (
                "extensionProviders:\n- name: a\n  opentelemetry: {service: otel collector, port: 4317}\n",
                "extensionProviders[0].opentelemetry.service",
            ),
            (
                "extensionProviders:\n- name: a\n  opentelemetry: {service: \"http://otel\", port: 4317}\n",
                "extensionProviders[0].opentelemetry.service",
            ),
            (
                "extensionProviders:\n- name: a\n  opentelemetry: {service: \"otel:4317\", port: 4317}\n",
                "extensionProviders[0].opentelemetry.service",
            ),
            (
                "defaultProviders:\n  accessLogging: [nope]\n",
                "defaultProviders.accessLogging[0]",
            ),
            (
                "extensionProviders:\n- name: a\n  opentelemetry: {service: c, port: x}\n",
                "extensionProviders[0].opentelemetry.port",
            ),
        ];
        for (text, field) in bad {
            let err = MeshConfig::parse(text, "mesh.yaml").expect_err(text);
            let MeshConfigError::Invalid { field: found, .. } = &err;
            assert_eq!(found, field, "{err}");
            assert!(
                err.to_string().starts_with("mesh config mesh.yaml: "),
                "{err}"
            );
        }
    }
}
