//! The rules themselves: a pure function of the flags, so that `--dry-run`, the tests and
//! the real run all see the same text.
//!
//! Everything lives in chains of our own in the `nat` table, reached by one jump each from
//! `PREROUTING` (inbound) and `OUTPUT` (outbound). `iptables-restore --noflush` flushes a
//! chain it declares, so applying twice rewrites our chains and leaves everyone else's
//! alone; the jumps are added only when `-C` does not find them.

use std::fmt::Write;

use super::{Cidr, Family, Rules, Selection};

pub const INBOUND: &str = "MESH_INBOUND";
pub const IN_REDIRECT: &str = "MESH_IN_REDIRECT";
pub const OUTPUT: &str = "MESH_OUTPUT";
pub const REDIRECT: &str = "MESH_REDIRECT";

/// Our chains, in the order `--cleanup` deletes them (the ones jumped to last).
pub const CHAINS: [&str; 4] = [INBOUND, OUTPUT, IN_REDIRECT, REDIRECT];

/// A jump from a built-in chain into ours: `(built-in, rule arguments)`.
pub type Jump = (&'static str, Vec<String>);

/// The jumps `apply` ensures and `cleanup` removes.
pub fn jumps() -> Vec<Jump> {
    vec![
        ("PREROUTING", args(&["-p", "tcp", "-j", INBOUND])),
        ("OUTPUT", args(&["-p", "tcp", "-j", OUTPUT])),
    ]
}

/// The `iptables-restore --noflush` input for one address family.
pub fn restore_input(rules: &Rules, family: Family) -> String {
    let mut text = String::from("*nat\n");
    for chain in [INBOUND, IN_REDIRECT, OUTPUT, REDIRECT] {
        let _ = writeln!(text, ":{chain} - [0:0]");
    }
    for rule in inbound(rules) {
        let _ = writeln!(text, "-A {INBOUND} {rule}");
    }
    let _ = writeln!(
        text,
        "-A {IN_REDIRECT} -p tcp -j REDIRECT --to-ports {}",
        rules.inbound_port
    );
    for rule in outbound(rules, family) {
        let _ = writeln!(text, "-A {OUTPUT} {rule}");
    }
    let _ = writeln!(
        text,
        "-A {REDIRECT} -p tcp -j REDIRECT --to-ports {}",
        rules.outbound_port
    );
    text.push_str("COMMIT\n");
    text
}

/// Inbound: the proxy's own ports and the excluded ones return, the rest is redirected
/// (only the included ports, when a list is given).
fn inbound(rules: &Rules) -> Vec<String> {
    let mut lines: Vec<String> = rules
        .inbound_exclusions()
        .into_iter()
        .map(|port| format!("-p tcp --dport {port} -j RETURN"))
        .collect();
    match &rules.include_inbound_ports {
        Selection::All => lines.push(format!("-p tcp -j {IN_REDIRECT}")),
        Selection::Only(ports) => lines.extend(
            ports
                .iter()
                .map(|port| format!("-p tcp --dport {port} -j {IN_REDIRECT}")),
        ),
    }
    lines
}

/// Outbound: the proxy's own traffic (by uid), loopback, the excluded ports and CIDRs
/// return; the rest (or only the included CIDRs) is redirected.
fn outbound(rules: &Rules, family: Family) -> Vec<String> {
    let mut lines = vec![
        format!("-m owner --uid-owner {} -j RETURN", rules.proxy_uid),
        format!("-d {} -j RETURN", family.loopback()),
        "-o lo -j RETURN".to_owned(),
    ];
    lines.extend(
        rules
            .exclude_outbound_ports
            .iter()
            .map(|port| format!("-p tcp --dport {port} -j RETURN")),
    );
    lines.extend(
        of_family(&rules.exclude_outbound_cidrs, family).map(|cidr| format!("-d {cidr} -j RETURN")),
    );
    match &rules.include_outbound_cidrs {
        Selection::All => lines.push(format!("-j {REDIRECT}")),
        Selection::Only(cidrs) => {
            lines.extend(of_family(cidrs, family).map(|cidr| format!("-d {cidr} -j {REDIRECT}")))
        }
    }
    lines
}

fn of_family(cidrs: &[Cidr], family: Family) -> impl Iterator<Item = &Cidr> {
    cidrs.iter().filter(move |c| c.family() == family)
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
