//! Applying and removing the rules: `iptables-restore --noflush` for our chains, then the
//! jumps into them, each added only when `-C` does not find it. Commands run through
//! [`Runner`], so the sequence is tested without touching the host.

use std::io::Write;
use std::process::{Command, Stdio};

use super::rules::{self, CHAINS};
use super::{Family, Rules};

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error(
        "{0} not found: install iptables (Debian: apt-get install iptables) and run as root in the pod's network namespace"
    )]
    Missing(String),
    #[error("{command} failed: {message} (is this root, with CAP_NET_ADMIN?)")]
    Failed { command: String, message: String },
}

/// What a command said: whether it succeeded, and its stderr.
pub struct Outcome {
    pub success: bool,
    pub stderr: String,
}

/// Runs `program args...` with `stdin`.
pub trait Runner {
    fn run(&self, program: &str, args: &[String], stdin: &str) -> Result<Outcome, IptablesError>;
}

/// The host's commands.
pub struct System;

impl Runner for System {
    fn run(&self, program: &str, args: &[String], stdin: &str) -> Result<Outcome, IptablesError> {
        let spawned = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IptablesError::Missing(program.to_owned()));
            }
            Err(e) => return Err(failed(program, args, &e.to_string())),
        };
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.as_bytes())
                .map_err(|e| failed(program, args, &e.to_string()))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| failed(program, args, &e.to_string()))?;
        Ok(Outcome {
            success: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Programs our chains for every family, then makes sure the jumps exist once.
pub fn apply(runner: &dyn Runner, rules: &Rules) -> Result<(), IptablesError> {
    for family in rules.families() {
        let (restore, iptables) = family.commands();
        let input = rules::restore_input(rules, family);
        must(runner, restore, &words(&["--noflush"]), &input)?;
        for (chain, rule) in rules::jumps() {
            let check = edit("-C", chain, &rule);
            if !runner.run(iptables, &check, "")?.success {
                must(runner, iptables, &edit("-A", chain, &rule), "")?;
            }
        }
    }
    Ok(())
}

/// Removes our jumps (every copy) and chains; what is already gone is not an error.
pub fn cleanup(runner: &dyn Runner, families: &[Family]) -> Result<(), IptablesError> {
    for family in families {
        let (_, iptables) = family.commands();
        for (chain, rule) in rules::jumps() {
            // Bounded: a rule that cannot be deleted must not loop forever.
            for _ in 0..16 {
                if !runner.run(iptables, &edit("-D", chain, &rule), "")?.success {
                    break;
                }
            }
        }
        for chain in CHAINS {
            runner.run(iptables, &words(&["-t", "nat", "-F", chain]), "")?;
        }
        for chain in CHAINS {
            runner.run(iptables, &words(&["-t", "nat", "-X", chain]), "")?;
        }
    }
    Ok(())
}

/// What `--dry-run` prints: per family, the restore input and the jump commands.
pub fn describe(rules: &Rules) -> String {
    let mut text = String::new();
    for family in rules.families() {
        let (restore, iptables) = family.commands();
        text.push_str(&format!("# {restore} --noflush <<EOF\n"));
        text.push_str(&rules::restore_input(rules, family));
        text.push_str("# EOF\n");
        for (chain, rule) in rules::jumps() {
            let check = edit("-C", chain, &rule).join(" ");
            let add = edit("-A", chain, &rule).join(" ");
            text.push_str(&format!("# {iptables} {check} || {iptables} {add}\n"));
        }
    }
    text
}

fn must(
    runner: &dyn Runner,
    program: &str,
    args: &[String],
    stdin: &str,
) -> Result<(), IptablesError> {
    let outcome = runner.run(program, args, stdin)?;
    if outcome.success {
        Ok(())
    } else {
        Err(failed(program, args, &outcome.stderr))
    }
}

fn edit(action: &str, chain: &str, rule: &[String]) -> Vec<String> {
    let mut args = words(&["-t", "nat", action, chain]);
    args.extend(rule.iter().cloned());
    args
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn failed(program: &str, args: &[String], message: &str) -> IptablesError {
    IptablesError::Failed {
        command: format!("{program} {}", args.join(" ")),
        message: message.to_owned(),
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
