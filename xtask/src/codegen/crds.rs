//! One CustomResourceDefinition per kind: kube's derived CRD plus Istio's `kubectl`
//! niceties, with its schema made acceptable to the API server and checked.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use serde_json::Value;

use super::kinds::KindInfo;
use super::{CodegenError, HEADER, canonical, normalize, structural};

/// The CRD for one kind, as the JSON value that is written out.
pub fn build(info: &KindInfo) -> Result<Value, CodegenError> {
    let mut crd = (info.crd)();
    decorate(&mut crd, info);
    let mut value = serde_json::to_value(&crd).map_err(|e| CodegenError::Serialize {
        what: format!("the {} CRD", info.kind),
        reason: e.to_string(),
    })?;
    let versions = value
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten();
    for version in versions {
        let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") else {
            continue;
        };
        normalize::schema(schema);
        if let Some(root) = schema.as_object_mut() {
            // kube's is "Auto-generated derived type for ...", which helps nobody.
            let description = format!("{} See docs/config.md in mesh.", info.summary);
            root.insert("description".into(), Value::from(description));
            // kube requires `spec`; Istio's CRDs and mesh's loader do not (`spec: {}` and
            // no spec mean the same).
            root.remove("required");
        }
        let violations = structural::check(schema);
        if !violations.is_empty() {
            return Err(CodegenError::NotStructural {
                kind: info.kind,
                violations,
            });
        }
    }
    Ok(canonical(value))
}

/// `charts/mesh/crds/<plural>.<group>.yaml`, the CRD's own name.
pub fn file_name(crd: &Value) -> Option<String> {
    let name = crd.pointer("/metadata/name")?.as_str()?;
    Some(format!("{name}.yaml"))
}

pub fn render(crd: &Value) -> Result<String, CodegenError> {
    let yaml = serde_yaml::to_string(crd).map_err(|e| CodegenError::Serialize {
        what: "a CRD as YAML".to_owned(),
        reason: e.to_string(),
    })?;
    Ok(format!("{HEADER}\n{yaml}"))
}

fn decorate(crd: &mut CustomResourceDefinition, info: &KindInfo) {
    let names = &mut crd.spec.names;
    if !info.short_names.is_empty() {
        names.short_names = Some(info.short_names.iter().map(|&s| s.to_owned()).collect());
    }
    names.categories = Some(info.categories());
    if info.columns.is_empty() {
        return;
    }
    let mut columns: Vec<_> = info
        .columns
        .iter()
        .map(|c| CustomResourceColumnDefinition {
            name: c.name.to_owned(),
            json_path: c.json_path.to_owned(),
            description: Some(c.description.to_owned()),
            type_: "string".to_owned(),
            ..Default::default()
        })
        .collect();
    // Custom columns replace kubectl's default Age column, so it comes back last.
    columns.push(CustomResourceColumnDefinition {
        name: "Age".to_owned(),
        json_path: ".metadata.creationTimestamp".to_owned(),
        type_: "date".to_owned(),
        description: Some("The time since the object was created, as the server saw it".to_owned()),
        ..Default::default()
    });
    for version in &mut crd.spec.versions {
        version.additional_printer_columns = Some(columns.clone());
    }
}
