//! Kubernetes mode against a fake API server: the CA Secret, TokenReview, the trust bundle
//! ConfigMaps, and the real binary wired to all three through a kubeconfig.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod binary;
mod fake_api;
mod publish;
mod secret_store;
mod token_review;
