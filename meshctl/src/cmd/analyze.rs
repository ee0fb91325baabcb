//! `meshctl analyze -f <file-or-dir>...`: load config, validate it, report every problem.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mesh_core::diagnostic::{Diagnostic, Severity};
use mesh_core::load::{ConfigSet, load_paths};
use mesh_core::validate::validate;
use serde::Serialize;

use super::CommandError;
use crate::Status;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when no errors are found (warnings allowed), 1 when there are errors."
)]
pub struct AnalyzeArgs {
    /// A config file or a directory of them (YAML or JSON, read recursively); repeat for more
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// How to print the result
    #[arg(short, long, value_enum, default_value_t = Output::Text, env = "MESHCTL_OUTPUT")]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per problem, then a summary
    #[default]
    Text,
    /// A JSON document with the counts and every diagnostic
    Json,
}

/// What analyzing a set of paths found.
#[derive(Debug, Serialize)]
pub struct Analysis {
    /// Config objects mesh understands (foreign ones such as Deployments are not counted).
    pub objects: usize,
    /// Files that held at least one document.
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Loading and validation problems, by file, document, then field.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn of(set: &ConfigSet) -> Self {
        let mut diagnostics = set.diagnostics.clone();
        diagnostics.extend(validate(set));
        diagnostics.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.origin.file.clone(), d.origin.index, d.field.clone());
            key(a).cmp(&key(b))
        });
        let files: BTreeSet<&str> = set
            .objects
            .iter()
            .map(|o| &o.origin)
            .chain(set.skipped.iter().map(|s| &s.origin))
            .chain(set.diagnostics.iter().map(|d| &d.origin))
            .map(|origin| origin.file.as_str())
            .collect();
        let count = |severity| {
            diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        Self {
            objects: set.objects.len(),
            files: files.len(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            diagnostics,
        }
    }

    pub fn status(&self) -> Status {
        if self.errors > 0 || self.files == 0 {
            Status::Failed
        } else {
            Status::Success
        }
    }
}

pub fn run(args: &AnalyzeArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let analysis = Analysis::of(&load_paths(&args.paths));
    match args.output {
        Output::Text => write_text(&analysis, &args.paths, out)?,
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &analysis)?;
            writeln!(out)?;
        }
    }
    Ok(analysis.status())
}

fn write_text(analysis: &Analysis, paths: &[PathBuf], out: &mut impl Write) -> std::io::Result<()> {
    for diagnostic in &analysis.diagnostics {
        writeln!(out, "{diagnostic}")?;
    }
    let scope = format!(
        "{} in {}",
        plural(analysis.objects, "object"),
        plural(analysis.files, "file")
    );
    if analysis.files == 0 {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        writeln!(out, "✘ No config files found in {}", paths.join(", "))
    } else if analysis.errors > 0 {
        writeln!(
            out,
            "✘ {} and {} found when analyzing {scope}",
            plural(analysis.errors, "error"),
            plural(analysis.warnings, "warning")
        )
    } else if analysis.warnings > 0 {
        writeln!(
            out,
            "✔ No validation issues found when analyzing {scope} ({})",
            plural(analysis.warnings, "warning")
        )
    } else {
        writeln!(out, "✔ No validation issues found when analyzing {scope}")
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
