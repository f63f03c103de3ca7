//! What a local stage environment needs that a fresh clone does not have, generated once into the
//! gitignored `.rel/local/<env>/` and sealed into the environment's envelope: a master key, the
//! identity service's signing seed, and a service-account client for the deep gate, whose token
//! then comes from the stage's own identity Service. Only environments with `stage = true` ever
//! get generated secrets; a cluster environment's secrets are the team's to provide.

use std::path::{Path, PathBuf};

use genesis::{Entries, EntryName, EnvName, ExposeSecret, MasterKey, NameError, SecretString};
use zeroize::Zeroizing;

use crate::Error;
use crate::error::Exit;
use crate::ops::Workspace;
use crate::secrets::{KeySource, StoreTarget};

/// What stops a local stage's secrets or the deep gate's token.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LocalError {
    #[error("`{env}` is not a valid environment name")]
    #[diagnostic(
        code(rel::local::env_name),
        help("use the environment's name from rel.toml")
    )]
    EnvName {
        env: String,
        #[source]
        source: NameError,
    },

    #[error("entry {name}: not a valid envelope entry name")]
    #[diagnostic(
        code(rel::local::entry_name),
        help("this is a bug in rel: its generated entry names are fixed; please report it")
    )]
    EntryName {
        name: String,
        #[source]
        source: NameError,
    },

    #[error("the stage has no `identity` Service to issue the deep gate's token")]
    #[diagnostic(
        code(rel::local::no_identity),
        help("pass a token with --token-file or REL_SMOKE_TOKEN")
    )]
    NoIdentity,

    #[error("could not start an HTTP client")]
    #[diagnostic(
        code(rel::local::http_client),
        help(
            "the TLS backend could not start: check the platform's certificate store and free memory"
        )
    )]
    HttpClient(#[source] reqwest::Error),

    #[error("POST {url} failed")]
    #[diagnostic(
        code(rel::local::token_request),
        help("is the stage's identity ready? `rel up status --env ENV`")
    )]
    TokenRequest {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("POST {url} → {status}: no token for `{client}`")]
    #[diagnostic(
        code(rel::local::no_token),
        help(
            "the local envelope predates rel's smoke client: delete it from the store (`.rel/secrets/<env>`) and .rel/local/<env>/, then deploy again"
        )
    )]
    NoToken {
        url: String,
        status: reqwest::StatusCode,
        client: &'static str,
    },
}

impl LocalError {
    /// Every one is an input or environment error: rel could not do its job.
    pub fn exit(&self) -> Exit {
        Exit::Error
    }
}

/// The client id of the deep gate's service account on a local stage.
pub(crate) const SMOKE_CLIENT: &str = "rel-smoke";

/// What the bootstrap settled on.
#[derive(Debug)]
pub(crate) struct LocalSecrets {
    /// Where the master key comes from (the given one, or the generated file).
    pub key: KeySource,
    /// The deep gate's client secret, when rel generated the client.
    pub smoke_client_secret: Option<Zeroizing<String>>,
}

fn dir(ws: &Workspace, env: &str) -> PathBuf {
    ws.root().join(".rel/local").join(env)
}

fn random_b64() -> Result<Zeroizing<String>, Error> {
    let key = MasterKey::generate()
        .map_err(|e| crate::secrets::genesis_error("generate random bytes", e))?;
    Ok(Zeroizing::new(key.to_base64().expose_secret().to_owned()))
}

/// Create `path` with `contents` (0600) unless it exists; read it either way.
fn once(
    path: &Path,
    make: impl FnOnce() -> Result<Zeroizing<String>, Error>,
) -> Result<Zeroizing<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(Zeroizing::new(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read a generated secret", path, e)),
    }
    let value = make()?;
    match crate::atomic_write::create_new(
        path,
        format!("{}\n", value.as_str()).as_bytes(),
        Some(0o600),
    ) {
        Ok(()) => Ok(value),
        // Another run made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .map(|t| Zeroizing::new(t.trim().to_owned()))
            .map_err(|e| Error::io("read a generated secret", path, e)),
        Err(e) => Err(Error::io("write a generated secret", path, e)),
    }
}

/// Make sure the local stage `env` has a key and an envelope: generate what is missing. The
/// user's own key (REL_MASTER_KEY, --key-file) and envelope always win.
pub(crate) fn ensure(ws: &Workspace, env: &str, given: &KeySource) -> Result<LocalSecrets, Error> {
    let env_name = EnvName::new(env).map_err(|source| LocalError::EnvName {
        env: env.to_owned(),
        source,
    })?;
    let dir = dir(ws, env);
    let key = if given.is_available() {
        given.clone()
    } else {
        let path = dir.join("master.key");
        once(&path, random_b64)?;
        KeySource::File(path)
    };
    let store =
        StoreTarget::resolve(&ws.config.secrets, ws.root(), &env_name, None, None, None)?.open()?;
    let name = crate::secrets::genesis_secret_name();
    let exists = match store.get(&name, None) {
        Ok(_) => true,
        Err(secret_store::StoreError::NotFound { .. }) => false,
        Err(e) => return Err(crate::secrets::store_error("read the genesis envelope", e)),
    };
    if exists {
        // Theirs (or ours from an earlier run): the stage opens it with the key, or says why not.
        let secret = once(&dir.join("smoke-client-secret"), random_b64).ok();
        return Ok(LocalSecrets {
            key,
            smoke_client_secret: secret,
        });
    }
    let client_secret = once(&dir.join("smoke-client-secret"), random_b64)?;
    let seed = once(&dir.join("identity-signing-seed"), random_b64)?;
    let mut entries = Entries::new();
    let entry = |n: &str| {
        EntryName::new(n).map_err(|source| LocalError::EntryName {
            name: n.to_owned(),
            source,
        })
    };
    entries.insert(
        entry("IDENTITY_SIGNING_KEY_B64")?,
        SecretString::from(seed.as_str().to_owned()),
    );
    entries.insert(
        entry("IDENTITY_CLIENTS")?,
        SecretString::from(format!(
            "{SMOKE_CLIENT}:service_account:{}",
            client_secret.as_str()
        )),
    );
    let master = crate::secrets::load_key(&key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sealed = genesis::seal(&master, &env_name, &entries, now)
        .map_err(|e| crate::secrets::genesis_error("seal the local envelope", e))?;
    store
        .put(&name, &SecretString::from(sealed))
        .map_err(|e| crate::secrets::store_error("store the local envelope", e))?;
    Ok(LocalSecrets {
        key,
        smoke_client_secret: Some(client_secret),
    })
}

/// A token for the deep gate from the stage's own identity Service (client credentials).
pub(crate) fn stage_token(state: &stage::StageState, client_secret: &str) -> Result<String, Error> {
    let identity = state
        .services
        .iter()
        .find(|s| s.name == "identity")
        .and_then(|s| s.ports.first())
        .ok_or(LocalError::NoIdentity)?;
    let url = format!("http://{}/token", identity.address);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(LocalError::HttpClient)?;
    let resp = client
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SMOKE_CLIENT),
            ("client_secret", client_secret),
        ])
        .send()
        .map_err(|source| LocalError::TokenRequest {
            url: url.clone(),
            source,
        })?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().unwrap_or_default();
    match body["access_token"].as_str() {
        Some(t) if status.is_success() => Ok(t.to_owned()),
        _ => Err(LocalError::NoToken {
            url,
            status,
            client: SMOKE_CLIENT,
        }
        .into()),
    }
}
