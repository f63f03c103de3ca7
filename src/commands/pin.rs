//! `rel pin --env E --version V` (or `--overlay DIR --lockfile FILE`): set the overlay's digests.

use crate::cli::PinArgs;
use crate::commands::{Context, UsageError, print_stdout};
use crate::lockfile::Lockfile;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: PinArgs) -> Result<Exit, Error> {
    let abs = |p: &std::path::Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            ctx.cwd.join(p)
        }
    };
    let config = match (&args.overlay, &args.lockfile) {
        (Some(o), _) => ctx.project_of(&abs(o).join("kustomization.yaml"))?,
        (None, Some(l)) => ctx.project_of(&abs(l))?,
        _ => Some(ctx.project()?),
    };
    let config = match config {
        Some(c) => c,
        // Outside a project rel.toml still names the images; without it, fall back to an empty one.
        None => crate::config::Config::parse(
            "rel.toml".as_ref(),
            "registry = \"localhost/rel\"\n",
            ctx.cwd.clone(),
        )?,
    };
    let overlay = match (&args.overlay, &args.env) {
        (Some(o), _) => abs(o),
        (None, Some(env)) => config.overlay_dir(config.environment(env)?),
        (None, None) => {
            return Err(UsageError::NoOverlay.into());
        }
    };
    // A frozen environment takes no pins (nor a dry run of one): named, or found by its overlay.
    let env_name = match &args.env {
        Some(e) => Some(e.clone()),
        None => {
            let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            let want = canon(&overlay);
            config
                .environments
                .values()
                .find(|e| want.is_some() && canon(&config.overlay_dir(e)) == want)
                .map(|e| e.name.clone())
        }
    };
    if let Some(env) = &env_name {
        crate::freeze::ensure_not_frozen(&config.root, env, &format!("pin into {env}"))?;
    }
    let lockfile_path = match (&args.lockfile, &args.version) {
        (Some(l), _) => abs(l),
        (None, Some(v)) => crate::releases::lockfile_path(&config.root, v),
        (None, None) => {
            return Err(UsageError::NoRelease.into());
        }
    };
    let lockfile = Lockfile::load(&lockfile_path)?;
    let plan = crate::overlay_pin::plan(&overlay, &lockfile, &config)?;
    let shown = ctx.display(&plan.file);

    for name in &plan.unmatched {
        eprintln!(
            "warning: {shown}: images entry `{name}` matches no component of release {}; kept unchanged — remove it if nothing uses it",
            lockfile.version
        );
    }
    let mut out = String::new();
    if args.dry_run {
        out.push_str(&kustomize::unified_diff(
            &plan.old_text,
            &plan.new_text,
            &shown,
        ));
        if plan.is_noop() {
            out.push_str(&format!(
                "{shown} already pins release {}\n",
                lockfile.version
            ));
        }
        print_stdout(&out);
        return Ok(Exit::Ok);
    }
    if plan.is_noop() {
        print_stdout(&format!(
            "{shown} already pins release {}\n",
            lockfile.version
        ));
        return Ok(Exit::Ok);
    }
    crate::atomic_write::write(&plan.file, plan.new_text.as_bytes())
        .map_err(|e| Error::io("write the overlay", &plan.file, e))?;
    out.push_str(&format!("pinned {shown} to release {}\n", lockfile.version));
    for c in plan.changes.iter().filter(|c| c.changed()) {
        out.push_str(&format!(
            "  {:<12} {} -> {}\n",
            c.component,
            c.old_shown(),
            c.new_digest
        ));
    }
    print_stdout(&out);
    Ok(Exit::Ok)
}
