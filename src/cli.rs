//! The command line, declared with clap derive. Parsing only: commands live in [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use genesis::EnvName;

use crate::config::StoreKind;
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

    /// Also trust this CA bundle (PEM) in every HTTPS client: registry, forge, Key Vault, the
    /// Kubernetes API, smoke checks (the platform's trust store and SSL_CERT_FILE are trusted too)
    #[arg(long = "ca-file", global = true, env = env_vars::CA_FILE, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// The release signing key (`rel keygen --signing`; `-` reads standard input) for `build
    /// --push`, `lock` and `record`; REL_SIGNING_KEY holds it otherwise (never a flag value)
    #[arg(long = "signing-key-file", global = true, value_name = "FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Say nothing on stderr but warnings and errors (no progress); stdout is unchanged
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more on stderr: debug logs (unless RUST_LOG is set) and cargo's own output
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cut a release: build → lock → gate coherence → pin the first environment → render it
    Release(ReleaseArgs),
    /// Deploy a release to an environment, gated and recorded: build → lock → secrets → migrate →
    /// pin, commit and apply (Argo CD sync, or the local stage) → drift + deep smoke → record
    Deploy(DeployArgs),
    /// Build each component's binary with cargo and assemble a reproducible OCI image
    Build(BuildArgs),
    /// Write the release lockfile releases/<version>.yaml from build results and pinned digests
    Lock(LockArgs),
    /// Render a kustomize overlay exactly as `kubectl kustomize` would
    Render(RenderArgs),
    /// Set an overlay's image digests from a release lockfile, changing nothing else in the file
    Pin(PinArgs),
    /// Run a deploy gate; prints one row per check and exits 0 pass, 1 fail, 2 cannot run
    #[command(subcommand)]
    Gate(GateCommand),
    /// Record that a version passed the deep gate in an environment (releases/<v>.<env>.validation.yaml)
    Record(RecordArgs),
    /// Promote a validated version into an environment: one commit pinning every digest, on a branch, as a PR
    Promote(PromoteArgs),
    /// Roll an environment back to the previous validated version (git revert) and hold the bad one
    Rollback(RollbackArgs),
    /// What a pin or promotion changes in the rendered manifests, per object, secrets masked (exit 1 when anything changes)
    Diff(DiffArgs),
    /// Versions on hold (set by rollback): list them, or clear one so it can be promoted again
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Who did what, when, to which version: rel's actions read back from the commit trailers
    Audit(AuditArgs),
    /// Per environment: the digests its overlay pins, the release they match, validated or held
    Status(StatusArgs),
    /// Write a new genesis master key to FILE (mode 0600; never overwrites)
    Keygen(KeygenArgs),
    /// Seal a dotenv source into a genesis envelope; `--check` one; `seal diff` against a source
    #[command(
        long_about = "Seal a dotenv-style source (NAME=value lines; keep it gitignored, never commit it) into a \
genesis envelope for one environment, written to -o OUT or standard output.\n\n\
`rel seal --check ENVELOPE --env E` verifies that an envelope opens with the key for E (exit 1 if not).\n\
`rel seal diff --env E --from FILE ENVELOPE` shows what sealing FILE would add, remove or change."
    )]
    Seal(SealArgs),
    /// List an envelope's entry names, environment, key id and seal time; values only with --reveal
    Unseal(UnsealArgs),
    /// Re-wrap envelopes under a new master key (same values); atomic per file
    #[command(
        long_about = "Re-wrap envelopes under a new master key: the values stay the same (to change a value, edit the source and \
`rel seal` again). Envelopes already under the new key are skipped, so an interrupted run can be repeated. Every \
envelope is opened first; if any fails, nothing is written. Each file is then replaced atomically."
    )]
    Reseal(ResealArgs),
    /// Push, pull and list sealed envelopes in the secret store (file store or Azure Key Vault)
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run an environment on this machine: its workloads as processes from their images, with Services
    Up(UpArgs),
    /// Stop an environment's local stage: every process `rel up` started
    Down(DownArgs),
    /// Freeze an environment: promote, pin and deploy into it are refused (commits releases/freezes.yaml)
    Freeze(FreezeArgs),
    /// Lift an environment's freeze (commits releases/freezes.yaml)
    Unfreeze(UnfreezeArgs),
    /// Verify a release: image signatures by trusted keys, provenance, SBOMs, lockfile and record signatures
    #[command(
        long_about = "Verify a release against rel.toml's [trust] keys: for every component, the registry holds a cosign \
signature by a trusted key over the locked digest, a signed SLSA provenance naming the lockfile's repository and \
source commit, and a CycloneDX SBOM; releases/<v>.yaml and the validation records carry valid minisign signatures.\n\n\
Exit 0 all verified, 1 something is unsigned or does not match, 2 the check cannot run."
    )]
    Verify(VerifyArgs),
    /// Make this Cargo workspace a rel project: rel.toml, templates/base, overlays, releases/
    #[command(
        long_about = "Make an existing Cargo workspace a rel project, asking nothing it can infer. `cargo metadata \
--no-deps` names the bin targets; each becomes a component (a bin's `required-features` are its role features). \
rel writes a commented rel.toml (components, a registry placeholder, environments local → staging → prod), \
templates/base (a Deployment, Service and PodDisruptionBudget per component), overlays/<env> pinned by \
placeholder digests, releases/, and the .gitignore lines for secret sources and keys. Then `rel release` works \
with no edit.\n\nA file that exists with other content is never replaced without --force; .gitignore only \
gains the lines it lacks. Every write is atomic, rel.toml last: a rerun after an interruption finishes the job."
    )]
    Init(InitArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell
    #[command(
        long_about = "Print a shell completion script for rel to standard output.\n\n\
bash:       rel completions bash > ~/.local/share/bash-completion/completions/rel\n\
zsh:        rel completions zsh > ~/.zfunc/_rel   (with `fpath+=~/.zfunc; autoload -U compinit; compinit`)\n\
fish:       rel completions fish > ~/.config/fish/completions/rel.fish\n\
powershell: rel completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// Print rel's manual page (roff) to standard output: `rel man | man -l -`
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The workspace (or a directory inside it) [default: -C DIR, else the current directory]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Show the files rel would write, and their content; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Replace files that exist with other content
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells `rel completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The release to verify (releases/<VERSION>.yaml)
    #[arg(long, value_name = "VERSION")]
    pub version: Version,

    /// Use the keys trusted for this environment and check its validation record
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// A registry host (host[:port]) to speak plain HTTP to; loopback registries always are (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    #[command(flatten)]
    pub output: GateOutput,
}

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// A table.
    Table,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The validated version
    #[arg(long, value_name = "VERSION")]
    pub version: Version,

    /// The environment the deep gate ran in
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// The deep gate's JSON report (`rel gate smoke --profile deep --format json`)
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,

    /// Write the record but do not commit it (by default rel commits the record and the lockfile)
    #[arg(long)]
    pub no_commit: bool,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The version to promote (must be validated in the source environment)
    #[arg(long, value_name = "VERSION")]
    pub version: Version,

    /// The target environment
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// The source environment [default: the one whose `promotes-to` is ENV]
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,

    /// Push the branch (with a lease: a branch that moved is never overwritten)
    #[arg(long)]
    pub push: bool,

    /// Open the pull request, or update the open one (implies --push); token from GITHUB_TOKEN, GITEA_TOKEN or GITLAB_TOKEN
    #[arg(long)]
    pub open_pr: bool,

    /// Print the diff and the pull request text; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Output format of the result
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,

    /// Promote before the source environment's soak window is over (needs --reason; the
    /// override and the reason are recorded in the commit trailers and `rel audit`)
    #[arg(long, requires = "reason")]
    pub override_soak: bool,

    /// Why the soak is overridden
    #[arg(long, value_name = "TEXT", requires = "override_soak")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// Roll back to this version or commit [default: the previous validated version ENV ran]
    #[arg(long, value_name = "VERSION|COMMIT")]
    pub to: Option<String>,

    /// Push the rollback commit to the current branch's upstream (with a lease)
    #[arg(long)]
    pub push: bool,

    /// Put the rollback on a branch and open a pull request instead (implies --push)
    #[arg(long)]
    pub open_pr: bool,

    /// Print what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask before pushing (required to push without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// List the versions on hold
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Release a version from hold (commits releases/holds.yaml with trailers)
    Clear {
        /// The version to release
        #[arg(value_name = "VERSION")]
        version: Version,
        /// Write releases/holds.yaml but do not commit it
        #[arg(long)]
        no_commit: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only actions on this environment (as target or source)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Only actions at or after this date (YYYY-MM-DD, UTC) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Read the history of this revision [default: HEAD]
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub rev: String,

    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The release version [default: 0.0.0-dev.g<commit>, a development version that may be rebuilt]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    /// The environment to pin and render [default: the first of the promotion chain, e.g. staging]
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build only this component (repeatable) [default: every built component of rel.toml]
    #[arg(long = "component", value_name = "NAME")]
    pub components: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Output: a table on a terminal, plain lines otherwise, or the build result as JSON
    #[arg(long, value_enum, default_value = "auto", env = env_vars::FORMAT)]
    pub format: Format,

    /// Instead of building: rebuild release VERSION from its lockfile's source commits in clean
    /// worktrees and compare the digests (exit 0 identical, 1 not)
    #[arg(long, value_name = "VERSION", conflicts_with_all = ["push", "components"])]
    pub verify_reproducible: Option<Version>,
}

/// Where images go: the flag group of `build`, `release` and `deploy`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Image repository prefix [default: rel.toml's `registry`]
    #[arg(long, value_name = "REGISTRY", env = env_vars::REGISTRY)]
    pub registry: Option<String>,

    /// Tag to publish with each image (a label; the digest is the authority) [default: git-<commit>]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Push to the registry (OCI distribution API) instead of writing the local OCI layout
    #[arg(long)]
    pub push: bool,

    /// Let a push move a tag that already points at another digest (tags are immutable otherwise)
    #[arg(long, requires = "push")]
    pub allow_overwrite: bool,

    /// A registry host (host[:port]) to speak plain HTTP to; loopback registries always are (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    pub fn options(&self) -> crate::ops::RegistryOptions {
        crate::ops::RegistryOptions {
            registry: self.registry.clone(),
            tag: self.tag.clone(),
            push: self.push,
            allow_overwrite: self.allow_overwrite,
            insecure_registries: self.insecure_registries.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The kustomization directory to render
    #[arg(
        value_name = "DIR",
        conflicts_with = "env",
        required_unless_present = "env"
    )]
    pub dir: Option<PathBuf>,

    /// Render this environment's overlay (rel.toml `environments.<ENV>.overlay`)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Write one file per object into DIR instead of printing the stream
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The environment whose overlay to pin
    #[arg(
        long,
        value_name = "ENV",
        required_unless_present = "overlay",
        conflicts_with = "overlay"
    )]
    pub env: Option<String>,

    /// The release whose lockfile gives the digests (releases/<VERSION>.yaml)
    #[arg(
        long,
        value_name = "VERSION",
        required_unless_present = "lockfile",
        conflicts_with = "lockfile"
    )]
    pub version: Option<Version>,

    /// The overlay directory to pin (instead of --env)
    #[arg(long, value_name = "DIR")]
    pub overlay: Option<PathBuf>,

    /// The lockfile to pin from (instead of --version)
    #[arg(long, value_name = "FILE")]
    pub lockfile: Option<PathBuf>,

    /// Print the unified diff and change nothing
    #[arg(long)]
    pub dry_run: bool,
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
    #[arg(long = "digest", value_name = "NAME=sha256:HEX", value_parser = parse_digest_pin)]
    pub digests: Vec<(String, image_ref::Digest)>,

    /// Engine version an external component was built against (repeatable)
    #[arg(long = "built-against", value_name = "NAME=VERSION", value_parser = parse_version_pin)]
    pub built_against: Vec<(String, Version)>,

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
    #[arg(
        value_name = "LOCKFILE",
        conflicts_with = "version",
        required_unless_present = "version"
    )]
    pub lockfile: Option<PathBuf>,

    /// Check releases/<VERSION>.yaml of the project instead
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    #[command(flatten)]
    pub output: GateOutput,
}

const KEY_HELP: &str = "The master key comes from REL_MASTER_KEY, --key-file FILE or --key-stdin; never from a flag value.";

/// Where the master key comes from (never a flag value).
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Read the master key from FILE (as written by `rel keygen`) [default: $REL_MASTER_KEY]
    #[arg(long, value_name = "FILE", conflicts_with = "key_stdin")]
    pub key_file: Option<PathBuf>,

    /// Read the master key from standard input
    #[arg(long)]
    pub key_stdin: bool,
}

impl KeyArgs {
    pub fn source(&self) -> crate::secrets::KeySource {
        crate::secrets::KeySource::from_flags(self.key_file.as_deref(), self.key_stdin)
    }
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (created with mode 0600; an existing file is never replaced)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// Make a release signing key (Ed25519) instead of a master key; `-o -` writes it to stdout
    #[arg(long)]
    pub signing: bool,

    /// The signing key's algorithm: ed25519 signs images, provenance, lockfiles and records; ecdsa-p256 (cosign's default key type) signs images and provenance only (minisign, for lockfiles and records, is Ed25519 only)
    #[arg(long, value_enum, default_value = "ed25519")]
    pub algorithm: SigningAlgorithm,
}

/// `rel keygen --signing --algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigningAlgorithm {
    Ed25519,
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = KEY_HELP
)]
pub struct SealArgs {
    #[command(subcommand)]
    pub command: Option<SealCommand>,

