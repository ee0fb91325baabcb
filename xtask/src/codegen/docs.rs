//! `docs/config.md`: the hand-written introduction, then per kind a table of its fields,
//! then what is not supported yet.

use std::fmt::Write;

use mesh_core::config::{Kind, TypeMatch, accepted_versions, classify};

use super::fields::{Field, KindFields};
use super::kinds::KindInfo;

const INTRO: &str = include_str!("config_intro.md");

/// Kinds in Istio's (or Kubernetes') groups that mesh has no type for. What happens to
/// each is asked of `classify`, so the page cannot drift from the loader.
const OTHER_KINDS: &[(&str, &str)] = &[
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("networking.istio.io/v1", "WorkloadGroup"),
    ("networking.istio.io/v1beta1", "ProxyConfig"),
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
    ("gateway.networking.k8s.io/v1alpha2", "TLSRoute"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
];

/// One kind's part of the page.
pub struct KindDoc<'a> {
    pub info: &'a KindInfo,
    pub fields: &'a KindFields,
}

pub fn render(header: &str, kinds: &[KindDoc<'_>]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "<!-- {} -->\n", header.trim_start_matches("# "));
    out.push_str(INTRO);
    kinds_table(&mut out, kinds);
    for kind in kinds {
        kind_section(&mut out, kind);
    }
    unsupported_section(&mut out, kinds);
    out
}

fn kinds_table(out: &mut String, kinds: &[KindDoc<'_>]) {
    out.push_str("\n## Kinds\n\n");
    out.push_str("| Kind | apiVersion | Also accepted | Short names |\n|---|---|---|---|\n");
    for KindDoc { info, .. } in kinds {
        let (own, istio) = versions(info.kind);
        let short: Vec<_> = info.short_names.iter().map(|s| format!("`{s}`")).collect();
        let _ = writeln!(
            out,
            "| [{kind}](#{anchor}) | {own} | {istio} | {short} |",
            kind = info.kind,
            anchor = info.kind.name().to_lowercase(),
            istio = istio.join(", "),
            short = short.join(", "),
        );
    }
}

/// mesh's own apiVersion, and the Istio ones, each as `group/version` in backticks.
fn versions(kind: Kind) -> (String, Vec<String>) {
    let mut all = accepted_versions(kind.family())
        .iter()
        .flat_map(|(group, versions)| versions.iter().map(move |v| format!("`{group}/{v}`")));
    let own = all.next().unwrap_or_default();
    (own, all.collect())
}

fn kind_section(out: &mut String, KindDoc { info, fields }: &KindDoc<'_>) {
    let (own, _) = versions(info.kind);
    let _ = writeln!(out, "\n## {}\n\n{}\n", info.kind, info.summary);
    let _ = writeln!(out, "`apiVersion: {}`", own.trim_matches('`'));
    out.push_str("\n| Field | Type | Description |\n|---|---|---|\n");
    for field in &fields.fields {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            field.path,
            type_cell(field),
            cell(&description(field))
        );
    }
}

fn type_cell(field: &Field) -> String {
    let mut ty = field.ty.clone();
    if !field.values.is_empty() {
        let values: Vec<_> = field.values.iter().map(|(v, _)| format!("`{v}`")).collect();
        let _ = write!(ty, ": {}", values.join(", "));
    }
    if field.required {
        ty.push_str(", *required*");
    }
    ty
}

fn description(field: &Field) -> String {
    let mut parts: Vec<String> = field.description.iter().cloned().collect();
    for (value, doc) in &field.values {
        if let Some(doc) = doc {
            parts.push(format!("`{value}`: {doc}"));
        }
    }
    if let Some(default) = &field.default {
        parts.push(format!("Default: `{default}`."));
    }
    parts.join(" ")
}

/// Markdown table cells are one line and `|` separates them.
fn cell(text: &str) -> String {
    let text = text.replace('|', "\\|");
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    paragraphs.join("<br>")
}

fn unsupported_section(out: &mut String, kinds: &[KindDoc<'_>]) {
    out.push_str(
        "\n## Istio fields not supported yet\n\n\
         Setting one of these fields is an error that names it, so that nothing you wrote is \
         silently ignored. In Kubernetes the API server stores them (the CRDs let them \
         through) and pilot reports the error with the field's path.\n",
    );
    for KindDoc { info, fields } in kinds {
        let _ = writeln!(out, "\n### {}\n", info.kind);
        if fields.unsupported.is_empty() {
            out.push_str("None.\n");
        }
        for path in &fields.unsupported {
            let _ = writeln!(out, "- `{path}`");
        }
    }
    out.push_str("\n## Kinds not supported yet\n\n");
    for (api_version, kind) in OTHER_KINDS {
        let fate = match classify(api_version, kind) {
            TypeMatch::Unsupported(_) => "refused: an object of this kind is an error",
            TypeMatch::Foreign => {
                "ignored, like every kind outside the `*.istio.io` and `*.mesh.io` groups"
            }
            // Supported now: it has its own section above.
            TypeMatch::Ours(_) => continue,
        };
        let group = api_version.split_once('/').map_or(*api_version, |(g, _)| g);
        let _ = writeln!(out, "- {kind} (`{group}`): {fate}.");
    }
}
