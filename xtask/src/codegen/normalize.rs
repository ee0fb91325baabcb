//! Turns the schema kube derives into one the API server accepts as it is and stores
//! objects as they were written.
//!
//! kube already inlines definitions, hoists enum `oneOf`s, turns `Option` into
//! `nullable` and drops `additionalProperties: false` next to `properties`. What is left:
//! - `default`s (from `#[serde(default)]`) would make the API server rewrite stored
//!   objects; pilot applies the same defaults when it parses, as Istio's CRDs leave them out.
//! - `null` among an `Option<enum>`'s values, which `nullable` already allows.
//! - `additionalProperties: false` without `properties` (a struct with no fields).
//! - Rust-only integer formats (`uint32`...), which become bounds as in Istio's CRDs.
//! - `minimum: 0.0` on integers, written as `0`.

use serde_json::{Map, Value};

/// Integer formats the API server does not know, with the range they stand for.
const UNSIGNED: &[(&str, Option<u64>)] = &[
    ("uint8", Some(u8::MAX as u64)),
    ("uint16", Some(u16::MAX as u64)),
    ("uint32", Some(u32::MAX as u64)),
    ("uint64", None),
    ("uint", None),
];

/// Signed integer formats narrower than the API server's `int32`.
const NARROW_SIGNED: &[&str] = &["int8", "int16"];

/// Normalizes an `openAPIV3Schema` in place, recursively.
pub fn schema(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    obj.remove("default");
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        obj.remove("additionalProperties");
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    integer_format(obj);
    for child in children(obj) {
        schema(child);
    }
}

fn integer_format(obj: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    if let Some((_, max)) = UNSIGNED.iter().find(|(name, _)| *name == format) {
        obj.remove("format");
        obj.insert("minimum".into(), Value::from(0));
        if let Some(max) = max {
            obj.insert("maximum".into(), Value::from(*max));
        }
    } else if NARROW_SIGNED.contains(&format.as_str()) {
        obj.insert("format".into(), Value::from("int32"));
    }
    if obj.get("type").and_then(Value::as_str) == Some("integer") {
        for bound in ["minimum", "maximum"] {
            if let Some(whole) = obj.get(bound).and_then(as_whole_number) {
                obj.insert(bound.into(), whole);
            }
        }
    }
}

/// `0.0` as `0`; anything fractional or out of range stays as it is.
fn as_whole_number(value: &Value) -> Option<Value> {
    let Value::Number(n) = value else {
        return None;
    };
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    let in_range = f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64;
    // The range check makes the cast exact.
    in_range.then(|| Value::from(f as i64))
}

/// Every subschema of a schema node: properties, items, map values and junctors.
pub fn children(obj: &mut Map<String, Value>) -> Vec<&mut Value> {
    let mut out = Vec::new();
    for (key, value) in obj.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => out.extend(props.values_mut()),
            ("items" | "additionalProperties" | "not", v @ Value::Object(_)) => out.push(v),
            ("allOf" | "anyOf" | "oneOf", Value::Array(list)) => out.extend(list.iter_mut()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrites_what_kubernetes_rejects() {
        let mut s = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "port": {"type": "integer", "format": "uint32", "minimum": 0.0, "default": 0},
                "big": {"type": "integer", "format": "uint64", "minimum": 0.0, "nullable": true},
                "mode": {"type": "string", "enum": ["A", null], "nullable": true},
                "share": {"type": "number", "format": "double", "default": 0.0},
                "map": {"type": "object", "additionalProperties": {"type": "integer", "format": "int16"}}
            }
        });
        schema(&mut s);
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "port": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64},
                    "big": {"type": "integer", "minimum": 0, "nullable": true},
                    "mode": {"type": "string", "enum": ["A"], "nullable": true},
                    "share": {"type": "number", "format": "double"},
                    "map": {"type": "object", "additionalProperties": {"type": "integer", "format": "int32"}}
                }
            })
        );
    }
}