    /// The environment the envelope is for (sealed inside it; services open it only for theirs)
    #[arg(long, value_name = "ENV", required = true)]
    pub env: Option<EnvName>,

    /// The dotenv source to seal
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    pub from: Option<PathBuf>,

    /// Write the envelope to OUT (atomically) instead of standard output
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        conflicts_with = "check"
    )]
    pub output: Option<PathBuf>,

    /// Check that ENVELOPE opens with the key and is sealed for --env; exit 1 if not
    #[arg(long, value_name = "ENVELOPE")]
    pub check: Option<PathBuf>,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum SealCommand {
    /// Show what sealing a source would change: added, removed, changed (as keyed fingerprints)
    Diff(SealDiffArgs),
}

#[derive(Debug, Args)]
#[command(after_help = KEY_HELP)]
pub struct SealDiffArgs {
    /// The environment the envelope is sealed for
    #[arg(long, value_name = "ENV")]
    pub env: EnvName,

    /// The dotenv source to compare
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// The current envelope
    #[arg(value_name = "ENVELOPE")]
    pub envelope: PathBuf,

    /// Exit 1 when the source differs from the envelope (like `git diff --exit-code`)
    #[arg(long)]
    pub exit_code: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
#[command(after_help = KEY_HELP)]
pub struct UnsealArgs {
    /// The envelope (`-` for standard input)
    #[arg(value_name = "ENVELOPE")]
    pub envelope: PathBuf,

