//! The local stage as rel's ops (`rel up`, `rel up status`, `rel up logs`, `rel down`): render the
//! environment's overlay, hand the objects and the cluster's secrets to `crates/stage`, and find a
//! stage again from its directory, `<project>/.rel/stage/<env>/`.
//!
//! The secrets a cluster would provide (the ExternalSecret `platform-secrets`: the genesis
//! envelope and its master key) come from rel's secret store and master key, never from git.
//! Only pods whose manifests reference that Secret see them.
//!
//! `--detach` re-executes rel as the stage's supervisor in a new session (setsid); the cluster
//! secrets reach it through a pipe on its standard input, never argv or its environment. The
//! caller returns once the state file says the stage is ready (or failed).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use genesis::{EnvName, ExposeSecret};
use serde_json::Value;
use stage::{ClusterSecret, Plan, PlanOptions, StageState};
use zeroize::Zeroizing;

use crate::Error;
use crate::config::Config;
use crate::secrets::{self, KeySource, StoreTarget};

/// The Secret the manifests reference for the genesis envelope (the ExternalSecret's target in
/// `templates/external-secrets`).
pub const CLUSTER_SECRET: &str = "platform-secrets";
/// The stage directories, under the project root.
pub const STAGE_DIR: &str = ".rel/stage";
/// The unpacked-image cache, under the project root (content-addressed; shared by environments).
pub const IMAGE_CACHE: &str = "target/rel/stage-images";

/// `rel up` options.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub env: String,
    /// OCI layout roots [default: target/rel/oci].
    pub images: Vec<PathBuf>,
    /// How long each hook and sync wave may take.
    pub ready_timeout: Duration,
    /// Where the master key comes from.
    pub key: KeySource,
    /// Turns true to stop a start under way (see `stage::run::shutdown_flag`).
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
}

/// The stage directory of `env`.
pub fn stage_dir(config: &Config, env: &str) -> PathBuf {
    config.root.join(STAGE_DIR).join(env)
}

fn stage_error(e: stage::StageError) -> Error {
    Error::from(e)
}

/// What `rel up`, `rel down` and a deploy's converge can refuse or fail with (the stage's own
/// planning and running errors are `stage::StageError`).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LocalStageError {
    #[error("`{env}` is not a valid environment name")]
    #[diagnostic(
        code(rel::stage::env_name),
        help("use the environment's name from rel.toml")
    )]
    EnvName {
        env: String,
        #[source]
        source: genesis::NameError,
    },

    #[error("the stage needs the master key of `{env}` to give its pods the genesis envelope")]
    #[diagnostic(
        code(rel::stage::no_master_key),
        help("set REL_MASTER_KEY or pass --key-file FILE")
    )]
    NoMasterKey { env: String },

    #[error("the stage `{env}` already runs (supervisor pid {pid})")]
    #[diagnostic(
        code(rel::stage::running),
        help(
            "stop it first with `rel down --env {env}`, look at it with `rel up status --env {env}`, or roll it to a new release with `rel deploy --env {env}`"
        )
    )]
    AlreadyRunning { env: String, pid: u32 },

    #[error("no stage of `{env}` is running")]
    #[diagnostic(
        code(rel::stage::not_running),
        help("start one with `rel up --env {env} --detach`")
    )]
    NotRunning { env: String },

    #[error("the stage `{env}` did not converge: {reason}")]
    #[diagnostic(
        code(rel::stage::converge),
        help(
            "the previous pods still serve; look at `rel up logs --env {env}`, fix the release and deploy again"
        )
    )]
    ConvergeFailed { env: String, reason: String },

    #[error("the stage supervisor of `{env}` exited {when}")]
    #[diagnostic(code(rel::stage::supervisor_exited), help("see its log: {}{tail}", log.display()))]
    SupervisorExited {
        env: String,
        when: &'static str,
        log: PathBuf,
        /// The log's last lines, on lines of their own (empty when not read).
        tail: String,
    },

    #[error("the stage `{env}` did not {what} in time")]
    #[diagnostic(
        code(rel::stage::timeout),
        help("see `rel up status --env {env}` and {}", log.display())
    )]
    Timeout {
        env: String,
        what: &'static str,
        log: PathBuf,
    },

    #[error("the stage `{env}` failed to start: {reason}")]
    #[diagnostic(
        code(rel::stage::start),
        help("nothing of the stage runs; the supervisor's log is {}", log.display())
    )]
    StartFailed {
        env: String,
        reason: String,
        log: PathBuf,
    },

    #[error("the stage supervisor's input is not valid")]
    #[diagnostic(
        code(rel::stage::handoff),
        help("`--supervise` is started by `rel up --detach`; do not run it by hand")
    )]
    Handoff(#[source] serde_json::Error),
}

