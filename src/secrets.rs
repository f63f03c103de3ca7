//! Glue between the genesis envelope (`crates/genesis`), the secret stores (`crates/secret-store`)
//! and the command line: where the master key comes from, how files are read and written, where
//! values may be revealed, and which store an environment uses.
//!
//! Nothing here prints. No error carries a secret value: dotenv errors give the line number only
//! (never the line), key errors never echo the key text.

use std::io::Read;
use std::path::{Path, PathBuf};

use genesis::{Entries, EnvName, ExposeSecret, MasterKey};
use secret_store::{
    AzureKeyVaultStore, AzureOptions, Credential, FileStore, SecretName, SecretStore,
};
use zeroize::Zeroizing;

use crate::config::{SecretsConfig, StoreKind};
use crate::{Error, env_vars};

/// A genesis error (opening, sealing, re-sealing an envelope, or a master key), kept typed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GenesisError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Open(#[from] genesis::OpenError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Seal(#[from] genesis::SealError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Reseal(#[from] genesis::ResealError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Key(#[from] genesis::KeyError),
}

/// Why a secrets command could not do its job. The genesis and store errors keep their own help
/// and code (`forward`); rel adds what it was doing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SecretsError {
    #[error("no master key: REL_MASTER_KEY is not set")]
    #[diagnostic(
        code(rel::secrets::no_master_key),
        help(
            "set REL_MASTER_KEY, or pass --key-file FILE or --key-stdin (a key is never a flag value); create one with `rel keygen -o FILE`"
        )
    )]
    NoMasterKey,

    #[error("REL_MASTER_KEY is not valid UTF-8")]
    #[diagnostic(
        code(rel::secrets::key_not_text),
        help("a master key is 44 base64 characters")
    )]
    KeyVarNotText,

    #[error("the key file {} is not text", path.display())]
    #[diagnostic(
        code(rel::secrets::key_file_not_text),
        help("a key file holds 44 base64 characters, as `rel keygen` writes it")
    )]
    KeyFileNotText { path: PathBuf },

    #[error("the master key from {from} is unusable")]
    #[diagnostic(forward(source))]
    UnusableKey {
        from: String,
        #[source]
        source: genesis::KeyError,
    },

    #[error("{}:{}: {}", path.display(), source.line, source.kind)]
    #[diagnostic(forward(source))]
    Dotenv {
        path: PathBuf,
        #[source]
        source: genesis::DotenvError,
    },

    #[error("{context}")]
    #[diagnostic(forward(source))]
    Genesis {
        context: String,
        #[source]
        source: GenesisError,
    },

    #[error("could not {action}")]
    #[diagnostic(forward(source))]
    Store {
        action: String,
        #[source]
        source: secret_store::StoreError,
    },

    #[error("refusing to print secret values to a terminal")]
    #[diagnostic(
        code(rel::secrets::terminal),
        help(
            "write them to a file with `-o FILE` (mode 0600) or pipe them (`| ...`); `--force` prints to the terminal anyway"
        )
    )]
    RevealToTerminal,

    #[error("no Key Vault for environment `{env}`")]
    #[diagnostic(
        code(rel::secrets::no_vault),
        help(
            "pass --vault https://NAME.vault.azure.net, or set it in rel.toml:\n  [secrets.vaults]\n  {env} = \"https://NAME.vault.azure.net\""
        )
    )]
    NoVault { env: String },

    #[error("{shown} already exists; rel keygen never replaces a key")]
    #[diagnostic(
        code(rel::secrets::key_exists),
        help(
            "losing a master key loses every envelope sealed under it: pick another file name, or move the old key away yourself"
        )
    )]
    KeyExists { shown: String },

    #[error("--{flag} is required")]
    #[diagnostic(code(rel::secrets::required), help("{example}"))]
    Required {
        flag: &'static str,
        example: &'static str,
    },

    #[error("-o {shown} is {what} itself")]
    #[diagnostic(
        code(rel::secrets::output_is_input),
        help("write to another file: {why}")
    )]
    OutputIsInput {
        shown: String,
        what: &'static str,
        why: &'static str,
    },

    #[error("the new key is the current key (key id {key_id})")]
    #[diagnostic(
        code(rel::secrets::same_key),
        help("generate a new key with `rel keygen -o FILE` and pass it with --new-key FILE")
    )]
    SameKey { key_id: String },

    #[error("{failed} of {total} envelopes cannot be re-sealed; nothing was written")]
    #[diagnostic(
        code(rel::secrets::reseal_failed),
        help(
            "fix or leave out the envelopes marked `failed` (each names its reason) and run again"
        )
    )]
    ResealFailed { failed: usize, total: usize },

    #[error("{shown} is not a sealed envelope; rel pushes only sealed envelopes")]
    #[diagnostic(
        code(rel::secrets::not_sealed),
        help("seal the source first: `rel seal --env {env} --from SOURCE -o {shown}`")
    )]
    NotSealed {
        shown: String,
        env: String,
        #[source]
        source: genesis::OpenError,
    },

    #[error("{name} version {version} in {location} is not a sealed envelope")]
    #[diagnostic(
        code(rel::secrets::stored_not_sealed),
        help("push a sealed envelope with `rel secrets push`")
    )]
    StoredNotSealed {
        name: String,
        version: String,
        location: String,
        #[source]
        source: genesis::OpenError,
    },

    #[error("no versions of {name} in {location}")]
    #[diagnostic(
        code(rel::secrets::no_versions),
        help("push one with `rel secrets push --env {env}`")
    )]
    NoVersions {
        name: String,
        location: String,
        env: String,
    },

    #[error("both the envelope and the master key would be read from standard input")]
    #[diagnostic(
        code(rel::secrets::one_stdin),
        help("give the key with --key-file FILE or REL_MASTER_KEY, or the envelope as a file")
    )]
    OneStdin,
}