    /// Also check that the envelope is sealed for ENV
    #[arg(long, value_name = "ENV")]
    pub env: Option<EnvName>,

    /// Print the values as a dotenv file, to -o FILE or a pipe (never to a terminal without --force)
    #[arg(long)]
    pub reveal: bool,

    /// With --reveal: write the values to FILE (mode 0600) instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE", requires = "reveal")]
    pub output: Option<PathBuf>,

    /// With --reveal: print the values even when standard output is a terminal
    #[arg(long, requires = "reveal")]
    pub force: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The current (old) key comes from REL_MASTER_KEY, --key-file FILE or --key-stdin; the new key from --new-key FILE."
)]
pub struct ResealArgs {
    /// The new master key file (from `rel keygen`)
    #[arg(long, value_name = "FILE")]
    pub new_key: PathBuf,

    /// Report what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The envelopes to re-wrap
    #[arg(value_name = "ENVELOPE", required = true)]
    pub envelopes: Vec<PathBuf>,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store an environment's sealed envelope as a new version of `rel-genesis-b64`
    Push(SecretsPushArgs),
    /// Fetch an environment's sealed envelope (latest or --version) to -o FILE or standard output
    Pull(SecretsPullArgs),
    /// List the stored versions of an environment's envelope
    Versions(SecretsVersionsArgs),
}

