//! The programs a local mesh runs, found next to meshctl (a cargo build puts them all in
//! `target/debug`), else on PATH; `--bin-dir` names the one directory to use, and
//! `MESH_{PILOT,CITADEL,PROXY,ECHO}_BIN` name one program each.

use std::path::{Path, PathBuf};

/// Paths of the four programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub pilot: PathBuf,
    pub citadel: PathBuf,
    pub proxy: PathBuf,
    pub echo: PathBuf,
}

/// `(file name, cargo package, environment override)`.
const PROGRAMS: [(&str, &str, &str); 4] = [
    ("pilot", "mesh-pilot", "MESH_PILOT_BIN"),
    ("citadel", "mesh-citadel", "MESH_CITADEL_BIN"),
    ("mesh-proxy", "mesh-proxy", "MESH_PROXY_BIN"),
    ("mesh-echo", "mesh-echo", "MESH_ECHO_BIN"),
];

#[derive(Debug, thiserror::Error)]
#[error(
    "{program} not found {looked}; build it with `cargo build -p {package}` (all four: `cargo build -p mesh-pilot -p mesh-citadel -p mesh-proxy -p mesh-echo`), or give --bin-dir DIR or {env}"
)]
pub struct MissingBinary {
    pub program: String,
    pub package: String,
    pub env: String,
    pub looked: String,
}

impl Binaries {
    /// Finds every program: in `bin_dir` only when given, else beside the running
    /// executable, then on PATH.
    pub fn find(bin_dir: Option<&Path>) -> Result<Binaries, MissingBinary> {
        let dirs: Vec<PathBuf> = match bin_dir {
            Some(dir) => vec![dir.to_path_buf()],
            None => {
                let beside = std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(Path::to_path_buf));
                let path = std::env::var_os("PATH").unwrap_or_default();
                beside
                    .into_iter()
                    .chain(std::env::split_paths(&path))
                    .collect()
            }
        };
        let find = |(program, package, env): (&str, &str, &str)| {
            let set = std::env::var_os(env).filter(|v| !v.is_empty());
            let (chosen, looked) = match (&set, bin_dir) {
                (Some(set), _) => (
                    Some(PathBuf::from(set)).filter(|p| p.is_file()),
                    format!("at {} ({env})", Path::new(set).display()),
                ),
                (None, Some(dir)) => (
                    Some(dir.join(program)).filter(|p| p.is_file()),
                    format!("in {}", dir.display()),
                ),
                (None, None) => (
                    dirs.iter().map(|d| d.join(program)).find(|p| p.is_file()),
                    "next to meshctl or on PATH".to_owned(),
                ),
            };
            chosen.ok_or_else(|| MissingBinary {
                program: program.to_owned(),
                package: package.to_owned(),
                env: env.to_owned(),
                looked,
            })
        };
        let [pilot, citadel, proxy, echo] = PROGRAMS;
        Ok(Binaries {
            pilot: find(pilot)?,
            citadel: find(citadel)?,
            proxy: find(proxy)?,
            echo: find(echo)?,
        })
    }
}
