//! Genesis envelopes and the secret store as ops: `keygen`, `seal` (`check`, `diff`), `unseal`,
//! `reseal`, and the store's `push`, `pull` and `versions`. Each takes typed options, does the
//! work (files are written through the atomic writer, mode 0600) and returns what the command
//! shows; none prints. Secret values stay in `Zeroizing`/`SecretString` types.
//!
//! Paths in errors are shown relative to `cwd`, as the user typed them.

use std::path::{Path, PathBuf};

use genesis::{EnvName, KeyId, MasterKey, OpenError, Opened, ResealError, SecretString};
use secret_store::{SecretName, VersionId, VersionInfo};
use zeroize::Zeroizing;

use crate::Error;
use crate::secrets::{self, KeySource, RevealTo, SecretsError, StoreTarget, genesis_error};
use crate::secrets::{now_unix, store_error};

fn shown(cwd: &Path, path: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn open_error(cwd: &Path, path: &Path, e: OpenError) -> Error {
    genesis_error(&format!("cannot open {}", shown(cwd, path)), e)
}

/// Generate a master key into `output` (created new, mode 0600); its key id.
pub(crate) fn keygen(cwd: &Path, output: &Path) -> Result<KeyId, Error> {
    let key = MasterKey::generate().map_err(|e| genesis_error("generate a master key", e))?;
    let mut text = Zeroizing::new(String::with_capacity(45));
    text.push_str(genesis::ExposeSecret::expose_secret(&key.to_base64()));
    text.push('\n');
    match crate::atomic_write::create_new(output, text.as_bytes(), Some(0o600)) {
        Ok(()) => Ok(key.key_id()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(SecretsError::KeyExists {
            shown: shown(cwd, output),
        }
        .into()),
        Err(e) => Err(Error::io("write the master key", output, e)),
    }
}

/// `seal`: a dotenv source sealed for one environment.
#[derive(Debug, Clone)]
pub(crate) struct SealOptions {
    pub env: EnvName,
    pub from: PathBuf,
    /// Where the envelope goes (mode 0600); `None`: returned only.
    pub output: Option<PathBuf>,
    pub key: KeySource,
}

/// A sealed envelope.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub text: String,
    pub entries: usize,
    pub key_id: KeyId,
}

pub(crate) fn seal(cwd: &Path, opts: &SealOptions) -> Result<Sealed, Error> {
    if let Some(out) = &opts.output
        && same_file(out, &opts.from)
    {
        return Err(SecretsError::OutputIsInput {
            shown: shown(cwd, out),
            what: "the source",
            why: "the source would be replaced by its sealed form",
        }
        .into());
    }
    let entries = secrets::read_source(&opts.from)?;
    let key = secrets::load_key(&opts.key)?;
    let text = genesis::seal(&key, &opts.env, &entries, now_unix())
        .map_err(|e| genesis_error("seal", e))?;
    if let Some(out) = &opts.output {
        crate::atomic_write::write_with_mode(out, format!("{text}\n").as_bytes(), Some(0o600))
            .map_err(|e| Error::io("write the envelope", out, e))?;
    }
    Ok(Sealed {
        text,
        entries: entries.len(),
        key_id: key.key_id(),
    })
}

/// `seal --check`: `Ok(Ok(summary))` when the envelope opens for `env`, `Ok(Err(why))` when it
/// does not, `Err` when the check cannot run (no key, unreadable file).
pub(crate) fn check(
    cwd: &Path,
    envelope: &Path,
    env: &EnvName,
    key: &KeySource,
) -> Result<Result<genesis::Summary, Error>, Error> {
    secrets::one_stdin(Some(envelope), key)?;
    let text = secrets::read_envelope(envelope)?;
    let key = secrets::load_key(key)?;
    Ok(genesis::check(&text, &key, env).map_err(|e| {
        genesis_error(
            &format!("{} does not pass the check", shown(cwd, envelope)),
            e,
        )
    }))
}

/// `seal diff`: what sealing `from` would change in `envelope`, values as keyed fingerprints.
pub(crate) fn diff(
    cwd: &Path,
    envelope: &Path,
    from: &Path,
    env: &EnvName,
    key: &KeySource,
) -> Result<genesis::Diff, Error> {
    secrets::one_stdin(Some(envelope), key)?;
    let text = secrets::read_envelope(envelope)?;
    let source = secrets::read_source(from)?;
    let key = secrets::load_key(key)?;
    let opened = genesis::open(&text, &key, env).map_err(|e| open_error(cwd, envelope, e))?;
    Ok(genesis::diff(&key, &opened, &source))
}

/// `unseal`: open an envelope; with `reveal_to` a file, its values are written there (0600).
#[derive(Debug, Clone)]
pub(crate) struct UnsealOptions {
    pub envelope: PathBuf,
    /// The environment it must be sealed for; `None`: any.
    pub env: Option<EnvName>,
    pub key: KeySource,
    /// Where values go, decided by the caller before any secret is read.
    pub reveal_to: Option<RevealTo>,
}

/// An opened envelope, and the dotenv text of its values when they are revealed on stdout.
pub(crate) struct Unsealed {
    pub opened: Opened,
    /// `reveal_to` stdout: the values as dotenv.
    pub dotenv: Option<Zeroizing<String>>,
}

pub(crate) fn unseal(cwd: &Path, opts: &UnsealOptions) -> Result<Unsealed, Error> {
    if let Some(RevealTo::File(out)) = &opts.reveal_to
        && (same_file(out, &opts.envelope)
            || matches!(&opts.key, KeySource::File(k) if same_file(out, k)))
    {
        return Err(SecretsError::OutputIsInput {
            shown: shown(cwd, out),
            what: "the envelope or the key",
            why: "revealing into it would replace it with plaintext (e.g. `-o staging.env.source`, which .gitignore covers)",
        }
        .into());
    }
    secrets::one_stdin(Some(&opts.envelope), &opts.key)?;
    let text = secrets::read_envelope(&opts.envelope)?;
    let key = secrets::load_key(&opts.key)?;
    let opened = match &opts.env {
        Some(env) => genesis::open(&text, &key, env),
        None => genesis::open_any_env(&text, &key),
    }
    .map_err(|e| open_error(cwd, &opts.envelope, e))?;
    let dotenv = match &opts.reveal_to {
        None => None,
        Some(RevealTo::Stdout) => Some(secrets::to_dotenv(opened.entries())),
        Some(RevealTo::File(path)) => {
            let dotenv = secrets::to_dotenv(opened.entries());
            crate::atomic_write::write_with_mode(path, dotenv.as_bytes(), Some(0o600))
                .map_err(|e| Error::io("write the revealed values", path, e))?;
            None
        }
    };
    Ok(Unsealed { opened, dotenv })
}

/// `reseal`: envelopes re-sealed from one master key to another.
#[derive(Debug, Clone)]
pub(crate) struct ResealOptions {
    pub key: KeySource,
    pub new_key: PathBuf,
    pub envelopes: Vec<PathBuf>,
    pub dry_run: bool,
}

/// What happened (or would happen) to one envelope.
pub(crate) enum ResealItem {
    Rotate(genesis::Resealed),
    Skip(KeyId),
    Fail(Error),
}

/// Every envelope's fate. When any failed, nothing was written.
pub(crate) struct Resealed {
    /// In the order given.
    pub items: Vec<(PathBuf, ResealItem)>,
    pub new_key_id: KeyId,
    /// Whether files were replaced (not a dry run, no failure).
    pub written: bool,
}

impl Resealed {
    pub(crate) fn failed(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, i)| matches!(i, ResealItem::Fail(_)))
            .count()
    }

    pub(crate) fn rotated(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, i)| matches!(i, ResealItem::Rotate(_)))
            .count()
    }
}

