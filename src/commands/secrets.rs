//! Genesis envelopes and the secret store: `rel keygen`, `seal` (`--check`, `diff`), `unseal`,
//! `reseal`, and `rel secrets push|pull|versions`: flags → [`crate::ops::secrets`] → output.
//!
//! Every command here keeps secret values out of its output: entry names, key ids, fingerprints
//! and versions are printed; values only by `rel unseal --reveal`, to a file or a pipe.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use genesis::EnvName;

use crate::cli::{
    KeygenArgs, ResealArgs, SealArgs, SealCommand, SealDiffArgs, SecretsCommand, SecretsPullArgs,
    SecretsPushArgs, SecretsVersionsArgs, StoreArgs, UnsealArgs,
};
use crate::commands::{Context, print_stdout};
use crate::config::SecretsConfig;
use crate::ops::secrets::{self as op, ResealItem, ResealOptions, SealOptions, UnsealOptions};
use crate::secrets::{self, KeySource, RevealTo, SecretsError, StoreTarget};
use crate::{Error, Exit};

/// Talk (not data) goes to stderr, unless `--quiet`.
fn say(text: &str) {
    if crate::commands::progress::verbosity() == crate::commands::progress::Verbosity::Quiet {
        return;
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub(super) fn keygen(ctx: &Context, args: KeygenArgs) -> Result<Exit, Error> {
    let key_id = op::keygen(&ctx.cwd, &args.output)?;
    print_stdout(&format!(
        "wrote {}: master key id {key_id} (mode 0600)\n",
        ctx.display(&args.output)
    ));
    say("keep the key out of git; give it to rel as REL_MASTER_KEY, --key-file or --key-stdin\n");
    Ok(Exit::Ok)
}

pub(super) fn seal(ctx: &Context, args: SealArgs) -> Result<Exit, Error> {
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
    let opts = SealOptions {
        env,
        from,
        output: args.output.clone(),
        key: args.key.source(),
    };
    let sealed = op::seal(&ctx.cwd, &opts)?;
    let summary = format!(
        "sealed {} entries for `{}` under key id {}",
        sealed.entries, opts.env, sealed.key_id
    );
    match &opts.output {
        Some(out) => print_stdout(&format!("{summary} to {}\n", ctx.display(out))),
        None => {
            print_stdout(&format!("{}\n", sealed.text));
            say(&format!("{summary}\n"));
        }
    }
    Ok(Exit::Ok)
}

/// `rel seal --check`: exit 0 when the envelope opens for `env`, 1 when it does not, 2 when the
/// check cannot run (no key, unreadable file).
fn seal_check(
    ctx: &Context,
    envelope: &std::path::Path,
    env: &EnvName,
    source: &KeySource,
) -> Result<Exit, Error> {
    match op::check(&ctx.cwd, envelope, env, source)? {
        Ok(summary) => {
            print_stdout(&format!(
                "ok: {} opens for `{}` with key id {}: {} entries, sealed at {}\n",
                ctx.display(envelope),
                summary.env,
                summary.key_id,
                summary.names.len(),
                secrets::format_unix(summary.sealed_at)
            ));
            Ok(Exit::Ok)
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{:?}", miette::Report::new(err));
            Ok(Exit::Failed)
        }
    }
}

fn seal_diff(ctx: &Context, args: SealDiffArgs) -> Result<Exit, Error> {
    let d = op::diff(
        &ctx.cwd,
        &args.envelope,
        &args.from,
        &args.env,
        &args.key.source(),
    )?;
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

pub(super) fn unseal(ctx: &Context, args: UnsealArgs) -> Result<Exit, Error> {
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
    let opts = UnsealOptions {
        envelope: args.envelope.clone(),
        env: args.env.clone(),
        key: args.key.source(),
        reveal_to,
    };
    let unsealed = op::unseal(&ctx.cwd, &opts)?;
    let opened = &unsealed.opened;
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
    match &opts.reveal_to {
        None => print_stdout(&summary),
        Some(RevealTo::Stdout) => {
            if let Some(dotenv) = &unsealed.dotenv {
                print_stdout(dotenv);
            }
            say(&summary);
        }
        Some(RevealTo::File(path)) => {
            print_stdout(&summary);
            say(&format!(
                "wrote {} values to {} (mode 0600); delete it when done\n",
                opened.entries().len(),
                ctx.display(path)
            ));
        }
    }
    Ok(Exit::Ok)
}

pub(super) fn reseal(ctx: &Context, args: ResealArgs) -> Result<Exit, Error> {
    let opts = ResealOptions {
        key: args.key.source(),
        new_key: args.new_key.clone(),
        envelopes: args.envelopes.clone(),
        dry_run: args.dry_run,
    };
    let outcome = op::reseal(&ctx.cwd, &opts)?;
    let failed = outcome.failed();
    let verb = if outcome.written {
        "rotated"
    } else {
        "would rotate"
    };
    let mut report = String::new();
    for (path, item) in &outcome.items {
        let shown = ctx.display(path);
        match item {
            ResealItem::Rotate(r) => report.push_str(&format!(
                "{verb:<12}  {shown}  env `{}`, {} entries, key id {} -> {}\n",
                r.env, r.entry_count, r.from, r.to
            )),
            ResealItem::Skip(id) => report.push_str(&format!(
                "{:<12}  {shown}  already under key id {id}\n",
                "skipped"
            )),
            ResealItem::Fail(e) => report.push_str(&format!(
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
            total: outcome.items.len(),
        }
        .into());
    }
    let rotated = outcome.rotated();
    report.push_str(&format!(
        "{} {rotated}, skipped {} (new key id {}){}\n",
        if args.dry_run {
            "would rotate"
        } else {
            "rotated"
        },
        outcome.items.len() - rotated,
        outcome.new_key_id,
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

pub(super) fn secrets(ctx: &Context, command: SecretsCommand) -> Result<Exit, Error> {
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
        let stored = op::push_master_key(&target, &args.key.source())?;
        print_stdout(&format!(
            "pushed master key id {} to {} as {} version {}\n",
            stored.key_id, stored.location, stored.name, stored.version
        ));
        return Ok(Exit::Ok);
    }
    let env = &args.store.env;
    let path = args
        .envelope
        .clone()
        .unwrap_or_else(|| base.join(config.envelope_path(env.as_str())));
    let shown = ctx.display(&path);
    let (stored, checked) = op::push(&ctx.cwd, &target, &path, env, &args.key.source())?;
    if !checked {
        say(&format!(
            "note: no master key given, so {shown} was not checked to open for `{env}` (set REL_MASTER_KEY or --key-file to check)\n"
        ));
    }
    print_stdout(&format!(
        "pushed {shown} (key id {}) to {} as {} version {}\n",
        stored.key_id, stored.location, stored.name, stored.version
    ));
    Ok(Exit::Ok)
}

fn pull(ctx: &Context, args: SecretsPullArgs) -> Result<Exit, Error> {
    let (target, _, _) = target(ctx, &args.store)?;
    let (stored, text) = op::pull(&target, args.version.as_deref(), args.output.as_deref())?;
    let summary = format!(
        "{} version {} from {} (key id {})",
        stored.name, stored.version, stored.location, stored.key_id
    );
    match &args.output {
        Some(out) => print_stdout(&format!("wrote {summary} to {}\n", ctx.display(out))),
        None => {
            print_stdout(&format!("{text}\n"));
            say(&format!("pulled {summary}\n"));
        }
    }
    Ok(Exit::Ok)
}

fn versions(ctx: &Context, args: SecretsVersionsArgs) -> Result<Exit, Error> {
    let (target, _, _) = target(ctx, &args.store)?;
    let (name, location, versions) = op::versions(&target, &args.store.env, args.master_key)?;
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
        "{} versions of {name} in {location}, oldest first\n",
        versions.len(),
    ));
    Ok(Exit::Ok)
}
