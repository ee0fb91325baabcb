//! Unit tests, one file per kind, on top of these helpers: YAML in, diagnostics out.

mod authorization;
mod cross;
mod destination_rule;
mod gateway;
mod http_match;
mod http_route;
mod metadata;
mod security;
mod service_entry;
mod sidecar;
mod telemetry;
mod virtual_service;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::{ConfigSet, load_str};

use super::validate_object;

/// Removes the indentation common to all non-blank lines, and leading blank lines, so
/// YAML can be written indented in test code.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .skip_while(|l| l.trim().is_empty())
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One document: `kind` named `name` in `namespace`, with `spec`.
fn document(kind: &str, namespace: &str, name: &str, spec: &str) -> String {
    let api = match kind {
        "PeerAuthentication" | "AuthorizationPolicy" | "RequestAuthentication" => {
            "security.istio.io/v1"
        }
        "Telemetry" => "telemetry.istio.io/v1",
        _ => "networking.istio.io/v1",
    };
    let spec: String = dedent(spec).lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

/// Loads `text`, which must load without problems.
#[track_caller]
fn load(text: &str) -> ConfigSet {
    let set = load_str(text, "test.yaml");
    assert!(
        set.diagnostics.is_empty(),
        "the test input must load: {}",
        lines(&set.diagnostics)
    );
    set
}

/// What [`validate_object`] finds in one `kind` object `default/test` with `spec`.
#[track_caller]
fn check(kind: &str, spec: &str) -> Vec<Diagnostic> {
    let set = load(&document(kind, "default", "test", spec));
    assert_eq!(set.objects.len(), 1, "one object expected");
    validate_object(&set.objects[0])
}

fn lines(found: &[Diagnostic]) -> String {
    found.iter().map(|d| format!("\n  {d}")).collect::<String>()
}

#[track_caller]
fn assert_clean(found: &[Diagnostic]) {
    assert!(found.is_empty(), "expected no diagnostics:{}", lines(found));
}

/// Exactly one diagnostic: an error at `field` whose message contains `message`.
#[track_caller]
fn assert_error(found: &[Diagnostic], field: &str, message: &str) {
    assert_only(found, Severity::Error, field, message);
}

/// Exactly one diagnostic: a warning at `field` whose message contains `message`.
#[track_caller]
fn assert_warning(found: &[Diagnostic], field: &str, message: &str) {
    assert_only(found, Severity::Warning, field, message);
}

#[track_caller]
fn assert_only(found: &[Diagnostic], severity: Severity, field: &str, message: &str) {
    assert_eq!(found.len(), 1, "expected one diagnostic:{}", lines(found));
    assert_has(found, severity, field, message);
}

/// Among others, a diagnostic of `severity` at `field` whose message contains `message`.
#[track_caller]
fn assert_has(found: &[Diagnostic], severity: Severity, field: &str, message: &str) {
    let hit = found
        .iter()
        .any(|d| d.severity == severity && d.field == field && d.message.contains(message));
    assert!(
        hit,
        "expected {severity:?} at {field} containing {message:?}, found:{}",
        lines(found)
    );
}
