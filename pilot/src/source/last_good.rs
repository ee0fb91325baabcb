//! An invalid edit must not take routing away: when an object's new version fails its own
//! validation, its last good version stays in force (and the status says so); an invalid
//! object that never had a good version is skipped. Nothing else is affected.
//!
//! Problems across objects (a route naming a subset no DestinationRule defines) are not
//! any one object's fault: the objects are used, and the status reports the problem.

use std::collections::{BTreeMap, BTreeSet};

use mesh_core::config::ConfigObject;
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_core::load::{ConfigSet, Located};
use mesh_core::validate;

use super::{Action, StatusEntry};

/// `(kind, namespace, name)`.
type ObjectKey = (String, String, String);

fn key(origin: &Origin) -> ObjectKey {
    (
        origin.kind.clone(),
        origin.namespace.clone(),
        origin.name.clone(),
    )
}

/// The last good version of every object seen, kept between loads.
#[derive(Default)]
pub struct LastGood {
    objects: BTreeMap<ObjectKey, Located<ConfigObject>>,
}

impl LastGood {
    /// Validates a freshly loaded set and returns the objects to use and the status of
    /// every finding. Objects gone from the set are forgotten.
    pub fn admit(&mut self, set: ConfigSet) -> (Vec<Located<ConfigObject>>, Vec<StatusEntry>) {
        let own_checks: Vec<Diagnostic> = set
            .objects
            .iter()
            .flat_map(validate::validate_object)
            .collect();
        self.admit_checked(set, own_checks)
    }

    /// As [`LastGood::admit`], with each object's own problems already found (a source
    /// that caches them per unchanged file).
    pub fn admit_checked(
        &mut self,
        set: ConfigSet,
        own_checks: Vec<Diagnostic>,
    ) -> (Vec<Located<ConfigObject>>, Vec<StatusEntry>) {
        let cross = validate::validate_across(&set).into_iter();
        let mut own: Vec<Diagnostic> = set.diagnostics.clone();
        own.extend(own_checks);
        let invalid: BTreeSet<ObjectKey> = own
            .iter()
            .filter(|d| d.is_error() && !d.origin.kind.is_empty())
            .map(|d| key(&d.origin))
            .collect();

        let mut status = Vec::new();
        let mut used = Vec::new();
        let mut seen = BTreeSet::new();
        for object in set.objects {
            let object_key = key(&object.origin);
            seen.insert(object_key.clone());
            if invalid.contains(&object_key) {
                if let Some(previous) = self.objects.get(&object_key) {
                    used.push(previous.clone());
                }
            } else {
                self.objects.insert(object_key, object.clone());
                used.push(object);
            }
        }
        // Objects that failed to parse are not in the set: keep their last good version too.
        for object_key in &invalid {
            if !seen.contains(object_key)
                && let Some(previous) = self.objects.get(object_key)
            {
                seen.insert(object_key.clone());
                used.push(previous.clone());
            }
        }
        self.objects.retain(|k, _| seen.contains(k));

        for diagnostic in own {
            let action = if !diagnostic.is_error() {
                Action::Used
            } else if self.objects.contains_key(&key(&diagnostic.origin))
                && invalid.contains(&key(&diagnostic.origin))
            {
                Action::KeptPrevious
            } else {
                Action::Skipped
            };
            status.push(StatusEntry { diagnostic, action });
        }
        status.extend(cross.map(|diagnostic| StatusEntry {
            diagnostic,
            action: Action::Used,
        }));
        (used, status)
    }
}

#[cfg(test)]
mod tests;
