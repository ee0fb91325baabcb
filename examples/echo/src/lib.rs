//! The sample app (in progress).
