//! Every environment variable rel reads, in one place.
//!
//! Flags that fall back to a variable name it with clap's `env = ...` using these constants, so
//! `--help` shows the variable and this list stays the single source of truth.

/// The project directory (where `rel.toml` lives); default: found upward from the working directory.
pub const PROJECT_DIR: &str = "REL_PROJECT_DIR";
/// Output format of gates and reports (`auto`, `table`, `plain`, `json`).
pub const FORMAT: &str = "REL_FORMAT";
/// Who is acting, for commit trailers and records; default: git's `user.email`, then `$USER`.
pub const ACTOR: &str = "REL_ACTOR";
/// When set (to anything), no colour in output (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// `true` inside GitHub Actions: gates also print workflow annotations.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// Bearer token of the smoke gate's authenticated query (`--token`); never printed.
pub const SMOKE_TOKEN: &str = "REL_SMOKE_TOKEN";
/// Smoke profile (`baseline` or `deep`), as `--profile`.
pub const SMOKE_PROFILE: &str = "REL_SMOKE_PROFILE";
/// Kubeconfig file(s) of the live gates (`drift --live`, `headroom --live`), as kubectl reads it.
pub const KUBECONFIG: &str = "KUBECONFIG";
/// Log filter for diagnostics on stderr (`tracing` `EnvFilter` syntax), e.g. `rel=debug`.
pub const LOG: &str = "RUST_LOG";

/// Whether `NO_COLOR` asks for no colour.
pub fn no_color() -> bool {
    std::env::var_os(NO_COLOR).is_some_and(|v| !v.is_empty())
}

/// Whether we run inside GitHub Actions.
pub fn github_actions() -> bool {
    std::env::var(GITHUB_ACTIONS).is_ok_and(|v| v == "true")
}