/// Which store and environment.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The environment (file store: <dir>/<env>/; Key Vault: the environment's vault)
    #[arg(long, value_name = "ENV")]
    pub env: EnvName,

    /// The store [default: `[secrets] store` in rel.toml, else file]
    #[arg(long, value_enum)]
    pub store: Option<StoreKind>,

    /// File store directory [default: `[secrets] dir` in rel.toml, else .rel/secrets]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Key Vault URL, e.g. https://kv-rel-staging.vault.azure.net [default: `[secrets.vaults] <env>`]
    #[arg(long, value_name = "URL")]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "With a master key (REL_MASTER_KEY, --key-file or --key-stdin) the envelope is also checked to open for --env before it is pushed.\nAzure credentials come from AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or a managed identity."
)]
pub struct SecretsPushArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The sealed envelope (`-` for standard input) [default: `[secrets] envelope`, .rel/genesis/<env>.b64]
    #[arg(long, value_name = "FILE", conflicts_with = "master_key")]
    pub envelope: Option<PathBuf>,

    /// Push the master key itself (from REL_MASTER_KEY, --key-file or --key-stdin) as
    /// `rel-master-key`, for the External Secrets template, instead of the envelope
    #[arg(long)]
    pub master_key: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct SecretsPullArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Write the envelope to FILE (atomically) instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The version to fetch [default: the latest]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
}

