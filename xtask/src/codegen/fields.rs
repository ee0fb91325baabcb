//! Every field of a kind, read from schemars' schema of its spec type with named
//! definitions. The CRD's schema has them inlined and, once a field has its own doc
//! comment, a `Duration` is just a string there: only the `$ref` says what it is.

use std::borrow::Cow;

use mesh_core::config::{Duration, Kind, Unsupported};
use schemars::JsonSchema;
use serde_json::{Map, Value};

use super::CodegenError;

/// One row of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `spec.http[].route[].weight`: `[]` is a list's element, `<key>` a map's value.
    pub path: String,
    /// `string`, `integer`, `duration`, `enum`, `list of string`, `map of object`...
    pub ty: String,
    /// The values of an enum, with their doc comments.
    pub values: Vec<(String, Option<String>)>,
    pub required: bool,
    pub description: Option<String>,
    pub default: Option<String>,
}

/// What the reference says about one kind.
#[derive(Debug, Clone, Default)]
pub struct KindFields {
    pub fields: Vec<Field>,
    /// Paths of Istio fields mesh refuses (`Option<Unsupported>`).
    pub unsupported: Vec<String>,
}

/// Types nest a handful of levels; a deeper walk means a recursive type.
const MAX_DEPTH: usize = 24;

pub fn collect(kind: Kind, spec_schema: &schemars::Schema) -> Result<KindFields, CodegenError> {
    let root = spec_schema.as_value();
    let empty = Map::new();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut walker = Walker {
        kind,
        defs,
        duration: Duration::schema_name(),
        unsupported: Unsupported::schema_name(),
        out: KindFields::default(),
    };
    let spec = match walker.resolve(root, "spec")?.shape {
        Shape::Node(obj) => obj,
        _ => return Err(walker.error("spec", "the spec is not an object")),
    };
    walker.descend(spec, "spec", 0)?;
    Ok(walker.out)
}

struct Walker<'a> {
    kind: Kind,
    defs: &'a Map<String, Value>,
    duration: Cow<'static, str>,
    unsupported: Cow<'static, str>,
    out: KindFields,
}

enum Shape<'a> {
    Duration,
    Unsupported,
    Node(&'a Map<String, Value>),
}

/// A field's schema once `Option` and `$ref` are seen through, with the first
/// description and default met on the way (the field's own before its type's).
struct Resolved<'a> {
    shape: Shape<'a>,
    description: Option<&'a str>,
    default: Option<&'a Value>,
}

