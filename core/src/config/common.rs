//! Types shared by several kinds, as Istio defines them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, de};

/// Istio's `StringMatch`: exactly one of `exact`, `prefix` or `regex` (RE2 syntax, whole
/// string). In a header match an empty `{}` means "the header is present".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl StringMatch {
    pub fn exact(value: impl Into<String>) -> Self {
        Self {
            exact: Some(value.into()),
            ..Self::default()
        }
    }

    pub fn prefix(value: impl Into<String>) -> Self {
        Self {
            prefix: Some(value.into()),
            ..Self::default()
        }
    }

    pub fn regex(value: impl Into<String>) -> Self {
        Self {
            regex: Some(value.into()),
            ..Self::default()
        }
    }

    /// How many of the one-of fields are set: 1 is valid, 0 means "present" for headers.
    pub fn set_count(&self) -> usize {
        [&self.exact, &self.prefix, &self.regex]
            .iter()
            .filter(|v| v.is_some())
            .count()
    }
}

/// A percentage in [0, 100], fractional (`percentage: {value: 0.1}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

/// `port: {number: 8080}` in routes and destinations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// The port number, 1 to 65535.
    // Kept wider than u16 so an out-of-range port gets validation's message, with its path.
    pub number: u32,
}

/// A port a service or gateway server exposes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// The port number, 1 to 65535.
    pub number: u32,
    /// HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS; Istio accepts any case.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// A name unique among the ports, e.g. `http-web`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Deprecated: the port the workloads listen on, when different.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// `workloadSelector: {labels: {...}}` (Sidecar, ServiceEntry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `selector: {matchLabels: {...}}` (the security kinds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// Header manipulation: `set` replaces, `add` appends, `remove` deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOperations {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// An Istio field mesh does not implement yet. It can never hold a value: parsing fails
/// when the field is present, so such a field is never silently ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Unsupported {}

/// The message a present [`Unsupported`] field produces; tests and docs refer to it.
pub const UNSUPPORTED_MESSAGE: &str =
    "is an Istio field that mesh does not support yet (see docs/config.md); remove it";

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(de::Error::custom(UNSUPPORTED_MESSAGE))
    }
}

#[cfg(feature = "crd")]
impl schemars::JsonSchema for Unsupported {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Unsupported".into()
    }

    /// Accepted by the API server, so that pilot can report it with a clear message
    /// instead of the API server rejecting it without one.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Istio field not supported by mesh yet; pilot rejects objects that set it.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// Map keys that YAML users write as numbers (`9090:`) and JSON writes as strings
/// (`"9090":`), both kept as strings, as Istio's `portLevelMtls` is.
pub(crate) fn string_or_number_keys<'de, D, V>(
    deserializer: D,
) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    #[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(untagged)]
    enum Key {
        Number(i64),
        Text(String),
    }
    let map = BTreeMap::<Key, V>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(key, value)| match key {
            Key::Number(n) => (n.to_string(), value),
            Key::Text(s) => (s, value),
        })
        .collect())
}
