//! `meshctl apply -f FILE` and `meshctl delete -f FILE` against a running local mesh.
//!
//! `apply` checks the file as `meshctl analyze` does, and against the config the mesh
//! already runs (a route to a subset nobody defines, an object the config directory
//! already has); it refuses the whole file on any error, naming the file, document,
//! object and field. Otherwise each object goes into the mesh's applied directory as its
//! own file (`<kind>_<namespace>_<name>.yaml`, written aside and renamed), which pilot
//! watches: applying an object again replaces it, as `kubectl apply` does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_core::load::{ConfigSet, load_paths};
use mesh_core::validate::{validate_across, validate_object};
use serde::Deserialize;

use super::CommandError;
use super::local::StateArgs;
use crate::Status;
use crate::local::{LocalError, State};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A config file or a directory of them; repeat for more
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub state: StateArgs,
}

pub fn apply(args: &ApplyArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let state = running(&args.state)?;
    let new = load_paths(&args.paths);
    if new.objects.is_empty() && new.diagnostics.is_empty() {
        writeln!(out, "✘ no mesh config objects in {}", list(&args.paths))?;
        return Ok(Status::Failed);
    }
    let diagnostics = check(&new, &state);
    for diagnostic in &diagnostics {
        writeln!(out, "{diagnostic}")?;
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        writeln!(
            out,
            "✘ nothing applied: {errors} error{} in {}",
            if errors == 1 { "" } else { "s" },
            list(&args.paths)
        )?;
        return Ok(Status::Failed);
    }
    let mut texts = BTreeMap::new();
    for object in &new.objects {
        let origin = &object.origin;
        let target = state.applied_dir.join(file_name(origin));
        let existed = target.exists();
        let text = document(&mut texts, origin)?;
        write_atomically(&state.applied_dir, &target, &text)?;
        writeln!(
            out,
            "{} {}/{} {}",
            origin.kind,
            origin.namespace,
            origin.name,
            if existed { "configured" } else { "created" }
        )?;
    }
    writeln!(
        out,
        "pilot reloads {} within a few hundred milliseconds",
        state.applied_dir.display()
    )?;
    Ok(Status::Success)
}

pub fn delete(args: &ApplyArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let state = running(&args.state)?;
    let set = load_paths(&args.paths);
    let mut status = Status::Success;
    for diagnostic in set.diagnostics.iter().filter(|d| d.is_error()) {
        writeln!(out, "{diagnostic}")?;
        status = Status::Failed;
    }
    for object in &set.objects {
        let origin = &object.origin;
        let target = state.applied_dir.join(file_name(origin));
        let what = format!("{} {}/{}", origin.kind, origin.namespace, origin.name);
        match std::fs::remove_file(&target) {
            Ok(()) => writeln!(out, "{what} deleted")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                writeln!(out, "{what} was not applied (nothing to delete)")?;
                status = Status::Failed;
            }
            Err(source) => {
                return Err(LocalError::Io {
                    what: "cannot remove",
                    path: target,
                    source,
                }
                .into());
            }
        }
    }
    Ok(status)
}

fn running(args: &StateArgs) -> Result<State, LocalError> {
    let dir = args.dir()?;
    dir.read()?.ok_or(LocalError::NotRunning(dir.root))
}

/// Each new object's own problems, and the problems across the new objects and the ones
/// the mesh already runs that concern a new object. Existing objects the new ones replace
/// are left out of the check.
fn check(new: &ConfigSet, state: &State) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = new.diagnostics.clone();
    found.extend(new.objects.iter().flat_map(validate_object));
    let replaced: BTreeSet<String> = new
        .objects
        .iter()
        .map(|o| {
            state
                .applied_dir
                .join(file_name(&o.origin))
                .display()
                .to_string()
        })
        .collect();
    let mut combined = load_paths(&state.config_dirs);
    combined
        .objects
        .retain(|o| !replaced.contains(&o.origin.file));
    combined.extend(new.clone());
    let new_files: BTreeSet<&str> = new.objects.iter().map(|o| o.origin.file.as_str()).collect();
    found.extend(
        validate_across(&combined)
            .into_iter()
            .filter(|d| new_files.contains(d.origin.file.as_str())),
    );
    found.sort_by(|a, b| {
        let key = |d: &Diagnostic| (d.origin.file.clone(), d.origin.index, d.field.clone());
        key(a).cmp(&key(b))
    });
    found.dedup();
    found
}

/// `virtualservice_default_reviews.yaml`: kind, namespace and name never hold `_`.
fn file_name(origin: &Origin) -> String {
    format!(
        "{}_{}_{}.yaml",
        origin.kind.to_lowercase(),
        origin.namespace,
        origin.name
    )
}

/// The object's document as the user wrote it, with its namespace made explicit (the one
/// it was checked in).
fn document(texts: &mut BTreeMap<String, String>, origin: &Origin) -> Result<String, LocalError> {
    let file = &origin.file;
    if !texts.contains_key(file) {
        let text = std::fs::read_to_string(file).map_err(|source| LocalError::Io {
            what: "cannot read",
            path: file.into(),
            source,
        })?;
        texts.insert(file.clone(), text);
    }
    let text = texts.get(file).map(String::as_str).unwrap_or_default();
    let mut value = serde_yaml::Deserializer::from_str(text)
        .nth(origin.index.unwrap_or(0))
        .and_then(|document| serde_yaml::Value::deserialize(document).ok())
        .unwrap_or_default();
    let _ = value.apply_merge();
    if let Some(metadata) = value
        .get_mut("metadata")
        .and_then(serde_yaml::Value::as_mapping_mut)
    {
        metadata.insert("namespace".into(), origin.namespace.clone().into());
    }
    Ok(serde_yaml::to_string(&value).unwrap_or_default())
}

fn write_atomically(dir: &Path, target: &Path, text: &str) -> Result<(), LocalError> {
    let aside = dir.join(format!(
        ".{}.tmp",
        target.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&aside, text)
        .and_then(|()| std::fs::rename(&aside, target))
        .map_err(|source| LocalError::Io {
            what: "cannot write",
            path: target.to_path_buf(),
            source,
        })
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
