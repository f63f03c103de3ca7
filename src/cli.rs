//! The command line, declared with clap derive. Parsing only: commands live in [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::env_vars;
use crate::report::Format;
use crate::version::Version;

#[derive(Debug, Parser)]
#[command(
    name = "rel",
    version,
    about = "GitOps releases: digest-pinned images, release lockfiles, gates, promotion and rollback",
    long_about = "rel builds digest-pinned OCI images of the workspace's services, writes release lockfiles \
(releases/<version>.yaml), renders kustomize overlays, runs the deploy gates, and promotes validated \
releases between environments through git. Argo CD reconciles what rel commits.\n\n\
Exit codes: 0 ok, 1 a gate or check failed (or rel refused an unsafe move), 2 usage, input or environment error.",
    after_help = "Run `rel <command> --help` for the flags of each command."
)]
pub struct Cli {
    /// Project directory holding rel.toml [default: searched upward from the current directory]
    #[arg(short = 'C', long = "project-dir", global = true, env = env_vars::PROJECT_DIR, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the release lockfile releases/<version>.yaml from build results and pinned digests
    Lock(LockArgs),
    /// Run a deploy gate; prints one row per check and exits 0 pass, 1 fail, 2 cannot run
    #[command(subcommand)]
    Gate(GateCommand),
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The release version (semver), e.g. 0.4.0
    #[arg(long, value_name = "VERSION")]
    pub version: Version,

    /// The engine version the release carries [default: the release version]
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<Version>,

    /// Build result to lock [default: target/rel/build.json when no --digest is given]
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// Pin a component by digest (repeatable); overrides the build result for that component
    #[arg(long = "digest", value_name = "NAME=sha256:HEX")]
    pub digests: Vec<String>,

    /// Engine version an external component was built against (repeatable)
    #[arg(long = "built-against", value_name = "NAME=VERSION")]
    pub built_against: Vec<String>,

    /// Replace an existing lockfile with different content (refused once the version is validated)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Check a release lockfile: complete, digest-pinned, engine-coherent
    Coherence(CoherenceArgs),
    /// Probe an environment's front door with the checks rel.toml declares (baseline or deep)
    Smoke(SmokeArgs),
}

/// Output flags shared by every gate.
#[derive(Debug, Clone, Args)]
pub struct GateOutput {
    /// Output format: a table on a terminal, plain lines otherwise, or one JSON document
    #[arg(long, value_enum, default_value = "auto", env = env_vars::FORMAT)]
    pub format: Format,

    /// Also write the checks as JUnit XML to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CoherenceArgs {
    /// The lockfile to check
    #[arg(value_name = "LOCKFILE", conflicts_with = "version", required_unless_present = "version")]
    pub lockfile: Option<PathBuf>,

    /// Check releases/<VERSION>.yaml of the project instead
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    #[command(flatten)]
    pub output: GateOutput,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The environment whose `[environments.<ENV>.smoke]` checks run
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// baseline: a check without its input is SKIP; deep (the promotion gate): every check must run and pass
    #[arg(long, value_enum, default_value = "baseline", env = env_vars::SMOKE_PROFILE)]
    pub profile: crate::gate::smoke::Profile,

    /// Base URL of the checks' paths [default: the environment's `base-url`]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Bearer token for the authenticated query (deep). Prefer the variable: argv is visible to other users
    #[arg(long, value_name = "TOKEN", env = env_vars::SMOKE_TOKEN, hide_env_values = true)]
    pub token: Option<String>,

    /// Also trust the certificates in this PEM file (a private CA or a self-signed certificate)
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// The release version being validated; `version` checks must report it, and the evidence names it
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    /// Per-check timeout, overriding the environment's `timeout` (e.g. `500ms`, `10s`)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub timeout: Option<std::time::Duration>,

    #[command(flatten)]
    pub output: GateOutput,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s).filter(|d| !d.is_zero()).ok_or_else(|| format!("`{s}` is not a duration: write `500ms`, `10s` or `2m`"))
}
