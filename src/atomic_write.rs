//! Atomic file writes: the workspace's one implementation lives in `crates/atomic-file`; this
//! module is its name inside rel.

pub(crate) use atomic_file::{create_new, write, write_with_mode};