pub(crate) fn reseal(cwd: &Path, opts: &ResealOptions) -> Result<Resealed, Error> {
    let old = secrets::load_key(&opts.key)?;
    let new = secrets::load_key(&KeySource::File(opts.new_key.clone()))?;
    if old.key_id() == new.key_id() {
        return Err(SecretsError::SameKey {
            key_id: new.key_id().to_string(),
        }
        .into());
    }
    // Phase 1: open and re-seal everything in memory; nothing is written if any envelope fails.
    let mut items = Vec::with_capacity(opts.envelopes.len());
    for path in &opts.envelopes {
        let item = match secrets::read_envelope(path) {
            Err(e) => ResealItem::Fail(e),
            Ok(text) => match genesis::reseal(&text, &old, &new) {
                Ok(r) => ResealItem::Rotate(r),
                Err(ResealError::AlreadyUnderNewKey { key_id }) => ResealItem::Skip(key_id),
                Err(ResealError::Open(e)) => ResealItem::Fail(open_error(cwd, path, e)),
                Err(e) => ResealItem::Fail(genesis_error(
                    &format!("cannot re-seal {}", shown(cwd, path)),
                    e,
                )),
            },
        };
        items.push((path.clone(), item));
    }
    let mut outcome = Resealed {
        items,
        new_key_id: new.key_id(),
        written: false,
    };
    if opts.dry_run || outcome.failed() > 0 {
        return Ok(outcome);
    }
    // Phase 2: replace each file atomically, keeping its permissions.
    for (path, item) in &outcome.items {
        if let ResealItem::Rotate(r) = item {
            let mode = file_mode(path).unwrap_or(0o600);
            crate::atomic_write::write_with_mode(
                path,
                format!("{}\n", r.text).as_bytes(),
                Some(mode),
            )
            .map_err(|e| Error::io("write the re-sealed envelope", path, e))?;
        }
    }
    outcome.written = true;
    Ok(outcome)
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> Option<u32> {
    None
}

/// A secret stored: which, where, and its new version.
#[derive(Debug)]
pub(crate) struct Stored {
    pub name: SecretName,
    pub location: String,
    pub version: VersionId,
    pub key_id: String,
}

/// `secrets push`: the sealed envelope at `envelope` for `env` into the store. Only a sealed
/// envelope leaves this machine; with a key available it must also open for `env`.
/// `checked` in the answer says whether it was opened.
pub(crate) fn push(
    cwd: &Path,
    target: &StoreTarget,
    envelope: &Path,
    env: &EnvName,
    key: &KeySource,
) -> Result<(Stored, bool), Error> {
    secrets::one_stdin(Some(envelope), key)?;
    let text = secrets::read_envelope(envelope)?;
    let text = text.trim();
    // A dotenv source or a key given by mistake stops here.
    let header = genesis::inspect(text).map_err(|source| SecretsError::NotSealed {
        shown: shown(cwd, envelope),
        env: env.to_string(),
        source,
    })?;
    let checked = key.is_available();
    if checked {
        let key = secrets::load_key(key)?;
        genesis::check(text, &key, env).map_err(|e| open_error(cwd, envelope, e))?;
    }
    let store = target.open()?;
    let name = secrets::genesis_secret_name();
    let version = store
        .put(&name, &SecretString::from(text.to_owned()))
        .map_err(|e| store_error("push the envelope", e))?;
    Ok((
        Stored {
            name,
            location: store.location(),
            version,
            key_id: header.key_id.to_string(),
        },
        checked,
    ))
}

/// `secrets push --master-key`: the key itself, as `rel-master-key` (the External Secrets
/// template syncs it next to the envelope). Only its key id is returned.
pub(crate) fn push_master_key(target: &StoreTarget, key: &KeySource) -> Result<Stored, Error> {
    let key = secrets::load_key(key)?;
    let store = target.open()?;
    let name = secrets::master_key_secret_name();
    let version = store
        .put(&name, &key.to_base64())
        .map_err(|e| store_error("push the master key", e))?;
    Ok(Stored {
        name,
        location: store.location(),
        version,
        key_id: key.key_id().to_string(),
    })
}

/// `secrets pull`: an envelope from the store (a version, or the latest); written to `output`
/// (0600) when given.
pub(crate) fn pull(
    target: &StoreTarget,
    version: Option<&str>,
    output: Option<&Path>,
) -> Result<(Stored, String), Error> {
    let version = version
        .map(VersionId::new)
        .transpose()
        .map_err(|e| store_error("read --version", e))?;
    let store = target.open()?;
    let name = secrets::genesis_secret_name();
    let secret = store
        .get(&name, version.as_ref())
        .map_err(|e| store_error("pull the envelope", e))?;
    let text = genesis::ExposeSecret::expose_secret(&secret.value)
        .trim()
        .to_owned();
    let header = genesis::inspect(&text).map_err(|source| SecretsError::StoredNotSealed {
        name: name.to_string(),
        version: secret.version.to_string(),
        location: store.location(),
        source,
    })?;
    if let Some(out) = output {
        crate::atomic_write::write_with_mode(out, format!("{text}\n").as_bytes(), Some(0o600))
            .map_err(|e| Error::io("write the envelope", out, e))?;
    }
    Ok((
        Stored {
            name,
            location: store.location(),
            version: secret.version,
            key_id: header.key_id.to_string(),
        },
        text,
    ))
}

/// `secrets versions`: the versions of the envelope (or the master key) in the store, oldest
/// first; none is an error.
pub(crate) fn versions(
    target: &StoreTarget,
    env: &EnvName,
    master_key: bool,
) -> Result<(SecretName, String, Vec<VersionInfo>), Error> {
    let store = target.open()?;
    let name = if master_key {
        secrets::master_key_secret_name()
    } else {
        secrets::genesis_secret_name()
    };
    let versions = store
        .versions(&name)
        .map_err(|e| store_error("list the versions", e))?;
    if versions.is_empty() {
        return Err(SecretsError::NoVersions {
            name: name.to_string(),
            location: store.location(),
            env: env.to_string(),
        }
        .into());
    }
    Ok((name, store.location(), versions))
}
