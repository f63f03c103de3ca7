//! Registry credentials: given by the caller, else the Docker config (`credHelpers`, `auths`,
//! `credsStore`). Secrets are never in argv (credential helpers get the server on stdin), never
//! in `Debug`, and are zeroized on drop.
//!
//! This crate reads no environment variable of its own: the caller passes credentials it got
//! from its flags or variables ([`CredentialSources::with_credentials`]), and where the Docker
//! convention looks (`DOCKER_CONFIG`, `HOME`, `PATH`) through [`CredentialSources::docker`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// A secret string: redacted in `Debug`, no `Display`, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials {
            username: username.into(),
            password,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Where credentials may come from: the pair the caller was given, then the Docker config and
/// its credential helpers. Build it with [`CredentialSources::docker`] and
/// [`CredentialSources::with_credentials`], or by hand.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// The user name the caller was given (from its flags or environment).
    pub username: Option<String>,
    /// The password or token the caller was given.
    pub password: Option<Secret>,
    /// The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// The search path for `docker-credential-<name>` helpers (`PATH`).
    pub helper_path: Option<OsString>,
}

impl CredentialSources {
    /// The Docker convention's sources, with the process environment read through `var`
    /// (pass `std::env::var_os`): `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`, and helpers on `$PATH`.
    pub fn docker(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let docker_config = var("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .map(|d| d.join("config.json"));
        CredentialSources {
            docker_config,
            helper_path: var("PATH"),
            ..CredentialSources::default()
        }
    }

    /// Use `credentials` before anything the Docker config says.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.username = Some(credentials.username);
        self.password = Some(credentials.password);
        self
    }
}

/// Why credentials could not be resolved.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredentialError {
    #[error("a registry user name was given without a password, or a password without a user name")]
    #[diagnostic(help("give both, or neither to use the Docker config"))]
    HalfSet,
    #[error("Docker config `{path}` is not valid: {reason}")]
    #[diagnostic(help("fix the file, or point DOCKER_CONFIG at another directory"))]
    BadConfig { path: PathBuf, reason: String },
    #[error("credential helper `docker-credential-{helper}` for `{registry}` failed: {reason}")]
    #[diagnostic(help(
        "run `docker-credential-{helper} list` to check it, or give the registry user name and password explicitly"
    ))]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The host a Docker config key names: `https://index.docker.io/v1/` → `index.docker.io`.
fn config_key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Whether a Docker config key is about `registry` (Docker Hub goes by several names).
fn key_matches(key: &str, registry: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let host = config_key_host(key);
    host == registry || (hub(host) && hub(registry))
}

/// What a credential helper is asked for `registry`.
fn helper_server_url(registry: &str) -> String {
    if registry == "docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        registry.to_owned()
    }
}

/// Credentials for `registry` (`127.0.0.1:5000`, `ghcr.io`, `docker.io`): the caller's pair
/// first, then the Docker config's `credHelpers` entry, its `auths` entry, its `credsStore`.
/// `Ok(None)` means anonymous.
pub fn resolve_credentials(
    registry: &str,
    sources: &CredentialSources,
) -> Result<Option<Credentials>, CredentialError> {
    match (&sources.username, &sources.password) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        (None, None) => {}
        _ => return Err(CredentialError::HalfSet),
    }
    let Some(path) = &sources.docker_config else {
        return Ok(None);
    };
    let config = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<DockerConfig>(&bytes).map_err(|e| {
            CredentialError::BadConfig {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialError::BadConfig {
                path: path.clone(),
                reason: e.to_string(),
            });
        }
    };
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| key_matches(k, registry))
    {
        return run_helper(helper, registry, sources.helper_path.as_ref());
    }
    if let Some((_, auth)) = config.auths.iter().find(|(k, _)| key_matches(k, registry)) {
        if let Some(creds) = decode_auth(auth, path)? {
            return Ok(Some(creds));
        }
    }
    if let Some(store) = &config.creds_store {
        return run_helper(store, registry, sources.helper_path.as_ref());
    }
    Ok(None)
}

fn decode_auth(auth: &DockerAuth, path: &Path) -> Result<Option<Credentials>, CredentialError> {
    if let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = |reason: &str| CredentialError::BadConfig {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| bad("an `auth` value is not base64"))?,
        );
        let text =
            std::str::from_utf8(&decoded).map_err(|_| bad("an `auth` value is not UTF-8"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| bad("an `auth` value is not `user:password`"))?;
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: Secret::new(pass),
        }));
    }
    if let (Some(u), Some(p)) = (&auth.username, &auth.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: Secret::new(p.clone()),
        }));
    }
    Ok(None)
}

