//! `rel deploy --version V --env E`: flags → [`ops::deploy`](crate::ops::deploy) → the report.

use std::io::Write;

use crate::cli::DeployArgs;
use crate::commands::{Context, emit_report};
use crate::kube_source::KubeOptions;
use crate::ops::deploy::{DeployEvent, DeployOptions, STEPS};
use crate::report::Status;
use crate::{Error, Exit, env_vars};

pub(super) fn run(ctx: &Context, args: DeployArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let smoke_token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Error::io("read the token file", path, e))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var(env_vars::SMOKE_TOKEN).ok(),
    };
    let version = match args.version {
        Some(v) => v,
        None => {
            let commit = crate::build::source::inspect(ws.root(), None)
                .ok()
                .and_then(|s| s.commit);
            crate::ops::release::dev_version(commit.as_deref())
        }
    };
    let opts = DeployOptions {
        version,
        env: args.env,
        skip_build: args.skip_build,
        registry: args.registry.options(),
        require_secrets: args.require_secrets,
        skip_migrate: args.skip_migrate,
        no_gate: args.no_gate,
        no_smoke: args.no_smoke,
        dry_run: args.dry_run,
        key: args.key.source(),
        kube: KubeOptions {
            kubeconfig: args.kube.kubeconfig.clone(),
            context: args.kube.context.clone(),
            timeout: args.kube.kube_timeout,
        },
        timeout: args.timeout,
        smoke_token,
    };
    let mut show = crate::commands::build::ShowBuild::new();
    let outcome = crate::ops::deploy::deploy(&ws, &opts, |e| match e {
        DeployEvent::Step { n, name } => {
            show.line(&format!("[{n}/{}] {name}", STEPS.len()));
        }
        DeployEvent::Done(check) => {
            let mark = match check.status {
                Status::Pass => "ok",
                Status::Fail => "FAILED",
                Status::Warn => "warning",
                Status::Skip => "skipped",
            };
            show.line(&format!("      {mark}: {}", check.detail));
        }
        DeployEvent::Build(b) => show.event(b),
    })?;
    drop(show);
    let exit = emit_report(&outcome.report, &args.output)?;
    if let Some(rollback) = &outcome.rollback {
        let _ = writeln!(
            std::io::stderr(),
            "\nthe gate failed after the environment changed; rel does not revert on its own.\nto roll back: `{rollback}` (it reverts the deploy commit, holds {}, and prints the re-converge steps; add --dry-run to see the exact change first)",
            opts.version
        );
    }
    Ok(exit)
}
