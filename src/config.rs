//! `rel.toml`: the project configuration, parsed into typed values with errors at file:line.
//!
//! ```toml
//! registry = "registry.example.com/platform"   # image repository prefix
//! repo = "example-org/platform"                 # source repository of built components
//!
//! [components.identity]                         # a built component: three lines
//! crate = "identity"
//! bin = "identity"                              # default: the component name
//! features = []                                 # cargo features of this role
//!
//! [components.console]                          # an external component
//! repo = "example-org/console"
//! built-against-engine = true                   # the lockfile must carry builtAgainstEngine
//!
//! [environments.staging]
//! overlay = "overlays/staging"
//! promotes-to = "prod"
//! soak = "24h"                                  # promote out only 24h after validation (s/m/h/d)
//!
//! [secrets]                                     # optional; these are the defaults
//! store = "file"                                # `file` or `azure`
//! dir = ".rel/secrets"                          # file store; each environment in <dir>/<env>/
//! envelope = ".rel/genesis/{env}.b64"           # the sealed envelope `rel secrets push` sends
//!
//! [secrets.vaults]                              # Azure Key Vault: one vault per environment
//! staging = "https://kv-rel-staging.vault.azure.net"
//!
//! [forge]                                       # optional: where `--open-pr` opens pull requests
//! kind = "github"                               # github | gitea | gitlab (default: from the remote URL)
//! api-url = "https://api.github.com"            # default: from the kind and the remote's host
//! repo = "example-org/gitops"                   # default: from the remote URL
//! base = "main"                                 # the branch pull requests target
//! remote = "origin"                             # the git remote rel pushes to
//! [environments.staging.smoke]                  # `rel gate smoke --env staging`
//! base-url = "https://staging.example.com"      # --base-url overrides
//! timeout = "10s"                               # per check (default 10s); `500ms`, `2s`, `1m`
//! retries = 2                                   # connection errors only (default 2)
//!
//! [[environments.staging.smoke.checks]]
//! kind = "http"                                 # dns tls http readyz jwks websocket spa query version
//! path = "/healthz"                             # or `url = "https://..."`
//! status = 200                                  # http: expected status (default 200)
//! body-contains = "ok"                          # http: a substring of the body
//! json-field = "/status"                        # http/version/query: a JSON pointer ...
//! equals = "ok"                                 # ... and its expected value
//!
//! [environments.staging.headroom]               # `rel gate headroom --env staging`
//! node-labels = { agentpool = "nodepool1" }     # count only these nodes
//! fail = true                                   # as --fail: not enough headroom fails the gate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use image_ref::ImageRef;
use serde::Deserialize;
use toml::Spanned;

use crate::source_error::SourceError;

/// The file name rel looks for.
pub const FILE_NAME: &str = "rel.toml";

/// The parsed, validated project configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory holding `rel.toml`; relative paths in it are relative to this.
    pub root: PathBuf,
    /// Default image repository prefix, e.g. `registry.example.com/platform`.
    pub registry: String,
    /// Source repository of built components (`org/name`), written to lockfiles as `repo`.
    pub repo: Option<String>,
    pub components: BTreeMap<String, Component>,
    pub environments: BTreeMap<String, Environment>,
    /// Where genesis envelopes are kept (`[secrets]`).
    pub secrets: SecretsConfig,
    /// Where pull requests go; `None` when rel.toml has no `[forge]` (detected from the remote).
    pub forge: Option<ForgeConfig>,
    /// Keys that sign releases (`[trust]`); `None`: releases are not verified.
    pub trust: Option<crate::signing::TrustConfig>,
}

/// The `[forge]` section: every field optional, the rest is detected from the git remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgeConfig {
    pub kind: Option<ForgeKind>,
    pub api_url: Option<String>,
    pub repo: Option<String>,
    pub base: Option<String>,
    pub remote: Option<String>,
}

/// The forges rel opens pull requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// GitHub and GitHub Enterprise (REST v3).
    Github,
    /// Gitea and Forgejo (API v1).
    Gitea,
    /// GitLab (REST v4 merge requests).
    Gitlab,
}

/// Which secret store `rel secrets` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// A directory of files, mode 0600, every version kept (the embedded default).
    File,
    /// Azure Key Vault, one vault per environment.
    Azure,
}

/// The `[secrets]` section: the secret store and where envelopes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsConfig {
    /// The store used when `--store` is not given.
    pub store: StoreKind,
    /// The file store's root, relative to the project root; environment `E` lives in `<dir>/E`.
    pub dir: PathBuf,
    /// The envelope file per environment, relative to the project root; `{env}` is replaced.
    pub envelope: String,
    /// Key Vault URL per environment.
    pub vaults: BTreeMap<String, String>,
}

/// Default file store directory (gitignored).
pub const DEFAULT_SECRETS_DIR: &str = ".rel/secrets";
/// Default envelope path pattern (gitignored).
pub const DEFAULT_ENVELOPE: &str = ".rel/genesis/{env}.b64";

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            store: StoreKind::File,
            dir: PathBuf::from(DEFAULT_SECRETS_DIR),
            envelope: DEFAULT_ENVELOPE.to_owned(),
            vaults: BTreeMap::new(),
        }
    }
}

impl SecretsConfig {
    /// The envelope path of environment `env`, relative to the project root.
    pub fn envelope_path(&self, env: &str) -> PathBuf {
        PathBuf::from(self.envelope.replace("{env}", env))
    }
}

