//! The genesis autoload (issue 6): at boot, open the sealed envelope in `REL_GENESIS_B64` with
//! `REL_MASTER_KEY` for `REL_ENV`, and set each entry the environment does not already have
//! (set-if-absent: an explicit variable always wins, even an empty one).
//!
//! | `REL_GENESIS_B64` | `REL_MASTER_KEY` | result |
//! | --- | --- | --- |
//! | unset or empty | any | nothing to load |
//! | set | unset or empty | error: the envelope cannot be opened |
//! | set | set | open for `REL_ENV` (required) and apply; any failure is an error |
//!
//! An error stops the service at startup (exit 2) rather than letting it run without the
//! secrets it expects. Names are logged, values never; errors name key ids, never keys.

use genesis::{AutoloadPlan, EnvName, ExposeSecret, MasterKey, OpenError};
use zeroize::Zeroizing;

use crate::env::{REL_ENV, REL_GENESIS_B64, REL_MASTER_KEY};

/// Why the envelope could not be loaded. Carries no secret.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AutoloadError {
    #[error("{REL_GENESIS_B64} is set but {REL_MASTER_KEY} is not: the envelope cannot be opened")]
    #[diagnostic(help(
        "set {REL_MASTER_KEY} in the service's environment from the secret holding the master key the envelope was sealed with, or unset {REL_GENESIS_B64} to start without the envelope"
    ))]
    MissingKey,
    #[error(
        "{REL_GENESIS_B64} is set but {REL_ENV} is not: set it to the environment the envelope was sealed for"
    )]
    #[diagnostic(help(
        "set {REL_ENV} (e.g. `staging`) next to {REL_GENESIS_B64} in the service's manifest; it must name the environment the envelope was sealed for"
    ))]
    MissingEnv,
    #[error("{REL_ENV}: {0}")]
    #[diagnostic(help(
        "set {REL_ENV} to an environment name such as `staging` or `prod`: 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
    ))]
    BadEnv(genesis::NameError),
    #[error("{REL_MASTER_KEY}: {0}")]
    #[diagnostic(help(
        "{REL_MASTER_KEY} must hold the master key text itself, 44 characters of standard base64, unquoted; in a Kubernetes Secret's `data:` the value is base64 of that text (or use `stringData:`), so check it is neither encoded twice nor cut"
    ))]
    BadKey(genesis::KeyError),
    #[error("{REL_GENESIS_B64}: {0}")]
    #[diagnostic(help("{}", open_help(.0)))]
    Open(genesis::OpenError),
    #[error(
        "the process already runs {0} threads; the autoload must run first in main, before any thread starts"
    )]
    #[diagnostic(help(
        "call `service_runtime::startup::bootstrap_process()` as the first statement of a plain `fn main`, before the tokio runtime is built (`#[tokio::main]` starts its threads before main's body runs)"
    ))]
    NotSingleThreaded(usize),
}

/// The help for an envelope that does not open, in the terms of the service's environment.
fn open_help(error: &OpenError) -> String {
    match error {
        OpenError::WrongKey { sealed_for, .. } => format!(
            "{REL_MASTER_KEY} holds another key than the one the envelope was sealed with: give the service the master key whose id is {sealed_for}, or seal the envelope again under the key it has"
        ),
        OpenError::WrongEnvironment {
            sealed_for,
            expected,
        } => format!(
            "set {REL_ENV} to `{sealed_for}` if the service runs there, or put the envelope sealed for `{expected}` in {REL_GENESIS_B64}"
        ),
        OpenError::Empty
        | OpenError::TooLarge { .. }
        | OpenError::BadBase64 { .. }
        | OpenError::BadMagic
        | OpenError::Truncated { .. } => format!(
            "{REL_GENESIS_B64} must hold the sealed envelope's base64 text exactly as sealed (unquoted, whole); in a Kubernetes Secret's `data:` the value is base64 of that text (or use `stringData:`), so check it is neither encoded twice nor cut, nor the dotenv source instead"
        ),
        OpenError::UnknownVersion { .. } => format!(
            "this build reads envelope format version 1: seal the envelope again with the tooling of this release and update {REL_GENESIS_B64}, or deploy a build that reads the newer format"
        ),
        OpenError::AuthenticationFailed { .. }
        | OpenError::Malformed { .. }
        | OpenError::VersionMismatch { .. } => format!(
            "the envelope in {REL_GENESIS_B64} was altered or damaged: restore it from the secret store, or seal it again from its source"
        ),
    }
}

