//! The rules the API server applies to a CRD's schema ("structural schemas", plus what
//! `apiextensions.k8s.io/v1` validation rejects), checked here so that a change to
//! mesh-core's types that the API server would refuse fails `cargo xtask codegen` and the
//! tests instead of `kubectl apply`.
//!
//! Reference: <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema>

use serde_json::{Map, Value, json};

/// Keys a schema node may have: the fields of `JSONSchemaProps` that a structural schema
/// allows. Anything else (`$ref`, `$defs`, `const`, `writeOnly`, `patternProperties`...)
/// is either refused or silently dropped by the API server.
const ALLOWED_KEYS: &[&str] = &[
    "description",
    "title",
    "type",
    "format",
    "nullable",
    "default",
    "enum",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "multipleOf",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "example",
    "externalDocs",
];

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

/// Formats the API server understands, by type. Others are ignored at best.
const FORMATS: &[(&str, &[&str])] = &[
    ("integer", &["int32", "int64"]),
    ("number", &["float", "double"]),
];

/// Keys a subschema under `allOf`/`anyOf`/`oneOf`/`not` must not set: in a structural
/// schema the node itself says what the value is, junctors only add validations.
const JUNCTOR_FORBIDDEN: &[&str] = &[
    "type",
    "description",
    "title",
    "nullable",
    "default",
    "additionalProperties",
    "items",
];

/// One broken rule, at a field path such as `spec.http[].route[].weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "<root>"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.rule)
    }
}