/// One deployable image.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub source: ComponentSource,
    /// The image name (no tag, no digest): `registry/name` unless `image` overrides it.
    pub image: ImageRef,
    /// Whether the lockfile entry must carry `builtAgainstEngine` equal to `engineVersion`.
    pub built_against_engine: bool,
}

/// Where a component's image comes from.
#[derive(Debug, Clone)]
pub enum ComponentSource {
    /// Built from a crate of this workspace.
    Built {
        krate: String,
        bin: String,
        features: Vec<String>,
        /// A base image (registry reference or OCI layout path) whose layers come first.
        base: Option<String>,
    },
    /// Built elsewhere and pinned by digest.
    External { repo: String },
}

impl Component {
    pub fn is_built(&self) -> bool {
        matches!(self.source, ComponentSource::Built { .. })
    }
}

/// A deployment environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The kustomize overlay directory, relative to the project root.
    pub overlay: PathBuf,
    /// The environment a validated release of this one is promoted into.
    pub promotes_to: Option<String>,
    /// The smoke checks of `rel gate smoke` (`[environments.<name>.smoke]`).
    pub smoke: Option<Smoke>,
    /// Settings of `rel gate headroom` (`[environments.<name>.headroom]`).
    pub headroom: Headroom,
    /// Where the environment runs: a cluster reconciled by Argo CD, or this machine's stage.
    pub runtime: Runtime,
    /// How long a version must have been validated here before it may be promoted out
    /// (`soak = "24h"`); `None`: no soak.
    pub soak: Option<Duration>,
}

/// Where an environment runs (`stage = true` in rel.toml for the local stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `rel up`'s local stage (crates/stage): no cluster, no Argo CD.
    Stage,
    /// A cluster whose Argo CD Application reconciles the overlay.
    Cluster(ArgoApp),
}

/// The Argo CD Application of a cluster environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoApp {
    /// `argocd-app` [default: `platform-<env>`, as templates/argocd names them].
    pub name: String,
    /// `argocd-namespace` [default: `argocd`].
    pub namespace: String,
}

/// `[environments.<name>.smoke]`: what `rel gate smoke` checks in an environment.
#[derive(Debug, Clone)]
pub struct Smoke {
    /// Base URL of relative check paths (`--base-url` overrides it).
    pub base_url: Option<String>,
    /// Per-check timeout unless the check sets its own.
    pub timeout: Duration,
    /// Retries of a check whose connection failed (refused, reset), with backoff.
    pub retries: u32,
    pub checks: Vec<SmokeCheck>,
}

/// One declared smoke check.
#[derive(Debug, Clone)]
pub struct SmokeCheck {
    /// The row name in the report (default: `<kind> <path>`).
    pub name: String,
    /// Where: an absolute URL, or a path joined to the base URL.
    pub target: SmokeTarget,
    /// Runs only in the deep profile (`query` always does).
    pub deep_only: bool,
    pub timeout: Option<Duration>,
    pub kind: SmokeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeTarget {
    Path(String),
    Url(String),
}

/// A JSON field (RFC 6901 pointer) and, optionally, the value it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonExpect {
    pub pointer: String,
    pub equals: Option<String>,
}

/// The built-in check kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeKind {
    /// The host resolves (default: the base URL's host).
    Dns { host: Option<String> },
    /// TLS handshake succeeds and the certificate is valid for more than `min_days`.
    Tls { min_days: u32 },
    /// An HTTP GET: status, body substring, JSON field.
    Http {
        status: u16,
        body_contains: Option<String>,
        json: Option<JsonExpect>,
    },
    /// `GET /readyz` answers 200 (503 until migrated).
    Readyz,
    /// The JWKS document has at least one usable signing key.
    Jwks,
    /// A WebSocket upgrade is accepted (101 with the right `Sec-WebSocket-Accept`).
    WebSocket,
    /// The SPA index loads and every script/stylesheet it references loads.
    Spa,
    /// An authenticated `POST` through the gateway with the smoke token (deep only).
    Query {
        body: String,
        status: u16,
        json: Option<JsonExpect>,
    },
    /// `GET /version` names the version being validated.
    Version { pointer: String },
}

impl SmokeKind {
    pub fn label(&self) -> &'static str {
        match self {
            SmokeKind::Dns { .. } => "dns",
            SmokeKind::Tls { .. } => "tls",
            SmokeKind::Http { .. } => "http",
            SmokeKind::Readyz => "readyz",
            SmokeKind::Jwks => "jwks",
            SmokeKind::WebSocket => "websocket",
            SmokeKind::Spa => "spa",
            SmokeKind::Query { .. } => "query",
            SmokeKind::Version { .. } => "version",
        }
    }

    /// The path a kind checks when the declaration names none.
    fn default_path(&self) -> &'static str {
        match self {
            SmokeKind::Readyz => "/readyz",
            SmokeKind::Jwks => "/.well-known/jwks.json",
            SmokeKind::Query { .. } => "/api/query",
            SmokeKind::Version { .. } => "/version",
            _ => "/",
        }
    }
}

