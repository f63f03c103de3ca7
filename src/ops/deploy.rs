//! `deploy`: one release from source to running, gated and recorded (seed 001 §5.3), composed of
//! ops. Six steps, each a row of one report, stopping at the first failure:
//!
//! 1. build (unless skipped) and lock, then the coherence gate;
//! 2. secrets: the environment's genesis envelope is in the store and opens with the key;
//! 3. migration: the migration Job pinned to the version runs once and must succeed before any
//!    workload changes (on a cluster: created through the API, or — when it is an Argo CD PreSync
//!    hook — watched through the Application's operation; on the local stage: the stage's hooks);
//! 4. pin the overlay and commit it (trailers); a cluster environment is pushed (with lease) and
//!    rel waits until Argo CD reports the Application synced to that commit and healthy; the local
//!    stage is converged to the pinned working tree (new pods ready before old ones stop) and the
//!    pin is committed once it runs (a failure restores the overlay and commits nothing);
//! 5. gates: drift against what runs, then the deep smoke gate; on failure the report names the
//!    exact rollback and rel never reverts on its own;
//! 6. record the validation with the smoke report as evidence.
//!
//! A frozen environment (`rel freeze`) is refused before step 1, and so is its dry run.
//!
//! Re-running after a kill at any step converges: each step checks what is already done (an
//! existing lockfile, deployed as locked and not rebuilt; a pinned overlay; a pushed commit; a
//! synced Application; an existing record) and moves on.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Error;
use crate::config::{ArgoApp, Runtime};
use crate::error::Exit;
use crate::git_repo::{FileChange, Repo, short};
use crate::kube_source::{KubeClient, KubeOptions};
use crate::ops::build::{BuildEvent, BuildOptions};
use crate::ops::gate::{DriftOptions, LivePods, SmokeOptions};
use crate::ops::lock::LockOptions;
use crate::ops::{RegistryOptions, Workspace};
use crate::report::{Check, Report, Status};
use crate::secrets::KeySource;
use crate::trailers::{Action, Trailers, key};
use crate::version::Version;

/// Why `rel deploy` stops before it changes anything.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DeployError {
    #[error("--skip-build: there is no {lockfile}")]
    #[diagnostic(
        code(rel::deploy::no_lockfile),
        help(
            "lock the release first (`rel build` then `rel lock --version {version}`), or deploy without --skip-build"
        )
    )]
    NoLockfile { lockfile: String, version: Version },

    #[error(
        "release {version} is validated: --allow-overwrite would move the tags of validated images"
    )]
    #[diagnostic(
        code(rel::deploy::validated_overwrite),
        help("deploy the validated release with --skip-build, or cut a new version")
    )]
    ValidatedOverwrite { version: Version },

    #[error(
        "a cluster environment is deployed through git, and this project is not a git repository"
    )]
    #[diagnostic(
        code(rel::deploy::not_git),
        help("run rel in a clone of the GitOps repository Argo CD watches")
    )]
    NotGit,

    #[error("the current branch has no upstream: rel would not know where Argo CD reads from")]
    #[diagnostic(
        code(rel::deploy::no_upstream),
        help(
            "set one with `git branch --set-upstream-to origin/main` (or push it once with `git push -u`)"
        )
    )]
    NoUpstream,
}

impl DeployError {
    /// Overwriting a validated release is a refusal (1); the rest are input errors (2).
    pub fn exit(&self) -> Exit {
        match self {
            DeployError::ValidatedOverwrite { .. } => Exit::Failed,
            DeployError::NoLockfile { .. } | DeployError::NotGit | DeployError::NoUpstream => {
                Exit::Error
            }
        }
    }
}

/// What to deploy and how.
#[derive(Debug, Clone)]
pub(crate) struct DeployOptions {
    pub version: Version,
    pub env: String,
    /// Use the existing lockfile; build nothing.
    pub skip_build: bool,
    pub registry: RegistryOptions,
    /// A missing or unopenable envelope fails the deploy instead of warning.
    pub require_secrets: bool,
    pub skip_migrate: bool,
    /// No gates (and so no record).
    pub no_gate: bool,
    /// Drift only: no deep smoke gate (and so no record).
    pub no_smoke: bool,
    /// Print the plan; change nothing.
    pub dry_run: bool,
    pub key: KeySource,
    pub kube: KubeOptions,
    /// How long the migration, the sync and the stage may take.
    pub timeout: Duration,
    /// The deep gate's bearer token.
    pub smoke_token: Option<String>,
}

