//! `meshctl analyze`: load config, validate it, report every problem, as `istioctl
//! analyze` does. With no `-f` it reads the live cluster ([`cluster`]): the config objects
//! of mesh's and Istio's groups, the Services, and the Namespaces and Pods the injection
//! check ([`injection`]) needs, in the kubeconfig context's namespace, `-n NAMESPACE` or
//! `-A`. `-f FILE` analyzes files, together with the cluster's objects when a kubeconfig
//! is there (a file's object stands in for the cluster's of the same kind and name, as if
//! applied), or alone with `--use-kube=false`.

pub mod cluster;
pub mod injection;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mesh_core::diagnostic::{Diagnostic, Origin, Severity};
use mesh_core::load::{ConfigSet, load_paths};
use mesh_core::validate::validate;
use serde::Serialize;

use super::CommandError;
use crate::Status;
use cluster::{ClusterError, ClusterObjects};

#[derive(Debug, Args)]
#[command(after_help = "\
What is analyzed: with no -f, the cluster the kubeconfig names (KUBECONFIG, ~/.kube/config \
or in a pod), in the context's namespace, -n NAMESPACE or -A; with -f, the files, together \
with the cluster's objects when a kubeconfig is there (--use-kube=false: the files alone). \
Objects of every namespace are read, so references across namespaces resolve; problems are \
reported for the namespace analyzed and for every file object.

Exit status: 0 when no errors are found (warnings allowed), 1 when there are errors, 2 when \
the analysis could not run (no cluster reachable, usage errors).")]
pub struct AnalyzeArgs {
    /// A config file or a directory of them (YAML or JSON, read recursively); repeat for more
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The namespace to analyze [default: the kubeconfig context's, else `default`]
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Analyze every namespace
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Read the cluster's objects too [default: without -f, or when a kubeconfig is there]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub use_kube: Option<bool>,

    /// How to print the result
    #[arg(short, long, value_enum, default_value_t = Output::Text, env = "MESHCTL_OUTPUT")]
    pub output: Output,

    /// Istio's MeshConfig YAML (pilot's --mesh-config): Telemetry providers are checked
    /// against its extensionProviders
    #[arg(long, value_name = "FILE")]
    pub mesh_config: Option<PathBuf>,
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
    /// What was read from the cluster, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterScope>,
}

/// The cluster part of an analysis.
#[derive(Debug, Serialize)]
pub struct ClusterScope {
    /// The namespace analyzed; `null` for every namespace.
    pub namespace: Option<String>,
    /// Config objects read from the cluster (every namespace) and pods checked.
    pub objects: usize,
    pub pods: usize,
    /// `group/version/plural` of each config kind read.
    pub resources: Vec<String>,
}

impl Analysis {
    pub fn of(set: &ConfigSet) -> Self {
        let mut diagnostics = set.diagnostics.clone();
        diagnostics.extend(validate(set));
        Self::summarize(set, diagnostics)
    }

    /// Files (maybe none) with the cluster's objects: a file's object replaces the
    /// cluster's of the same kind, namespace and name. Problems are kept for file objects
    /// and for the cluster's objects in `namespace` (all when `None`).
    pub fn with_cluster(
        files: ConfigSet,
        cluster: ClusterObjects,
        namespace: Option<&str>,
    ) -> Self {
        let key = |o: &Origin| (o.kind.clone(), o.namespace.clone(), o.name.clone());
        let from_files: BTreeSet<_> = files
            .objects
            .iter()
            .map(|o| key(&o.origin))
            .chain(files.skipped.iter().map(|s| key(&s.origin)))
            .collect();
        let cluster_objects = cluster.set.objects.len();
        let mut set = cluster.set;
        set.objects
            .retain(|o| !from_files.contains(&key(&o.origin)));
        set.skipped
            .retain(|s| !from_files.contains(&key(&s.origin)));
        set.diagnostics
            .retain(|d| !from_files.contains(&key(&d.origin)));
        set.extend(files);
        let labels = cluster::namespace_labels(&cluster.namespaces);
        let mut diagnostics = set.diagnostics.clone();
        diagnostics.extend(validate(&set));
        diagnostics.extend(injection::check(&cluster.pods, &labels));
        diagnostics.extend(injection::check_namespaces(&labels));
        // A Namespace is in scope as the namespace it is.
        let in_scope = |d: &Diagnostic| {
            let origin = &d.origin;
            let own = |ns: &str| {
                origin.namespace == ns || (origin.kind == "Namespace" && origin.name == ns)
            };
            !origin.file.is_empty() || namespace.is_none_or(own)
        };
        diagnostics.retain(in_scope);
        let mut analysis = Self::summarize(&set, diagnostics);
        analysis.cluster = Some(ClusterScope {
            namespace: namespace.map(str::to_owned),
            objects: cluster_objects,
            pods: cluster.pods.len(),
            resources: cluster.resources,
        });
        analysis
    }