/// `[environments.<name>.headroom]`
#[derive(Debug, Clone, Default)]
pub struct Headroom {
    /// Only nodes carrying all these labels count (a node pool), e.g. `{ agentpool = "nodepool1" }`.
    pub node_labels: BTreeMap<String, String>,
    /// Not enough headroom fails the gate (as `--fail`) instead of warning.
    pub fail: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    registry: Spanned<String>,
    repo: Option<String>,
    #[serde(default)]
    components: BTreeMap<Spanned<String>, Spanned<RawComponent>>,
    #[serde(default)]
    environments: BTreeMap<Spanned<String>, RawEnvironment>,
    secrets: Option<RawSecrets>,
    forge: Option<RawForge>,
    trust: Option<crate::signing::RawTrust>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSecrets {
    store: Option<StoreKind>,
    dir: Option<Spanned<String>>,
    envelope: Option<Spanned<String>>,
    #[serde(default)]
    vaults: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawForge {
    kind: Option<ForgeKind>,
    api_url: Option<Spanned<String>>,
    repo: Option<Spanned<String>>,
    base: Option<String>,
    remote: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawComponent {
    #[serde(rename = "crate")]
    krate: Option<String>,
    bin: Option<String>,
    #[serde(default)]
    features: Vec<String>,
    base: Option<String>,
    repo: Option<String>,
    image: Option<Spanned<String>>,
    #[serde(default)]
    built_against_engine: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEnvironment {
    overlay: Option<String>,
    promotes_to: Option<Spanned<String>>,
    smoke: Option<RawSmoke>,
    headroom: Option<RawHeadroom>,
    #[serde(default)]
    stage: bool,
    argocd_app: Option<String>,
    argocd_namespace: Option<String>,
    soak: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSmoke {
    base_url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    #[serde(default)]
    checks: Vec<Spanned<RawSmokeCheck>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RawKind {
    Dns,
    Tls,
    Http,
    Readyz,
    Jwks,
    Websocket,
    Spa,
    Query,
    Version,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSmokeCheck {
    kind: RawKind,
    name: Option<String>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    host: Option<String>,
    status: Option<u16>,
    body_contains: Option<String>,
    json_field: Option<Spanned<String>>,
    equals: Option<String>,
    min_days: Option<u32>,
    body: Option<String>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    deep_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHeadroom {
    #[serde(default)]
    node_labels: BTreeMap<String, String>,
    #[serde(default)]
    fail: bool,
}

/// A duration as written in rel.toml: `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

/// A git remote name rel may pass to `git push`/`git fetch`: what `git remote add` accepts, and
/// never something git could read as an option.
pub fn valid_remote_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.', '/'])
        && !name.ends_with(['.', '/'])
        && !name.contains("..")
        && !name.contains("//")
        && !name.ends_with(".lock")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Component and environment names: lowercase letters, digits and `-`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 63
}

type SpanErr<'a> = dyn Fn(std::ops::Range<usize>, String, &str) -> SourceError + 'a;

fn duration_at(value: &Spanned<String>, err: &SpanErr) -> Result<Duration, SourceError> {
    parse_duration(value.get_ref())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            err(
                value.span(),
                format!("`{}` is not a duration", value.get_ref()),
                "write a whole number with a unit: `500ms`, `10s` or `2m`",
            )
        })
}

/// `soak = "24h"`: a humane duration (`s`, `m`, `h`, `d`), more than zero.
fn soak_at(value: &Spanned<String>, err: &SpanErr) -> Result<Duration, SourceError> {
    crate::clock::parse_duration(value.get_ref())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            err(
                value.span(),
                format!("`soak = \"{}\"` is not a soak window", value.get_ref()),
                "write whole numbers with units s, m, h or d, largest first: `soak = \"24h\"`, `\"2d\"`, `\"1d12h\"` (remove the line for no soak)",
            )
        })
}

fn smoke_from_raw(raw: RawSmoke, err: &SpanErr) -> Result<Smoke, SourceError> {
    if let Some(base) = &raw.base_url
        && !(base.get_ref().starts_with("http://") || base.get_ref().starts_with("https://"))
    {
        return Err(err(
            base.span(),
            format!("`base-url = \"{}\"` is not an http(s) URL", base.get_ref()),
            "write it as `https://host[:port]`",
        ));
    }
    let timeout = match &raw.timeout {
        Some(t) => duration_at(t, err)?,
        None => Duration::from_secs(10),
    };
    let mut checks = Vec::new();
    for spanned in raw.checks {
        let span = spanned.span();
        let c = spanned.into_inner();
        let kind_name = kind_label(c.kind);
        // Fields a kind does not read are mistakes: say so rather than ignore them.
        let allowed: &[&str] = match c.kind {
            RawKind::Dns => &["host"],
            RawKind::Tls => &["min-days"],
            RawKind::Http => &["status", "body-contains", "json-field", "equals"],
            RawKind::Query => &["status", "json-field", "equals", "body"],
            RawKind::Version => &["json-field"],
            RawKind::Readyz | RawKind::Jwks | RawKind::Websocket | RawKind::Spa => &[],
        };
        let given = [
            ("host", c.host.is_some()),
            ("min-days", c.min_days.is_some()),
            ("status", c.status.is_some()),
            ("body-contains", c.body_contains.is_some()),
            ("json-field", c.json_field.is_some()),
            ("equals", c.equals.is_some()),
            ("body", c.body.is_some()),
        ];
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            return Err(err(
                span,
                format!("smoke check kind `{kind_name}` does not take `{field}`"),
                &format!(
                    "`{kind_name}` takes: {}",
                    if allowed.is_empty() {
                        "path or url only".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
        if c.kind == RawKind::Dns && (c.path.is_some() || c.url.is_some()) {
            return Err(err(
                span,
                "a `dns` check takes `host`, not `path` or `url`".to_owned(),
                "write `host = \"name.example.com\"` (default: the base URL's host)",
            ));
        }
        if c.equals.is_some() && c.json_field.is_none() {
            return Err(err(
                span,
                "`equals` needs `json-field`".to_owned(),
                "add `json-field = \"/pointer/to/field\"` (RFC 6901)",
            ));
        }
        let json = match &c.json_field {
            Some(p) if !(p.get_ref().is_empty() || p.get_ref().starts_with('/')) => {
                return Err(err(
                    p.span(),
                    format!("`json-field = \"{}\"` is not a JSON pointer", p.get_ref()),
                    "write it as `/field/sub` (RFC 6901)",
                ));
            }
            Some(p) => Some(JsonExpect {
                pointer: p.get_ref().clone(),
                equals: c.equals.clone(),
            }),
            None => None,
        };
        if let Some(u) = &c.url
            && !(u.get_ref().starts_with("http://")
                || u.get_ref().starts_with("https://")
                || u.get_ref().starts_with("ws://")
                || u.get_ref().starts_with("wss://"))
        {
            return Err(err(
                u.span(),
                format!("`url = \"{}\"` is not an absolute URL", u.get_ref()),
                "use `path = \"/...\"` for a path under the base URL",
            ));
        }
        if c.url.is_some() && c.path.is_some() {
            return Err(err(
                span,
                "a smoke check sets both `url` and `path`".to_owned(),
                "keep one: `url` is absolute, `path` joins the base URL",
            ));
        }
        if let Some(p) = &c.path
            && !p.get_ref().starts_with('/')
        {
            return Err(err(
                p.span(),
                format!("`path = \"{}\"` does not start with `/`", p.get_ref()),
                "write the path from the root, e.g. `/healthz`",
            ));
        }
        let kind = match c.kind {
            RawKind::Dns => SmokeKind::Dns { host: c.host },
            RawKind::Tls => SmokeKind::Tls {
                min_days: c.min_days.unwrap_or(14),
            },
            RawKind::Http => SmokeKind::Http {
                status: c.status.unwrap_or(200),
                body_contains: c.body_contains,
                json,
            },
            RawKind::Readyz => SmokeKind::Readyz,
            RawKind::Jwks => SmokeKind::Jwks,
            RawKind::Websocket => SmokeKind::WebSocket,
            RawKind::Spa => SmokeKind::Spa,
            RawKind::Query => SmokeKind::Query {
                body: c.body.unwrap_or_else(|| "{}".to_owned()),
                status: c.status.unwrap_or(200),
                json,
            },
            RawKind::Version => SmokeKind::Version {
                pointer: json.map_or_else(|| "/version".to_owned(), |j| j.pointer),
            },
        };
        let target = match (c.url, c.path) {
            (Some(u), _) => SmokeTarget::Url(u.into_inner()),
            (None, Some(p)) => SmokeTarget::Path(p.into_inner()),
            (None, None) => SmokeTarget::Path(kind.default_path().to_owned()),
        };
        let name = c.name.unwrap_or_else(|| match (&kind, &target) {
            (SmokeKind::Dns { host: Some(h) }, _) => format!("dns {h}"),
            (SmokeKind::Dns { host: None } | SmokeKind::Tls { .. }, _) => kind.label().to_owned(),
            (_, SmokeTarget::Path(p)) => format!("{} {p}", kind.label()),
            (_, SmokeTarget::Url(u)) => format!("{} {u}", kind.label()),
        });
        if checks.iter().any(|other: &SmokeCheck| other.name == name) {
            return Err(err(
                span,
                format!("two smoke checks are named `{name}`"),
                "give one of them a `name = \"...\"`",
            ));
        }
        let timeout = match &c.timeout {
            Some(t) => Some(duration_at(t, err)?),
            None => None,
        };
        let deep_only = c.deep_only || matches!(kind, SmokeKind::Query { .. });
        checks.push(SmokeCheck {
            name,
            target,
            deep_only,
            timeout,
            kind,
        });
    }
    Ok(Smoke {
        base_url: raw
            .base_url
            .map(|b| b.into_inner().trim_end_matches('/').to_owned()),
        timeout,
        retries: raw.retries.unwrap_or(2),
        checks,
    })
}

fn kind_label(kind: RawKind) -> &'static str {
    match kind {
        RawKind::Dns => "dns",
        RawKind::Tls => "tls",
        RawKind::Http => "http",
        RawKind::Readyz => "readyz",
        RawKind::Jwks => "jwks",
        RawKind::Websocket => "websocket",
        RawKind::Spa => "spa",
        RawKind::Query => "query",
        RawKind::Version => "version",
    }
}

impl Config {
    /// Read and validate `path` (a `rel.toml`).
    pub fn load(path: &Path) -> Result<Config, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
            action: "read the project configuration",
            path: path.to_path_buf(),
            source,
        })?;
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Config::parse(path, &text, root)?)
    }

    /// Parse configuration text; `path` is used in error messages, `root` anchors relative paths.
    pub fn parse(path: &Path, text: &str, root: PathBuf) -> Result<Config, SourceError> {
        let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
            SourceError::at_offset(path, text, span.start, span.end - span.start, msg)
                .with_help(help.to_owned())
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            err(
                span,
                e.message().trim().to_owned(),
                "see the schema at the top of src/config.rs, or `rel.toml` in the rel repository",
            )
        })?;

        let registry = raw.registry.get_ref().trim_end_matches('/').to_owned();
        if ImageRef::new(&registry, "probe").is_err() {
            return Err(err(
                raw.registry.span(),
                format!("`registry = \"{registry}\"` is not a valid image repository prefix"),
                "use a registry host and optional path, e.g. `registry.example.com/platform` or `localhost:5000/platform`",
            ));
        }

        let mut components = BTreeMap::new();
        for (name, raw_component) in raw.components {
            let span = name.span();
            let name = name.into_inner();
            if !valid_name(&name) {
                return Err(err(
                    span,
                    format!("component name `{name}` is invalid"),
                    "use lowercase letters, digits and `-`, starting with a letter (it becomes an image name)",
                ));
            }
            let body_span = raw_component.span();
            let c = raw_component.into_inner();
            let source = match (c.krate, c.repo) {
                (Some(krate), None) => ComponentSource::Built {
                    bin: c.bin.unwrap_or_else(|| name.clone()),
                    krate,
                    features: c.features,
                    base: c.base,
                },
                (None, Some(repo)) => {
                    if c.bin.is_some() || !c.features.is_empty() || c.base.is_some() {
                        return Err(err(
                            body_span,
                            format!(
                                "component `{name}` is external (`repo`) but also sets `bin`, `features` or `base`"
                            ),
                            "external components are pinned by digest only; drop the build settings or use `crate` instead of `repo`",
                        ));
                    }
                    ComponentSource::External { repo }
                }
                (Some(_), Some(_)) => {
                    return Err(err(
                        body_span,
                        format!("component `{name}` sets both `crate` and `repo`"),
                        "a component is either built from a workspace crate (`crate = ...`) or external (`repo = \"org/name\"`), not both",
                    ));
                }
                (None, None) => {
                    return Err(err(
                        body_span,
                        format!("component `{name}` sets neither `crate` nor `repo`"),
                        "add `crate = \"<workspace crate>\"` for a built component, or `repo = \"org/name\"` for an external one",
                    ));
                }
            };
            let image = match &c.image {
                Some(image) => image.get_ref().parse::<ImageRef>().ok().filter(|r| r.tag().is_none() && r.digest().is_none()).ok_or_else(|| {
                    err(
                        image.span(),
                        format!("`image = \"{}\"` of component `{name}` is not an image name", image.get_ref()),
                        "give the image repository without tag or digest, e.g. `ghcr.io/org/console`",
                    )
                })?,
                None => ImageRef::new(&registry, &name).map_err(|e| {
                    err(span.clone(), format!("component `{name}`: {e}"), "component names must be valid image path components")
                })?,
            };
            components.insert(
                name.clone(),
                Component {
                    name,
                    source,
                    image,
                    built_against_engine: c.built_against_engine,
                },
            );
        }

        let mut environments = BTreeMap::new();
        let env_names: Vec<String> = raw
            .environments
            .keys()
            .map(|k| k.get_ref().clone())
            .collect();
        let mut promotion_sources: BTreeMap<String, String> = BTreeMap::new();
        let promotion_edges: Vec<(String, String, std::ops::Range<usize>)> = raw
            .environments
            .iter()
            .filter_map(|(k, e)| {
                let t = e.promotes_to.as_ref()?;
                Some((k.get_ref().clone(), t.get_ref().clone(), t.span()))
            })
            .collect();
        // A cycle (a -> b -> a) would let a version promote forever without reaching a last stage.
        for (start, _, span) in &promotion_edges {
            let mut seen = vec![start.clone()];
            let mut at = start.clone();
            while let Some((_, next, _)) = promotion_edges.iter().find(|(from, _, _)| *from == at) {
                if seen.contains(next) {
                    if next == start && seen.len() > 1 {
                        seen.push(next.clone());
                        return Err(err(
                            span.clone(),
                            format!("the promotion chain has a cycle: {}", seen.join(" -> ")),
                            "promotion goes one way (local -> staging -> prod): remove `promotes-to` from the last environment",
                        ));
                    }
                    break;
                }
                seen.push(next.clone());
                at = next.clone();
            }
        }
        for (name, e) in raw.environments {
            let span = name.span();
            let name = name.into_inner();
            if !valid_name(&name) {
                return Err(err(
                    span,
                    format!("environment name `{name}` is invalid"),
                    "use lowercase letters, digits and `-`",
                ));
            }
            if let Some(target) = &e.promotes_to
                && target.get_ref() == &name
            {
                return Err(err(
                    target.span(),
                    format!("environment `{name}` promotes to itself"),
                    "`promotes-to` names the next environment (e.g. staging promotes to prod); remove it from the last one",
                ));
            }
            if let Some(target) = &e.promotes_to
                && let Some(other) =
                    promotion_sources.insert(target.get_ref().clone(), name.clone())
            {
                return Err(err(
                    target.span(),
                    format!(
                        "environments `{other}` and `{name}` both promote to `{}`",
                        target.get_ref()
                    ),
                    "each environment has one source: a chain like local -> staging -> prod",
                ));
            }
            if let Some(target) = &e.promotes_to
                && !env_names.contains(target.get_ref())
            {
                return Err(err(
                    target.span(),
                    format!(
                        "environment `{name}` promotes to `{}`, which is not defined",
                        target.get_ref()
                    ),
                    &format!(
                        "define it with `[environments.{}]`, or fix the name (known: {})",
                        target.get_ref(),
                        env_names.join(", ")
                    ),
                ));
            }
            let overlay = PathBuf::from(e.overlay.unwrap_or_else(|| format!("overlays/{name}")));
            let smoke = match e.smoke {
                Some(raw) => Some(smoke_from_raw(raw, &err)?),
                None => None,
            };
            let headroom = e.headroom.map_or_else(Headroom::default, |h| Headroom {
                node_labels: h.node_labels,
                fail: h.fail,
            });
            let runtime = if e.stage {
                if e.argocd_app.is_some() || e.argocd_namespace.is_some() {
                    return Err(err(
                        span,
                        format!(
                            "environment `{name}` is a local stage (`stage = true`) and names an Argo CD Application"
                        ),
                        "a stage runs on this machine without Argo CD: remove `argocd-app`/`argocd-namespace`, or `stage`",
                    ));
                }
                Runtime::Stage
            } else {
                Runtime::Cluster(ArgoApp {
                    name: e.argocd_app.unwrap_or_else(|| format!("platform-{name}")),
                    namespace: e.argocd_namespace.unwrap_or_else(|| "argocd".to_owned()),
                })
            };
            let soak = match &e.soak {
                Some(text) => Some(soak_at(text, &err)?),
                None => None,
            };
            environments.insert(
                name.clone(),
                Environment {
                    name,
                    overlay,
                    promotes_to: e.promotes_to.map(Spanned::into_inner),
                    smoke,
                    headroom,
                    runtime,
                    soak,
                },
            );
        }

        let secrets = match raw.secrets {
            None => SecretsConfig::default(),
            Some(s) => {
                let mut out = SecretsConfig::default();
                if let Some(store) = s.store {
                    out.store = store;
                }
                if let Some(dir) = s.dir {
                    if dir.get_ref().trim().is_empty() {
                        return Err(err(
                            dir.span(),
                            "`dir` is empty".to_owned(),
                            "give the file store's directory, e.g. `.rel/secrets`",
                        ));
                    }
                    out.dir = PathBuf::from(dir.into_inner());
                }
                if let Some(envelope) = s.envelope {
                    if !envelope.get_ref().contains("{env}") {
                        return Err(err(
                            envelope.span(),
                            format!(
                                "`envelope = \"{}\"` does not contain `{{env}}`",
                                envelope.get_ref()
                            ),
                            "each environment has its own envelope: write the path with `{env}`, e.g. `.rel/genesis/{env}.b64`",
                        ));
                    }
                    out.envelope = envelope.into_inner();
                }
                for (env, url) in s.vaults {
                    if !environments.is_empty() && !environments.contains_key(env.get_ref()) {
                        return Err(err(
                            env.span(),
                            format!(
                                "`[secrets.vaults]` names environment `{}`, which is not defined",
                                env.get_ref()
                            ),
                            &format!("environments in rel.toml: {}", env_names.join(", ")),
                        ));
                    }
                    if !url.get_ref().starts_with("https://") {
                        return Err(err(
                            url.span(),
                            format!("vault `{}` is not an https:// URL", url.get_ref()),
                            "give the vault's URI, like https://kv-rel-staging.vault.azure.net",
                        ));
                    }
                    out.vaults.insert(env.into_inner(), url.into_inner());
                }
                out
            }
        };

        let forge = match raw.forge {
            None => None,
            Some(f) => {
                if let Some(url) = &f.api_url
                    && !(url.get_ref().starts_with("https://")
                        || url.get_ref().starts_with("http://"))
                {
                    return Err(err(
                        url.span(),
                        format!("`api-url = \"{}\"` is not an http(s) URL", url.get_ref()),
                        "give the API base, e.g. `https://api.github.com`, `https://gitea.example.com/api/v1` or `https://gitlab.example.com/api/v4`",
                    ));
                }
                if let Some(repo) = &f.repo
                    && !repo.get_ref().contains('/')
                {
                    return Err(err(
                        repo.span(),
                        format!("`repo = \"{}\"` is not `owner/name`", repo.get_ref()),
                        "write the repository as `owner/name` (GitLab: `group/subgroup/name`)",
                    ));
                }
                if let Some(remote) = &f.remote
                    && !valid_remote_name(remote.get_ref())
                {
                    return Err(err(
                        remote.span(),
                        format!(
                            "`remote = \"{}\"` is not a git remote name",
                            remote.get_ref().escape_debug()
                        ),
                        "name a remote of this clone as `git remote` lists it (e.g. `origin`): no leading `-`, no spaces, `:`, `..` or control characters",
                    ));
                }
                Some(ForgeConfig {
                    kind: f.kind,
                    api_url: f
                        .api_url
                        .map(|u| u.into_inner().trim_end_matches('/').to_owned()),
                    repo: f.repo.map(Spanned::into_inner),
                    base: f.base,
                    remote: f.remote.map(Spanned::into_inner),
                })
            }
        };

        let trust = match raw.trust {
            None => None,
            Some(t) => Some(
                t.validate(&environments.keys().cloned().collect::<Vec<_>>())
                    .map_err(|(span, msg, help)| err(span, msg, help))?,
            ),
        };

        Ok(Config {
            root,
            registry,
            repo: raw.repo,
            components,
            environments,
            secrets,
            forge,
            trust,
        })
    }

