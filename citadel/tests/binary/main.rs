//! The real `citadel` binary as a child process: local mode, root rotation, intermediate
//! mode. Every test also checks that no key or token shows up in what citadel printed or
//! answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod intermediate;
mod rotation;
mod signing;