impl SecretsError {
    /// Printing secrets to a terminal is refused (exit 1); the rest could not be done (exit 2).
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            SecretsError::RevealToTerminal | SecretsError::KeyExists { .. } => {
                crate::error::Exit::Failed
            }
            _ => crate::error::Exit::Error,
        }
    }
}

/// The secret name of the sealed envelope, in every store (Key Vault: one vault per environment;
/// file store: one directory per environment).
pub const GENESIS_SECRET: &str = "rel-genesis-b64";
/// The secret name of the master key, should it be kept in the same store.
pub const MASTER_KEY_SECRET: &str = "rel-master-key";

/// Where the master key comes from. Never a flag value: argv is visible to every user of the
/// machine (`ps`), and shells keep history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `REL_MASTER_KEY`.
    Env,
    /// `--key-file FILE`.
    File(PathBuf),
    /// `--key-stdin`: the whole of standard input.
    Stdin,
}

impl KeySource {
    /// Pick the source from the flags: a flag wins over the environment.
    pub fn from_flags(key_file: Option<&Path>, key_stdin: bool) -> KeySource {
        match (key_file, key_stdin) {
            (Some(p), _) => KeySource::File(p.to_path_buf()),
            (None, true) => KeySource::Stdin,
            (None, false) => KeySource::Env,
        }
    }

    /// Whether this source has a key to offer without failing (the variable is set, or a flag
    /// names a source).
    pub fn is_available(&self) -> bool {
        match self {
            KeySource::Env => std::env::var_os(env_vars::MASTER_KEY).is_some_and(|v| !v.is_empty()),
            _ => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            KeySource::Env => format!("${}", env_vars::MASTER_KEY),
            KeySource::File(p) => format!("key file {}", p.display()),
            KeySource::Stdin => "standard input".to_owned(),
        }
    }
}

/// Read and parse the master key. The text is wiped from memory once parsed.
pub fn load_key(source: &KeySource) -> Result<MasterKey, Error> {
    let text: Zeroizing<String> = match source {
        KeySource::Env => match std::env::var(env_vars::MASTER_KEY) {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => {
                return Err(SecretsError::NoMasterKey.into());
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(SecretsError::KeyVarNotText.into());
            }
        },
        KeySource::File(path) => {
            warn_if_shared(path);
            let bytes = Zeroizing::new(
                std::fs::read(path).map_err(|e| Error::io("read the master key file", path, e))?,
            );
            Zeroizing::new(
                std::str::from_utf8(&bytes)
                    .map_err(|_| SecretsError::KeyFileNotText { path: path.clone() })?
                    .to_owned(),
            )
        }
        KeySource::Stdin => {
            let mut buf = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| Error::io("read the master key from standard input", "-", e))?;
            buf
        }
    };
    MasterKey::from_base64(&text).map_err(|e| {
        SecretsError::UnusableKey {
            from: source.describe(),
            source: e,
        }
        .into()
    })
}

