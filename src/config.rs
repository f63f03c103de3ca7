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
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    remote: Option<String>,
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
}

/// Component and environment names: lowercase letters, digits and `-`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 63
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
            SourceError::at_offset(path, text, span.start, span.end - span.start, msg).with_help(help.to_owned())
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
                            format!("component `{name}` is external (`repo`) but also sets `bin`, `features` or `base`"),
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
                Component { name, source, image, built_against_engine: c.built_against_engine },
            );
        }

        let mut environments = BTreeMap::new();
        let env_names: Vec<String> = raw.environments.keys().map(|k| k.get_ref().clone()).collect();
        for (name, e) in raw.environments {
            let span = name.span();
            let name = name.into_inner();
            if !valid_name(&name) {
                return Err(err(span, format!("environment name `{name}` is invalid"), "use lowercase letters, digits and `-`"));
            }
            if let Some(target) = &e.promotes_to
                && !env_names.contains(target.get_ref())
            {
                return Err(err(
                    target.span(),
                    format!("environment `{name}` promotes to `{}`, which is not defined", target.get_ref()),
                    &format!("define it with `[environments.{}]`, or fix the name (known: {})", target.get_ref(), env_names.join(", ")),
                ));
            }
            let overlay = PathBuf::from(e.overlay.unwrap_or_else(|| format!("overlays/{name}")));
            environments.insert(
                name.clone(),
                Environment { name, overlay, promotes_to: e.promotes_to.map(Spanned::into_inner) },
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
                        return Err(err(dir.span(), "`dir` is empty".to_owned(), "give the file store's directory, e.g. `.rel/secrets`"));
                    }
                    out.dir = PathBuf::from(dir.into_inner());
                }
                if let Some(envelope) = s.envelope {
                    if !envelope.get_ref().contains("{env}") {
                        return Err(err(
                            envelope.span(),
                            format!("`envelope = \"{}\"` does not contain `{{env}}`", envelope.get_ref()),
                            "each environment has its own envelope: write the path with `{env}`, e.g. `.rel/genesis/{env}.b64`",
                        ));
                    }
                    out.envelope = envelope.into_inner();
                }
                for (env, url) in s.vaults {
                    if !environments.is_empty() && !environments.contains_key(env.get_ref()) {
                        return Err(err(
                            env.span(),
                            format!("`[secrets.vaults]` names environment `{}`, which is not defined", env.get_ref()),
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
                    && !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://"))
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
                    return Err(err(repo.span(), format!("`repo = \"{}\"` is not `owner/name`", repo.get_ref()), "write the repository as `owner/name` (GitLab: `group/subgroup/name`)"));
                }
                Some(ForgeConfig {
                    kind: f.kind,
                    api_url: f.api_url.map(|u| u.into_inner().trim_end_matches('/').to_owned()),
                    repo: f.repo.map(Spanned::into_inner),
                    base: f.base,
                    remote: f.remote,
                })
            }
        };

        Ok(Config { root, registry, repo: raw.repo, components, environments, secrets, forge })
    }

    /// The environment named `name`, or an error listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, crate::Error> {
        self.environments.get(name).ok_or_else(|| crate::Error::UnknownEnvironment {
            name: name.to_owned(),
            known: self.environments.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The environment that promotes into `target` (its source), if any.
    pub fn promotes_from(&self, target: &str) -> Option<&Environment> {
        self.environments.values().find(|e| e.promotes_to.as_deref() == Some(target))
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
        assert!(matches!(&id.source, ComponentSource::Built { krate, bin, .. } if krate == "identity" && bin == "identity"));
        assert_eq!(id.image.to_string(), "registry.example.com/platform/identity");
        assert!(!id.built_against_engine);
        let gw = &c.components["gateway"];
        assert!(matches!(&gw.source, ComponentSource::Built { features, .. } if features == &["gateway"]));
        assert!(c.components["console"].built_against_engine);
        assert_eq!(c.environments["staging"].promotes_to.as_deref(), Some("prod"));
        assert_eq!(c.promotes_from("prod").unwrap().name, "staging");
        assert_eq!(c.overlay_dir(&c.environments["prod"]), PathBuf::from("/p/overlays/prod"));
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            ("registry = \"r.io/p\"\n[components.a]\ncrate = \"a\"\nfeatures = \"x\"\n", 4, "invalid type"),
            ("registry = \"r.io/p\"\n[components.a]\ncrat = \"a\"\n", 3, "unknown field `crat`"),
            ("registry = \"r.io/p\"\n[components.a]\nbin = \"a\"\n", 2, "neither `crate` nor `repo`"),
            ("registry = \"r.io/p\"\n[components.a]\ncrate = \"a\"\nrepo = \"o/a\"\n", 2, "both `crate` and `repo`"),
            ("registry = \"r.io/p\"\n[components.Bad]\ncrate = \"a\"\n", 2, "component name `Bad` is invalid"),
            ("registry = \"r.io/p\"\n\n[environments.staging]\npromotes-to = \"prd\"\n", 4, "`prd`, which is not defined"),
            ("registry = \"HTTP://x\"\n", 1, "not a valid image repository prefix"),
            ("[components.a]\ncrate = \"a\"\n", 1, "missing field `registry`"),
            ("registry = \"r.io/p\"\n[components.a\n", 2, ""),
        ];
        for (text, line, want) in cases {
            let e = parse(text).err().unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(want), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("rel.toml:{line}:")), "{e}");
            assert!(e.help.is_some());
        }
    }

    #[test]
    fn secrets_section_is_optional_and_typed() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.secrets, SecretsConfig::default());
        assert_eq!(c.secrets.envelope_path("prod"), PathBuf::from(".rel/genesis/prod.b64"));
        let text = format!(
            "{GOOD}\n[secrets]\nstore = \"azure\"\ndir = \"vault-files\"\nenvelope = \"sealed/{{env}}.genesis\"\n\n[secrets.vaults]\nstaging = \"https://kv-s.vault.azure.net\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.secrets.store, StoreKind::Azure);
        assert_eq!(c.secrets.dir, PathBuf::from("vault-files"));
        assert_eq!(c.secrets.envelope_path("staging"), PathBuf::from("sealed/staging.genesis"));
        assert_eq!(c.secrets.vaults["staging"], "https://kv-s.vault.azure.net");
    }

    #[test]
    fn secrets_errors_point_at_the_line() {
        let base = "registry = \"r.io/p\"\n[environments.staging]\n";
        let cases = [
            ("[secrets]\nstore = \"s3\"\n", 4, "unknown variant `s3`"),
            ("[secrets]\nenvelope = \"sealed.b64\"\n", 4, "does not contain `{env}`"),
            ("[secrets]\ndirr = \"x\"\n", 4, "unknown field `dirr`"),
            ("[secrets.vaults]\nprd = \"https://kv.vault.azure.net\"\n", 4, "environment `prd`, which is not defined"),
            ("[secrets.vaults]\nstaging = \"http://kv.vault.azure.net\"\n", 4, "not an https:// URL"),
        ];
        for (tail, line, want) in cases {
            let text = format!("{base}{tail}");
            let e = parse(&text).err().unwrap_or_else(|| panic!("{text:?} parsed"));
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
            ("[forge]\nkind = \"bitbucket\"\n", "unknown variant `bitbucket`"),
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
        let text = format!("{GOOD}\n[components.worker]\ncrate = \"node\"\nfeatures = [\"worker\"]\n");
        let c = parse(&text).unwrap();
        assert!(matches!(&c.components["worker"].source, ComponentSource::Built { bin, .. } if bin == "worker"));
    }
}