/// Progress of a deploy.
#[derive(Debug)]
pub(crate) enum DeployEvent<'a> {
    Step { n: u8, name: &'static str },
    Done(&'a Check),
    Build(BuildEvent<'a>),
}

/// The report of every step that ran, and what on-call runs if the gate failed.
#[derive(Debug)]
pub(crate) struct DeployOutcome {
    pub report: Report,
    /// The exact rollback, when the deploy changed the environment and a gate then failed.
    pub rollback: Option<String>,
}

pub(crate) const STEPS: [&str; 6] = ["build", "secrets", "migrate", "apply", "gate", "record"];

struct Run<'e, F: FnMut(DeployEvent<'_>)> {
    report: Report,
    events: &'e mut F,
}

impl<F: FnMut(DeployEvent<'_>)> Run<'_, F> {
    fn step(&mut self, n: u8) {
        (self.events)(DeployEvent::Step {
            n,
            name: STEPS[usize::from(n - 1)],
        });
    }

    /// Record a row; true when the deploy may go on.
    fn row(&mut self, check: Check) -> bool {
        (self.events)(DeployEvent::Done(&check));
        let go_on = check.status != Status::Fail;
        self.report.push(check);
        go_on
    }
}

pub(crate) fn deploy(
    ws: &Workspace,
    opts: &DeployOptions,
    mut events: impl FnMut(DeployEvent<'_>),
) -> Result<DeployOutcome, Error> {
    let config = &ws.config;
    let env = config.environment(&opts.env)?.clone();
    let mut run = Run {
        report: Report::new("deploy", &env.name)
            .with_context("version", opts.version.to_string())
            .with_context("env", env.name.clone()),
        events: &mut events,
    };
    // A frozen environment is not deployed to (nor planned for): the freeze says why.
    crate::freeze::ensure_not_frozen(
        &config.root,
        &env.name,
        &format!("deploy {} to {}", opts.version, env.name),
    )?;
    if opts.dry_run {
        return Ok(DeployOutcome {
            report: plan(ws, opts, &env.runtime),
            rollback: None,
        });
    }
    let done = |run: Run<'_, _>| DeployOutcome {
        report: run.report,
        rollback: None,
    };

    // 1. build, lock, coherence.
    run.step(1);
    let lock_path = crate::releases::lockfile_path(&config.root, &opts.version);
    // A locked release is deployed as locked: a rebuild at a later commit (the deploy's own pin
    // commit among them) would not reproduce its digests, and a rerun must converge.
    let already_locked = !opts.skip_build && lock_path.is_file();
    if opts.skip_build || already_locked {
        if !lock_path.is_file() {
            return Err(DeployError::NoLockfile {
                lockfile: ws.display(&lock_path),
                version: opts.version.clone(),
            }
            .into());
        }
    } else {
        if crate::releases::ensure_mutable(&config.root, &opts.version).is_err()
            && opts.registry.allow_overwrite
        {
            return Err(DeployError::ValidatedOverwrite {
                version: opts.version.clone(),
            }
            .into());
        }
        let mut registry = opts.registry.clone();
        if registry.tag.is_none() {
            registry.tag = Some(opts.version.to_string());
        }
        let mut build_opts = BuildOptions::from_env(Vec::new(), registry);
        build_opts.release_version = Some(opts.version.clone());
        let build =
            crate::ops::build::build(ws, &build_opts, |e| (run.events)(DeployEvent::Build(e)))?;
        crate::ops::lock::lock(
            ws,
            &LockOptions {
                version: opts.version.clone(),
                engine_version: None,
                from: Some(build.path),
                digests: Vec::new(),
                built_against: Vec::new(),
                force: false,
            },
        )?;
    }
    let mut loaded = crate::lockfile::read_raw(&lock_path)?;
    loaded.path = ws.display(&lock_path).into();
    let coherence = crate::gate::coherence::check(&loaded, Some(config));
    let lockfile = crate::lockfile::Lockfile::load(&lock_path)?;
    let detail = format!(
        "{} components locked in {}{}; coherence {}",
        lockfile.components.len(),
        ws.display(&lock_path),
        if already_locked {
            " (already locked: deployed as locked, not rebuilt)"
        } else {
            ""
        },
        if coherence.passed() {
            "passed"
        } else {
            "FAILED"
        }
    );
    let row = if coherence.passed() {
        Check::pass("build", detail)
    } else {
        Check::fail("build", format!("{detail}:\n{}", coherence.to_plain()))
    };
    if !run.row(row) {
        return Ok(done(run));
    }

    // 2. secrets (a local stage gets what it lacks generated, once, into .rel/local/).
    run.step(2);
    let local = match &env.runtime {
        Runtime::Stage => Some(crate::ops::local::ensure(ws, &env.name, &opts.key)?),
        Runtime::Cluster(_) => None,
    };
    let key = local
        .as_ref()
        .map_or_else(|| opts.key.clone(), |l| l.key.clone());
    let up = crate::stage::UpOptions {
        env: env.name.clone(),
        images: Vec::new(),
        ready_timeout: opts.timeout,
        key,
        cancel: None,
    };
    let secrets = crate::stage::cluster_secrets(config, &up);
    let row = match &secrets {
        Ok(s) if !s.is_empty() => Check::pass(
            "secrets",
            format!("the genesis envelope of {} opens with the key", env.name),
        ),
        Ok(_) => missing_secrets(opts, &env.name, "the secret store has no genesis envelope"),
        Err(e) => missing_secrets(opts, &env.name, &crate::error::chain(e)),
    };
    if !run.row(row) {
        return Ok(done(run));
    }
    let secrets = secrets.unwrap_or_default();

    match &env.runtime {
        Runtime::Stage => {
            // 3 + 4 on the stage: hooks (the migration) run first and gate every workload.
            run.step(3);
            if opts.skip_migrate {
                run.row(Check::skip("migrate", "--skip-migrate"));
            }
            run.step(4);
            // The stage runs the working tree's overlay: pin it there, and commit the pin only
            // once the stage runs it (as a cluster's pin is pushed only after its migration).
            let pinned = pin_working_tree(ws, &env.name, &lockfile)?;
            let applied = crate::stage::apply(config, &up, secrets);
            match applied {
                Ok(state) => {
                    let pin = pin_and_commit(ws, &env.name, &lockfile)?;
                    if !opts.skip_migrate {
                        run.row(Check::pass(
                            "migrate",
                            "the stage's PreSync hooks (the migration Job) exited 0 before any workload changed",
                        ));
                    }
                    run.row(Check::pass(
                        "apply",
                        format!(
                            "{}; stage `{}` runs {} pods, all ready",
                            pin,
                            env.name,
                            state.pods.len()
                        ),
                    ));
                }
                Err(e) => {
                    // The stage's own record says whether a hook (the migration) failed: its
                    // error text does not name it as one.
                    let hook = crate::stage::status(config, &env.name)
                        .ok()
                        .flatten()
                        .is_some_and(|state| failed_hook(&state, &crate::error::chain(&e)));
                    // What runs is what ran before: so is the overlay, and nothing is committed.
                    let restored = match &pinned {
                        Some(plan) => {
                            crate::atomic_write::write(&plan.file, plan.old_text.as_bytes())
                                .map_err(|e| Error::io("restore the overlay", &plan.file, e))?;
                            format!(
                                "{} restored as it was; nothing committed",
                                ws.display(&plan.file)
                            )
                        }
                        None => "nothing committed".to_owned(),
                    };
                    if hook && !opts.skip_migrate {
                        run.row(Check::fail("migrate", format!("{e}\n({restored})")));
                    } else {
                        run.row(Check::fail("apply", format!("{e}\n({restored})")));
                    }
                    return Ok(done(run));
                }
            }
        }
        Runtime::Cluster(app) => {
            let client = KubeClient::from_kubeconfig(&opts.kube)?;
            let rt = crate::ops::gate::runtime()?;
            // 3. migration: a PreSync hook runs inside the sync (watched in step 4); any other
            // migration Job is created and watched here, before the overlay changes.
            run.step(3);
            let job = migration_job(ws, &env.name, &lockfile)?;
            let hook_migration = job.as_ref().is_some_and(is_presync_hook);
            // A PreSync hook's row waits for the sync that runs it.
            let watch_hook = hook_migration && !opts.skip_migrate;
            let row = match (&job, opts.skip_migrate) {
                (_, true) => Some(Check::skip("migrate", "--skip-migrate")),
                (None, false) => Some(Check::skip("migrate", "the overlay has no migration Job")),
                (Some(_), false) if hook_migration => None,
                (Some(job), false) => {
                    Some(rt.block_on(run_job(&client, job, &opts.version, opts.timeout)))
                }
            };
            if let Some(row) = row
                && !run.row(row)
            {
                return Ok(done(run));
            }
            // 4. pin, commit, push, wait for Argo CD.
            run.step(4);
            let (pin, commit) = pin_commit_push(ws, config, &env.name, &lockfile)?;
            let synced = rt.block_on(wait_synced(&client, app, &commit, opts.timeout));
            if watch_hook {
                let name = job
                    .as_ref()
                    .and_then(|j| j.pointer("/metadata/name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if synced.failed_hook.as_deref() == Some(name) {
                    run.row(Check::fail(
                        "migrate",
                        format!(
                            "{pin}; the migration Job {name} failed as Argo CD's PreSync hook, so no workload changed: {}",
                            synced.check.detail
                        ),
                    ));
                    return Ok(DeployOutcome {
                        report: run.report,
                        rollback: Some(format!("rel rollback --env {}", env.name)),
                    });
                }
                if synced.check.status == Status::Pass {
                    run.row(Check::pass(
                        "migrate",
                        format!(
                            "the migration Job {name} ran as Argo CD's PreSync hook in the sync of {} and succeeded before any workload changed",
                            short_rev(&commit)
                        ),
                    ));
                }
            }
            let row = Check::new(
                "apply",
                synced.check.status,
                format!("{pin}; {}", synced.check.detail),
            );
            if !run.row(row) {
                // The pin is pushed: Argo CD goes on trying it until it is rolled back.
                return Ok(DeployOutcome {
                    report: run.report,
                    rollback: Some(format!("rel rollback --env {}", env.name)),
                });
            }
        }
    }

    // 5. gates.
    run.step(5);
    let rollback = format!("rel rollback --env {}", env.name);
    if opts.no_gate {
        run.row(Check::skip("gate", "--no-gate: not gated, so not recorded"));
        return Ok(done(run));
    }
    let live = match &env.runtime {
        Runtime::Stage => match crate::stage::status(config, &env.name)? {
            Some(state) => LivePods::Given {
                pods: crate::stage::live_pods(&state),
                source: format!("the local stage `{}`", env.name),
            },
            None => LivePods::None,
        },
        Runtime::Cluster(_) => LivePods::Kube(opts.kube.clone()),
    };
    let drift = crate::ops::gate::drift(
        ws,
        &DriftOptions {
            env: env.name.clone(),
            version: Some(opts.version.clone()),
            manifests: None,
            live,
            namespace: None,
            verify_signatures: false,
            insecure_registries: Vec::new(),
        },
    )?;
    let failed: Vec<String> = drift
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    let drift_row = if failed.is_empty() {
        Check::pass(
            "gate/drift",
            format!("{} checks: what runs is what is pinned", drift.checks.len()),
        )
    } else {
        Check::fail("gate/drift", failed.join("; "))
    };
    if !run.row(drift_row) {
        return Ok(DeployOutcome {
            report: run.report,
            rollback: Some(rollback),
        });
    }
    if opts.no_smoke {
        run.row(Check::skip(
            "gate/smoke",
            "--no-smoke: not gated deep, so not recorded",
        ));
        return Ok(done(run));
    }
    let token = match (&opts.smoke_token, &local) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(l)) => match (
            &l.smoke_client_secret,
            crate::stage::status(config, &env.name)?,
        ) {
            (Some(secret), Some(state)) => Some(crate::ops::local::stage_token(&state, secret)?),
            _ => None,
        },
        (None, None) => None,
    };
    let smoke = crate::ops::gate::smoke(
        ws,
        &SmokeOptions {
            env: env.name.clone(),
            profile: crate::gate::smoke::Profile::Deep,
            base_url: None,
            token,
            ca_pem: None,
            version: Some(opts.version.clone()),
            timeout: None,
        },
    )?;
    let evidence_dir = config.root.join(crate::build::OUT_DIR).join("evidence");
    let evidence = evidence_dir.join(format!("{}-{}.json", opts.version, env.name));
    crate::atomic_write::write(&evidence, smoke.to_json().as_bytes())
        .map_err(|e| Error::io("write the smoke report", &evidence, e))?;
    let summary = smoke.summary;
    let smoke_row = if smoke.passed() {
        Check::pass(
            "gate/smoke",
            format!(
                "deep: {} passed, {} warnings; report {}",
                summary.pass,
                summary.warn,
                ws.display(&evidence)
            ),
        )
    } else {
        let failed: Vec<String> = smoke
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        Check::fail("gate/smoke", failed.join("; "))
    };
    if !run.row(smoke_row) {
        return Ok(DeployOutcome {
            report: run.report,
            rollback: Some(rollback),
        });
    }

    // 6. record.
    run.step(6);
    let recorded = crate::ops::record::record(
        ws,
        &crate::ops::record::RecordOptions {
            version: opts.version.clone(),
            env: env.name.clone(),
            evidence,
            no_commit: false,
        },
    )?;
    run.row(Check::pass(
        "record",
        recorded
            .message
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    ));
    Ok(done(run))
}

/// Whether the stage failed in a hook (the migration Job): a hook's pod failed, or the error
/// (a converge's answer, whose failed pods are gone) names a hook's Job as failed.
fn failed_hook(state: &stage::StageState, error: &str) -> bool {
    let is_hook = |kind: &str, name: &str, namespace: &str| {
        state
            .workloads
            .iter()
            .any(|w| w.hook && w.kind == kind && w.name == name && w.namespace == namespace)
    };
    state.pods.iter().any(|p| {
        p.phase == stage::state::PodPhase::Failed
            && is_hook(&p.workload_kind, &p.workload_name, &p.namespace)
    }) || state
        .workloads
        .iter()
        .filter(|w| w.hook)
        .any(|w| error.contains(&format!("{}/{} failed", w.kind, w.name)))
}

fn missing_secrets(opts: &DeployOptions, env: &str, why: &str) -> Check {
    let detail = format!(
        "{why}; push it with `rel secrets push --env {env}` (and give the key: REL_MASTER_KEY or --key-file)"
    );
    if opts.require_secrets {
        Check::fail("secrets", detail)
    } else {
        Check::warn("secrets", detail)
    }
}

/// The plan of `--dry-run`: every step and what it would do, nothing changed.
fn plan(ws: &Workspace, opts: &DeployOptions, runtime: &Runtime) -> Report {
    let mut r = Report::new("deploy", &opts.env)
        .with_context("version", opts.version.to_string())
        .with_context("env", opts.env.clone())
        .with_context("dry-run", "true");
    let v = &opts.version;
    let lock = ws.display(&crate::releases::lockfile_path(ws.root(), v));
    r.push(Check::skip(
        "build",
        if opts.skip_build || crate::releases::lockfile_path(ws.root(), v).is_file() {
            format!("would use {lock} as it is, then run the coherence gate")
        } else {
            format!(
                "would build every component (tag {v}), {}, lock {lock} and run the coherence gate",
                if opts.registry.push {
                    "push them"
                } else {
                    "write OCI layouts under target/rel/oci"
                }
            )
        },
    ));
    r.push(Check::skip(
        "secrets",
        format!(
            "would open the genesis envelope of {} with the key ({})",
            opts.env,
            if opts.require_secrets {
                "required"
            } else {
                "a warning if missing"
            }
        ),
    ));
    let overlay = ws
        .config
        .environment(&opts.env)
        .map(|e| ws.display(&ws.config.overlay_dir(e)))
        .unwrap_or_default();
    match runtime {
        Runtime::Stage => {
            r.push(Check::skip("migrate", if opts.skip_migrate { "skipped (--skip-migrate)".to_owned() } else { "would run the stage's PreSync hooks (the migration Job) first; a failure stops before any workload changes".to_owned() }));
            r.push(Check::skip("apply", format!("would pin {overlay} to {v}, converge the local stage `{}` to it (new pods ready before old ones stop), then commit the pin (Rel-Action: deploy)", opts.env)));
        }
        Runtime::Cluster(app) => {
            r.push(Check::skip("migrate", if opts.skip_migrate { "skipped (--skip-migrate)".to_owned() } else { format!("would run the migration Job pinned to {v} once (or watch it as Argo CD's PreSync hook)") }));
            r.push(Check::skip("apply", format!("would pin {overlay} to {v}, commit and push it with lease, and wait up to {}s for Application {}/{} to be synced to that commit and healthy", opts.timeout.as_secs(), app.namespace, app.name)));
        }
    }
    r.push(Check::skip(
        "gate",
        if opts.no_gate {
            "skipped (--no-gate)".to_owned()
        } else if opts.no_smoke {
            "would run drift against what runs (--no-smoke: no deep gate)".to_owned()
        } else {
            "would run drift against what runs, then the deep smoke gate".to_owned()
        },
    ));
    r.push(Check::skip(
        "record",
        if opts.no_gate || opts.no_smoke {
            "nothing to record without the deep gate".to_owned()
        } else {
            format!(
                "would record {v} as validated in {} with the smoke report as evidence",
                opts.env
            )
        },
    ));
    r
}

/// Write the lockfile's pins into the environment's overlay in the working tree (uncommitted);
/// the plan when the file changed, to restore `old_text` if the stage refuses it.
fn pin_working_tree(
    ws: &Workspace,
    env_name: &str,
    lockfile: &crate::lockfile::Lockfile,
) -> Result<Option<crate::overlay_pin::PinPlan>, Error> {
    let env = ws.config.environment(env_name)?;
    let plan = crate::overlay_pin::plan(&ws.config.overlay_dir(env), lockfile, &ws.config)?;
    if plan.is_noop() {
        return Ok(None);
    }
    crate::atomic_write::write(&plan.file, plan.new_text.as_bytes())
        .map_err(|e| Error::io("write the overlay", &plan.file, e))?;
    Ok(Some(plan))
}

/// Pin the overlay to the lockfile and commit it on the current branch (a no-op when it already
/// pins it: a rerun converges). Returns what happened, for the report.
fn pin_and_commit(
    ws: &Workspace,
    env: &str,
    lockfile: &crate::lockfile::Lockfile,
) -> Result<String, Error> {
    Ok(pin_commit(ws, env, lockfile)?.0)
}

fn pin_commit(
    ws: &Workspace,
    env_name: &str,
    lockfile: &crate::lockfile::Lockfile,
) -> Result<(String, Option<(Repo, git2::Oid)>), Error> {
    let config = &ws.config;
    let env = config.environment(env_name)?;
    let plan = crate::overlay_pin::plan(&config.overlay_dir(env), lockfile, config)?;
    let shown = ws.display(&plan.file);
    let Some(repo) = Repo::discover(&config.root)? else {
        if !plan.is_noop() {
            crate::atomic_write::write(&plan.file, plan.new_text.as_bytes())
                .map_err(|e| Error::io("write the overlay", &plan.file, e))?;
        }
        return Ok((
            format!(
                "pinned {shown} to {} (not a git repository: not committed)",
                lockfile.version
            ),
            None,
        ));
    };
    let head = repo.head_commit()?;
    let rel = repo.rel_path(&plan.file)?;
    let committed = repo.read_file(head, &rel)?;
    if plan.is_noop() && committed.as_deref() == Some(plan.new_text.as_bytes()) {
        return Ok((
            format!(
                "{shown} already pins {} at {}",
                lockfile.version,
                short(head)
            ),
            Some((repo, head)),
        ));
    }
    let lock_path = crate::releases::lockfile_path(&config.root, &lockfile.version);
    let lock_bytes =
        std::fs::read(&lock_path).map_err(|e| Error::io("read the lockfile", &lock_path, e))?;
    let changes = vec![
        FileChange {
            path: repo.rel_path(&lock_path)?,
            contents: Some(lock_bytes.clone()),
        },
        FileChange {
            path: rel,
            contents: Some(plan.new_text.clone().into_bytes()),
        },
    ];
    let actor = repo.actor();
    let mut t = Trailers::new();
    t.push(key::ACTION, Action::Deploy)
        .push(key::VERSION, &lockfile.version)
        .push(key::ENV, env_name)
        .push(key::LOCKFILE_SHA256, crate::record::sha256_hex(&lock_bytes))
        .push(key::ACTOR, &actor);
    let message = t.message(
        &format!("rel: deploy {} to {env_name}", lockfile.version),
        &format!("Pin {shown} to release {}.", lockfile.version),
    );
    let commit = repo.commit_on(head, &changes, &message)?;
    repo.advance_head(head, commit, &changes, "rel deploy")?;
    Ok((
        format!(
            "committed {} pinning {shown} to {}",
            short(commit),
            lockfile.version
        ),
        Some((repo, commit)),
    ))
}

/// Pin, commit and push (with lease) to the branch's upstream; returns the commit Argo CD must
/// reach.
fn pin_commit_push(
    ws: &Workspace,
    config: &crate::config::Config,
    env: &str,
    lockfile: &crate::lockfile::Lockfile,
) -> Result<(String, String), Error> {
    let (said, repo) = pin_commit(ws, env, lockfile)?;
    let Some((repo, commit)) = repo else {
        return Err(DeployError::NotGit.into());
    };
    let (remote, branch) = match (
        config.forge.as_ref().and_then(|f| f.remote.clone()),
        repo.upstream_of_head(),
    ) {
        (Some(r), Some((_, b))) => (r, b),
        (None, Some(up)) => up,
        (_, None) => {
            return Err(DeployError::NoUpstream.into());
        }
    };
    let expected = repo.tracking_tip(&remote, &branch);
    match repo.push_with_lease(&remote, commit, &branch, expected) {
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    Ok((
        format!("{said}; pushed to {remote}/{branch}"),
        commit.to_string(),
    ))
}

/// The migration Job of the rendered overlay: the Job labelled
/// `app.kubernetes.io/component: migration`, else the one Argo CD runs as a PreSync hook; its
/// containers that run a component's image run the release's digest of it (the overlay is only
/// pinned after the migration succeeded, so as rendered it names the running release's).
fn migration_job(
    ws: &Workspace,
    env: &str,
    lockfile: &crate::lockfile::Lockfile,
) -> Result<Option<Value>, Error> {
    let environment = ws.config.environment(env)?;
    let objects = crate::manifests::load_manifests(&crate::manifests::ManifestSource::Overlay(
        ws.config.overlay_dir(environment),
    ))?;
    let jobs: Vec<Value> = objects
        .into_iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Job"))
        .collect();
    let labelled = jobs.iter().find(|j| {
        j.pointer("/metadata/labels/app.kubernetes.io~1component")
            .and_then(Value::as_str)
            == Some("migration")
    });
    let Some(mut job) = labelled
        .or_else(|| jobs.iter().find(|j| is_presync_hook(j)))
        .cloned()
    else {
        return Ok(None);
    };
    let images = crate::overlay_pin::component_images(lockfile, &ws.config)?;
    let pinned: Vec<(String, String)> = lockfile
        .components
        .iter()
        .filter_map(|(name, c)| {
            images
                .get(name)
                .map(|image| (image.clone(), c.digest.to_string()))
        })
        .collect();
    for list in ["containers", "initContainers"] {
        let Some(containers) = job
            .pointer_mut(&format!("/spec/template/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let Some(image) = container["image"].as_str() else {
                continue;
            };
            let name = image_name(image);
            if let Some((repo, digest)) = pinned.iter().find(|(repo, _)| repo == name) {
                container["image"] = Value::String(format!("{repo}@{digest}"));
            }
        }
    }
    Ok(Some(job))
}

/// An image reference without its digest and tag: `r.example.com:5000/a/b:1@sha256:…` →
/// `r.example.com:5000/a/b`.
fn image_name(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

fn is_presync_hook(job: &Value) -> bool {
    job.pointer("/metadata/annotations/argocd.argoproj.io~1hook")
        .and_then(Value::as_str)
        .is_some_and(|h| h.split(',').any(|p| p.trim() == "PreSync"))
}

/// Create the migration Job (named for the version, so a rerun finds its own Job) and wait for
/// it to succeed or fail.
async fn run_job(client: &KubeClient, job: &Value, version: &Version, timeout: Duration) -> Check {
    let mut job = job.clone();
    let base = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("migrate")
        .to_owned();
    let suffix: String = version
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name: String = format!("{base}-{suffix}")
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned();
    let ns = job
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| client.namespace().to_owned());
    job["metadata"]["name"] = Value::String(name.clone());
    if let Some(meta) = job.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("annotations");
    }
    let path = format!("/apis/batch/v1/namespaces/{ns}/jobs");
    match client
        .request_json(reqwest::Method::POST, &path, Some(&job))
        .await
    {
        Ok((200..=202, _)) | Ok((409, _)) => {}
        Ok((status, body)) => {
            return Check::fail(
                "migrate",
                format!(
                    "creating Job {ns}/{name} answered {status}: {}",
                    body.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
            );
        }
        Err(e) => return Check::fail("migrate", crate::error::chain(&e)),
    }
    let start = Instant::now();
    loop {
        match client
            .request_json(reqwest::Method::GET, &format!("{path}/{name}"), None)
            .await
        {
            Ok((200, body)) => {
                let status = &body["status"];
                if status["succeeded"].as_u64().unwrap_or(0) > 0 {
                    return Check::pass(
                        "migrate",
                        format!(
                            "Job {ns}/{name} succeeded in {}s",
                            start.elapsed().as_secs()
                        ),
                    );
                }
                let failed_condition = status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Failed" && c["status"] == "True");
                if let Some(c) = failed_condition {
                    return Check::fail(
                        "migrate",
                        format!(
                            "Job {ns}/{name} failed ({}): nothing was changed; `kubectl logs -n {ns} job/{name}` shows why",
                            c["message"]
                                .as_str()
                                .or(c["reason"].as_str())
                                .unwrap_or("no reason given")
                        ),
                    );
                }
            }
            Ok((status, _)) => {
                return Check::fail(
                    "migrate",
                    format!("reading Job {ns}/{name} answered {status}"),
                );
            }
            Err(e) => return Check::fail("migrate", crate::error::chain(&e)),
        }
        if start.elapsed() >= timeout {
            return Check::fail(
                "migrate",
                format!(
                    "Job {ns}/{name} did not finish within {}s; `kubectl describe -n {ns} job/{name}`",
                    timeout.as_secs()
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the wait for Argo CD saw.
struct Synced {
    check: Check,
    /// The hook resource whose failure failed the sync, by name.
    failed_hook: Option<String>,
}

impl From<Check> for Synced {
    fn from(check: Check) -> Synced {
        Synced {
            check,
            failed_hook: None,
        }
    }
}

/// Wait until Argo CD reports the Application synced to `commit` and healthy; a failed operation
/// on that commit (a failed PreSync migration hook among them) fails at once.
async fn wait_synced(
    client: &KubeClient,
    app: &ArgoApp,
    commit: &str,
    timeout: Duration,
) -> Synced {
    let path = format!(
        "/apis/argoproj.io/v1alpha1/namespaces/{}/applications/{}",
        app.namespace, app.name
    );
    let start = Instant::now();
    let mut last: String;
    loop {
        match client.request_json(reqwest::Method::GET, &path, None).await {
            Ok((200, body)) => {
                let status = &body["status"];
                let revision = status["sync"]["revision"].as_str().unwrap_or_default();
                let sync = status["sync"]["status"].as_str().unwrap_or("Unknown");
                let health = status["health"]["status"].as_str().unwrap_or("Unknown");
                let op = &status["operationState"];
                let op_phase = op["phase"].as_str().unwrap_or_default();
                let op_revision = op["syncResult"]["revision"]
                    .as_str()
                    .or(op["operation"]["sync"]["revision"].as_str())
                    .unwrap_or_default();
                if op_revision == commit && matches!(op_phase, "Failed" | "Error") {
                    let hook = op["syncResult"]["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["hookPhase"] == "Failed" || r["status"] == "SyncFailed");
                    let what = hook
                        .map(|r| {
                            format!(
                                " ({} {}: {})",
                                r["kind"].as_str().unwrap_or(""),
                                r["name"].as_str().unwrap_or(""),
                                r["message"].as_str().unwrap_or("")
                            )
                        })
                        .unwrap_or_default();
                    return Synced {
                        check: Check::fail(
                            "apply",
                            format!(
                                "Argo CD's sync of {} failed: {}{what}",
                                short_rev(commit),
                                op["message"].as_str().unwrap_or("no message")
                            ),
                        ),
                        failed_hook: hook
                            .filter(|r| r["hookPhase"] == "Failed" || r["hookType"].is_string())
                            .and_then(|r| r["name"].as_str())
                            .map(str::to_owned),
                    };
                }
                if revision == commit && sync == "Synced" && health == "Healthy" {
                    return Synced::from(Check::pass(
                        "apply",
                        format!(
                            "Application {}/{} synced to {} and healthy in {}s",
                            app.namespace,
                            app.name,
                            short_rev(commit),
                            start.elapsed().as_secs()
                        ),
                    ));
                }
                last = format!("sync {sync} at {}, health {health}", short_rev(revision));
            }
            Ok((404, _)) => {
                return Synced::from(Check::fail(
                    "apply",
                    format!(
                        "Application {}/{} does not exist: apply templates/argocd (the app-of-apps), or set `argocd-app` in rel.toml",
                        app.namespace, app.name
                    ),
                ));
            }
            Ok((status, _)) => last = format!("the API answered {status}"),
            Err(e) => last = crate::error::chain(&e),
        }
        if start.elapsed() >= timeout {
            return Synced::from(Check::fail(
                "apply",
                format!(
                    "Application {}/{} did not reach {} synced and healthy within {}s (last: {last}); `argocd app get {}`",
                    app.namespace,
                    app.name,
                    short_rev(commit),
                    timeout.as_secs(),
                    app.name
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn short_rev(rev: &str) -> &str {
    &rev[..rev.len().min(12)]
}
