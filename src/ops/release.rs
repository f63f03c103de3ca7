//! `release`: the main job on its embedded defaults, composed of ops — build every component,
//! lock the release, gate it (coherence), pin the first environment's overlay and render it.

use std::path::PathBuf;

use crate::Error;
use crate::config::Config;
use crate::ops::build::{BuildEvent, BuildOptions, BuildOutcome};
use crate::ops::lock::{LockOptions, Locked};
use crate::ops::{RegistryOptions, Workspace};
use crate::overlay_pin::PinPlan;
use crate::report::Report;
use crate::version::Version;

/// A release rel.toml gives no place to go.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("rel.toml defines no environment to release into")]
#[diagnostic(
    code(rel::release::no_environment),
    help("add `[environments.staging]` with `overlay = \"overlays/staging\"`, or pass --env")
)]
pub struct NoEnvironmentError;

/// What to release.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReleaseOptions {
    /// [default: `0.0.0-dev.g<commit>`, a development version that may be rebuilt]
    pub version: Option<Version>,
    /// [default: the head of the promotion chain]
    pub env: Option<String>,
    pub registry: RegistryOptions,
}

/// Progress of a release.
#[derive(Debug)]
pub(crate) enum ReleaseEvent<'a> {
    /// Step `n` of `total` starts.
    Step {
        n: u8,
        total: u8,
        what: String,
    },
    Build(BuildEvent<'a>),
}

/// The steps that ran, up to the first that stopped the release.
#[derive(Debug)]
pub(crate) struct ReleaseOutcome {
    pub env: String,
    pub build: BuildOutcome,
    pub locked: Locked,
    pub coherence: Report,
    /// `None` when the coherence gate failed (nothing was pinned or rendered).
    pub pinned: Option<Pinned>,
}

/// The overlay pinned and rendered.
#[derive(Debug)]
pub(crate) struct Pinned {
    pub plan: PinPlan,
    pub rendered_objects: usize,
    pub out_dir: PathBuf,
}

pub(crate) const STEPS: u8 = 5;

pub(crate) fn release(
    ws: &Workspace,
    opts: &ReleaseOptions,
    mut events: impl FnMut(ReleaseEvent<'_>),
) -> Result<ReleaseOutcome, Error> {
    let config = &ws.config;
    let env_name = match &opts.env {
        Some(e) => config.environment(e)?.name.clone(),
        None => first_environment(config)?,
    };
    // Its last step pins the environment: a frozen one is refused before anything is built.
    crate::freeze::ensure_not_frozen(
        &config.root,
        &env_name,
        &format!("release (pinning {env_name})"),
    )?;
    let step = |n: u8, what: String, events: &mut dyn FnMut(ReleaseEvent<'_>)| {
        events(ReleaseEvent::Step {
            n,
            total: STEPS,
            what,
        })
    };

    step(1, "build".to_owned(), &mut events);
    let mut build_opts = BuildOptions::from_env(Vec::new(), opts.registry.clone());
    build_opts.release_version = opts.version.clone();
    let build = crate::ops::build::build(ws, &build_opts, |e| events(ReleaseEvent::Build(e)))?;

    step(2, "lock".to_owned(), &mut events);
    let (version, dev) = match &opts.version {
        Some(v) => (v.clone(), false),
        None => {
            let commit = crate::build::source::inspect(&config.root, None)
                .ok()
                .and_then(|s| s.commit);
            (dev_version(commit.as_deref()), true)
        }
    };
    let locked = crate::ops::lock::lock(
        ws,
        &LockOptions {
            version: version.clone(),
            engine_version: None,
            from: Some(build.path.clone()),
            digests: Vec::new(),
            built_against: Vec::new(),
            // A development version is a scratch release: rebuilding it may change its digests.
            force: dev,
        },
    )?;

    step(3, "gate coherence".to_owned(), &mut events);
    let lock_path = crate::releases::lockfile_path(&config.root, &version);
    let mut loaded = crate::lockfile::read_raw(&lock_path)?;
    loaded.path = ws.display(&lock_path).into();
    let coherence = crate::gate::coherence::check(&loaded, Some(config));
    if !coherence.passed() {
        return Ok(ReleaseOutcome {
            env: env_name,
            build,
            locked,
            coherence,
            pinned: None,
        });
    }

    step(4, format!("pin overlay of {env_name}"), &mut events);
    let env = config.environment(&env_name)?;
    let plan = crate::overlay_pin::plan(&config.overlay_dir(env), locked.lockfile(), config)?;
    if !plan.is_noop() {
        crate::atomic_write::write(&plan.file, plan.new_text.as_bytes())
            .map_err(|e| Error::io("write the overlay", &plan.file, e))?;
    }

    step(5, format!("render {env_name}"), &mut events);
    let overlay = config.overlay_dir(env);
    let rendered = crate::ops::render::render(&overlay, &ws.display(&overlay))?;
    let out_dir = config
        .root
        .join(crate::build::OUT_DIR)
        .join("rendered")
        .join(&env_name);
    let _ = std::fs::remove_dir_all(&out_dir);
    let rendered_objects = crate::ops::render::write_objects(&rendered, &out_dir)?;
    let all = out_dir.join("all.yaml");
    crate::atomic_write::write(&all, rendered.to_yaml().as_bytes())
        .map_err(|e| Error::io("write the rendered stream", &all, e))?;

    Ok(ReleaseOutcome {
        env: env_name,
        build,
        locked,
        coherence,
        pinned: Some(Pinned {
            plan,
            rendered_objects,
            out_dir,
        }),
    })
}

/// The environment nothing promotes into: the head of the chain.
pub(crate) fn first_environment(config: &Config) -> Result<String, Error> {
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
        .ok_or_else(|| NoEnvironmentError.into())
}

/// `0.0.0-dev.g<12 hex>`: a development release of a commit (the `g` keeps it alphanumeric).
pub(crate) fn dev_version(commit: Option<&str>) -> Version {
    let id = commit
        .map(|c| format!("dev.g{}", &c[..12.min(c.len())]))
        .unwrap_or_else(|| "dev".to_owned());
    format!("0.0.0-{id}")
        .parse()
        .unwrap_or_else(|_| "0.0.0-dev".parse().expect("a valid version"))
}