/// What was loaded: names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub env: String,
    pub key_id: String,
    pub sealed_at: u64,
    /// Entries set from the envelope.
    pub set: Vec<String>,
    /// Entries left alone because the environment already had them.
    pub skipped: Vec<String>,
}

/// Read the variables through `lookup` and plan the autoload, without touching the environment.
/// `Ok(None)` when there is no envelope to load.
pub fn plan(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<AutoloadPlan>, AutoloadError> {
    let present = |k: &str| {
        lookup(k)
            .map(Zeroizing::new)
            .filter(|v| !v.trim().is_empty())
    };
    let Some(envelope) = present(REL_GENESIS_B64) else {
        return Ok(None);
    };
    let key = present(REL_MASTER_KEY).ok_or(AutoloadError::MissingKey)?;
    let env = present(REL_ENV).ok_or(AutoloadError::MissingEnv)?;
    let env = EnvName::new(env.trim()).map_err(AutoloadError::BadEnv)?;
    let key = MasterKey::from_base64(&key).map_err(AutoloadError::BadKey)?;
    genesis::autoload(&envelope, &key, &env, &lookup)
        .map(Some)
        .map_err(AutoloadError::Open)
}

/// Set every planned entry in the process environment.
///
/// # Safety
///
/// No other thread may read or write the environment while this runs (see
/// [`std::env::set_var`]): call it before any thread is started.
#[allow(unsafe_code)] // setting the environment is `unsafe` since Rust 2024; see # Safety
pub unsafe fn apply(plan: AutoloadPlan) -> Loaded {
    let mut set = Vec::with_capacity(plan.set.len());
    for (name, value) in &plan.set {
        // SAFETY: the caller guarantees the process is single-threaded.
        unsafe { std::env::set_var(name, value.expose_secret()) };
        set.push(name.clone());
    }
    Loaded {
        env: plan.env.to_string(),
        key_id: plan.key_id.to_string(),
        sealed_at: plan.sealed_at,
        set,
        skipped: plan.skipped.clone(),
    }
}

/// Plan from the process environment and apply. Refuses (rather than risk undefined behaviour)
/// when the process is known to run more than one thread.
#[allow(unsafe_code)] // one call of `apply`, justified at the call
pub fn autoload_process_env() -> Result<Option<Loaded>, AutoloadError> {
    let plan = plan(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))?;
    let Some(plan) = plan else {
        return Ok(None);
    };
    if let Some(n) = thread_count()
        && n > 1
    {
        return Err(AutoloadError::NotSingleThreaded(n));
    }
    // SAFETY: `set_var` is unsound only when another thread touches the environment at the same
    // time. This runs from `startup::bootstrap_process`, which every service's `main` calls first,
    // before the tokio runtime (or any other thread) exists; on Linux the thread count was just
    // checked to be 1, and no code here spawns a thread.
    Ok(Some(unsafe { apply(plan) }))
}

