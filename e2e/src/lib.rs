//! End-to-end tests across mesh's binaries live in `tests/`; this crate builds the
//! binaries they run (`e2e-pilot`, `e2e-proxy`) from the real crates' entry points.
