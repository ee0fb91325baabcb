//! Errors as one line of text for logs and status pages: mesh-core's, shared with pilot.

pub use mesh_core::error_text::chain;
