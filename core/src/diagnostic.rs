//! Problems found in config, each pinned to where it is: file, document, object, field.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    /// Something that may be fine (a host defined elsewhere) but often is a mistake.
    Warning,
}

/// Where an object came from. `index` counts documents in the file from 0; objects from
/// the Kubernetes API have no file and no index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    pub file: String,
    pub index: Option<usize>,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            wrote = true;
        }
        if let Some(index) = self.index {
            write!(f, "[{index}]")?;
            wrote = true;
        }
        if !self.kind.is_empty() {
            if wrote {
                f.write_str(" ")?;
            }
            // A cluster-scoped object (a Namespace) has no namespace: `Namespace shop`.
            match self.namespace.as_str() {
                "" => write!(f, "{} {}", self.kind, self.name)?,
                namespace => write!(f, "{} {namespace}/{}", self.kind, self.name)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_their_object_as_istioctl_does() {
        let mut origin = Origin {
            kind: "VirtualService".to_owned(),
            namespace: "shop".to_owned(),
            name: "reviews".to_owned(),
            ..Origin::default()
        };
        assert_eq!(origin.to_string(), "VirtualService shop/reviews");
        origin.file = "routes.yaml".to_owned();
        origin.index = Some(1);
        assert_eq!(
            origin.to_string(),
            "routes.yaml[1] VirtualService shop/reviews"
        );
        let namespace = Origin {
            kind: "Namespace".to_owned(),
            name: "shop".to_owned(),
            ..Origin::default()
        };
        assert_eq!(namespace.to_string(), "Namespace shop");
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    /// Path from the object's root, e.g. `spec.http[0].route[1].weight`; empty when the
    /// problem is the whole document.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            origin: origin.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn warning(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(origin, field, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `error: routes.yaml[1] VirtualService default/reviews: spec.http[0].route[1].weight: ...`
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}: {}: ", self.origin)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}