/// A key file others can read is a leak waiting to happen: say so (once, on stderr via tracing).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "the key file {} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
        }
    }
}

/// Read a text file (or standard input for `-`) that should hold an envelope.
pub fn read_envelope(path: &Path) -> Result<String, Error> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("read the envelope from standard input", "-", e))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| Error::io("read the envelope", path, e))
}

/// Read and parse a dotenv source. Errors name the file and line, never the line's text.
pub fn read_source(path: &Path) -> Result<Entries, Error> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| Error::io("read the source", path, e))?,
    );
    genesis::parse_dotenv(&text).map_err(|source| {
        SecretsError::Dotenv {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// Map a genesis error (open, seal, reseal, key) to rel's error, keeping its message and help.
pub fn genesis_error(context: &str, e: impl Into<GenesisError>) -> Error {
    SecretsError::Genesis {
        context: context.to_owned(),
        source: e.into(),
    }
    .into()
}

/// Render entries as a dotenv text that [`genesis::parse_dotenv`] reads back to the same values:
/// every value double-quoted, with `\\`, `"`, `$`, newlines, tabs and carriage returns escaped.
pub fn to_dotenv(entries: &Entries) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (name, value) in entries.iter() {
        out.push_str(name.as_str());
        out.push_str("=\"");
        for c in value.expose_secret().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '$' => out.push_str("\\$"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// Where `rel unseal --reveal` may write the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevealTo {
    /// A file (created or replaced atomically, mode 0600).
    File(PathBuf),
    /// Standard output, which is a pipe or a file, or a terminal the user insisted on.
    Stdout,
}

/// Decide where revealed values go: to `-o FILE`, or to standard output when it is not a
/// terminal; a terminal only with `--force` (scrollback, screen sharing and terminal logs keep
/// what is shown).
pub fn reveal_destination(
    output: Option<&Path>,
    stdout_is_terminal: bool,
    force: bool,
) -> Result<RevealTo, Error> {
    match output {
        Some(p) => Ok(RevealTo::File(p.to_path_buf())),
        None if !stdout_is_terminal || force => Ok(RevealTo::Stdout),
        None => Err(SecretsError::RevealToTerminal.into()),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (UTC).
pub fn format_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Now, in Unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Which store an environment's envelope goes to, resolved from flags and `[secrets]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// `<dir>/<env>` (absolute).
    File(PathBuf),
    /// The environment's vault.
    Azure(String),
}

impl StoreTarget {
    /// Resolve: `--store` over `[secrets] store`; `--dir` over `[secrets] dir` (relative to the
    /// project root, or the working directory without a project); `--vault` over
    /// `[secrets.vaults] <env>`.
    pub fn resolve(
        config: &SecretsConfig,
        base: &Path,
        env: &EnvName,
        store: Option<StoreKind>,
        dir: Option<&Path>,
        vault: Option<&str>,
    ) -> Result<StoreTarget, Error> {
        match store.unwrap_or(config.store) {
            StoreKind::File => {
                let root = match dir {
                    Some(d) => d.to_path_buf(),
                    None => base.join(&config.dir),
                };
                Ok(StoreTarget::File(root.join(env.as_str())))
            }
            StoreKind::Azure => {
                let url = vault
                    .map(str::to_owned)
                    .or_else(|| config.vaults.get(env.as_str()).cloned())
                    .ok_or_else(|| SecretsError::NoVault {
                        env: env.to_string(),
                    })?;
                Ok(StoreTarget::Azure(url))
            }
        }
    }

    /// Open the store. Azure credentials come from the standard `AZURE_*` variables.
    pub fn open(&self) -> Result<Box<dyn SecretStore>, Error> {
        let store_error = |e: secret_store::StoreError| store_error("open the secret store", e);
        match self {
            StoreTarget::File(dir) => Ok(Box::new(FileStore::new(dir).map_err(store_error)?)),
            StoreTarget::Azure(url) => {
                let credential =
                    Credential::from_env(env_vars::azure_var).map_err(|e| store_error(e.into()))?;
                let mut options = AzureOptions {
                    allow_insecure_http: secret_store::is_loopback_http(url),
                    ..AzureOptions::default()
                };
                if let Some(pem) = crate::trust::extra_ca_pem() {
                    options = options.with_ca_pem(pem.to_vec());
                }
                Ok(Box::new(
                    AzureKeyVaultStore::new(url, credential, options)
                        .map_err(|e| store_error(e.into()))?,
                ))
            }
        }
    }
}

/// A store error with what rel was doing, kept typed (its help and code reach the user).
pub fn store_error(action: &str, e: secret_store::StoreError) -> Error {
    SecretsError::Store {
        action: action.to_owned(),
        source: e,
    }
    .into()
}

/// The genesis secret's name.
pub fn genesis_secret_name() -> SecretName {
    SecretName::new(GENESIS_SECRET).expect("a valid secret name")
}

/// The master key secret's name.
pub fn master_key_secret_name() -> SecretName {
    SecretName::new(MASTER_KEY_SECRET).expect("a valid secret name")
}

/// Standard input can feed one thing: refuse `-` for a file when the key comes from stdin too.
pub fn one_stdin(file: Option<&Path>, key: &KeySource) -> Result<(), Error> {
    if file == Some(Path::new("-")) && *key == KeySource::Stdin {
        return Err(SecretsError::OneStdin.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis::{EntryName, SecretString};

    #[test]
    fn reveal_goes_to_a_file_or_a_pipe_and_to_a_terminal_only_when_forced() {
        let f = Path::new("out.env");
        assert_eq!(
            reveal_destination(Some(f), true, false).unwrap(),
            RevealTo::File(f.into())
        );
        assert_eq!(
            reveal_destination(Some(f), false, false).unwrap(),
            RevealTo::File(f.into())
        );
        assert_eq!(
            reveal_destination(None, false, false).unwrap(),
            RevealTo::Stdout
        );
        assert_eq!(
            reveal_destination(None, true, true).unwrap(),
            RevealTo::Stdout
        );
        let refused = reveal_destination(None, true, false).unwrap_err();
        assert_eq!(refused.exit(), crate::Exit::Failed);
        assert!(refused.to_string().contains("terminal"));
    }

    #[test]
    fn dotenv_output_reads_back_to_the_same_values() {
        let mut entries = Entries::new();
        for (n, v) in [
            ("A", "plain"),
            ("B", "with \"quotes\" and \\ and $HOME and ${X}"),
            ("C", "multi\nline\r\n\tpem"),
            ("D", ""),
            ("E", " # not a comment "),
            ("F", "'single'"),
        ] {
            entries.insert(EntryName::new(n).unwrap(), SecretString::from(v.to_owned()));
        }
        let text = to_dotenv(&entries);
        let back = genesis::parse_dotenv(&text).unwrap();
        assert_eq!(back.len(), entries.len());
        for (name, value) in entries.iter() {
            assert_eq!(
                back.get(name.as_str()).unwrap().expose_secret(),
                value.expose_secret(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(1_795_437_296), "2026-11-23T12:34:56Z");
    }

    #[test]
    fn http_vaults_only_on_loopback() {}

    #[test]
    fn store_target_follows_flags_then_config() {
        let env = EnvName::new("staging").unwrap();
        let mut config = SecretsConfig::default();
        let base = Path::new("/p");
        assert_eq!(
            StoreTarget::resolve(&config, base, &env, None, None, None).unwrap(),
            StoreTarget::File("/p/.rel/secrets/staging".into())
        );
        assert_eq!(
            StoreTarget::resolve(&config, base, &env, None, Some(Path::new("/s")), None).unwrap(),
            StoreTarget::File("/s/staging".into())
        );
        let e = StoreTarget::resolve(&config, base, &env, Some(StoreKind::Azure), None, None)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no Key Vault for environment `staging`")
        );
        config
            .vaults
            .insert("staging".into(), "https://kv-s.vault.azure.net".into());
        config.store = StoreKind::Azure;
        assert_eq!(
            StoreTarget::resolve(&config, base, &env, None, None, None).unwrap(),
            StoreTarget::Azure("https://kv-s.vault.azure.net".into())
        );
        assert_eq!(
            StoreTarget::resolve(
                &config,
                base,
                &env,
                None,
                None,
                Some("https://other.vault.azure.net")
            )
            .unwrap(),
            StoreTarget::Azure("https://other.vault.azure.net".into())
        );
    }
}
