//! Field paths such as `spec.http[0].route[1].weight`, built step by step so that every
//! diagnostic names its field the same way.

use std::fmt;

/// A path from an object's root to one of its fields.
///
/// Struct fields join with `.`, list items are `[0]`, map keys are `[key]` (as Kubernetes
/// writes `metadata.labels[app]`), so a key containing dots stays unambiguous.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The object itself: an empty path.
    pub fn root() -> Self {
        Self::default()
    }

    /// `spec`, where every kind's fields start.
    pub fn spec() -> Self {
        Self::root().field("spec")
    }

    /// `metadata`.
    pub fn metadata() -> Self {
        Self::root().field("metadata")
    }

    /// This path followed by the struct field `name`.
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// This path followed by list item `index`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The list field `name`, item `index`: `route[1]`.
    pub fn item(&self, name: &str, index: usize) -> Self {
        self.field(name).index(index)
    }

    /// This path followed by map key `key`.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<FieldPath> for String {
    fn from(path: FieldPath) -> Self {
        path.0
    }
}

impl From<&FieldPath> for String {
    fn from(path: &FieldPath) -> Self {
        path.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn builds_paths_as_kubernetes_writes_them() {
        let route = FieldPath::spec().item("http", 0).item("route", 1);
        assert_eq!(
            route.field("weight").as_str(),
            "spec.http[0].route[1].weight"
        );
        assert_eq!(
            FieldPath::spec()
                .item("http", 2)
                .item("match", 0)
                .field("headers")
                .key("x-user.id")
                .to_string(),
            "spec.http[2].match[0].headers[x-user.id]"
        );
        assert_eq!(FieldPath::root().as_str(), "");
        assert_eq!(
            FieldPath::metadata().field("name").as_str(),
            "metadata.name"
        );
    }
}
