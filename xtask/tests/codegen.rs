//! The generated CRDs and docs/config.md: up to date, acceptable to the API server, and
//! fitting real Istio config.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use mesh_core::config::{ApiFamily, Kind, TypeMatch, accepted_versions, classify};
use serde_json::Value;
use xtask::codegen::{self, CONFIG_DOC, CRD_DIR, GeneratedFile, Stale, fields, kinds};

fn generated() -> Vec<GeneratedFile> {
    codegen::generate().unwrap_or_else(|e| panic!("codegen failed: {e}"))
}

fn crd(kind: Kind) -> Value {
    codegen::crd(kind).unwrap_or_else(|e| panic!("{e}"))
}

fn spec_schema(crd: &Value) -> &Value {
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .expect("every CRD has a spec schema")
}

#[test]
fn generated_files_are_up_to_date() {
    let stale =
        codegen::stale(&xtask::workspace_root(), &generated()).unwrap_or_else(|e| panic!("{e}"));
    let list: Vec<_> = stale.iter().map(|s| format!("  {s}")).collect();
    assert!(
        stale.is_empty(),
        "generated files differ from mesh-core's types:\n{}\nrun `cargo xtask codegen` and commit the result",
        list.join("\n")
    );
}

#[test]
fn generates_one_crd_per_kind_and_the_reference() {
    // The chart's templates and values.yaml (meshctl's manifest) are generated too.
    let paths: Vec<_> = generated()
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.starts_with(CRD_DIR) || p == Path::new(CONFIG_DOC))
        .collect();
    assert_eq!(paths.len(), Kind::ALL.len() + 1, "{paths:?}");
    assert!(paths.contains(&Path::new(CONFIG_DOC).to_path_buf()));
    let expected = Path::new(CRD_DIR).join("virtualservices.networking.mesh.io.yaml");
    assert!(paths.contains(&expected), "{paths:?}");
}

