//! `meshctl analyze` as users run it: the real binary on real files, checking exit codes
//! and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MESHCTL: &str = env!("CARGO_BIN_EXE_meshctl");

/// No cluster: `-f` analyzes the files alone (analyze_cluster.rs has the cluster).
fn no_cluster(command: &mut Command) -> &mut Command {
    command
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
}

fn meshctl(args: &[&str]) -> Output {
    no_cluster(Command::new(MESHCTL).args(args))
        .env_remove("MESHCTL_OUTPUT")
        .output()
        .expect("run meshctl")
}

fn analyze(paths: &[&Path]) -> Output {
    let mut args = vec!["analyze"];
    for path in paths {
        args.push("-f");
        args.push(path.to_str().expect("UTF-8 path"));
    }
    meshctl(&args)
}

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The YAML and JSON files directly in `dir`, sorted; panics if there are none.
fn config_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("read {}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no config files in {}", dir.display());
    files
}

/// A temporary directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("meshctl-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// What a fixture's first line says it must report: `# expect: <text>` (an error, exit 1)
/// or `# expect-warning: <text>` (a warning, exit 0).
struct Expectation {
    prefix: &'static str,
    text: String,
    exit_code: i32,
}

fn expectation(path: &Path) -> Result<Expectation, String> {
    let text = std::fs::read_to_string(path).map_err(|err| err.to_string())?;
    let first = text.lines().next().unwrap_or_default();
    if let Some(expected) = first.strip_prefix("# expect: ") {
        return Ok(Expectation {
            prefix: "error: ",
            text: expected.to_owned(),
            exit_code: 1,
        });
    }
    if let Some(expected) = first.strip_prefix("# expect-warning: ") {
        return Ok(Expectation {
            prefix: "warning: ",
            text: expected.to_owned(),
            exit_code: 0,
        });
    }
    Err("the first line must be `# expect: ...` or `# expect-warning: ...`".into())
}