impl LocalStageError {
    /// A second stage is refused (exit 1); everything else could not be done (exit 2).
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            LocalStageError::AlreadyRunning { .. } => crate::error::Exit::Failed,
            _ => crate::error::Exit::Error,
        }
    }
}

/// The envelope and master key from rel's secret store and key, as the cluster Secret; `None`
/// when the store has no envelope for `env` (pods that need it then fail to plan, saying so).
pub fn cluster_secrets(config: &Config, opts: &UpOptions) -> Result<Vec<ClusterSecret>, Error> {
    let env = EnvName::new(&opts.env).map_err(|source| LocalStageError::EnvName {
        env: opts.env.clone(),
        source,
    })?;
    let target = StoreTarget::resolve(&config.secrets, &config.root, &env, None, None, None)?;
    let store = target.open()?;
    let name = secrets::genesis_secret_name();
    let envelope = match store.get(&name, None) {
        Ok(secret) => Zeroizing::new(secret.value.expose_secret().trim().to_owned()),
        Err(secret_store::StoreError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(secrets::store_error("read the genesis envelope", e)),
    };
    if !opts.key.is_available() {
        return Err(LocalStageError::NoMasterKey {
            env: opts.env.clone(),
        }
        .into());
    }
    let key = secrets::load_key(&opts.key)?;
    genesis::check(&envelope, &key, &env)
        .map_err(|e| secrets::genesis_error("open the environment's envelope", e))?;
    let mut data = BTreeMap::new();
    data.insert(
        crate::env_vars::GENESIS_B64.to_owned(),
        Zeroizing::new(envelope.to_string()),
    );
    data.insert(
        crate::env_vars::MASTER_KEY.to_owned(),
        Zeroizing::new(key.to_base64().expose_secret().to_owned()),
    );
    Ok(vec![ClusterSecret {
        name: CLUSTER_SECRET.to_owned(),
        data,
    }])
}

/// The environment's rendered objects.
pub fn rendered_objects(config: &Config, env: &str) -> Result<Vec<Value>, Error> {
    let environment = config.environment(env)?;
    let dir = config.overlay_dir(environment);
    crate::manifests::load_manifests(&crate::manifests::ManifestSource::Overlay(dir))
}

fn plan_options(config: &Config, opts: &UpOptions, secrets: Vec<ClusterSecret>) -> PlanOptions {
    let images = if opts.images.is_empty() {
        vec![config.root.join(crate::build::OUT_DIR).join("oci")]
    } else {
        opts.images.iter().map(|p| config.root.join(p)).collect()
    };
    PlanOptions {
        stage_dir: stage_dir(config, &opts.env),
        image_roots: images,
        image_cache: config.root.join(IMAGE_CACHE),
        default_namespace: "default".to_owned(),
        cluster_secrets: secrets,
    }
}

/// What `rel up --dry-run` shows: the plan on the addresses the stage would claim now.
pub fn dry_run(config: &Config, opts: &UpOptions) -> Result<Plan, Error> {
    let objects = rendered_objects(config, &opts.env)?;
    let mut secrets = cluster_secrets(config, opts).or_else(|_| Ok::<_, Error>(Vec::new()))?;
    if secrets.is_empty() {
        // Plan with the keys the cluster Secret will have, so the plan shows what would run.
        secrets.push(ClusterSecret {
            name: CLUSTER_SECRET.to_owned(),
            data: [crate::env_vars::GENESIS_B64, crate::env_vars::MASTER_KEY]
                .iter()
                .map(|k| ((*k).to_owned(), Zeroizing::new(String::new())))
                .collect(),
        });
    }
    // A running stage holds its block: show that one.
    let running = stage::read(&stage_dir(config, &opts.env))
        .ok()
        .flatten()
        .filter(|s| s.supervisor.is_some_and(|p| p.is_alive()));
    let block = match running {
        Some(state) => state.block,
        None => stage::AddressBlock::peek(&opts.env).map_err(stage_error)?,
    };
    let mut alloc = stage::Allocator::new(block);
    stage::plan(
        &objects,
        &plan_options(config, opts, secrets),
        &mut alloc,
        &[],
    )
    .map_err(stage_error)
}

/// Refuse to start a second stage for `env`.
fn ensure_not_running(config: &Config, env: &str) -> Result<(), Error> {
    if let Some(state) = stage::read(&stage_dir(config, env)).map_err(stage_error)?
        && let Some(sup) = state.supervisor.filter(|p| p.is_alive())
    {
        return Err(LocalStageError::AlreadyRunning {
            env: env.to_owned(),
            pid: sup.pid,
        }
        .into());
    }
    Ok(())
}

/// Start the stage in this process; returns once every workload is ready.
pub async fn up(
    config: &Config,
    opts: &UpOptions,
    secrets: Vec<ClusterSecret>,
) -> Result<stage::Stage, Error> {
    ensure_not_running(config, &opts.env)?;
    let objects = rendered_objects(config, &opts.env)?;
    let claim = stage::Claim::new(&opts.env).map_err(stage_error)?;
    let mut alloc = stage::Allocator::new(claim.block);
    let plan = stage::plan(
        &objects,
        &plan_options(config, opts, secrets),
        &mut alloc,
        &[],
    )
    .map_err(stage_error)?;
    let mut run = stage::RunOptions::new(&opts.env, stage_dir(config, &opts.env));
    run.ready_timeout = opts.ready_timeout;
    run.cancel = opts.cancel.clone();
    stage::Stage::start(plan, claim, run)
        .await
        .map_err(stage_error)
}

/// Roll a running stage (in this process) to the environment's current manifests.
pub async fn converge(
    config: &Config,
    opts: &UpOptions,
    stage: &stage::Stage,
    secrets: Vec<ClusterSecret>,
) -> Result<stage::ConvergeReport, Error> {
    let objects = rendered_objects(config, &opts.env)?;
    stage
        .converge(&objects, &plan_options(config, opts, secrets))
        .await
        .map_err(stage_error)
}

/// Ask the running supervisor of `env` (detached, or a `rel up` in another terminal started with
/// `--detach`) to converge to the environment's overlay as it is now (SIGHUP), and wait until it
/// has: new pods ready before old ones stop (see `stage::Stage::converge`). The returned state's
/// `message` says why, when the converge failed (the old pods then still serve).
pub fn request_converge(
    config: &Config,
    env: &str,
    timeout: Duration,
) -> Result<StageState, Error> {
    let dir = stage_dir(config, env);
    let state = stage::read(&dir).map_err(stage_error)?;
    let Some((state, sup)) = state.and_then(|s| {
        let sup = s.supervisor.filter(|p| p.is_alive())?;
        Some((s, sup))
    }) else {
        return Err(LocalStageError::NotRunning {
            env: env.to_owned(),
        }
        .into());
    };
    let before = state.converges;
    stage::state::signal_process(sup.pid, stage::state::SIGHUP);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(now)) = stage::read(&dir)
            && now.converges > before
        {
            return match &now.message {
                Some(m) => Err(LocalStageError::ConvergeFailed {
                    env: env.to_owned(),
                    reason: m.clone(),
                }
                .into()),
                None => Ok(now),
            };
        }
        if !sup.is_alive() {
            return Err(LocalStageError::SupervisorExited {
                env: env.to_owned(),
                when: "during the converge",
                log: dir.join("supervisor.log"),
                tail: String::new(),
            }
            .into());
        }
        if Instant::now() > deadline {
            return Err(LocalStageError::Timeout {
                env: env.to_owned(),
                what: "finish converging",
                log: dir.join("supervisor.log"),
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cluster secrets as the detached supervisor reads them from its standard input.
#[derive(serde::Serialize, serde::Deserialize)]
struct Handoff {
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Read the secrets a detaching `rel up` handed over on standard input.
pub fn read_handoff(input: &mut impl std::io::Read) -> Result<Vec<ClusterSecret>, Error> {
    let mut text = Zeroizing::new(String::new());
    input
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read the stage secrets", "<stdin>", e))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let handoff: Handoff = serde_json::from_str(&text).map_err(LocalStageError::Handoff)?;
    Ok(handoff
        .secrets
        .into_iter()
        .map(|(name, data)| ClusterSecret {
            name,
            data: data
                .into_iter()
                .map(|(k, v)| (k, Zeroizing::new(v)))
                .collect(),
        })
        .collect())
}

/// `rel up --detach`: start `rel up --supervise` in a new session, hand it the secrets, and wait
/// until the stage is ready or failed. Returns the state at that point.
pub fn detach(
    config: &Config,
    opts: &UpOptions,
    secrets: Vec<ClusterSecret>,
) -> Result<StageState, Error> {
    ensure_not_running(config, &opts.env)?;
    let dir = stage_dir(config, &opts.env);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the stage directory", &dir, e))?;
    // A previous run's state would read as this run's answer.
    let _ = std::fs::remove_file(dir.join(stage::state::STATE_FILE));
    let log_path = dir.join("supervisor.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::io("create the supervisor log", &log_path, e))?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find the rel executable", "/proc/self/exe", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("-C")
        .arg(&config.root)
        .args(["up", "--env", &opts.env, "--supervise"])
        .arg("--ready-timeout")
        .arg(format!("{}s", opts.ready_timeout.as_secs()))
        .env_remove(crate::env_vars::MASTER_KEY)
        .stdin(Stdio::piped())
        .stdout(
            log.try_clone()
                .map_err(|e| Error::io("open", &log_path, e))?,
        )
        .stderr(log)
        .current_dir(&config.root);
    for image in &opts.images {
        cmd.arg("--images").arg(config.root.join(image));
    }
    stage::state::new_session(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("start the stage supervisor", "rel", e))?;
    let handoff = Handoff {
        secrets: secrets
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.data
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
                        .collect(),
                )
            })
            .collect(),
    };
    let text = Zeroizing::new(serde_json::to_string(&handoff).expect("handoff serialises"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    // Wait for the supervisor's verdict in the state file (it rewrites it on every change).
    let deadline = Instant::now() + opts.ready_timeout * 8 + Duration::from_secs(30);
    loop {
        if let Ok(Some(state)) = stage::read(&dir)
            && matches!(state.phase, stage::Phase::Ready | stage::Phase::Failed)
        {
            if state.phase == stage::Phase::Failed {
                let _ = child.wait();
                return Err(LocalStageError::StartFailed {
                    env: opts.env.clone(),
                    reason: state
                        .message
                        .clone()
                        .unwrap_or_else(|| "no reason given".into()),
                    log: log_path,
                }
                .into());
            }
            return Ok(state);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = stage::state::log_tail(&log_path, 20);
            return Err(LocalStageError::SupervisorExited {
                env: opts.env.clone(),
                when: if status.success() {
                    "before the stage was ready"
                } else {
                    "with an error before the stage was ready"
                },
                log: log_path,
                tail: format!("\n{tail}"),
            }
            .into());
        }
        if Instant::now() > deadline {
            return Err(LocalStageError::Timeout {
                env: opts.env.clone(),
                what: "report ready",
                log: log_path,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The state of `env`'s stage, if it was ever started.
pub fn status(config: &Config, env: &str) -> Result<Option<StageState>, Error> {
    config.environment(env)?;
    stage::read(&stage_dir(config, env)).map_err(stage_error)
}

/// One pod's log.
#[derive(Debug, Clone)]
pub struct PodLog {
    pub pod: String,
    pub container: String,
    pub path: PathBuf,
    pub text: String,
}

/// The logs of the pods whose name (or workload name) starts with `filter`, the last `tail`
/// lines of each.
pub fn logs(
    config: &Config,
    env: &str,
    filter: Option<&str>,
    tail: usize,
) -> Result<Vec<PodLog>, Error> {
    config.environment(env)?;
    let dir = stage_dir(config, env).join(stage::state::LOG_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read the stage logs", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".log") else {
            continue;
        };
        let (pod, container) = stem.rsplit_once('_').unwrap_or((stem, ""));
        if filter.is_some_and(|f| !pod.starts_with(f)) {
            continue;
        }
        out.push(PodLog {
            pod: pod.to_owned(),
            container: container.to_owned(),
            path: entry.path(),
            text: stage::state::log_tail(&entry.path(), tail),
        });
    }
    out.sort_by(|a, b| (&a.pod, &a.container).cmp(&(&b.pod, &b.container)));
    Ok(out)
}

/// `rel down`: stop `env`'s stage from its state file (converges: a second run finds nothing).
pub fn down(config: &Config, env: &str, grace: Duration) -> Result<stage::DownReport, Error> {
    config.environment(env)?;
    stage::down(&stage_dir(config, env), grace).map_err(stage_error)
}

/// The stage's pods in the shape the drift gate reads (`kube_source::Pod`).
pub fn live_pods(state: &StageState) -> Vec<crate::kube_source::Pod> {
    state
        .live_pods()
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// Whether `path` is inside the project (for display).
pub fn relative<'a>(config: &Config, path: &'a Path) -> &'a Path {
    path.strip_prefix(&config.root).unwrap_or(path)
}

/// Bring `opts.env`'s stage to the environment's current overlay: start it in the background
/// when none runs; otherwise ask the running supervisor to converge (a rolling replacement: new
/// pods ready before old ones stop) and wait for its answer. Returns the state once ready.
pub fn apply(
    config: &Config,
    opts: &UpOptions,
    secrets: Vec<ClusterSecret>,
) -> Result<StageState, Error> {
    let dir = stage_dir(config, &opts.env);
    let running = stage::read(&dir)
        .map_err(stage_error)?
        .and_then(|s| s.supervisor.filter(|p| p.is_alive()));
    if running.is_none() {
        return detach(config, opts, secrets);
    }
    // The supervisor has the secrets it was started with; it re-renders the overlay as it is now.
    request_converge(config, &opts.env, opts.ready_timeout * 2)
}
