//! The ops layer: one function per action, taking the loaded project and a typed options struct,
//! returning a typed outcome (cargo's `ops::compile(&ws, &opts)` shape).
//!
//! Commands (`src/commands/`) parse flags into these options, call one op, and render the outcome.
//! Composite actions (`release`, `deploy`) compose ops, never commands. Ops never print: progress
//! reaches the caller through an event callback.

use std::path::{Path, PathBuf};

use crate::config::Config;

pub(crate) mod build;
pub(crate) mod deploy;
pub(crate) mod freeze;
pub(crate) mod gate;
pub(crate) mod local;
pub(crate) mod lock;
pub(crate) mod promote;
pub(crate) mod record;
pub(crate) mod release;
pub(crate) mod render;
pub(crate) mod reproduce;
pub(crate) mod rollback;
pub(crate) mod secrets;
pub(crate) mod verify;

/// The project an op works on, and where the user stands (for paths as they should see them).
pub struct Workspace {
    pub config: Config,
    pub cwd: PathBuf,
    /// The release signing key, when one is given (`REL_SIGNING_KEY`, `--signing-key-file`):
    /// lockfiles, records and pushed images are then signed.
    pub signer: Option<std::sync::Arc<crate::signing::SigningKey>>,
}

impl Workspace {
    pub fn new(config: Config, cwd: PathBuf) -> Workspace {
        Workspace {
            config,
            cwd,
            signer: None,
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// A path as the user should see it: relative to the working directory when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Where the registry is and how to reach it: the flag group `build`, `release` and `deploy` share.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Image repository prefix [default: rel.toml's `registry`].
    pub registry: Option<String>,
    /// Tag published with each image [default: `git-<commit>`].
    pub tag: Option<String>,
    /// Push to the registry instead of writing OCI layouts.
    pub push: bool,
    /// Let a push move a tag that points at another digest.
    pub allow_overwrite: bool,
    /// Registry hosts spoken to over plain HTTP (loopback always is).
    pub insecure_registries: Vec<String>,
}

/// What a registry client of rel's is made with: credentials from `REL_REGISTRY_USERNAME` and
/// `REL_REGISTRY_PASSWORD` (both, non-empty) or the Docker config, and client options naming the
/// `insecure` hosts and trusting the extra CA certificates (`trust::extra_ca_pem`).
pub(crate) fn registry_setup(
    host: &str,
    insecure: &[String],
) -> Result<(Option<oci::Credentials>, oci::ClientOptions), oci::registry::CredentialError> {
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut sources = oci::CredentialSources::docker(|k| std::env::var_os(k));
    sources.username = non_empty(crate::env_vars::REGISTRY_USERNAME);
    sources.password =
        non_empty(crate::env_vars::REGISTRY_PASSWORD).map(oci::registry::Secret::new);
    let credentials = oci::resolve_credentials(host, &sources)?;
    let mut options = oci::ClientOptions {
        insecure: insecure.to_vec(),
        ..Default::default()
    };
    if let Some(pem) = crate::trust::extra_ca_pem() {
        options = options.with_ca_pem(pem.to_vec());
    }
    Ok((credentials, options))
}
