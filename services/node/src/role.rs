//! The role this build of `node` was compiled for (seed 001 §1.3: the compiled type wins).

/// A role of the `node` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Worker => "worker",
        }
    }
}

/// The role selected by cargo features; `None` when the crate is built without a role (only the
/// library, as in `cargo build --workspace`).
pub const COMPILED: Option<Role> = if cfg!(feature = "gateway") {
    Some(Role::Gateway)
} else if cfg!(feature = "worker") {
    Some(Role::Worker)
} else {
    None
};