    fn summarize(set: &ConfigSet, diagnostics: Vec<Diagnostic>) -> Self {
        let files: BTreeSet<&str> = set
            .objects
            .iter()
            .map(|o| &o.origin)
            .chain(set.skipped.iter().map(|s| &s.origin))
            .chain(set.diagnostics.iter().map(|d| &d.origin))
            .map(|origin| origin.file.as_str())
            .filter(|file| !file.is_empty())
            .collect();
        let mut analysis = Self {
            objects: set.objects.len(),
            files: files.len(),
            errors: 0,
            warnings: 0,
            diagnostics,
            cluster: None,
        };
        analysis.sort_and_count();
        analysis
    }

    /// More problems, found outside [`validate`] (the mesh config's providers).
    fn add(&mut self, more: Vec<Diagnostic>) {
        if more.is_empty() {
            return;
        }
        self.diagnostics.extend(more);
        self.sort_and_count();
    }

    /// Files by document; the cluster's objects (no file, no index) by namespace, name and
    /// kind; then by field. The counts follow the diagnostics.
    fn sort_and_count(&mut self) {
        self.diagnostics.sort_by_key(|d| {
            let o = &d.origin;
            let object = (o.namespace.clone(), o.name.clone(), o.kind.clone());
            (o.file.clone(), o.index, object, d.field.clone())
        });
        let count = |severity| {
            self.diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        self.errors = count(Severity::Error);
        self.warnings = count(Severity::Warning);
    }

    pub fn status(&self) -> Status {
        if self.errors > 0 || (self.files == 0 && self.cluster.is_none()) {
            Status::Failed
        } else {
            Status::Success
        }
    }
}

pub fn run(args: &AnalyzeArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let files = load_paths(&args.paths);
    let provider_problems = args
        .mesh_config
        .as_deref()
        .map(|path| mesh_config_problems(path, &files))
        .unwrap_or_default();
    let use_cluster = args.use_kube.unwrap_or_else(|| {
        args.paths.is_empty() || crate::cmd::proxy_config::kubernetes::kubeconfig_available()
    });
    let analysis = if use_cluster {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CommandError::Write)?;
        runtime.block_on(async {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| ClusterError::NoCluster(e.to_string()))?;
            let namespace = match (&args.namespace, args.all_namespaces) {
                (_, true) => None,
                (Some(namespace), false) => Some(namespace.clone()),
                (None, false) => Some(client.default_namespace().to_owned()),
            };
            let cluster = cluster::read(&client, namespace.as_deref()).await?;
            Ok::<_, ClusterError>(Analysis::with_cluster(files, cluster, namespace.as_deref()))
        })?
    } else if args.paths.is_empty() {
        return Err(ClusterError::NothingToAnalyze.into());
    } else {
        Analysis::of(&files)
    };
    let mut analysis = analysis;
    analysis.add(provider_problems);
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
    let in_files = format!(
        "{} in {}",
        plural(analysis.objects, "object"),
        plural(analysis.files, "file")
    );
    // istioctl's words: "when analyzing namespace: default".
    let scope = match &analysis.cluster {
        None => in_files,
        Some(cluster) => {
            let namespace = match &cluster.namespace {
                Some(namespace) => format!("namespace: {namespace}"),
                None => "all namespaces".to_owned(),
            };
            let files = if paths.is_empty() {
                String::new()
            } else {
                format!(" and {}", plural(analysis.files, "file"))
            };
            format!(
                "{namespace}{files} ({} from the cluster, {})",
                plural(cluster.objects, "config object"),
                plural(cluster.pods, "pod")
            )
        }
    };
    if analysis.files == 0 && analysis.cluster.is_none() {
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

/// The Telemetry objects of `files` checked against the providers of the mesh config at
/// `path`; a mesh config that cannot be read or parsed is itself the one problem.
fn mesh_config_problems(path: &std::path::Path, files: &ConfigSet) -> Vec<Diagnostic> {
    let origin = Origin {
        file: path.display().to_string(),
        ..Origin::default()
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            return vec![Diagnostic::error(
                &origin,
                "",
                format!("cannot read: {err}"),
            )];
        }
    };
    match mesh_core::config::MeshConfig::parse(&text, &origin.file) {
        Ok(mesh) => files
            .objects
            .iter()
            .flat_map(|o| mesh_core::validate::check_telemetry_providers(o, &mesh))
            .collect(),
        Err(mesh_core::config::MeshConfigError::Invalid { field, message, .. }) => {
            vec![Diagnostic::error(&origin, field, message)]
        }
    }
}
