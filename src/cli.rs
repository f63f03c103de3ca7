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
    /// Check that the overlay pins exactly a release, and (--live) that every pod runs those digests
    Drift(DriftArgs),
    /// Check that the nodes have room for the extra pods of a rolling update
    Headroom(HeadroomArgs),
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

/// How the live gates reach the cluster.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: its current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Timeout of each Kubernetes API call
    #[arg(long = "kube-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg)]
    pub kube_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The environment whose overlay is checked
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// The release the overlay must pin [default: the release whose lockfile the pins match]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    /// Already-rendered manifests (`kubectl kustomize` output) instead of rendering the overlay; `-` is stdin
    #[arg(long, value_name = "FILE")]
    pub rendered: Option<PathBuf>,

    /// Also check that every live pod runs the pinned digests (Kubernetes API, or --pods)
    #[arg(long)]
    pub live: bool,

    /// Live pods from `kubectl get pods -o json` output instead of the API (implies --live); `-` is stdin
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,

    /// Namespace of workloads the manifests leave unqualified [default: the context's namespace]
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub output: GateOutput,
}

#[derive(Debug, Args)]
pub struct HeadroomArgs {
    /// The environment whose overlay rolls (and whose `[environments.<ENV>.headroom]` applies)
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// Already-rendered manifests (`kubectl kustomize` output) instead of rendering the overlay; `-` is stdin
    #[arg(long, value_name = "FILE")]
    pub rendered: Option<PathBuf>,

    /// Nodes (and the pods that occupy them) from `kubectl get nodes,pods -A -o json`; `-` is stdin
    #[arg(long, value_name = "FILE", required_unless_present = "live", conflicts_with = "live")]
    pub nodes: Option<PathBuf>,

    /// Read nodes and pods from the Kubernetes API
    #[arg(long)]
    pub live: bool,

    /// Not enough headroom fails the gate (exit 1) instead of warning
    #[arg(long)]
    pub fail: bool,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub output: GateOutput,
}