fn find_helper(name: &str, search: Option<&OsString>) -> Option<PathBuf> {
    let program = format!("docker-credential-{name}");
    std::env::split_paths(search?)
        .map(|d| d.join(&program))
        .find(|p| p.is_file())
}

/// `docker-credential-<name> get` with the server URL on stdin; "not found" answers are `None`.
fn run_helper(
    name: &str,
    registry: &str,
    search: Option<&OsString>,
) -> Result<Option<Credentials>, CredentialError> {
    let fail = |reason: String| CredentialError::Helper {
        helper: name.to_owned(),
        registry: registry.to_owned(),
        reason,
    };
    let program = find_helper(name, search).ok_or_else(|| fail("not found on PATH".into()))?;
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(helper_server_url(registry).as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let said = String::from_utf8_lossy(if stdout.is_empty() {
            &out.stderr
        } else {
            &stdout
        })
        .to_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        // The helper's own words may hold anything; only its exit status goes into the error.
        return Err(fail(format!("exited with {}", out.status)));
    }
    let HelperAnswer { username, secret } =
        serde_json::from_slice(&stdout).map_err(|_| fail("answered with invalid JSON".into()))?;
    Ok(Some(Credentials {
        username,
        password: Secret::new(secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Credentials {
            username: "ci".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!(
            "{c:?} {:?}",
            CredentialSources {
                password: Some(Secret::new("hunter2")),
                ..Default::default()
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn docker_sources_follow_docker_config_then_home() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let s = CredentialSources::docker(vars(&[("DOCKER_CONFIG", "/d"), ("HOME", "/h")]));
        assert_eq!(s.docker_config, Some(PathBuf::from("/d/config.json")));
        let s = CredentialSources::docker(vars(&[("HOME", "/h"), ("PATH", "/bin")]));
        assert_eq!(
            s.docker_config,
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        assert_eq!(s.helper_path, Some(OsString::from("/bin")));
        assert_eq!(s.username, None);
        let s = s.with_credentials(Credentials::new("u", Secret::new("p")));
        assert_eq!(resolve_credentials("r", &s).unwrap().unwrap().username, "u");
    }

    #[test]
    fn docker_hub_keys_match_every_hub_name() {
        assert!(key_matches("https://index.docker.io/v1/", "docker.io"));
        assert!(key_matches("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(key_matches("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(!key_matches("127.0.0.1:5001", "127.0.0.1:5000"));
    }

    #[test]
    fn env_pair_wins_and_half_a_pair_is_an_error() {
        let both = CredentialSources {
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            ..Default::default()
        };
        assert_eq!(
            resolve_credentials("r", &both).unwrap().unwrap().username,
            "u"
        );
        let half = CredentialSources {
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(matches!(
            resolve_credentials("r", &half),
            Err(CredentialError::HalfSet)
        ));
    }

    #[test]
    fn auths_helpers_and_store_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        // The helper reads the server from stdin and answers only for `helped.test`.
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = helped.test ]; then\n  echo '{\"ServerURL\":\"helped.test\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let config = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("au:ap");
        std::fs::write(
            &config,
            format!(r#"{{"auths":{{"https://auth.test/v1/":{{"auth":"{auth}"}},"stored.test":{{}}}},"credHelpers":{{"helped.test":"fake"}},"credsStore":"fake"}}"#),
        )
        .unwrap();
        let sources = CredentialSources {
            docker_config: Some(config),
            helper_path: Some(dir.path().as_os_str().to_owned()),
            ..Default::default()
        };
        let helped = resolve_credentials("helped.test", &sources)
            .unwrap()
            .unwrap();
        assert_eq!(
            (helped.username.as_str(), helped.password.expose()),
            ("hu", "hs")
        );
        let authed = resolve_credentials("auth.test", &sources).unwrap().unwrap();
        assert_eq!(
            (authed.username.as_str(), authed.password.expose()),
            ("au", "ap")
        );
        // `stored.test` has an empty auths entry: the credsStore is asked, and it knows nothing.
        assert_eq!(resolve_credentials("stored.test", &sources).unwrap(), None);
        let missing = CredentialSources {
            helper_path: Some(OsString::from("/nonexistent")),
            ..sources
        };
        let err = resolve_credentials("helped.test", &missing).unwrap_err();
        assert!(err.to_string().contains("docker-credential-fake"), "{err}");
    }
}