/// Checks one fixture: its exit code, and that its only diagnostic is the expected one.
fn check_fixture(path: &Path) -> Result<(), String> {
    let expected = expectation(path)?;
    let output = analyze(&[path]);
    let printed = stdout(&output);
    let diagnostics: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("warning: "))
        .collect();
    let problem = if output.status.code() != Some(expected.exit_code) {
        format!(
            "exit code {:?}, expected {}",
            output.status.code(),
            expected.exit_code
        )
    } else if diagnostics.len() != 1 {
        format!("{} diagnostics, expected exactly 1", diagnostics.len())
    } else if !(diagnostics[0].starts_with(expected.prefix)
        && diagnostics[0].contains(&expected.text))
    {
        format!(
            "expected a line starting {:?} containing {:?}",
            expected.prefix, expected.text
        )
    } else {
        return Ok(());
    };
    Err(format!(
        "{problem}; output:\n{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[test]
fn every_broken_fixture_reports_exactly_its_problem() {
    let files = config_files(&fixtures("broken"));
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            check_fixture(file)
                .err()
                .map(|why| format!("{}: {why}", file.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_example_passes_on_its_own() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config"));
    let files = config_files(&dir);
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let output = analyze(&[file]);
            (output.status.code() != Some(0))
                .then(|| format!("{}:\n{}", file.display(), stdout(&output)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "examples that fail analyze:\n\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_clean_file_prints_only_the_summary() {
    let output = analyze(&[&fixtures("valid").join("reviews.yaml")]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "✔ No validation issues found when analyzing 2 objects in 1 file\n"
    );
}

#[test]
fn warnings_are_printed_above_a_passing_summary() {
    let output = analyze(&[&fixtures("broken").join("dr-pool-zero.yaml")]);
    assert_eq!(output.status.code(), Some(0));
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(lines[0].starts_with("warning: "), "{printed}");
    assert_eq!(
        lines[1],
        "✔ No validation issues found when analyzing 1 object in 1 file (1 warning)"
    );
}

#[test]
fn errors_fail_with_a_summary() {
    let broken = fixtures("broken").join("vs-weights-total.yaml");
    let output = analyze(&[&broken]);
    assert_eq!(output.status.code(), Some(1));
    let printed = stdout(&output);
    let expected = format!(
        "error: {}[2] VirtualService default/reviews: spec.http[0].route: total destination weight 120 != 100; \
         make the weights add up to 100, or remove them all to split evenly\n\
         ✘ 1 error and 0 warnings found when analyzing 2 objects in 1 file\n",
        broken.display()
    );
    assert_eq!(printed, expected);
}

#[test]
fn directories_and_repeated_flags_are_all_read_and_output_is_sorted() {
    let dir = TempDir::new("sorted");
    let broken = fixtures("broken");
    for name in ["se-static-empty.yaml", "gw-no-servers.yaml"] {
        std::fs::copy(broken.join(name), dir.0.join(name)).expect("copy fixture");
    }
    let output = analyze(&[&dir.0, &fixtures("valid")]);
    assert_eq!(output.status.code(), Some(1));
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 3, "{printed}");
    assert!(
        lines[0].contains("gw-no-servers.yaml[0]"),
        "sorted by file: {printed}"
    );
    assert!(
        lines[1].contains("se-static-empty.yaml[0]"),
        "sorted by file: {printed}"
    );
    assert!(
        lines[2].ends_with("analyzing 4 objects in 3 files"),
        "{printed}"
    );
}

#[test]
fn diagnostics_of_one_object_are_sorted_by_field() {
    let dir = TempDir::new("fields");
    let file = dir.0.join("vs.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  \
         http:\n  - route: [{destination: {host: r}}]\n    timeout: -1s\n    fault: {}\n",
    )
    .expect("write");
    let output = analyze(&[&file]);
    let printed = stdout(&output);
    let fields: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.split(": ").nth(2))
        .collect();
    assert_eq!(
        fields,
        [
            "spec.http[0].fault",
            "spec.http[0].route[0].destination.host",
            "spec.http[0].timeout"
        ],
        "{printed}"
    );
}

#[test]
fn json_output_has_counts_and_diagnostics() {
    let broken = fixtures("broken").join("vs-weights-total.yaml");
    let output = meshctl(&[
        "analyze",
        "-f",
        broken.to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(report["errors"], 1);
    assert_eq!(report["warnings"], 0);
    assert_eq!(report["objects"], 2);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["severity"], "error");
    assert_eq!(diagnostic["field"], "spec.http[0].route");
    assert_eq!(diagnostic["origin"]["kind"], "VirtualService");
    assert_eq!(diagnostic["origin"]["index"], 2);
}

#[test]
fn the_output_format_falls_back_to_the_environment() {
    let valid = fixtures("valid").join("reviews.yaml");
    let output =
        no_cluster(Command::new(MESHCTL).args(["analyze", "-f", valid.to_str().expect("path")]))
            .env("MESHCTL_OUTPUT", "json")
            .output()
            .expect("run meshctl");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(report["errors"], 0);
}

#[test]
fn a_missing_path_is_an_error() {
    let output = analyze(&[Path::new("/nonexistent/mesh-config")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("error: /nonexistent/mesh-config: cannot read"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_directory_without_config_fails() {
    let dir = TempDir::new("empty");
    let output = analyze(&[&dir.0]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("✘ No config files found in"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn help_lists_analyze_and_usage_errors_exit_2() {
    let help = meshctl(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("analyze"), "{}", stdout(&help));
    // Without -f the cluster is analyzed; there is none here.
    let cluster = meshctl(&["analyze"]);
    assert_eq!(cluster.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&cluster.stderr);
    assert!(
        stderr.starts_with("error: no cluster reachable:"),
        "{stderr}"
    );
    assert_eq!(
        meshctl(&["analyze", "--use-kube=false"]).status.code(),
        Some(2),
        "nothing to analyze"
    );
    assert_eq!(meshctl(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn mesh_config_checks_the_telemetry_providers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mesh = dir.path().join("mesh.yaml");
    std::fs::write(
        &mesh,
        "extensionProviders:\n- name: otel\n  opentelemetry: {service: collector, port: 4317}\n",
    )
    .expect("write");
    let config = dir.path().join("telemetry.yaml");
    std::fs::write(
        &config,
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: shop}\nspec:\n  tracing: [{providers: [{name: zipkin}]}]\n  accessLogging: [{providers: [{name: envoy}]}]\n",
    )
    .expect("write");
    let config_arg = config.to_str().expect("UTF-8");
    let output = meshctl(&["analyze", "-f", config_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let with_mesh_config = || {
        meshctl(&[
            "analyze",
            "-f",
            config_arg,
            "--mesh-config",
            mesh.to_str().expect("UTF-8"),
        ])
    };
    let output = with_mesh_config();
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(
            "Telemetry shop/t: spec.tracing[0].providers[0].name: no provider named \"zipkin\""
        ),
        "{printed}"
    );
    assert!(
        !printed.contains("envoy"),
        "the built-in envoy is known: {printed}"
    );

    std::fs::write(&mesh, "extensionProviders:\n- name: x\n").expect("write");
    let output = with_mesh_config();
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("extensionProviders[0]"), "{printed}");
}