impl<'a> Walker<'a> {
    fn error(&self, path: &str, reason: impl Into<String>) -> CodegenError {
        CodegenError::Schema {
            kind: self.kind,
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn resolve(&self, mut node: &'a Value, path: &str) -> Result<Resolved<'a>, CodegenError> {
        let (mut description, mut default) = (None, None);
        for _ in 0..MAX_DEPTH {
            let obj = node
                .as_object()
                .ok_or_else(|| self.error(path, "a schema that is not an object"))?;
            description = description.or(obj.get("description").and_then(Value::as_str));
            default = default.or(obj.get("default"));
            let resolved = |shape| Resolved {
                shape,
                description,
                default,
            };
            if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
                let name = reference.strip_prefix("#/$defs/").unwrap_or(reference);
                if name == self.duration {
                    return Ok(resolved(Shape::Duration));
                }
                if name == self.unsupported {
                    return Ok(resolved(Shape::Unsupported));
                }
                node = self
                    .defs
                    .get(name)
                    .ok_or_else(|| self.error(path, format!("no definition for {reference}")))?;
                continue;
            }
            if let Some(any_of) = obj.get("anyOf").and_then(Value::as_array) {
                // `Option<T>` is `anyOf: [T, {type: null}]`; anything else is a union
                // the reference cannot describe as one type.
                let mut not_null = any_of.iter().filter(|s| !is_null_schema(s));
                match (not_null.next(), not_null.next()) {
                    (Some(only), None) => {
                        node = only;
                        continue;
                    }
                    _ => return Err(self.error(path, "an `anyOf` with several types")),
                }
            }
            return Ok(resolved(Shape::Node(obj)));
        }
        Err(self.error(path, "nested too deep: a recursive type?"))
    }

    /// Rows for the properties of an object, the elements of a list, the values of a map.
    fn descend(
        &mut self,
        obj: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), CodegenError> {
        if depth > MAX_DEPTH {
            return Err(self.error(path, "nested too deep: a recursive type?"));
        }
        if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
            let required = obj.get("required").and_then(Value::as_array);
            let is_required =
                |name: &str| required.is_some_and(|r| r.iter().any(|v| v.as_str() == Some(name)));
            let mut names: Vec<_> = properties.keys().collect();
            names.sort();
            for name in names {
                let child = format!("{path}.{name}");
                self.field(&properties[name], &child, is_required(name), depth + 1)?;
            }
        }
        for (key, suffix) in [("additionalProperties", ".<key>"), ("items", "[]")] {
            if let Some(inner) = obj.get(key).filter(|v| v.is_object()) {
                let inner_path = format!("{path}{suffix}");
                if let Shape::Node(inner) = self.resolve(inner, &inner_path)?.shape {
                    self.descend(inner, &inner_path, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn field(
        &mut self,
        node: &'a Value,
        path: &str,
        required: bool,
        depth: usize,
    ) -> Result<(), CodegenError> {
        let resolved = self.resolve(node, path)?;
        let obj = match resolved.shape {
            Shape::Unsupported => {
                self.out.unsupported.push(path.to_owned());
                return Ok(());
            }
            Shape::Duration => None,
            Shape::Node(obj) => Some(obj),
        };
        let (ty, values) = match obj {
            None => ("duration".to_owned(), Vec::new()),
            Some(obj) => (self.type_label(obj, path)?, self.element_values(obj, path)?),
        };
        self.out.fields.push(Field {
            path: path.to_owned(),
            ty,
            values,
            required,
            description: resolved.description.map(str::to_owned),
            default: resolved.default.and_then(scalar_text),
        });
        match obj {
            Some(obj) => self.descend(obj, path, depth),
            None => Ok(()),
        }
    }

    fn type_label(&self, obj: &'a Map<String, Value>, path: &str) -> Result<String, CodegenError> {
        if !enum_values(obj).is_empty() {
            return Ok("enum".to_owned());
        }
        let ty = single_type(obj).ok_or_else(|| self.error(path, "no single `type`"))?;
        let inner = |key: &str| -> Result<String, CodegenError> {
            let node = obj
                .get(key)
                .ok_or_else(|| self.error(path, format!("a {ty} without `{key}`")))?;
            match self.resolve(node, path)?.shape {
                Shape::Duration => Ok("duration".to_owned()),
                Shape::Unsupported => Err(self.error(path, "a list or map of Unsupported")),
                Shape::Node(inner) => self.type_label(inner, path),
            }
        };
        Ok(match ty {
            "array" => format!("list of {}", inner("items")?),
            "object"
                if obj
                    .get("additionalProperties")
                    .is_some_and(Value::is_object) =>
            {
                format!("map of {}", inner("additionalProperties")?)
            }
            other => other.to_owned(),
        })
    }

    /// The enum values of a field, or of its elements when it is a list or map of enums.
    fn element_values(
        &self,
        obj: &'a Map<String, Value>,
        path: &str,
    ) -> Result<Vec<(String, Option<String>)>, CodegenError> {
        let own = enum_values(obj);
        if !own.is_empty() {
            return Ok(own);
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = obj.get(key).filter(|v| v.is_object())
                && let Shape::Node(inner) = self.resolve(inner, path)?.shape
            {
                return self.element_values(inner, path);
            }
        }
        Ok(Vec::new())
    }
}

/// `type: "string"` or `type: ["string", "null"]`.
fn single_type(obj: &Map<String, Value>) -> Option<&str> {
    match obj.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => {
            let mut not_null = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null");
            match (not_null.next(), not_null.next()) {
                (Some(t), None) => Some(t),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// An enum's values: `enum: [...]`, or `oneOf` of `const`s when variants have docs.
fn enum_values(obj: &Map<String, Value>) -> Vec<(String, Option<String>)> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut values = Vec::new();
    let plain = obj.get("enum").and_then(Value::as_array);
    values.extend(
        plain
            .into_iter()
            .flatten()
            .filter_map(text)
            .map(|v| (v, None)),
    );
    for variant in obj
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let description = variant.get("description").and_then(text);
        if let Some(value) = variant.get("const").and_then(text) {
            values.push((value, description));
        } else {
            let listed = variant.get("enum").and_then(Value::as_array);
            values.extend(
                listed
                    .into_iter()
                    .flatten()
                    .filter_map(text)
                    .map(|v| (v, None)),
            );
        }
    }
    values
}

/// Defaults worth showing: `DISABLE`, `0`, `false`; not `[]` or `{}`.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