#[derive(Debug, Args)]
pub struct SecretsVersionsArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// List the versions of `rel-master-key` instead of the envelope's
    #[arg(long)]
    pub master_key: bool,
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

    /// File holding the bearer token for the authenticated query (deep): a mounted Secret in a
    /// cluster Job, a 0600 file on a laptop. The token may also come from REL_SMOKE_TOKEN
    #[arg(long, value_name = "FILE", env = env_vars::SMOKE_TOKEN_FILE, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,

    /// Bearer token as a flag value. Discouraged: argv is visible to every user of the machine
    /// (`ps`) and lands in shell history; use --token-file or REL_SMOKE_TOKEN
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

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
    crate::config::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}` is not a duration: write `500ms`, `10s` or `2m`"))
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

    /// With --live/--pods: also check that each component image a live pod runs has a cosign signature by a key [trust] trusts for ENV
    #[arg(long)]
    pub verify_signatures: bool,

    /// A registry host (host[:port]) to read signatures from over plain HTTP; loopback registries always are (repeatable)
    #[arg(
        long = "insecure-registry",
        value_name = "HOST",
        requires = "verify_signatures"
    )]
    pub insecure_registries: Vec<String>,

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
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
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

/// `NAME=sha256:HEX` (`--digest`).
fn parse_digest_pin(s: &str) -> Result<(String, image_ref::Digest), String> {
    let (name, digest) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` is not NAME=sha256:HEX; write it as `identity=sha256:...`")
    })?;
    let digest = digest.trim().parse().map_err(|e: image_ref::DigestError| {
        format!("{e}; give the full digest: sha256: followed by 64 lowercase hex characters")
    })?;
    Ok((name.trim().to_owned(), digest))
}

/// `NAME=VERSION` (`--built-against`).
fn parse_version_pin(s: &str) -> Result<(String, Version), String> {
    let (name, version) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VERSION; write it as `console=0.9.14`"))?;
    let version = version
        .trim()
        .parse()
        .map_err(|e: crate::version::VersionError| e.to_string())?;
    Ok((name.trim().to_owned(), version))
}

/// Output format of `rel diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// Coloured on a terminal (unless NO_COLOR), plain text otherwise.
    Auto,
    /// Plain text, never coloured.
    Text,
    /// One JSON document; secret values appear only as keyed fingerprints.
    Json,
    /// Markdown for a pull request body, under --budget bytes.
    Markdown,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The environment whose overlay to render
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// The release to pin into the overlay (the "after" side)
    #[arg(long, value_name = "VERSION", conflicts_with_all = ["from", "to"])]
    pub version: Option<Version>,

    /// Compare two releases pinned into the overlay: the "before" side
    #[arg(long, value_name = "V1", requires = "to")]
    pub from: Option<Version>,

    /// Compare two releases pinned into the overlay: the "after" side
    #[arg(long, value_name = "V2", requires = "from")]
    pub to: Option<Version>,

    /// Take the overlay (and what it references) at this git revision as the "before" side; without a version the "after" side is the working tree
    #[arg(long, value_name = "GIT_REV")]
    pub rev: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value = "auto")]
    pub format: DiffFormat,

    /// Byte budget of --format markdown
    #[arg(long, value_name = "BYTES", default_value_t = 60_000)]
    pub budget: usize,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Images come by digest from the OCI layouts under target/rel/oci (`rel build`). The genesis envelope and master key \
reach the pods that reference the Secret `platform-secrets`, from the secret store (`rel secrets push --env ENV`) and REL_MASTER_KEY or --key-file.\n\
State, logs and volumes live in .rel/stage/<env>/."
)]
pub struct UpArgs {
    #[command(subcommand)]
    pub action: Option<UpAction>,

    #[command(flatten)]
    pub start: UpStartArgs,
}

#[derive(Debug, Args)]
pub struct UpStartArgs {
    /// The environment to run
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub env: String,

    /// Start in the background and return once ready; `rel down` stops it
    #[arg(long, conflicts_with = "dry_run")]
    pub detach: bool,

