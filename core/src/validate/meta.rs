//! What every kind shares: metadata, `exportTo`, workload selectors.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Kind, ObjectMeta};

use super::names::{DNS_LABEL_RULE, check_labels, is_dns_label, is_dns_subdomain};
use super::{FieldPath, Report};

/// `metadata.name` is required and a DNS-1123 subdomain (a label for Gateways, which
/// VirtualServices name as `namespace/name`); `metadata.namespace` is a DNS label.
pub(super) fn check_metadata(kind: Kind, metadata: &ObjectMeta, report: &mut Report) {
    let at = FieldPath::metadata();
    let name = &metadata.name;
    if name.is_empty() {
        report.error(
            &at.field("name"),
            "name is required; give the object a name",
        );
    } else if kind == Kind::Gateway && !is_dns_label(name) {
        report.error(
            &at.field("name"),
            format!(
                "Gateway name {name:?} is invalid; a Gateway name must be a DNS label (no dots) so that VirtualServices can refer to it as namespace/name: {DNS_LABEL_RULE}"
            ),
        );
    } else if !is_dns_subdomain(name) {
        report.error(
            &at.field("name"),
            format!(
                "name {name:?} is not a valid DNS-1123 subdomain; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
            ),
        );
    }
    let namespace = &metadata.namespace;
    if !namespace.is_empty() && !is_dns_label(namespace) {
        report.error(
            &at.field("namespace"),
            format!("namespace {namespace:?} is invalid: {DNS_LABEL_RULE}"),
        );
    }
}

/// Whether `~` (visible to no one but the service's own proxies) is allowed: ServiceEntry only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExportNone {
    Allowed,
    Invalid,
}

/// `exportTo`: `.` (own namespace), `*` (all), namespace names, and `~` for ServiceEntries;
/// no duplicates, and `*` or `~` alone.
pub(super) fn check_export_to(
    export_to: &[String],
    namespace: &str,
    none: ExportNone,
    at: &FieldPath,
    report: &mut Report,
) {
    let mut seen = BTreeSet::new();
    for (i, entry) in export_to.iter().enumerate() {
        let here = at.index(i);
        let valid = match entry.as_str() {
            "." | "*" => true,
            "~" => none == ExportNone::Allowed,
            name => is_dns_label(name),
        };
        if !valid {
            let allowed = match none {
                ExportNone::Allowed => "'.', '*', '~'",
                ExportNone::Invalid => "'.', '*'",
            };
            report.error(
                &here,
                format!("exportTo entry {entry:?} is invalid; use {allowed} or a namespace name"),
            );
            continue;
        }
        let key = if entry == "." {
            namespace
        } else {
            entry.as_str()
        };
        if !seen.insert(key) {
            report.error(
                &here,
                format!("exportTo entry {entry:?} is a duplicate ('.' is namespace {namespace}); remove it"),
            );
        }
    }
    if export_to.len() > 1 {
        for (i, entry) in export_to.iter().enumerate() {
            if entry == "*" || entry == "~" {
                report.error(
                    &at.index(i),
                    format!(
                        "exportTo {entry:?} cannot be combined with other entries; keep it alone"
                    ),
                );
            }
        }
    }
}

/// Selector labels: valid, no wildcards; an empty selector selects every workload (warning).
pub(super) fn check_selector(
    labels: &BTreeMap<String, String>,
    at: &FieldPath,
    report: &mut Report,
) {
    if labels.is_empty() {
        report.warning(
            at,
            "selector has no labels, so it selects every workload in the namespace; add labels or remove the selector",
        );
    }
    let (wildcards, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, v)| k.contains('*') || v.contains('*'));
    for (key, value) in &wildcards {
        report.error(
            &at.key(key),
            format!("wildcards are not supported in selectors ({key}={value}); write exact labels"),
        );
    }
    check_labels(&plain, at, report);
}