/// Checks an `openAPIV3Schema`; an empty result means the API server accepts it.
pub fn check(root: &Value) -> Vec<Violation> {
    let mut checker = Checker::default();
    match root.as_object() {
        Some(obj) if obj.get("type").and_then(Value::as_str) == Some("object") => {
            if obj.contains_key("nullable") {
                checker.report("", "the root must not be nullable");
            }
            checker.node(obj, "");
        }
        _ => checker.report("", "the root must be a schema with `type: object`"),
    }
    checker.violations
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn report(&mut self, path: &str, rule: impl Into<String>) {
        self.violations.push(Violation {
            path: path.to_owned(),
            rule: rule.into(),
        });
    }

    fn node(&mut self, obj: &Map<String, Value>, path: &str) {
        self.keys(obj, path);
        let preserve = flag(obj, "x-kubernetes-preserve-unknown-fields");
        let int_or_string = flag(obj, "x-kubernetes-int-or-string");
        match obj.get("type") {
            None if preserve || int_or_string => {}
            None => self.report(
                path,
                "has no `type` (only x-kubernetes-preserve-unknown-fields or \
                 x-kubernetes-int-or-string nodes may omit it)",
            ),
            Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {
                self.typed(obj, path, t);
            }
            Some(other) => self.report(
                path,
                format!(
                    "`type` must be one of {TYPES:?}, not {other} (use `nullable: true` for null)"
                ),
            ),
        }
        for junctor in ["allOf", "anyOf", "oneOf"] {
            if int_or_string && junctor == "anyOf" && is_int_or_string_any_of(obj) {
                continue;
            }
            if let Some(list) = obj.get(junctor) {
                let subs = list.as_array().map(Vec::as_slice).unwrap_or_default();
                for sub in subs {
                    self.junctor(sub, obj, path, junctor);
                }
            }
        }
        if let Some(not) = obj.get("not") {
            self.junctor(not, obj, path, "not");
        }
    }

    fn keys(&mut self, obj: &Map<String, Value>, path: &str) {
        for (key, value) in obj {
            if key.starts_with("x-kubernetes-") {
                continue;
            }
            if !ALLOWED_KEYS.contains(&key.as_str()) {
                self.report(path, format!("`{key}` is not allowed in a CRD schema"));
            }
            if key == "uniqueItems" && value == &Value::Bool(true) {
                self.report(
                    path,
                    "`uniqueItems: true` is not allowed; use x-kubernetes-list-type",
                );
            }
        }
        // Our policy rather than the API server's: no server-side defaulting, so stored
        // objects are what the user wrote (see normalize.rs).
        if obj.contains_key("default") {
            self.report(
                path,
                "`default` makes the API server rewrite objects; leave defaults to pilot",
            );
        }
        for flag_name in [
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-int-or-string",
        ] {
            if obj.get(flag_name).is_some_and(|v| v != &Value::Bool(true)) {
                self.report(path, format!("`{flag_name}` must be `true` when set"));
            }
        }
    }

    fn typed(&mut self, obj: &Map<String, Value>, path: &str, ty: &str) {
        if let Some(format) = obj.get("format").and_then(Value::as_str) {
            let known = FORMATS
                .iter()
                .find(|(t, _)| *t == ty)
                .is_some_and(|(_, formats)| formats.contains(&format));
            if !known {
                self.report(
                    path,
                    format!("format `{format}` is not one the API server knows for type {ty}"),
                );
            }
        }
        if let Some(values) = obj.get("enum") {
            self.enum_values(values, path, ty);
        }
        match ty {
            "object" => self.object(obj, path),
            "array" => self.array(obj, path),
            _ => {
                for key in ["properties", "additionalProperties", "items", "required"] {
                    if obj.contains_key(key) {
                        self.report(path, format!("`{key}` on a `{ty}`"));
                    }
                }
            }
        }
    }

    fn enum_values(&mut self, values: &Value, path: &str, ty: &str) {
        let Some(values) = values.as_array().filter(|v| !v.is_empty()) else {
            self.report(path, "`enum` must be a non-empty list");
            return;
        };
        for value in values {
            let fits = match ty {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !fits {
                self.report(
                    path,
                    format!("enum value {value} is not a {ty} (null comes from `nullable`)"),
                );
            }
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, path: &str) {
        let properties = obj.get("properties").and_then(Value::as_object);
        match (properties, obj.get("additionalProperties")) {
            (Some(_), Some(_)) => self.report(
                path,
                "`additionalProperties` next to `properties`: the API server prunes unknown \
                 fields, drop it",
            ),
            (None, Some(Value::Object(values))) => self.node(values, &format!("{path}.<key>")),
            (None, Some(other)) => self.report(
                path,
                format!("`additionalProperties: {other}`: a map needs a value schema, a free-form object x-kubernetes-preserve-unknown-fields"),
            ),
            _ => {}
        }
        let required = obj.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten() {
            let known = name
                .as_str()
                .is_some_and(|n| properties.is_some_and(|p| p.contains_key(n)));
            if !known {
                self.report(
                    path,
                    format!("required field {name} is not among the properties"),
                );
            }
        }
        for (name, prop) in properties.into_iter().flatten() {
            let child = join(path, name);
            match prop.as_object() {
                Some(prop) => self.node(prop, &child),
                None => self.report(&child, "a property's schema must be an object"),
            }
        }
    }

    fn array(&mut self, obj: &Map<String, Value>, path: &str) {
        match obj.get("items") {
            Some(Value::Object(items)) => self.node(items, &format!("{path}[]")),
            Some(_) => self.report(path, "`items` must be a single schema (no tuples)"),
            None => self.report(path, "an array needs `items`"),
        }
    }

    fn junctor(&mut self, sub: &Value, parent: &Map<String, Value>, path: &str, junctor: &str) {
        let Some(sub) = sub.as_object() else {
            self.report(path, format!("`{junctor}` must hold schema objects"));
            return;
        };
        for key in sub.keys() {
            if JUNCTOR_FORBIDDEN.contains(&key.as_str()) || key.starts_with("x-kubernetes-") {
                self.report(
                    path,
                    format!("`{key}` inside `{junctor}`: the node itself must say it"),
                );
            }
        }
        let outer = parent.get("properties").and_then(Value::as_object);
        for (name, prop) in sub
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !outer.is_some_and(|o| o.contains_key(name)) {
                self.report(
                    path,
                    format!("`{junctor}` names property `{name}` the node does not declare"),
                );
            }
            self.junctor(prop, &Map::new(), &join(path, name), junctor);
        }
    }
}

/// The one junctor with types that Kubernetes allows, and itself writes for IntOrString.
fn is_int_or_string_any_of(obj: &Map<String, Value>) -> bool {
    let allowed = [json!({"type": "integer"}), json!({"type": "string"})];
    obj.get("anyOf")
        .and_then(Value::as_array)
        .is_some_and(|subs| subs.iter().all(|s| allowed.contains(s)))
}

fn flag(obj: &Map<String, Value>, name: &str) -> bool {
    obj.get(name) == Some(&Value::Bool(true))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(schema: Value) -> Vec<String> {
        check(&schema).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn accepts_a_structural_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["host"],
                    "properties": {
                        "host": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 0, "nullable": true},
                        "mode": {"type": "string", "enum": ["A", "B"], "nullable": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "hosts": {"type": "array", "items": {"type": "string"}},
                        "later": {"x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
                    }
                }
            }
        });
        assert_eq!(rules(schema), Vec::<String>::new());
    }

    #[test]
    fn names_each_broken_rule_with_its_path() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "a": {"$ref": "#/$defs/A"},
                        "b": {"type": ["string", "null"]},
                        "c": {"anyOf": [{"type": "string"}, {"enum": [null], "nullable": true}]},
                        "d": {"type": "integer", "format": "uint32"},
                        "e": {"type": "string", "enum": ["X", null], "default": "X"},
                        "f": {"type": "array", "items": [{"type": "string"}]},
                        "g": {"type": "string", "writeOnly": true}
                    }
                }
            }
        });
        let violations = rules(schema);
        let expected = [
            "spec: `additionalProperties` next to `properties`",
            "spec.a: `$ref` is not allowed",
            "spec.a: has no `type`",
            "spec.b: `type` must be one of",
            "spec.c: has no `type`",
            "spec.c: `type` inside `anyOf`",
            "spec.c: `nullable` inside `anyOf`",
            "spec.d: format `uint32`",
            "spec.e: `default` makes",
            "spec.e: enum value null",
            "spec.f: `items` must be a single schema",
            "spec.g: `writeOnly` is not allowed",
        ];
        for rule in expected {
            assert!(
                violations.iter().any(|v| v.starts_with(rule)),
                "expected a violation starting with {rule:?} in {violations:#?}"
            );
        }
        assert_eq!(violations.len(), expected.len(), "{violations:#?}");
    }
}
