//! Collects the problems found in one object, each pinned to its origin and field.

use crate::diagnostic::{Diagnostic, Origin};

use super::FieldPath;

/// The diagnostics of one object, in the order they were found.
pub(super) struct Report<'a> {
    origin: &'a Origin,
    found: Vec<Diagnostic>,
}

impl<'a> Report<'a> {
    pub(super) fn new(origin: &'a Origin) -> Self {
        Self {
            origin,
            found: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, at: &FieldPath, message: impl Into<String>) {
        self.found.push(Diagnostic::error(self.origin, at, message));
    }

    pub(super) fn warning(&mut self, at: &FieldPath, message: impl Into<String>) {
        self.found
            .push(Diagnostic::warning(self.origin, at, message));
    }

    /// Records `result`'s error, if any, at `at`.
    pub(super) fn check(&mut self, at: &FieldPath, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(at, message);
        }
    }

    pub(super) fn has_errors(&self) -> bool {
        self.found.iter().any(Diagnostic::is_error)
    }

    pub(super) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.found
    }
}
