//! Root rotation without an outage, in three steps run some time apart:
//!
//! 1. **prepare**: a new root is created and added to the trust bundle; the old root still
//!    signs. Wait until every workload has the new bundle (one leaf lifetime, `--max-cert-ttl`,
//!    as workloads renew at half-life and every answer carries the bundle).
//! 2. **activate**: the new root signs; the old one stays in the bundle, so certificates it
//!    signed keep verifying. Wait until they have all expired (one leaf lifetime again).
//! 3. **finish**: the old root leaves the bundle.
//!
//! Each step is a pure function of the stored state, so the directory and the Secret store
//! rotate the same way.

use std::fmt;

use super::root::RootPair;
use super::roots::RootState;
use crate::cert::CertInfo;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RotationError {
    #[error("a new root is already prepared; run `rotate-root activate` next")]
    AlreadyPrepared,
    #[error("the previous root is still in the bundle; run `rotate-root finish` first")]
    NotFinished,
    #[error("no root is prepared; run `rotate-root prepare` first")]
    NotPrepared,
    #[error("no retired root to drop; `rotate-root finish` follows `rotate-root activate`")]
    NotActivated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Add a new root to the trust bundle (the old root keeps signing).
    Prepare,
    /// Sign with the new root (the old root stays trusted).
    Activate,
    /// Drop the old root from the trust bundle.
    Finish,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Prepare => "prepare",
            Step::Activate => "activate",
            Step::Finish => "finish",
        })
    }
}

/// Whether step 1 may run now (checked before a new key is made).
pub fn can_prepare(state: &RootState) -> Result<(), RotationError> {
    if state.next.is_some() {
        return Err(RotationError::AlreadyPrepared);
    }
    if state.previous.is_some() {
        return Err(RotationError::NotFinished);
    }
    Ok(())
}

/// Step 1: `new_root` becomes trusted.
pub fn prepare(state: &RootState, new_root: RootPair) -> Result<RootState, RotationError> {
    can_prepare(state)?;
    Ok(RootState {
        bundle: state.bundle.with(&new_root.cert),
        next: Some(new_root),
        ..state.clone()
    })
}

/// Step 2: the prepared root signs; the old one is remembered for step 3.
pub fn activate(state: &RootState) -> Result<RootState, RotationError> {
    let next = state.next.clone().ok_or(RotationError::NotPrepared)?;
    Ok(RootState {
        previous: Some(state.current.cert.clone()),
        bundle: state.bundle.with(&next.cert),
        current: next,
        next: None,
    })
}

/// Step 3: the old root is no longer trusted.
pub fn finish(state: &RootState) -> Result<RootState, RotationError> {
    let previous = state.previous.as_ref().ok_or(RotationError::NotActivated)?;
    Ok(RootState {
        bundle: state.bundle.without(previous),
        previous: None,
        ..state.clone()
    })
}

/// Which step comes next, in words, for `rotate-root status`.
pub fn status(state: &RootState) -> String {
    let subject = |der: &[u8]| CertInfo::parse(der).map_or_else(|e| e.to_string(), |i| i.subject);
    let mut lines = vec![format!("signing root: {}", subject(&state.current.cert))];
    for root in state.bundle.roots() {
        lines.push(format!("trusted root: {}", subject(root)));
    }
    lines.push(match (&state.next, &state.previous) {
        (Some(next), _) => format!(
            "prepared (step 1 done): {}; next: rotate-root activate",
            subject(&next.cert)
        ),
        (None, Some(previous)) => format!(
            "activated (step 2 done), still trusted: {}; next: rotate-root finish",
            subject(previous)
        ),
        (None, None) => "no rotation in progress; next: rotate-root prepare".to_owned(),
    });
    lines.join("\n")
}