#[test]
fn stale_names_missing_changed_and_extra_files() {
    let root = std::env::temp_dir().join(format!("xtask-codegen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let files = generated();
    let written = codegen::write(&root, &files).expect("write to a temp dir");
    assert_eq!(written.len(), files.len());
    assert_eq!(codegen::stale(&root, &files).expect("stale"), []);
    assert_eq!(
        codegen::write(&root, &files).expect("rewrite"),
        Vec::<std::path::PathBuf>::new()
    );

    let (first, second) = (&files[0].path, &files[1].path);
    std::fs::write(root.join(first), "edited by hand").expect("edit");
    std::fs::remove_file(root.join(second)).expect("remove");
    let extra = Path::new(CRD_DIR).join("old.networking.mesh.io.yaml");
    std::fs::write(root.join(&extra), "").expect("extra");
    let found = codegen::stale(&root, &files).expect("stale");
    assert_eq!(
        found,
        [
            Stale::Differs(first.clone()),
            Stale::Missing(second.clone()),
            Stale::Extra(extra.clone())
        ]
    );
    codegen::write(&root, &files).expect("repair");
    assert!(
        !root.join(&extra).exists(),
        "codegen removes CRDs it no longer generates"
    );
    assert_eq!(codegen::stale(&root, &files).expect("stale"), []);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn every_crd_is_structural_and_named_like_istio() {
    for kind in Kind::ALL {
        let crd = crd(kind);
        let schema = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema")
            .expect("schema");
        let violations = codegen::structural::check(schema);
        assert!(violations.is_empty(), "{kind}: {violations:#?}");
        assert_eq!(
            schema.get("required"),
            None,
            "{kind}: Istio objects may omit spec"
        );

        let group = match kind.family() {
            ApiFamily::Networking => "networking.mesh.io",
            ApiFamily::Security => "security.mesh.io",
            ApiFamily::Telemetry => "telemetry.mesh.io",
        };
        assert_eq!(accepted_versions(kind.family())[0].0, group);
        let plural = crd["spec"]["names"]["plural"].as_str().expect("plural");
        assert_eq!(crd["metadata"]["name"], format!("{plural}.{group}"));
        assert_eq!(crd["spec"]["group"], group);
        assert_eq!(crd["spec"]["names"]["kind"], kind.name());
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["categories"][0], "mesh-io");
        let versions = crd["spec"]["versions"].as_array().expect("versions");
        assert_eq!(versions.len(), 1, "{kind}");
        assert_eq!(versions[0]["name"], "v1");
        assert_eq!(versions[0]["served"], true);
        assert_eq!(versions[0]["storage"], true);
        if let Some(columns) = versions[0]["additionalPrinterColumns"].as_array() {
            assert_eq!(
                columns.last().map(|c| &c["name"]),
                Some(&Value::from("Age"))
            );
        }
    }
    assert_eq!(
        crd(Kind::VirtualService)["spec"]["names"]["shortNames"][0],
        "vs"
    );
    assert_eq!(
        crd(Kind::DestinationRule)["spec"]["names"]["shortNames"][0],
        "dr"
    );
}

/// Shows the rewrites in normalize.rs are needed: kube's schema alone breaks the rules,
/// and the checker sees it.
#[test]
fn kubes_derived_schema_needs_the_rewrites() {
    let raw = serde_json::to_value((kinds::info(Kind::VirtualService).crd)()).expect("json");
    let schema = &raw["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let rules: Vec<_> = codegen::structural::check(schema)
        .iter()
        .map(ToString::to_string)
        .collect();
    for expected in ["format `uint32`", "`default`", "enum value null"] {
        assert!(
            rules.iter().any(|r| r.contains(expected)),
            "expected {expected:?} among {rules:#?}"
        );
    }
}

#[test]
fn crd_yaml_reads_back_as_the_same_crd() {
    for file in generated().iter().filter(|f| f.path.starts_with(CRD_DIR)) {
        assert!(
            file.contents.starts_with(codegen::HEADER),
            "{}",
            file.path.display()
        );
        let read: serde_yaml::Value = serde_yaml::from_str(&file.contents).expect("yaml");
        let read = support::yaml_to_json(read);
        let kind = read["spec"]["names"]["kind"]
            .as_str()
            .and_then(Kind::from_name);
        let kind = kind.unwrap_or_else(|| panic!("{} names no kind", file.path.display()));
        assert_eq!(read, crd(kind), "{}", file.path.display());
    }
}

/// The docs walk schemars' schema and the CRD is kube's: both must see the same fields,
/// and every `Unsupported` field must be one the API server lets through untyped.
#[test]
fn docs_and_crds_list_the_same_fields() {
    for kind in Kind::ALL {
        let info = kinds::info(kind);
        let documented = fields::collect(kind, &(info.spec_schema)()).expect("fields");
        let mut typed = BTreeSet::new();
        let mut untyped = BTreeSet::new();
        crd_paths(spec_schema(&crd(kind)), "spec", &mut typed, &mut untyped);
        let doc_fields: BTreeSet<_> = documented.fields.iter().map(|f| f.path.clone()).collect();
        let doc_unsupported: BTreeSet<_> = documented.unsupported.iter().cloned().collect();
        assert_eq!(doc_fields, typed, "{kind}: documented fields vs CRD");
        assert_eq!(
            doc_unsupported, untyped,
            "{kind}: unsupported fields vs CRD"
        );
    }
}

fn crd_paths(
    node: &Value,
    path: &str,
    typed: &mut BTreeSet<String>,
    untyped: &mut BTreeSet<String>,
) {
    for (name, child) in node["properties"].as_object().into_iter().flatten() {
        let child_path = format!("{path}.{name}");
        if child.get("type").is_none() {
            assert_eq!(
                child["x-kubernetes-preserve-unknown-fields"], true,
                "{child_path}"
            );
            untyped.insert(child_path);
            continue;
        }
        typed.insert(child_path.clone());
        crd_paths(child, &child_path, typed, untyped);
    }
    if let Some(items) = node.get("items") {
        crd_paths(items, &format!("{path}[]"), typed, untyped);
    }
    if let Some(values) = node.get("additionalProperties") {
        crd_paths(values, &format!("{path}.<key>"), typed, untyped);
    }
}

#[test]
fn istio_samples_fit_the_crds() {
    let text = include_str!("fixtures/istio-samples.yaml");
    let set = mesh_core::load::load_str(text, "istio-samples.yaml");
    assert!(
        set.diagnostics.is_empty(),
        "mesh must accept the samples: {:#?}",
        set.diagnostics
    );
    let checked = check_documents(text, "istio-samples.yaml");
    assert!(checked >= 10, "only {checked} objects checked");
}

#[test]
fn the_examples_fit_the_crds() {
    let dir = xtask::workspace_root().join("examples/config");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    let mut checked = 0;
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read example");
        checked += check_documents(&text, &path.display().to_string());
    }
    assert!(checked > 0, "no examples found in {}", dir.display());
}

/// Validates the spec of every mesh object in a multi-document YAML text against its
/// CRD; returns how many objects were checked.
fn check_documents(text: &str, file: &str) -> usize {
    let mut checked = 0;
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(document).expect("yaml");
        let value = support::yaml_to_json(value);
        let (Some(api_version), Some(kind)) =
            (value["apiVersion"].as_str(), value["kind"].as_str())
        else {
            continue;
        };
        let TypeMatch::Ours(kind) = classify(api_version, kind) else {
            continue;
        };
        let crd = crd(kind);
        let errors = support::validate(spec_schema(&crd), &value["spec"], "spec");
        assert!(
            errors.is_empty(),
            "{file} document {index} ({kind}): {errors:#?}"
        );
        checked += 1;
    }
    checked
}
