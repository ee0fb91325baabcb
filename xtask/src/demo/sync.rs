//! Changing the running mesh's config the way a user does, by editing files in the
//! directory pilot watches, and knowing when every proxy runs the change: pilot's
//! `/debug/config_status` gives its generation, `/debug/syncz` each proxy's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::client::Http;

/// How long a change may take to reach every proxy before the demo gives up.
const SYNC_DEADLINE: Duration = Duration::from_secs(20);

pub struct Pilot {
    pub monitoring: SocketAddr,
    pub http: Http,
}

impl Pilot {
    async fn json(&self, path: &str) -> anyhow::Result<Value> {
        let answer = self.http.get(self.monitoring, "pilot", path, &[]).await?;
        answer
            .json
            .with_context(|| format!("pilot {path}: not JSON: {}", answer.text))
    }

    /// pilot's current config generation.
    pub async fn generation(&self) -> anyhow::Result<u64> {
        let status = self.json("/debug/config_status").await?;
        status["generation"]
            .as_u64()
            .context("pilot /debug/config_status has no generation")
    }

    /// Config errors pilot reports, one line each.
    pub async fn errors(&self) -> anyhow::Result<Vec<String>> {
        let status = self.json("/debug/config_status").await?;
        Ok(status["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["severity"] == "error")
            .map(|p| {
                format!(
                    "{} {}: {}",
                    p["origin"],
                    p["field"].as_str().unwrap_or_default(),
                    p["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Waits until pilot has built a generation after `after` and all `proxies` run it
    /// (acknowledged, or nothing changed for them); a NACK fails with its message.
    pub async fn wait_synced(&self, after: u64, proxies: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let syncz = self.json("/debug/syncz").await?;
            let entries = syncz.as_array().cloned().unwrap_or_default();
            if let Some(nacked) = entries
                .iter()
                .find(|e| e["lastNack"].is_object() && e["lastNack"]["version"] == e["versionSent"])
            {
                bail!(
                    "proxy {} refused the config: {}",
                    nacked["id"],
                    nacked["lastNack"]["message"]
                );
            }
            let synced = entries
                .iter()
                .filter(|e| {
                    e["generation"].as_u64().is_some_and(|g| g > after)
                        && !e["versionAcked"].is_null()
                        && e["versionAcked"] == e["versionSent"]
                })
                .count();
            if synced >= proxies {
                return Ok(started.elapsed());
            }
            if started.elapsed() > SYNC_DEADLINE {
                bail!(
                    "after {SYNC_DEADLINE:?} only {synced} of {proxies} proxies run pilot's generation after {after}: {syncz:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Files the demo wrote into the config directory, with what they held before, so every
/// step can be undone and the directory left as the user gave it.
#[derive(Default)]
pub struct Edits {
    dir: PathBuf,
    /// File name to its content before the demo touched it (`None`: it did not exist).
    originals: BTreeMap<String, Option<String>>,
}

impl Edits {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            originals: BTreeMap::new(),
        }
    }

    /// Writes `content` to `name` (atomically: written aside, then renamed, so pilot never
    /// reads half a file).
    pub fn write(&mut self, name: &str, content: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        if !self.originals.contains_key(name) {
            let before = std::fs::read_to_string(&path).ok();
            self.originals.insert(name.to_owned(), before);
        }
        write_atomically(&path, content)
    }

    /// Puts back every file as it was; true if anything changed.
    pub fn restore(&mut self) -> anyhow::Result<bool> {
        let changed = !self.originals.is_empty();
        for (name, original) in std::mem::take(&mut self.originals) {
            let path = self.dir.join(&name);
            match original {
                Some(content) => write_atomically(&path, &content)?,
                None => std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?,
            }
        }
        Ok(changed)
    }
}

fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let aside = path.with_extension("yaml.tmp");
    std::fs::write(&aside, content).with_context(|| format!("writing {}", aside.display()))?;
    std::fs::rename(&aside, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_undone_file_by_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("base.yaml"), "base")?;
        let mut edits = Edits::new(dir.path());
        edits.write("base.yaml", "changed")?;
        edits.write("base.yaml", "changed twice")?;
        edits.write("step.yaml", "new")?;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("base.yaml"))?,
            "changed twice"
        );
        assert!(edits.restore()?);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("base.yaml"))?,
            "base"
        );
        assert!(!dir.path().join("step.yaml").exists());
        assert!(!edits.restore()?, "nothing left to undo");
        Ok(())
    }
}