    /// The environment named `name`, or an error listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, crate::Error> {
        self.environments
            .get(name)
            .ok_or_else(|| crate::Error::UnknownEnvironment {
                name: name.to_owned(),
                known: self
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The environment that promotes into `target` (its source), if any.
    pub fn promotes_from(&self, target: &str) -> Option<&Environment> {
        self.environments
            .values()
            .find(|e| e.promotes_to.as_deref() == Some(target))
    }

    /// Absolute path of an environment's overlay directory.
    pub fn overlay_dir(&self, env: &Environment) -> PathBuf {
        self.root.join(&env.overlay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, SourceError> {
        Config::parse(Path::new("rel.toml"), text, PathBuf::from("/p"))
    }

    const GOOD: &str = r#"
registry = "registry.example.com/platform"
repo = "example-org/platform"

[components.identity]
crate = "identity"

[components.gateway]
crate = "node"
bin = "gateway"
features = ["gateway"]

[components.console]
repo = "example-org/console"
built-against-engine = true

[environments.staging]
overlay = "overlays/staging"
promotes-to = "prod"

[environments.prod]
overlay = "overlays/prod"
"#;

    #[test]
    fn parses_a_full_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.registry, "registry.example.com/platform");
        let id = &c.components["identity"];
        assert!(
            matches!(&id.source, ComponentSource::Built { krate, bin, .. } if krate == "identity" && bin == "identity")
        );
        assert_eq!(
            id.image.to_string(),
            "registry.example.com/platform/identity"
        );
        assert!(!id.built_against_engine);
        let gw = &c.components["gateway"];
        assert!(
            matches!(&gw.source, ComponentSource::Built { features, .. } if features == &["gateway"])
        );
        assert!(c.components["console"].built_against_engine);
        assert_eq!(
            c.environments["staging"].promotes_to.as_deref(),
            Some("prod")
        );
        assert_eq!(c.promotes_from("prod").unwrap().name, "staging");
        assert_eq!(
            c.overlay_dir(&c.environments["prod"]),
            PathBuf::from("/p/overlays/prod")
        );
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            (
                "registry = \"r.io/p\"\n[components.a]\ncrate = \"a\"\nfeatures = \"x\"\n",
                4,
                "invalid type",
            ),
            (
                "registry = \"r.io/p\"\n[components.a]\ncrat = \"a\"\n",
                3,
                "unknown field `crat`",
            ),
            (
                "registry = \"r.io/p\"\n[components.a]\nbin = \"a\"\n",
                2,
                "neither `crate` nor `repo`",
            ),
            (
                "registry = \"r.io/p\"\n[components.a]\ncrate = \"a\"\nrepo = \"o/a\"\n",
                2,
                "both `crate` and `repo`",
            ),
            (
                "registry = \"r.io/p\"\n[components.Bad]\ncrate = \"a\"\n",
                2,
                "component name `Bad` is invalid",
            ),
            (
                "registry = \"r.io/p\"\n\n[environments.staging]\npromotes-to = \"prd\"\n",
                4,
                "`prd`, which is not defined",
            ),
            (
                "registry = \"HTTP://x\"\n",
                1,
                "not a valid image repository prefix",
            ),
            (
                "[components.a]\ncrate = \"a\"\n",
                1,
                "missing field `registry`",
            ),
            ("registry = \"r.io/p\"\n[components.a\n", 2, ""),
        ];
        for (text, line, want) in cases {
            let e = parse(text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(want), "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("rel.toml:{line}:")),
                "{e}"
            );
            assert!(e.help.is_some());
        }
    }

    const SMOKE: &str = r#"
registry = "r.io/p"

[environments.staging.smoke]
base-url = "https://staging.example.com/"
timeout = "500ms"

[[environments.staging.smoke.checks]]
kind = "dns"

[[environments.staging.smoke.checks]]
kind = "tls"
min-days = 30

[[environments.staging.smoke.checks]]
kind = "http"
path = "/version"
json-field = "/version"
equals = "1.0.0"
timeout = "2s"

[[environments.staging.smoke.checks]]
kind = "readyz"

[[environments.staging.smoke.checks]]
kind = "query"
body = '{"q": "ping"}'

[environments.staging.headroom]
node-labels = { agentpool = "pool1" }
fail = true
"#;

    #[test]
    fn parses_smoke_and_headroom() {
        let c = parse(SMOKE).unwrap();
        let env = &c.environments["staging"];
        let smoke = env.smoke.as_ref().unwrap();
        assert_eq!(
            smoke.base_url.as_deref(),
            Some("https://staging.example.com")
        );
        assert_eq!(smoke.timeout, Duration::from_millis(500));
        assert_eq!(smoke.retries, 2);
        let names: Vec<_> = smoke.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dns",
                "tls",
                "http /version",
                "readyz /readyz",
                "query /api/query"
            ]
        );
        assert_eq!(smoke.checks[1].kind, SmokeKind::Tls { min_days: 30 });
        assert_eq!(
            smoke.checks[2].kind,
            SmokeKind::Http {
                status: 200,
                body_contains: None,
                json: Some(JsonExpect {
                    pointer: "/version".into(),
                    equals: Some("1.0.0".into())
                })
            }
        );
        assert_eq!(smoke.checks[2].timeout, Some(Duration::from_secs(2)));
        assert_eq!(smoke.checks[3].target, SmokeTarget::Path("/readyz".into()));
        assert!(smoke.checks[4].deep_only && !smoke.checks[3].deep_only);
        assert_eq!(env.headroom.node_labels["agentpool"], "pool1");
        assert!(env.headroom.fail);
        assert!(c.environments.values().all(|e| e.name != "prod"));
    }

    #[test]
    fn smoke_errors_point_at_the_line() {
        let head = "registry = \"r.io/p\"\n[environments.s.smoke]\n";
        let cases = [
            (
                "[[environments.s.smoke.checks]]\nkind = \"ping\"\n",
                4,
                "unknown variant `ping`",
            ),
            ("timeout = \"10\"\n", 3, "`10` is not a duration"),
            (
                "base-url = \"staging.example.com\"\n",
                3,
                "is not an http(s) URL",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"readyz\"\nstatus = 200\n",
                3,
                "kind `readyz` does not take `status`",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"http\"\npath = \"healthz\"\n",
                5,
                "does not start with `/`",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"http\"\nequals = \"x\"\n",
                3,
                "`equals` needs `json-field`",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"http\"\njson-field = \"a.b\"\n",
                5,
                "is not a JSON pointer",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"readyz\"\n[[environments.s.smoke.checks]]\nkind = \"readyz\"\n",
                5,
                "two smoke checks are named `readyz /readyz`",
            ),
            (
                "[[environments.s.smoke.checks]]\nkind = \"http\"\nurl = \"/x\"\n",
                5,
                "is not an absolute URL",
            ),
            ("bogus = 1\n", 3, "unknown field `bogus`"),
        ];
        for (tail, line, want) in cases {
            let text = format!("{head}{tail}");
            let e = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert!(e.to_string().contains(want), "{text:?}: {e}");
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.help.is_some());
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn secrets_section_is_optional_and_typed() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.secrets, SecretsConfig::default());
        assert_eq!(
            c.secrets.envelope_path("prod"),
            PathBuf::from(".rel/genesis/prod.b64")
        );
        let text = format!(
            "{GOOD}\n[secrets]\nstore = \"azure\"\ndir = \"vault-files\"\nenvelope = \"sealed/{{env}}.genesis\"\n\n[secrets.vaults]\nstaging = \"https://kv-s.vault.azure.net\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.secrets.store, StoreKind::Azure);
        assert_eq!(c.secrets.dir, PathBuf::from("vault-files"));
        assert_eq!(
            c.secrets.envelope_path("staging"),
            PathBuf::from("sealed/staging.genesis")
        );
        assert_eq!(c.secrets.vaults["staging"], "https://kv-s.vault.azure.net");
    }

    #[test]
    fn secrets_errors_point_at_the_line() {
        let base = "registry = \"r.io/p\"\n[environments.staging]\n";
        let cases = [
            ("[secrets]\nstore = \"s3\"\n", 4, "unknown variant `s3`"),
            (
                "[secrets]\nenvelope = \"sealed.b64\"\n",
                4,
                "does not contain `{env}`",
            ),
            ("[secrets]\ndirr = \"x\"\n", 4, "unknown field `dirr`"),
            (
                "[secrets.vaults]\nprd = \"https://kv.vault.azure.net\"\n",
                4,
                "environment `prd`, which is not defined",
            ),
            (
                "[secrets.vaults]\nstaging = \"http://kv.vault.azure.net\"\n",
                4,
                "not an https:// URL",
            ),
        ];
        for (tail, line, want) in cases {
            let text = format!("{base}{tail}");
            let e = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn forge_section_is_optional_and_checked() {
        assert_eq!(parse(GOOD).unwrap().forge, None);
        let c = parse(&format!("{GOOD}\n[forge]\nkind = \"gitea\"\napi-url = \"http://127.0.0.1:3000/api/v1/\"\nrepo = \"org/gitops\"\nbase = \"trunk\"\n")).unwrap();
        assert_eq!(
            c.forge,
            Some(ForgeConfig {
                kind: Some(ForgeKind::Gitea),
                api_url: Some("http://127.0.0.1:3000/api/v1".into()),
                repo: Some("org/gitops".into()),
                base: Some("trunk".into()),
                remote: None,
            })
        );
        for (extra, want) in [
            (
                "[forge]\nkind = \"bitbucket\"\n",
                "unknown variant `bitbucket`",
            ),
            ("[forge]\napi-url = \"ftp://x\"\n", "is not an http(s) URL"),
            ("[forge]\nrepo = \"gitops\"\n", "is not `owner/name`"),
            ("[forge]\ntoken = \"x\"\n", "unknown field `token`"),
        ] {
            let e = parse(&format!("{GOOD}\n{extra}")).unwrap_err();
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn adding_a_component_is_three_lines() {
        let text =
            format!("{GOOD}\n[components.worker]\ncrate = \"node\"\nfeatures = [\"worker\"]\n");
        let c = parse(&text).unwrap();
        assert!(
            matches!(&c.components["worker"].source, ComponentSource::Built { bin, .. } if bin == "worker")
        );
    }

    #[test]
    fn soak_is_a_humane_duration_and_errors_point_at_its_line() {
        let base = "registry = \"r.io/p\"\n\n[environments.staging]\npromotes-to = \"prod\"\n";
        let c = parse(&format!("{base}soak = \"1d12h\"\n\n[environments.prod]\n")).unwrap();
        assert_eq!(
            c.environments["staging"].soak,
            Some(Duration::from_secs(129_600))
        );
        assert_eq!(c.environments["prod"].soak, None);
        for bad in ["24", "0h", "1w", "12h1d", "soon"] {
            let e = parse(&format!("{base}soak = \"{bad}\"\n\n[environments.prod]\n"))
                .err()
                .unwrap_or_else(|| panic!("{bad} parsed"));
            assert_eq!(e.line, 5, "{bad}: {e}");
            assert!(
                e.to_string()
                    .contains(&format!("`soak = \"{bad}\"` is not a soak window")),
                "{e}"
            );
            assert!(
                e.help
                    .as_deref()
                    .unwrap_or_default()
                    .contains("`soak = \"24h\"`")
            );
        }
    }
}