/// The number of threads of this process, where the platform tells (Linux: `/proc/self/task`).
fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use genesis::{Entries, EntryName, SecretString};

    use super::*;

    fn envelope(key: &MasterKey, env: &str) -> String {
        let mut e = Entries::new();
        for (n, v) in [
            ("IDENTITY_SIGNING_KEY_B64", "c2VlZA=="),
            ("DATABASE_URL", "sqlite://sealed.db"),
        ] {
            e.insert(EntryName::new(n).unwrap(), SecretString::from(v.to_owned()));
        }
        genesis::seal(key, &EnvName::new(env).unwrap(), &e, 1_700_000_000).unwrap()
    }

    fn lookup<'a>(vars: &'a HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn nothing_to_load_without_an_envelope() {
        let vars = HashMap::from([(REL_MASTER_KEY, "x".to_owned())]);
        assert!(plan(lookup(&vars)).unwrap().is_none());
        let vars = HashMap::from([(REL_GENESIS_B64, " ".to_owned())]);
        assert!(plan(lookup(&vars)).unwrap().is_none());
    }

    #[test]
    fn explicit_environment_wins_and_the_rest_is_set() {
        let key = MasterKey::generate().unwrap();
        let vars = HashMap::from([
            (REL_GENESIS_B64, envelope(&key, "staging")),
            (REL_MASTER_KEY, key.to_base64().expose_secret().to_owned()),
            (REL_ENV, "staging".to_owned()),
            ("DATABASE_URL", "sqlite://explicit.db".to_owned()),
        ]);
        let plan = plan(lookup(&vars)).unwrap().unwrap();
        assert_eq!(
            plan.set_names().collect::<Vec<_>>(),
            ["IDENTITY_SIGNING_KEY_B64"]
        );
        assert_eq!(plan.skipped, ["DATABASE_URL"]);
        assert_eq!(plan.set[0].1.expose_secret(), "c2VlZA==");
        assert!(!format!("{plan:?}").contains("c2VlZA=="));
    }

    #[test]
    fn every_misconfiguration_is_a_named_error_without_secrets() {
        let key = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let key_text = key.to_base64().expose_secret().to_owned();
        let sealed = envelope(&key, "staging");
        let base =
            |pairs: &[(&'static str, String)]| pairs.iter().cloned().collect::<HashMap<_, _>>();
        let cases: Vec<(HashMap<&str, String>, &str)> = vec![
            (
                base(&[(REL_GENESIS_B64, sealed.clone())]),
                "REL_MASTER_KEY is not",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, sealed.clone()),
                    (REL_MASTER_KEY, key_text.clone()),
                ]),
                "REL_ENV is not",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, sealed.clone()),
                    (REL_MASTER_KEY, key_text.clone()),
                    (REL_ENV, "prod".into()),
                ]),
                "sealed for `staging`, expected `prod`",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, sealed.clone()),
                    (REL_MASTER_KEY, other.to_base64().expose_secret().to_owned()),
                    (REL_ENV, "staging".into()),
                ]),
                "wrong key",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, sealed.clone()),
                    (REL_MASTER_KEY, "not base64!".into()),
                    (REL_ENV, "staging".into()),
                ]),
                "REL_MASTER_KEY: the master key is not valid base64",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, "Zm9v".into()),
                    (REL_MASTER_KEY, key_text.clone()),
                    (REL_ENV, "staging".into()),
                ]),
                "REL_GENESIS_B64: not a genesis envelope",
            ),
            (
                base(&[
                    (REL_GENESIS_B64, sealed.clone()),
                    (REL_MASTER_KEY, key_text.clone()),
                    (REL_ENV, "bad env!".into()),
                ]),
                "REL_ENV",
            ),
        ];
        for (vars, want) in cases {
            let error = plan(lookup(&vars)).unwrap_err();
            let help = miette::Diagnostic::help(&error)
                .map(|h| h.to_string())
                .unwrap_or_default();
            let e = error.to_string();
            assert!(e.contains(want), "{e} (want {want})");
            assert!(!e.contains(&key_text) && !e.contains("c2VlZA=="), "{e}");
            assert!(help.contains("REL_"), "{e}: help {help:?}");
            assert!(
                !help.contains(&key_text) && !help.contains("c2VlZA=="),
                "{help}"
            );
        }
    }
}