    /// Show what would run (pods, addresses, Services, rewrites) and start nothing
    #[arg(long)]
    pub dry_run: bool,

    /// OCI layout directory to find images in (repeatable) [default: target/rel/oci]
    #[arg(long, value_name = "DIR")]
    pub images: Vec<PathBuf>,

    /// How long each hook and each sync wave may take to be ready
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration_arg)]
    pub ready_timeout: std::time::Duration,

    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,

    #[command(flatten)]
    pub key: KeyArgs,

    /// Run as the detached supervisor (started by --detach; reads the stage's secrets on stdin)
    #[arg(long, hide = true)]
    pub supervise: bool,
}

#[derive(Debug, Subcommand)]
pub enum UpAction {
    /// The stage's workloads, pods (address, pid, ready, restarts, image digest) and Services
    Status(UpStatusArgs),
    /// The pods' logs (.rel/stage/<env>/logs)
    Logs(UpLogsArgs),
}

#[derive(Debug, Args)]
pub struct UpStatusArgs {
    /// The stage's environment
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub env: String,

    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,

    /// Print the live pods as `kubectl get pods -o json` does, for `rel gate drift --pods FILE`
    #[arg(long, conflicts_with = "format")]
    pub pods: bool,
}

#[derive(Debug, Args)]
pub struct UpLogsArgs {
    /// The stage's environment
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub env: String,

    /// Only pods whose name starts with this (a pod or workload name)
    #[arg(value_name = "POD")]
    pub pod: Option<String>,

    /// Lines per pod
    #[arg(long, default_value_t = 50)]
    pub tail: usize,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The stage's environment
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub env: String,

    /// How long the supervisor may take to stop its pods gracefully before everything is killed
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration_arg)]
    pub grace: std::time::Duration,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each step is a row of the report (table on a terminal, --format json, --junit FILE); \
the deploy stops at the first failure. Exit codes: 0 deployed and recorded (or planned), 1 a step failed \
(the report says which, and after a failed gate the exact rollback), 2 usage or environment error."
)]
pub struct DeployArgs {
    /// The release version to deploy (its lockfile is written by the build step, or must exist
    /// with --skip-build) [default: 0.0.0-dev.g<commit>, a development release of HEAD]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<Version>,

    /// The environment to deploy to
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub env: String,

    /// Deploy the existing lockfile: build and push nothing
    #[arg(long)]
    pub skip_build: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Fail (instead of warn) when the environment's genesis envelope is missing or does not open
    #[arg(long)]
    pub require_secrets: bool,

    /// Do not run the migration Job
    #[arg(long)]
    pub skip_migrate: bool,

    /// Run no gate (and so record nothing)
    #[arg(long)]
    pub no_gate: bool,

    /// Run drift but not the deep smoke gate (and so record nothing)
    #[arg(long, conflicts_with = "no_gate")]
    pub no_smoke: bool,

    /// Print the plan (every step, what it would build, push, commit and run); change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long the migration, the Argo CD sync or the stage may take
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration_arg)]
    pub timeout: std::time::Duration,

    /// File holding the deep gate's bearer token [default: REL_SMOKE_TOKEN]
    #[arg(long, value_name = "FILE", env = env_vars::SMOKE_TOKEN_FILE)]
    pub token_file: Option<PathBuf>,

    #[command(flatten)]
    pub key: KeyArgs,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub output: GateOutput,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The freeze is a committed file (releases/freezes.yaml) with Rel-* trailers on the commit: reviewed and \
audited like everything else. `rel promote`, `rel pin` and `rel deploy` into the environment are refused with the reason \
(and `rel release` pinning it) until it expires or `rel unfreeze` lifts it; `rel rollback` is never refused. Freezing a frozen environment replaces its freeze."
)]
pub struct FreezeArgs {
    /// The environment to freeze
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// Why (shown in every refusal, in `rel status` and in `rel audit`)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// When the freeze ends by itself: an RFC 3339 time, a date (midnight UTC) or a duration
    /// from now (`4h`, `2d`) [default: until `rel unfreeze`]
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Print the file and the commit; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Write releases/freezes.yaml but do not commit it
    #[arg(long, conflicts_with = "dry_run")]
    pub no_commit: bool,

    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct UnfreezeArgs {
    /// The environment whose freeze to lift
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// Print the file and the commit; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Write releases/freezes.yaml but do not commit it
    #[arg(long, conflicts_with = "dry_run")]
    pub no_commit: bool,

    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}
