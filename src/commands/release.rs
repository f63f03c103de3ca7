//! `rel release`: the main job on its embedded defaults — build every component into the local OCI
//! layout, lock the release, gate it, pin the first environment's overlay and render it.

use std::io::IsTerminal;

use crate::cli::{BuildArgs, GateOutput, LockArgs, ReleaseArgs};
use crate::commands::{Context, build, emit_report, lock, print_stdout, render};
use crate::config::Config;
use crate::lockfile::Lockfile;
use crate::report::Format;
use crate::version::Version;
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: ReleaseArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let env_name = match &args.env {
        Some(e) => config.environment(e)?.name.clone(),
        None => first_environment(&config)?,
    };
    let step = |n: u8, what: &str| eprintln!("[{n}/5] {what}");

    step(1, "build");
    let build_args = BuildArgs {
        components: Vec::new(),
        registry: args.registry.clone(),
        tag: args.tag.clone(),
        push: args.push,
        allow_overwrite: false,
        insecure_registries: Vec::new(),
        format: Format::Plain,
    };
    let (output, build_path) = build::execute(ctx, &config, &build_args)?;

    step(2, "lock");
    let source = crate::build::source::inspect(&config.root, None).unwrap_or(
        crate::build::source::SourceInfo {
            commit: None,
            dirty: false,
            epoch: 0,
        },
    );
    let (version, dev) = match &args.version {
        Some(v) => (v.clone(), false),
        None => (dev_version(source.commit.as_deref()), true),
    };
    let lock_args = LockArgs {
        version: version.clone(),
        engine_version: None,
        from: Some(build_path),
        digests: Vec::new(),
        built_against: Vec::new(),
        // A development version is a scratch release: rebuilding it may change its digests.
        force: dev,
    };
    let locked = lock::execute(ctx, &config, &lock_args)?;
    let (lock_shown, lockfile) = match locked {
        lock::Locked::Wrote { path, lockfile } | lock::Locked::UpToDate { path, lockfile } => {
            (path, lockfile)
        }
    };

    step(3, "gate coherence");
    let lock_path = crate::releases::lockfile_path(&config.root, &version);
    let mut loaded = crate::lockfile::read_raw(&lock_path)?;
    loaded.path = ctx.display(&lock_path).into();
    let report = crate::gate::coherence::check(&loaded, Some(&config));
    let format = if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Plain
    };
    if emit_report(
        &report,
        &GateOutput {
            format,
            junit: None,
        },
    )? != Exit::Ok
    {
        return Ok(Exit::Failed);
    }

    step(4, &format!("pin overlay of {env_name}"));
    let env = config.environment(&env_name)?;
    let plan = crate::overlay_pin::plan(&config.overlay_dir(env), &lockfile, &config)?;
    let overlay_shown = ctx.display(&plan.file);
    if !plan.is_noop() {
        crate::atomic_write::write(&plan.file, plan.new_text.as_bytes())
            .map_err(|e| Error::io("write the overlay", &plan.file, e))?;
    }

    step(5, &format!("render {env_name}"));
    let rendered = render::render(ctx, &config.overlay_dir(env))?;
    let out_dir = config
        .root
        .join(crate::build::OUT_DIR)
        .join("rendered")
        .join(&env_name);
    let _ = std::fs::remove_dir_all(&out_dir);
    let count = render::write_objects(&rendered, &out_dir)?;
    let all = out_dir.join("all.yaml");
    crate::atomic_write::write(&all, rendered.to_yaml().as_bytes())
        .map_err(|e| Error::io("write the rendered stream", &all, e))?;

    print_stdout(&summary(
        ctx,
        &output,
        &lock_shown,
        &lockfile,
        &overlay_shown,
        &plan,
        &env_name,
        count,
        &out_dir,
    ));
    Ok(Exit::Ok)
}

#[allow(clippy::too_many_arguments)]
fn summary(
    ctx: &Context,
    output: &crate::build_output::BuildOutput,
    lock_shown: &str,
    lockfile: &Lockfile,
    overlay_shown: &str,
    plan: &crate::overlay_pin::PinPlan,
    env: &str,
    count: usize,
    out_dir: &std::path::Path,
) -> String {
    let mut s = format!("\nrelease {} is locked in {lock_shown}\n", lockfile.version);
    for c in &output.components {
        s.push_str(&format!(
            "  {:<12} {}@{}  ({})\n",
            c.component,
            c.image,
            c.digest,
            c.published.as_deref().unwrap_or("")
        ));
    }
    let changed = plan.changes.iter().filter(|c| c.changed()).count();
    if changed == 0 {
        s.push_str(&format!("{overlay_shown} already pinned these digests\n"));
    } else {
        s.push_str(&format!(
            "{overlay_shown}: {changed} pins changed (review with `git diff {overlay_shown}`)\n"
        ));
    }
    s.push_str(&format!(
        "rendered {count} objects of {env} into {}\n",
        ctx.display(out_dir)
    ));
    s.push_str(&format!(
        "\nnext: commit the lockfile and the overlay; Argo CD syncs {env}; then `rel gate smoke --env {env} --profile deep`, `rel record`, `rel promote --version {}`\n",
        lockfile.version
    ));
    s
}

/// The environment nothing promotes into and that promotes onward: the head of the chain.
fn first_environment(config: &Config) -> Result<String, Error> {
    let targets: Vec<&str> = config
        .environments
        .values()
        .filter_map(|e| e.promotes_to.as_deref())
        .collect();
    config
        .environments
        .values()
        .find(|e| !targets.contains(&e.name.as_str()))
        .map(|e| e.name.clone())
        .ok_or_else(|| {
            Error::usage(
                "rel.toml defines no environment to release into",
                "add `[environments.staging]` with `overlay = \"overlays/staging\"`, or pass --env",
            )
        })
}

/// `0.0.0-dev.g<12 hex>`: a development release of a commit (the `g` keeps it alphanumeric).
fn dev_version(commit: Option<&str>) -> Version {
    let id = commit
        .map(|c| format!("dev.g{}", &c[..12.min(c.len())]))
        .unwrap_or_else(|| "dev".to_owned());
    format!("0.0.0-{id}")
        .parse()
        .unwrap_or_else(|_| "0.0.0-dev".parse().expect("a valid version"))
}
