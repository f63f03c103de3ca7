//! Genesis envelopes and the secret store: `rel keygen`, `seal` (`--check`, `diff`), `unseal`,
//! `reseal`, and `rel secrets push|pull|versions`.
//!
//! Every command here keeps secret values out of its output: entry names, key ids, fingerprints
//! and versions are printed; values only by `rel unseal --reveal`, to a file or a pipe.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use genesis::{EnvName, MasterKey, OpenError, ResealError, SecretString};
use secret_store::VersionId;
use zeroize::Zeroizing;

use crate::cli::{
    KeygenArgs, ResealArgs, SealArgs, SealCommand, SealDiffArgs, SecretsCommand, SecretsPullArgs,
    SecretsPushArgs, SecretsVersionsArgs, StoreArgs, UnsealArgs,
};
use crate::commands::{Context, print_stdout};
use crate::config::SecretsConfig;
use crate::secrets::{
    self, KeySource, RevealTo, SecretsError, StoreTarget, genesis_error, store_error,
};
use crate::{Error, Exit};

/// Talk (not data) goes to stderr, unless `--quiet`.
fn say(text: &str) {
    if crate::commands::progress::verbosity() == crate::commands::progress::Verbosity::Quiet {
        return;
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub fn keygen(ctx: &Context, args: KeygenArgs) -> Result<Exit, Error> {
    let key = MasterKey::generate().map_err(|e| genesis_error("generate a master key", e))?;
    let mut text = Zeroizing::new(String::with_capacity(45));
    text.push_str(genesis::ExposeSecret::expose_secret(&key.to_base64()));
    text.push('\n');
    let shown = ctx.display(&args.output);
    match crate::atomic_write::create_new(&args.output, text.as_bytes(), Some(0o600)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(SecretsError::KeyExists {
                shown: shown.to_string(),
            }
            .into());
        }
        Err(e) => return Err(Error::io("write the master key", &args.output, e)),
    }
    print_stdout(&format!(
        "wrote {shown}: master key id {} (mode 0600)\n",
        key.key_id()
    ));
    say("keep the key out of git; give it to rel as REL_MASTER_KEY, --key-file or --key-stdin\n");
    Ok(Exit::Ok)
}

pub fn seal(ctx: &Context, args: SealArgs) -> Result<Exit, Error> {
    if let Some(SealCommand::Diff(diff)) = args.command {
        return seal_diff(ctx, diff);
    }
    let env = args.env.ok_or(SecretsError::Required {
        flag: "env",
        example: "name the environment: `rel seal --env staging ...`",
    })?;
    if let Some(envelope) = &args.check {
        return seal_check(ctx, envelope, &env, &args.key.source());
    }
    let from = args.from.ok_or(SecretsError::Required {
        flag: "from",
        example: "name the dotenv source: `rel seal --env staging --from staging.env.source`",
    })?;
    if let Some(out) = &args.output
        && same_file(out, &from)
    {
        return Err(SecretsError::OutputIsInput {
            shown: ctx.display(out).to_string(),
            what: "the source",
            why: "the source would be replaced by its sealed form",
        }
        .into());
    }
    let entries = secrets::read_source(&from)?;
    let key = secrets::load_key(&args.key.source())?;
    let text = genesis::seal(&key, &env, &entries, secrets::now_unix())
        .map_err(|e| genesis_error("seal", e))?;
    let summary = format!(
        "sealed {} entries for `{env}` under key id {}",
        entries.len(),
        key.key_id()
    );
    match &args.output {
        Some(out) => {
            crate::atomic_write::write_with_mode(out, format!("{text}\n").as_bytes(), Some(0o600))
                .map_err(|e| Error::io("write the envelope", out, e))?;
            print_stdout(&format!("{summary} to {}\n", ctx.display(out)));
        }
        None => {
            print_stdout(&format!("{text}\n"));
            say(&format!("{summary}\n"));
        }
    }
    Ok(Exit::Ok)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `rel seal --check`: exit 0 when the envelope opens for `env`, 1 when it does not, 2 when the
/// check cannot run (no key, unreadable file).
fn seal_check(
    ctx: &Context,
    envelope: &Path,
    env: &EnvName,
    source: &KeySource,
) -> Result<Exit, Error> {
    secrets::one_stdin(Some(envelope), source)?;
    let text = secrets::read_envelope(envelope)?;
    let key = secrets::load_key(source)?;
    let shown = ctx.display(envelope);
    match genesis::check(&text, &key, env) {
        Ok(summary) => {
            print_stdout(&format!(
                "ok: {shown} opens for `{}` with key id {}: {} entries, sealed at {}\n",
                summary.env,
                summary.key_id,
                summary.names.len(),
                secrets::format_unix(summary.sealed_at)
            ));
            Ok(Exit::Ok)
        }
        Err(e) => {
            let err = genesis_error(&format!("{shown} does not pass the check"), e);
            let _ = writeln!(std::io::stderr(), "{:?}", miette::Report::new(err));
            Ok(Exit::Failed)
        }
    }
}

fn open_error(ctx: &Context, path: &Path, e: OpenError) -> Error {
    genesis_error(&format!("cannot open {}", ctx.display(path)), e)
}

fn seal_diff(ctx: &Context, args: SealDiffArgs) -> Result<Exit, Error> {
    secrets::one_stdin(Some(&args.envelope), &args.key.source())?;
    let text = secrets::read_envelope(&args.envelope)?;
    let source = secrets::read_source(&args.from)?;
    let key = secrets::load_key(&args.key.source())?;
    let opened =
        genesis::open(&text, &key, &args.env).map_err(|e| open_error(ctx, &args.envelope, e))?;
    let d = genesis::diff(&key, &opened, &source);
    let width = d
        .added
        .iter()
        .chain(&d.removed)
        .map(String::len)
        .chain(d.changed.iter().map(|c| c.name.len()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for name in &d.added {
        out.push_str(&format!("+ {name:<width$}  added\n"));
    }
    for name in &d.removed {
        out.push_str(&format!("- {name:<width$}  removed\n"));
    }
    for c in &d.changed {
        out.push_str(&format!(
            "~ {:<width$}  changed {} -> {}\n",
            c.name, c.old, c.new
        ));
    }
    out.push_str(&format!(
        "{} added, {} removed, {} changed, {} unchanged ({} vs {}, env `{}`)\n",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged.len(),
        ctx.display(&args.from),
        ctx.display(&args.envelope),
        args.env
    ));
    print_stdout(&out);
    if !d.is_empty() {
        say(
            "changed values are shown as keyed fingerprints (HMAC under the master key), never in clear\n",
        );
    }
    Ok(if args.exit_code && !d.is_empty() {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

pub fn unseal(ctx: &Context, args: UnsealArgs) -> Result<Exit, Error> {
    // Decide where values may go before reading any secret.
    let reveal_to = if args.reveal {
        Some(secrets::reveal_destination(
            args.output.as_deref(),
            std::io::stdout().is_terminal(),
            args.force,
        )?)
    } else {
        None
    };
    if let Some(RevealTo::File(out)) = &reveal_to
        && (same_file(out, &args.envelope)
            || matches!(&args.key.source(), KeySource::File(k) if same_file(out, k)))
    {
        return Err(SecretsError::OutputIsInput {
            shown: ctx.display(out).to_string(),
            what: "the envelope or the key",
            why: "revealing into it would replace it with plaintext (e.g. `-o staging.env.source`, which .gitignore covers)",
        }
        .into());
    }
    secrets::one_stdin(Some(&args.envelope), &args.key.source())?;
    let text = secrets::read_envelope(&args.envelope)?;
    let key = secrets::load_key(&args.key.source())?;
    let opened = match &args.env {
        Some(env) => genesis::open(&text, &key, env),
        None => genesis::open_any_env(&text, &key),
    }
    .map_err(|e| open_error(ctx, &args.envelope, e))?;
    let mut summary = format!(
        "envelope   {}\nenv        {}\nkey id     {}\nsealed at  {}\nentries    {}\n",
        ctx.display(&args.envelope),
        opened.env(),
        opened.key_id(),
        secrets::format_unix(opened.sealed_at()),
        opened.entries().len()
    );
    for name in opened.names() {
        summary.push_str(&format!("  {name}\n"));
    }
    match reveal_to {
        None => print_stdout(&summary),
        Some(RevealTo::Stdout) => {
            let dotenv = secrets::to_dotenv(opened.entries());
            print_stdout(&dotenv);
            say(&summary);
        }
        Some(RevealTo::File(path)) => {
            let dotenv = secrets::to_dotenv(opened.entries());
            crate::atomic_write::write_with_mode(&path, dotenv.as_bytes(), Some(0o600))
                .map_err(|e| Error::io("write the revealed values", &path, e))?;
            print_stdout(&summary);
            say(&format!(
                "wrote {} values to {} (mode 0600); delete it when done\n",
                opened.entries().len(),
                ctx.display(&path)
            ));
        }
    }
    Ok(Exit::Ok)
}

enum ResealOutcome {
    Rotate(genesis::Resealed),
    Skip(genesis::KeyId),
    Fail(Error),
}

pub fn reseal(ctx: &Context, args: ResealArgs) -> Result<Exit, Error> {
    let old = secrets::load_key(&args.key.source())?;
    let new = secrets::load_key(&KeySource::File(args.new_key.clone()))?;
    if old.key_id() == new.key_id() {
        return Err(SecretsError::SameKey {
            key_id: new.key_id().to_string(),
        }
        .into());
    }
    // Phase 1: open and re-seal everything in memory; nothing is written if any envelope fails.
    let mut outcomes = Vec::with_capacity(args.envelopes.len());
    for path in &args.envelopes {
        let outcome = match secrets::read_envelope(path) {
            Err(e) => ResealOutcome::Fail(e),
            Ok(text) => match genesis::reseal(&text, &old, &new) {
                Ok(r) => ResealOutcome::Rotate(r),
                Err(ResealError::AlreadyUnderNewKey { key_id }) => ResealOutcome::Skip(key_id),
                Err(ResealError::Open(e)) => ResealOutcome::Fail(open_error(ctx, path, e)),
                Err(e) => ResealOutcome::Fail(genesis_error(
                    &format!("cannot re-seal {}", ctx.display(path)),
                    e,
                )),
            },
        };
        outcomes.push(outcome);
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, ResealOutcome::Fail(_)))
        .count();
    let verb = if args.dry_run || failed > 0 {
        "would rotate"
    } else {
        "rotated"
    };
    let mut report = String::new();
    for (path, outcome) in args.envelopes.iter().zip(&outcomes) {
        let shown = ctx.display(path);
        match outcome {
            ResealOutcome::Rotate(r) => report.push_str(&format!(
                "{verb:<12}  {shown}  env `{}`, {} entries, key id {} -> {}\n",
                r.env, r.entry_count, r.from, r.to
            )),
            ResealOutcome::Skip(id) => report.push_str(&format!(
                "{:<12}  {shown}  already under key id {id}\n",
                "skipped"
            )),
            ResealOutcome::Fail(e) => report.push_str(&format!(
                "{:<12}  {shown}  {}\n",
                "failed",
                crate::error::chain(e)
            )),
        }
    }
    if failed > 0 {
        print_stdout(&report);
        return Err(SecretsError::ResealFailed {
            failed,
            total: outcomes.len(),
        }
        .into());
    }
    if !args.dry_run {
        // Phase 2: replace each file atomically, keeping its permissions.
        for (path, outcome) in args.envelopes.iter().zip(&outcomes) {
            if let ResealOutcome::Rotate(r) = outcome {
                let mode = file_mode(path).unwrap_or(0o600);
                crate::atomic_write::write_with_mode(
                    path,
                    format!("{}\n", r.text).as_bytes(),
                    Some(mode),
                )
                .map_err(|e| Error::io("write the re-sealed envelope", path, e))?;
            }
        }
    }
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, ResealOutcome::Rotate(_)))
        .count();
    report.push_str(&format!(
        "{} {rotated}, skipped {} (new key id {}){}\n",
        if args.dry_run {
            "would rotate"
        } else {
            "rotated"
        },
        outcomes.len() - rotated,
        new.key_id(),
        if args.dry_run {
            "; dry run, nothing written"
        } else {
            ""
        }
    ));
    print_stdout(&report);
    if !args.dry_run && rotated > 0 {
        say(
            "push the re-sealed envelopes (`rel secrets push`) and give services the new key before rolling them\n",
        );
    }
    Ok(Exit::Ok)
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

pub fn secrets(ctx: &Context, command: SecretsCommand) -> Result<Exit, Error> {
    match command {
        SecretsCommand::Push(args) => push(ctx, args),
        SecretsCommand::Pull(args) => pull(ctx, args),
        SecretsCommand::Versions(args) => versions(ctx, args),
    }
}

/// The `[secrets]` configuration and the directory its relative paths start from: the project
/// root, or the working directory when there is no project.
fn secrets_config(ctx: &Context, env: &EnvName) -> Result<(SecretsConfig, PathBuf), Error> {
    let start = ctx.project_dir.clone().unwrap_or_else(|| ctx.cwd.clone());
    match crate::project::load_optional(&start)? {
        Some(config) => {
            if !config.environments.is_empty() {
                config.environment(env.as_str())?;
            }
            Ok((config.secrets, config.root))
        }
        None => Ok((SecretsConfig::default(), ctx.cwd.clone())),
    }
}

fn target(ctx: &Context, args: &StoreArgs) -> Result<(StoreTarget, SecretsConfig, PathBuf), Error> {
    let (config, base) = secrets_config(ctx, &args.env)?;
    let dir = args.dir.as_ref().map(|d| {
        if d.is_absolute() {
            d.clone()
        } else {
            ctx.cwd.join(d)
        }
    });
    let target = StoreTarget::resolve(
        &config,
        &base,
        &args.env,
        args.store,
        dir.as_deref(),
        args.vault.as_deref(),
    )?;
    Ok((target, config, base))
}

fn push(ctx: &Context, args: SecretsPushArgs) -> Result<Exit, Error> {
    let (target, config, base) = target(ctx, &args.store)?;
    if args.master_key {
        return push_master_key(&target, &args);
    }
    let env = &args.store.env;
    secrets::one_stdin(args.envelope.as_deref(), &args.key.source())?;
    let path = args
        .envelope
        .clone()
        .unwrap_or_else(|| base.join(config.envelope_path(env.as_str())));
    let shown = ctx.display(&path);
    let text = secrets::read_envelope(&path)?;
    let text = text.trim();
    // Only sealed envelopes leave this machine: a dotenv source or a key given by mistake stops here.
    let header = genesis::inspect(text).map_err(|source| SecretsError::NotSealed {
        shown: shown.to_string(),
        env: env.to_string(),
        source,
    })?;
    let source = args.key.source();
    if source.is_available() {
        let key = secrets::load_key(&source)?;
        genesis::check(text, &key, env).map_err(|e| open_error(ctx, &path, e))?;
    } else {
        say(&format!(
            "note: no master key given, so {shown} was not checked to open for `{env}` (set REL_MASTER_KEY or --key-file to check)\n"
        ));
    }
    let store = target.open()?;
    let name = secrets::genesis_secret_name();
    let version = store
        .put(&name, &SecretString::from(text.to_owned()))
        .map_err(|e| store_error("push the envelope", e))?;
    print_stdout(&format!(
        "pushed {shown} (key id {}) to {} as {name} version {version}\n",
        header.key_id,
        store.location()
    ));
    Ok(Exit::Ok)
}

/// `rel secrets push --master-key`: the key itself, as `rel-master-key` (the External Secrets
/// template syncs it next to the envelope). Printed: its key id, never the key.
fn push_master_key(target: &StoreTarget, args: &SecretsPushArgs) -> Result<Exit, Error> {
    let key = secrets::load_key(&args.key.source())?;
    let store = target.open()?;
    let name = secrets::master_key_secret_name();
    let version = store
        .put(&name, &key.to_base64())
        .map_err(|e| store_error("push the master key", e))?;
    print_stdout(&format!(
        "pushed master key id {} to {} as {name} version {version}\n",
        key.key_id(),
        store.location()
    ));
    Ok(Exit::Ok)
}

fn pull(ctx: &Context, args: SecretsPullArgs) -> Result<Exit, Error> {
    let (target, _, _) = target(ctx, &args.store)?;
    let version = args
        .version
        .as_deref()
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
        location: store.location().to_string(),
        source,
    })?;
    let summary = format!(
        "{name} version {} from {} (key id {})",
        secret.version,
        store.location(),
        header.key_id
    );
    match &args.output {
        Some(out) => {
            crate::atomic_write::write_with_mode(out, format!("{text}\n").as_bytes(), Some(0o600))
                .map_err(|e| Error::io("write the envelope", out, e))?;
            print_stdout(&format!("wrote {summary} to {}\n", ctx.display(out)));
        }
        None => {
            print_stdout(&format!("{text}\n"));
            say(&format!("pulled {summary}\n"));
        }
    }
    Ok(Exit::Ok)
}

fn versions(ctx: &Context, args: SecretsVersionsArgs) -> Result<Exit, Error> {
    let (target, _, _) = target(ctx, &args.store)?;
    let store = target.open()?;
    let name = if args.master_key {
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
            location: store.location().to_string(),
            env: args.store.env.to_string(),
        }
        .into());
    }
    let width = versions
        .iter()
        .map(|v| v.version.as_str().len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!("{:<width$}  {:<20}  ENABLED\n", "VERSION", "CREATED");
    for v in &versions {
        out.push_str(&format!(
            "{:<width$}  {:<20}  {}\n",
            v.version.as_str(),
            v.created
                .map(secrets::format_unix)
                .unwrap_or_else(|| "-".into()),
            match v.enabled {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }
        ));
    }
    print_stdout(&out);
    say(&format!(
        "{} versions of {name} in {}, oldest first\n",
        versions.len(),
        store.location()
    ));
    Ok(Exit::Ok)
}
