//! The certificate authority: keys, roots, the signing authority, where the root is stored
//! and how it rotates.

pub mod authority;
pub mod intermediate;
pub mod keys;
pub mod root;
pub mod roots;
pub mod rotation;
pub mod source;
pub mod store;
pub mod ttl;

#[cfg(test)]
mod tests;

pub use authority::{Authority, Issued, LeafKind, SigningMaterial};
pub use ttl::TtlPolicy;
