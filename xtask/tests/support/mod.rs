//! A minimal validator of values against a CRD schema: types, nullability, enums, bounds,
//! required and unknown fields. Not the API server's, but enough to show that real Istio
//! objects fit the generated schemas.

use serde_json::{Map, Value};

/// Problems found in `value`, each prefixed with its path.
pub fn validate(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, path, &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    let Some(ty) = schema.get("type").and_then(Value::as_str) else {
        // x-kubernetes-preserve-unknown-fields: anything goes.
        return;
    };
    let fits = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => false,
    };
    if !fits {
        errors.push(format!("{path}: {value} is not a {ty}"));
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {values:?}"));
    }
    bounds(schema, value, path, errors);
    match value {
        Value::Object(fields) => object(schema, fields, path, errors),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    check(item_schema, item, &format!("{path}[]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn bounds(schema: &Map<String, Value>, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(n) = value.as_f64() else {
        return;
    };
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
        errors.push(format!("{path}: {value} is out of [{min:?}, {max:?}]"));
    }
}

fn object(
    schema: &Map<String, Value>,
    fields: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = name.as_str()
            && !fields.contains_key(name)
        {
            errors.push(format!("{path}: required field {name} is missing"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let values = schema.get("additionalProperties");
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    for (name, field) in fields {
        let child = format!("{path}.{name}");
        match (properties.and_then(|p| p.get(name)), values) {
            (Some(field_schema), _) | (None, Some(field_schema)) => {
                check(field_schema, field, &child, errors);
            }
            (None, None) if preserve => {}
            (None, None) => errors.push(format!("{child}: unknown field, the API server drops it")),
        }
    }
}

/// YAML as kubectl sends it: JSON, with map keys as strings (`9090:` becomes `"9090"`).
pub fn yaml_to_json(value: serde_yaml::Value) -> Value {
    match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map_or(Value::Null, Value::from)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect())
        }
        serde_yaml::Value::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (key_text(k), yaml_to_json(v)))
                .collect(),
        ),
        serde_yaml::Value::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn key_text(key: serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s,
        other => serde_yaml::to_string(&other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}
