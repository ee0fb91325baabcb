//! Config CRD objects (mesh's and Istio's groups, as `DynamicObject`s) into mesh-core's
//! typed config, through the same parser as local mode so both accept the same YAML.

use kube::api::DynamicObject;
use mesh_core::config::{DEFAULT_NAMESPACE, Kind};
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_core::load::{ConfigSet, Located, parse_object};
use serde_json::{Value, json};

use super::ConfigStore;

/// Every object in the config stores, parsed; parse failures become diagnostics naming the
/// object and field, so [`LastGood`](crate::source::last_good::LastGood) can keep its
/// previous version. Objects come out sorted, so the result does not depend on the
/// stores' hash order.
pub(super) fn config_set(stores: &[ConfigStore]) -> ConfigSet {
    let mut set = ConfigSet::default();
    for config in stores {
        for object in config.store.state() {
            load(config.kind, &config.resource.api_version, &object, &mut set);
        }
    }
    let key = |origin: &Origin| {
        (
            origin.kind.clone(),
            origin.namespace.clone(),
            origin.name.clone(),
        )
    };
    set.objects.sort_by_key(|located| key(&located.origin));
    set.diagnostics
        .sort_by_key(|diagnostic| key(&diagnostic.origin));
    set
}

fn load(kind: Kind, api_version: &str, object: &DynamicObject, set: &mut ConfigSet) {
    let origin = origin(kind, object);
    match parse_object(kind, document(kind, api_version, object)) {
        Ok(object) => set.objects.push(Located { origin, object }),
        Err((field, message)) => set
            .diagnostics
            .push(Diagnostic::error(&origin, field, message)),
    }
}

/// Objects from the API server have no file and no document index.
pub(super) fn origin(kind: Kind, object: &DynamicObject) -> Origin {
    Origin {
        file: String::new(),
        index: None,
        kind: kind.name().to_owned(),
        namespace: object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        name: object.metadata.name.clone().unwrap_or_default(),
    }
}

/// The object as a config document: only the four fields the parser accepts, and only the
/// metadata mesh reads (uid, managedFields, status... mean nothing here).
fn document(kind: Kind, api_version: &str, object: &DynamicObject) -> serde_yaml::Value {
    let metadata = &object.metadata;
    let value = json!({
        "apiVersion": api_version,
        "kind": kind.name(),
        "metadata": {
            "name": metadata.name.clone().unwrap_or_default(),
            "namespace": metadata.namespace.clone().unwrap_or_default(),
            "labels": metadata.labels.clone().unwrap_or_default(),
            "annotations": metadata.annotations.clone().unwrap_or_default(),
        },
        "spec": object.data.get("spec").cloned().unwrap_or(Value::Null),
    });
    // JSON is a subset of YAML's data model: this conversion cannot fail.
    serde_yaml::to_value(value).unwrap_or_default()
}
