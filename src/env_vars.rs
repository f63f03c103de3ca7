//! Every environment variable rel reads, in one place.
//!
//! Flags that fall back to a variable name it with clap's `env = ...` using these constants, so
//! `--help` shows the variable and this list stays the single source of truth.

/// The project directory (where `rel.toml` lives); default: found upward from the working directory.
pub const PROJECT_DIR: &str = "REL_PROJECT_DIR";
/// Output format of gates and reports (`auto`, `table`, `plain`, `json`).
pub const FORMAT: &str = "REL_FORMAT";
/// Image repository prefix for `rel build`, overriding rel.toml's `registry`.
pub const REGISTRY: &str = "REL_REGISTRY";
/// Cargo target directory for `rel build`'s release builds (default: target/rel/cargo).
pub const CARGO_TARGET_DIR: &str = "REL_CARGO_TARGET_DIR";
/// Fixed timestamp (seconds since 1970) for reproducible images; default: the commit time.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Who is acting, for commit trailers and records; default: git's `user.email`, then `$USER`.
pub const ACTOR: &str = "REL_ACTOR";
/// When set (to anything), no colour in output (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// The terminal type; `dumb` gets no progress drawing (plain lines, as off a terminal).
pub const TERM: &str = "TERM";
/// `true` inside GitHub Actions: gates also print workflow annotations.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// Token for GitHub's REST API (`--open-pr`); read from the environment only, never printed.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// Token for a Gitea or Forgejo API (`--open-pr`); read from the environment only, never printed.
pub const GITEA_TOKEN: &str = "GITEA_TOKEN";
/// Token for GitLab's API (`--open-pr`); read from the environment only, never printed.
pub const GITLAB_TOKEN: &str = "GITLAB_TOKEN";
/// Bearer token of the smoke gate's authenticated query (`--token`); never printed.
pub const SMOKE_TOKEN: &str = "REL_SMOKE_TOKEN";
/// Smoke profile (`baseline` or `deep`), as `--profile`.
pub const SMOKE_PROFILE: &str = "REL_SMOKE_PROFILE";
/// Kubeconfig file(s) of the live gates (`drift --live`, `headroom --live`), as kubectl reads it.
pub const KUBECONFIG: &str = "KUBECONFIG";
/// Log filter for diagnostics on stderr (`tracing` `EnvFilter` syntax), e.g. `rel=debug`.
pub const LOG: &str = "RUST_LOG";

/// The genesis master key (standard base64, 32 bytes), for `rel seal`, `unseal`, `reseal` and
/// `secrets push`. Secret: rel never takes it as a flag value; `--key-file` and `--key-stdin`
/// override it.
pub const MASTER_KEY: &str = "REL_MASTER_KEY";
/// The release signing key (`rel keygen --signing`), for `rel build --push`, `rel lock`,
/// `rel record`. Secret: `--signing-key-file FILE` (or `-` for stdin) overrides it.
pub const SIGNING_KEY: &str = "REL_SIGNING_KEY";

/// Not read by rel: the sealed envelope a service autoloads at boot (`crates/service-runtime`).
/// Listed so the whole set of names is in one place.
pub const GENESIS_B64: &str = "REL_GENESIS_B64";
/// Not read by rel: the environment a service runs in; autoload opens the envelope only for it.
pub const ENV: &str = "REL_ENV";

/// The standard Azure identity variables `rel secrets --store azure` reads to pick a credential
/// (client secret, workload identity, managed identity; see `secret_store::Credential::from_env`).
pub const AZURE_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

/// Read an Azure identity variable; names outside [`AZURE_VARS`] read as unset, so this list
/// stays complete.
pub fn azure_var(name: &str) -> Option<String> {
    if AZURE_VARS.contains(&name) {
        std::env::var(name).ok()
    } else {
        None
    }
}

/// Whether `NO_COLOR` asks for no colour.
pub fn no_color() -> bool {
    std::env::var_os(NO_COLOR).is_some_and(|v| !v.is_empty())
}

/// Whether we run inside GitHub Actions.
pub fn github_actions() -> bool {
    std::env::var(GITHUB_ACTIONS).is_ok_and(|v| v == "true")
}

/// Registry credentials (read by the registry client through rel).
pub const REGISTRY_USERNAME: &str = "REL_REGISTRY_USERNAME";
/// Registry password or token.
pub const REGISTRY_PASSWORD: &str = "REL_REGISTRY_PASSWORD";
/// The docker configuration directory (`config.json`, credential helpers).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The user's home directory (docker config and cargo home fall back to it).
pub const HOME: &str = "HOME";
/// The user name, the last fallback for the actor.
pub const USER: &str = "USER";
/// Where cargo keeps its registry cache.
pub const CARGO_HOME: &str = "CARGO_HOME";
/// The CI's own actor (GitHub Actions), used for `Rel-Actor` when `REL_ACTOR` is not set.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// GitLab CI's actor.
pub const GITLAB_USER_LOGIN: &str = "GITLAB_USER_LOGIN";
/// An extra CA bundle (PEM) trusted by every HTTPS client rel has, besides the platform's store.
pub const CA_FILE: &str = "REL_CA_FILE";
/// The smoke gate's token, read from a file (the in-cluster form: a mounted Secret).
pub const SMOKE_TOKEN_FILE: &str = "REL_SMOKE_TOKEN_FILE";

/// rel's own secrets: never inherited by a child process (cargo and every build script and proc
/// macro it runs, git and its hooks and credential helpers, kubeconfig exec plugins).
pub const SECRETS: &[&str] = &[
    MASTER_KEY,
    SIGNING_KEY,
    GENESIS_B64,
    REGISTRY_USERNAME,
    REGISTRY_PASSWORD,
    GITHUB_TOKEN,
    GITEA_TOKEN,
    GITLAB_TOKEN,
    SMOKE_TOKEN,
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "IDENTITY_HEADER",
];

/// Remove rel's own secrets from a child's environment (see [`SECRETS`]).
pub fn scrub_secrets(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for name in SECRETS {
        cmd.env_remove(name);
    }
    cmd
}

/// The rustc whose version provenance records (`rustc -V`; default `rustc` on PATH).
pub const RUSTC: &str = "RUSTC";

/// The cargo that runs rel's release builds (set by cargo for `cargo run`; else `cargo` on PATH).
pub const CARGO: &str = "CARGO";
/// git's identity variables: the author and committer of the commits rel makes, as `git commit`
/// resolves them (CI systems set these).
pub const GIT_AUTHOR_NAME: &str = "GIT_AUTHOR_NAME";
pub const GIT_AUTHOR_EMAIL: &str = "GIT_AUTHOR_EMAIL";
pub const GIT_COMMITTER_NAME: &str = "GIT_COMMITTER_NAME";
pub const GIT_COMMITTER_EMAIL: &str = "GIT_COMMITTER_EMAIL";
/// git's last fallback for an email address.
pub const EMAIL: &str = "EMAIL";
/// "Now" for soak windows and freezes (RFC 3339, e.g. `2026-12-02T10:00:00Z`); default: the system
/// clock. For tests and rehearsals: a promotion decided under it carries `Rel-Clock` in its
/// trailers, so an injected clock is visible in `rel audit`.
pub const NOW: &str = "REL_NOW";
