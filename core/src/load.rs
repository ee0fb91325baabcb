//! Reads config from YAML: multi-document files and whole directories in one call.
//!
//! Objects of kinds mesh does not know (Deployment, Service...) are skipped, objects in a
//! mesh or Istio group that mesh cannot honour are errors, and one bad document never
//! hides the good ones: every problem becomes a [`Diagnostic`] and loading goes on.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::{
    ConfigObject, DEFAULT_NAMESPACE, Kind, Object, ObjectMeta, TypeMatch, classify,
};
use crate::diagnostic::{Diagnostic, Origin};

/// A loaded object and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub origin: Origin,
    pub object: T,
}

/// Everything one load produced.
#[derive(Clone, Debug, Default)]
pub struct ConfigSet {
    pub objects: Vec<Located<ConfigObject>>,
    /// Objects of other APIs, kept by identity only: a Kubernetes Service here still tells
    /// validation that its host exists.
    pub skipped: Vec<Skipped>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub origin: Origin,
    pub api_version: String,
}

impl ConfigSet {
    pub fn extend(&mut self, other: ConfigSet) {
        self.objects.extend(other.objects);
        self.skipped.extend(other.skipped);
        self.diagnostics.extend(other.diagnostics);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads files and directories (recursively: `*.yaml`, `*.yml`, `*.json`, in name order).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> ConfigSet {
    let mut set = ConfigSet::default();
    for path in paths {
        let path = path.as_ref();
        match config_files(path) {
            Ok(files) => {
                for file in files {
                    set.extend(load_file(&file));
                }
            }
            Err(err) => set.diagnostics.push(file_error(path, err)),
        }
    }
    set
}

pub fn load_file(path: &Path) -> ConfigSet {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &path.display().to_string()),
        Err(err) => ConfigSet {
            diagnostics: vec![file_error(path, err)],
            ..ConfigSet::default()
        },
    }
}

fn file_error(path: &Path, err: std::io::Error) -> Diagnostic {
    let origin = Origin {
        file: path.display().to_string(),
        ..Origin::default()
    };
    Diagnostic::error(&origin, "", format!("cannot read: {err}"))
}

/// The config files under `path`: itself if it is a file, else every YAML or JSON file
/// below it, skipping hidden entries (editors' swap files, `..data` symlinks of mounts).
/// The config files `load_paths` reads for `path`: the file itself, or a directory's
/// `*.yaml`, `*.yml` and `*.json` files, recursively, in name order, skipping dotfiles.
pub fn config_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let entry_path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry_path.is_dir() {
            files.extend(config_files(&entry_path)?);
        } else if is_config_file(&entry_path) {
            files.push(entry_path);
        }
    }
    Ok(files)
}

fn is_config_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Loads every document of one YAML (or JSON) text; `file` names it in diagnostics.
pub fn load_str(text: &str, file: &str) -> ConfigSet {
    let mut set = ConfigSet::default();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            index: Some(index),
            ..Origin::default()
        };
        match serde_yaml::Value::deserialize(document) {
            Ok(value) => load_document(value, origin, &mut set),
            Err(err) => {
                // The parser cannot resynchronise after a syntax error: stop this file.
                set.diagnostics.push(Diagnostic::error(
                    &origin,
                    "",
                    format!("invalid YAML: {err}"),
                ));
                break;
            }
        }
    }
    set
}

fn load_document(mut value: serde_yaml::Value, mut origin: Origin, set: &mut ConfigSet) {
    if value.is_null() {
        return; // an empty document, e.g. a trailing `---`
    }
    if let Err(err) = value.apply_merge() {
        set.diagnostics.push(Diagnostic::error(
            &origin,
            "",
            format!("invalid YAML merge key: {err}"),
        ));
        return;
    }
    let (api_version, kind) = match type_of(&value) {
        Ok(found) => found,
        Err(message) => {
            set.diagnostics
                .push(Diagnostic::error(&origin, "", message));
            return;
        }
    };
    let metadata = metadata_of(&value);
    origin.kind = kind.clone();
    origin.name = metadata.name.clone();
    origin.namespace = metadata.namespace.clone();
    match classify(&api_version, &kind) {
        TypeMatch::Foreign => set.skipped.push(Skipped {
            origin,
            api_version,
        }),
        TypeMatch::Unsupported(message) => set
            .diagnostics
            .push(Diagnostic::error(&origin, "kind", message)),
        TypeMatch::Ours(kind) => match parse_object(kind, value) {
            Ok(object) => set.objects.push(Located { origin, object }),
            Err((field, message)) => set
                .diagnostics
                .push(Diagnostic::error(&origin, field, message)),
        },
    }
}

fn type_of(value: &serde_yaml::Value) -> Result<(String, String), String> {
    if !value.is_mapping() {
        return Err("not a Kubernetes object: expected a mapping with apiVersion and kind".into());
    }
    let field = |name: &str| value.get(name).and_then(serde_yaml::Value::as_str);
    match (field("apiVersion"), field("kind")) {
        (Some(api_version), Some(kind)) => Ok((api_version.to_owned(), kind.to_owned())),
        (None, _) => Err("not a Kubernetes object: apiVersion is missing".into()),
        (_, None) => Err("not a Kubernetes object: kind is missing".into()),
    }
}

/// Best-effort metadata, so that even an object that fails to parse is named in its error.
fn metadata_of(value: &serde_yaml::Value) -> ObjectMeta {
    let mut metadata = value
        .get("metadata")
        .and_then(|m| ObjectMeta::deserialize(m.clone()).ok())
        .unwrap_or_default();
    if metadata.namespace.is_empty() {
        metadata.namespace = DEFAULT_NAMESPACE.to_owned();
    }
    metadata
}

/// The document as it must look: nothing but these four fields at the top.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document<S> {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<S>,
    /// Written by the API server; present in `kubectl get -o yaml` output.
    #[serde(default, rename = "status")]
    _status: Option<serde::de::IgnoredAny>,
}

/// Parses a document of a known kind. On error: the field path and the message.
pub fn parse_object(
    kind: Kind,
    value: serde_yaml::Value,
) -> Result<ConfigObject, (String, String)> {
    Ok(match kind {
        Kind::VirtualService => ConfigObject::VirtualService(typed(value)?),
        Kind::DestinationRule => ConfigObject::DestinationRule(typed(value)?),
        Kind::Gateway => ConfigObject::Gateway(typed(value)?),
        Kind::ServiceEntry => ConfigObject::ServiceEntry(typed(value)?),
        Kind::WorkloadEntry => ConfigObject::WorkloadEntry(typed(value)?),
        Kind::Sidecar => ConfigObject::Sidecar(typed(value)?),
        Kind::PeerAuthentication => ConfigObject::PeerAuthentication(typed(value)?),
        Kind::AuthorizationPolicy => ConfigObject::AuthorizationPolicy(typed(value)?),
        Kind::RequestAuthentication => ConfigObject::RequestAuthentication(typed(value)?),
        Kind::Telemetry => ConfigObject::Telemetry(typed(value)?),
    })
}

fn typed<S: DeserializeOwned + Default>(
    value: serde_yaml::Value,
) -> Result<Object<S>, (String, String)> {
    let document: Document<S> = serde_path_to_error::deserialize(value).map_err(|err| {
        let field = err.path().to_string();
        let field = if field == "." { String::new() } else { field };
        (field, err.into_inner().to_string())
    })?;
    let mut metadata = document.metadata;
    if metadata.namespace.is_empty() {
        metadata.namespace = DEFAULT_NAMESPACE.to_owned();
    }
    Ok(Object {
        metadata,
        spec: document.spec.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
