use std::cell::RefCell;
use std::collections::HashSet;

use clap::Parser;

use super::*;

/// Records every command and keeps the jumps as a set: `-C` finds them, `-A` adds, `-D`
/// succeeds while one is there; a restore succeeds with input, the rest always.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    present: RefCell<HashSet<String>>,
    missing: bool,
}

impl Runner for Fake {
    fn run(&self, program: &str, args: &[String], stdin: &str) -> Result<Outcome, IptablesError> {
        if self.missing {
            return Err(IptablesError::Missing(program.to_owned()));
        }
        let line = format!("{program} {}", args.join(" "));
        self.calls.borrow_mut().push(line.clone());
        let rule = args.get(3..).map(|r| r.join(" ")).unwrap_or_default();
        let key = format!("{program} {}", rule);
        let success = match args.get(2).map(String::as_str) {
            Some("-C") => self.present.borrow().contains(&key),
            Some("-A") => self.present.borrow_mut().insert(key),
            Some("-D") => self.present.borrow_mut().remove(&key),
            Some(_) => true,
            None => !stdin.is_empty(),
        };
        Ok(Outcome {
            success,
            stderr: String::new(),
        })
    }
}

fn rules(args: &[&str]) -> Rules {
    Rules::try_parse_from(std::iter::once("iptables").chain(args.iter().copied()))
        .expect("flags parse")
}

#[test]
fn applying_twice_adds_each_jump_once() {
    let fake = Fake::default();
    apply(&fake, &rules(&[])).expect("applies");
    apply(&fake, &rules(&[])).expect("applies again");
    let calls = fake.calls.borrow();
    let adds: Vec<_> = calls.iter().filter(|c| c.contains(" -A ")).collect();
    assert_eq!(
        adds,
        [
            "iptables -t nat -A PREROUTING -p tcp -j MESH_INBOUND",
            "iptables -t nat -A OUTPUT -p tcp -j MESH_OUTPUT",
        ]
    );
    let restores = calls
        .iter()
        .filter(|c| *c == "iptables-restore --noflush")
        .count();
    assert_eq!(restores, 2, "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("ip6tables")),
        "{calls:?}"
    );
}

#[test]
fn ipv6_programs_both_families() {
    let fake = Fake::default();
    apply(&fake, &rules(&["--ipv6"])).expect("applies");
    let calls = fake.calls.borrow();
    assert!(calls.iter().any(|c| c == "ip6tables-restore --noflush"));
    assert!(
        calls
            .iter()
            .any(|c| c == "ip6tables -t nat -A OUTPUT -p tcp -j MESH_OUTPUT")
    );
}

#[test]
fn cleanup_removes_jumps_then_our_chains_only() {
    let fake = Fake::default();
    apply(&fake, &rules(&[])).expect("applies");
    fake.calls.borrow_mut().clear();
    cleanup(&fake, &[Family::V4]).expect("cleans up");
    assert!(fake.present.borrow().is_empty());
    let calls = fake.calls.borrow();
    let flushed: Vec<_> = calls.iter().filter(|c| c.contains(" -F ")).collect();
    let deleted: Vec<_> = calls.iter().filter(|c| c.contains(" -X ")).collect();
    assert_eq!(flushed.len(), 4);
    assert_eq!(deleted.len(), 4);
    assert!(
        calls
            .iter()
            .all(|c| !c.contains("-F PREROUTING") && !c.contains("-X OUTPUT"))
    );
    drop(calls);
    // Again, on a clean host: nothing to remove is not an error.
    cleanup(&fake, &[Family::V4]).expect("cleans up twice");
}

#[test]
fn failures_name_the_command() {
    let missing = Fake {
        missing: true,
        ..Fake::default()
    };
    let error = apply(&missing, &rules(&[])).expect_err("no iptables");
    assert!(error.to_string().contains("install iptables"), "{error}");
    struct Refuses;
    impl Runner for Refuses {
        fn run(&self, _: &str, _: &[String], _: &str) -> Result<Outcome, IptablesError> {
            Ok(Outcome {
                success: false,
                stderr: "Permission denied (you must be root)".into(),
            })
        }
    }
    let error = apply(&Refuses, &rules(&[])).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("iptables-restore --noflush failed"),
        "{error}"
    );
    assert!(error.to_string().contains("Permission denied"), "{error}");
}

#[test]
fn dry_run_describes_restore_input_and_jumps() {
    let text = describe(&rules(&["--ipv6"]));
    assert!(
        text.starts_with("# iptables-restore --noflush <<EOF\n*nat\n"),
        "{text}"
    );
    assert!(text.contains("# iptables -t nat -C PREROUTING -p tcp -j MESH_INBOUND || iptables -t nat -A PREROUTING -p tcp -j MESH_INBOUND\n"), "{text}");
    assert!(
        text.contains("# ip6tables-restore --noflush <<EOF\n"),
        "{text}"
    );
    assert!(
        text.contains("-A MESH_OUTPUT -d ::1/128 -j RETURN\n"),
        "{text}"
    );
}
