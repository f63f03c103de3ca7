//! The supervisor: starts a [`Plan`] (hooks, then sync waves, each waiting for readiness),
//! keeps it running (restarts with backoff, readiness probes, Service proxies), replaces it with a
//! new version without downtime ([`Stage::converge`]), and stops it ([`Stage::stop`]).
//!
//! Every change goes through [`Inner::update`], which writes `state.json` and wakes whoever waits
//! on the stage ([`Stage::changed`]): waits are on events, never on sleeps.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StageError;
use crate::net::{AddressBlock, Allocator};
use crate::plan::{
    self, ContainerPlan, Plan, PlanOptions, PodPlan, RestartPolicy, ServicePlan, TargetPort,
    WorkloadKind, WorkloadPlan,
};
use crate::state::{
    self, ContainerState, LOG_DIR, PID_FILE, Phase, PodPhase, PodState, ProcessId,
    ServicePortState, ServiceState, StageState, WorkloadState,
};

/// How the stage runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The environment's name (`local`), recorded in the state.
    pub env: String,
    /// `.rel/stage/<env>`.
    pub stage_dir: PathBuf,
    /// How long each hook and each sync wave may take to be ready.
    pub ready_timeout: Duration,
    /// First restart delay; doubles per restart up to `backoff_cap` (the kubelet's cap is 5 min;
    /// its first delay, 10 s, is shortened here so a laptop stage recovers quickly).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// When this turns true while the stage starts (Ctrl-C, SIGTERM), the start stops: what was
    /// started is stopped again and [`Stage::start`] returns [`StageError::Stopped`].
    pub cancel: Option<watch::Receiver<bool>>,
}

impl RunOptions {
    pub fn new(env: impl Into<String>, stage_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            env: env.into(),
            stage_dir: stage_dir.into(),
            ready_timeout: Duration::from_secs(120),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            cancel: None,
        }
    }
}

/// A claimed address block (see [`crate::net`]); held for the stage's life.
#[derive(Debug)]
pub struct Claim {
    pub block: AddressBlock,
    _listener: std::net::TcpListener,
}

impl Claim {
    /// Claim the block for the stage named `name` (see [`AddressBlock::claim`]).
    pub fn new(name: &str) -> Result<Claim, StageError> {
        let (block, listener) = AddressBlock::claim(name)?;
        Ok(Claim {
            block,
            _listener: listener,
        })
    }
}

/// A pod's running parts.
struct PodControl {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    ip: Ipv4Addr,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<StageState>,
    opts: RunOptions,
    version: watch::Sender<u64>,
    pods: Mutex<HashMap<String, PodControl>>,
    proxies: Mutex<HashMap<(String, String, u16), JoinHandle<()>>>,
    alloc: Mutex<Allocator>,
    services: Mutex<Vec<ServicePlan>>,
    converging: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Change the state, write `state.json`, wake waiters.
    fn update(&self, f: impl FnOnce(&mut StageState)) {
        let mut state = self.state.lock().expect("state lock");
        f(&mut state);
        let StageState {
            workloads, pods, ..
        } = &mut *state;
        for w in workloads.iter_mut() {
            w.ready = pods
                .iter()
                .filter(|p| {
                    p.workload_kind == w.kind
                        && p.workload_name == w.name
                        && p.namespace == w.namespace
                })
                .filter(|p| p.ready() || p.phase == PodPhase::Succeeded)
                .count();
        }
        if let Err(e) = state::write(&self.opts.stage_dir, &state) {
            tracing::warn!(error = %e, "cannot write the stage state");
        }
        drop(state);
        self.version.send_modify(|v| *v += 1);
    }

    fn container(&self, pod: &str, ci: usize, f: impl FnOnce(&mut ContainerState)) {
        self.update(|s| {
            if let Some(c) = s
                .pods
                .iter_mut()
                .find(|p| p.name == pod)
                .and_then(|p| p.containers.get_mut(ci))
            {
                f(c);
            }
        });
    }
}

/// A running stage. Dropping it does not stop the processes: call [`Stage::stop`].
pub struct Stage {
    inner: Arc<Inner>,
    _claim: Claim,
}

/// What a converge did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConvergeReport {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub kept: Vec<String>,
}

impl Stage {
    /// Start `plan`: Services first, then the hooks (each must exit 0), then each sync wave,
    /// waiting for readiness before the next. On any failure everything started is stopped
    /// again and the error says why; the state file then says `failed`.
    pub async fn start(plan: Plan, claim: Claim, opts: RunOptions) -> Result<Stage, StageError> {
        let dir = opts.stage_dir.clone();
        std::fs::create_dir_all(dir.join(LOG_DIR)).map_err(StageError::io(dir.join(LOG_DIR)))?;
        let supervisor = ProcessId::current();
        if let Some(p) = &supervisor {
            let pid_file = dir.join(PID_FILE);
            atomic_file::write(&pid_file, format!("{}\n", p.pid).as_bytes())
                .map_err(StageError::io(pid_file))?;
        }
        let mut alloc = Allocator::new(claim.block);
        for s in &plan.services {
            alloc.reserve(s.ip);
        }
        for p in plan.workloads.iter().flat_map(|w| &w.pods) {
            alloc.reserve(p.ip);
        }
        let state = StageState {
            env: opts.env.clone(),
            phase: Phase::Starting,
            message: None,
            supervisor,
            block: claim.block,
            workloads: plan.workloads.iter().map(workload_state).collect(),
            pods: Vec::new(),
            services: plan.services.iter().map(service_state).collect(),
            rewrites: plan.rewrites.clone(),
            converges: 0,
        };
        let (version, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            opts: opts.clone(),
            version,
            pods: Mutex::new(HashMap::new()),
            proxies: Mutex::new(HashMap::new()),
            alloc: Mutex::new(alloc),
            services: Mutex::new(plan.services.clone()),
            converging: tokio::sync::Mutex::new(()),
        });
        inner.update(|_| {});
        let stage = Stage {
            inner,
            _claim: claim,
        };
        let mut cancel = opts.cancel.clone();
        let cancelled = async move {
            match cancel.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|c| *c).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let starting = async {
            for s in &plan.services {
                stage.start_proxies(s).await?;
            }
            for group in plan.groups() {
                let mut expect = Vec::new();
                for w in group {
                    for p in &w.pods {
                        stage.start_pod(w, p)?;
                    }
                    expect.push(Expect::of(
                        w,
                        w.pods.iter().map(|p| p.name.clone()).collect(),
                    ));
                }
                stage.wait_for(&expect).await?;
            }
            Ok::<(), StageError>(())
        };
        let result = tokio::select! {
            r = starting => r,
            () = cancelled => Err(StageError::Stopped),
        };
        match result {
            Ok(()) => {
                stage.inner.update(|s| s.phase = Phase::Ready);
                Ok(stage)
            }
            Err(e) => {
                stage.stop_everything().await;
                let message = e.to_string();
                stage.inner.update(|s| {
                    s.phase = Phase::Failed;
                    s.message = Some(message);
                    s.supervisor = None;
                });
                let _ = std::fs::remove_file(dir.join(PID_FILE));
                Err(e)
            }
        }
    }

    /// A copy of the current state.
    pub fn state(&self) -> StageState {
        self.inner.state.lock().expect("state lock").clone()
    }

    /// Resolves after the next change of the state.
    pub async fn changed(&self) {
        let mut rx = self.inner.version.subscribe();
        let _ = rx.changed().await;
    }

    /// Roll the stage to `objects` (a new version's rendered manifests): hooks run again; per
    /// wave, each changed workload gets its new pods, which must be ready before its old pods are
    /// stopped (so its Service never lacks a ready endpoint); unchanged workloads are kept;
    /// workloads gone from `objects` are stopped last. A changed workload gets all its new pods
    /// at once (a 100 % surge, not its maxSurge/maxUnavailable). Pods whose names do not change
    /// (StatefulSet ordinals, Job reruns) are replaced in place: stopped, then started, before the
    /// wave's readiness wait. On failure the new pods are stopped and the old ones keep serving.
    pub async fn converge(
        &self,
        objects: &[Value],
        opts: &PlanOptions,
    ) -> Result<ConvergeReport, StageError> {
        let _one = self.inner.converging.lock().await;
        let services_before = self.inner.services.lock().expect("services").clone();
        let plan = {
            let mut alloc = self.inner.alloc.lock().expect("alloc");
            plan::plan(objects, opts, &mut alloc, &services_before)?
        };
        self.inner.update(|s| {
            s.phase = Phase::Converging;
            s.rewrites = plan.rewrites.clone();
        });
        let mut report = ConvergeReport::default();
        let result = self
            .converge_plan(&plan, &services_before, &mut report)
            .await;
        let message = result.as_ref().err().map(ToString::to_string);
        self.inner.update(|s| {
            s.phase = Phase::Ready;
            s.message = message;
            s.converges += 1;
        });
        result.map(|()| report)
    }

    async fn converge_plan(
        &self,
        plan: &Plan,
        services_before: &[ServicePlan],
        report: &mut ConvergeReport,
    ) -> Result<(), StageError> {
        // Services: new ones listen now; changed selectors take effect on the next connection.
        for s in &plan.services {
            self.start_proxies(s).await?;
        }
        self.inner.update(|st| {
            st.services = plan.services.iter().map(service_state).collect();
        });
        *self.inner.services.lock().expect("services") = plan.services.clone();

        for group in plan.groups() {
            let mut expect = Vec::new();
            let mut old = Vec::new();
            let mut new = Vec::new();
            for w in group {
                let running: Vec<PodState> = {
                    let st = self.inner.state.lock().expect("state lock");
                    st.pods
                        .iter()
                        .filter(|p| {
                            p.workload_kind == w.kind.as_str()
                                && p.workload_name == w.name
                                && p.namespace == w.namespace
                        })
                        .cloned()
                        .collect()
                };
                let rerun = w.kind == WorkloadKind::Job
                    && (w.hook || running.iter().any(|p| p.template_hash != w.template_hash));
                let mut names = Vec::new();
                for pod in &w.pods {
                    let same = running.iter().find(|r| r.name == pod.name);
                    match same {
                        Some(r) if r.template_hash == w.template_hash && !rerun => {
                            self.inner.alloc.lock().expect("alloc").release(pod.ip);
                            report.kept.push(r.name.clone());
                        }
                        Some(r) => {
                            // Same name, new template (StatefulSet, Job rerun): replace in place.
                            self.stop_pod(&r.name).await;
                            report.stopped.push(r.name.clone());
                            self.start_pod(w, pod)?;
                            new.push(pod.name.clone());
                            report.started.push(pod.name.clone());
                        }
                        None => {
                            self.start_pod(w, pod)?;
                            new.push(pod.name.clone());
                            report.started.push(pod.name.clone());
                        }
                    }
                    names.push(pod.name.clone());
                }
                old.extend(
                    running
                        .iter()
                        .filter(|r| !names.contains(&r.name))
                        .map(|r| r.name.clone()),
                );
                expect.push(Expect::of(w, names));
                self.inner.update(|st| {
                    let entry = workload_state(w);
                    match st.workloads.iter_mut().find(|x| {
                        x.kind == entry.kind
                            && x.name == entry.name
                            && x.namespace == entry.namespace
                    }) {
                        Some(x) => *x = entry,
                        None => st.workloads.push(entry),
                    }
                });
            }
            if let Err(e) = self.wait_for(&expect).await {
                for name in &new {
                    self.stop_pod(name).await;
                }
                return Err(e);
            }
            for name in &old {
                self.stop_pod(name).await;
                report.stopped.push(name.clone());
            }
        }
        // Workloads the new manifests no longer have.
        let gone: Vec<String> = {
            let st = self.inner.state.lock().expect("state lock");
            st.pods
                .iter()
                .filter(|p| {
                    !plan.workloads.iter().any(|w| {
                        p.workload_kind == w.kind.as_str()
                            && p.workload_name == w.name
                            && p.namespace == w.namespace
                    })
                })
                .map(|p| p.name.clone())
                .collect()
        };
        for name in gone {
            self.stop_pod(&name).await;
            report.stopped.push(name);
        }
        self.inner.update(|st| {
            st.workloads.retain(|x| {
                plan.workloads.iter().any(|w| {
                    x.kind == w.kind.as_str() && x.name == w.name && x.namespace == w.namespace
                })
            });
        });
        // Services gone: stop their proxies.
        let keep: Vec<(String, String, u16)> = plan
            .services
            .iter()
            .flat_map(|s| {
                s.ports
                    .iter()
                    .map(|p| (s.namespace.clone(), s.name.clone(), p.port))
            })
            .collect();
        let mut proxies = self.inner.proxies.lock().expect("proxies");
        proxies.retain(|k, task| {
            let k_ok = keep.contains(k);
            if !k_ok {
                task.abort();
            }
            k_ok
        });
        drop(proxies);
        for s in services_before {
            if !plan
                .services
                .iter()
                .any(|n| n.name == s.name && n.namespace == s.namespace)
            {
                self.inner.alloc.lock().expect("alloc").release(s.ip);
            }
        }
        Ok(())
    }

    /// Stop everything: pods in reverse sync-wave order (each gets its preStop, SIGTERM, and
    /// terminationGracePeriodSeconds before SIGKILL to its process group), then the Services.
    pub async fn stop(self) {
        self.inner.update(|s| s.phase = Phase::Stopping);
        self.stop_everything().await;
        self.inner.update(|s| {
            s.phase = Phase::Stopped;
            s.supervisor = None;
        });
        let _ = std::fs::remove_file(self.inner.opts.stage_dir.join(PID_FILE));
    }

    async fn stop_everything(&self) {
        let order: Vec<Vec<String>> = {
            let st = self.inner.state.lock().expect("state lock");
            let mut waves: std::collections::BTreeMap<(bool, i64), Vec<String>> =
                Default::default();
            for p in &st.pods {
                let w = st.workloads.iter().find(|w| {
                    w.kind == p.workload_kind
                        && w.name == p.workload_name
                        && w.namespace == p.namespace
                });
                let key = w.map_or((true, 0), |w| (!w.hook, w.wave));
                waves.entry(key).or_default().push(p.name.clone());
            }
            waves.into_values().rev().collect()
        };
        for names in order {
            let stops = names.iter().map(|n| self.stop_pod(n));
            futures_join_all(stops).await;
        }
        let mut proxies = self.inner.proxies.lock().expect("proxies");
        for (_, task) in proxies.drain() {
            task.abort();
        }
    }

    async fn start_proxies(&self, s: &ServicePlan) -> Result<(), StageError> {
        for p in &s.ports {
            let key = (s.namespace.clone(), s.name.clone(), p.port);
            if self
                .inner
                .proxies
                .lock()
                .expect("proxies")
                .contains_key(&key)
            {
                continue;
            }
            let address = std::net::SocketAddr::from((s.ip, p.proxy_port));
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| StageError::Listen {
                    service: format!("{}/{}", s.namespace, s.name),
                    address: address.to_string(),
                    source,
                })?;
            let task = tokio::spawn(crate::proxy::serve(
                self.inner.clone(),
                listener,
                s.namespace.clone(),
                s.name.clone(),
                p.port,
            ));
            self.inner
                .proxies
                .lock()
                .expect("proxies")
                .insert(key, task);
        }
        Ok(())
    }

    fn start_pod(&self, w: &WorkloadPlan, pod: &PodPlan) -> Result<(), StageError> {
        for d in &pod.dirs {
            std::fs::create_dir_all(d).map_err(StageError::io(d))?;
        }
        for f in &pod.files {
            write_volume_file(f)?;
        }
        let logs = self.inner.opts.stage_dir.join(LOG_DIR);
        let pod_state = PodState {
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            workload_kind: w.kind.as_str().to_owned(),
            workload_name: w.name.clone(),
            owner_kind: pod.owner_kind.clone(),
            owner_name: pod.owner_name.clone(),
            template_hash: w.template_hash.clone(),
            labels: pod.labels.clone(),
            ip: pod.ip,
            ports: pod
                .containers
                .iter()
                .flat_map(|c| c.ports.clone())
                .collect(),
            phase: PodPhase::Pending,
            containers: pod
                .containers
                .iter()
                .map(|c| ContainerState {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    digest: c.digest.to_string(),
                    process: None,
                    ready: false,
                    restarts: 0,
                    last_exit: None,
                    log: logs.join(format!("{}_{}.log", pod.name, c.name)),
                    finished: false,
                    succeeded: false,
                })
                .collect(),
        };
        self.inner.update(|s| {
            s.pods.retain(|p| p.name != pod.name);
            s.pods.push(pod_state);
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (ci, c) in pod.containers.iter().enumerate() {
            let run = ContainerRun {
                inner: self.inner.clone(),
                pod: pod.name.clone(),
                ci,
                c: c.clone(),
                ip: pod.ip,
                restart: w.restart,
                job: w.kind == WorkloadKind::Job,
                backoff_limit: w.backoff_limit,
                grace: w.grace,
                log: logs.join(format!("{}_{}.log", pod.name, c.name)),
            };
            tasks.push(tokio::spawn(run.run(stop_rx.clone())));
        }
        self.inner.pods.lock().expect("pods").insert(
            pod.name.clone(),
            PodControl {
                stop,
                tasks,
                ip: pod.ip,
            },
        );
        Ok(())
    }

    /// Stop one pod gracefully and forget it.
    async fn stop_pod(&self, name: &str) {
        let control = self.inner.pods.lock().expect("pods").remove(name);
        if let Some(control) = control {
            let _ = control.stop.send(true);
            for t in control.tasks {
                let _ = t.await;
            }
            self.inner.alloc.lock().expect("alloc").release(control.ip);
        }
        self.inner.update(|s| s.pods.retain(|p| p.name != name));
    }

    /// Wait until every expected pod is ready (Jobs: succeeded), or fail.
    async fn wait_for(&self, expect: &[Expect]) -> Result<(), StageError> {
        let timeout = self.inner.opts.ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.version.subscribe();
        loop {
            rx.borrow_and_update();
            let verdict = {
                let st = self.inner.state.lock().expect("state lock");
                judge(&st, expect)
            };
            match verdict {
                Verdict::Done => return Ok(()),
                Verdict::Failed(e) => return Err(e),
                Verdict::Waiting {
                    workload,
                    pod,
                    ready,
                    want,
                    log,
                } => {
                    let changed = tokio::time::timeout_at(deadline, rx.changed()).await;
                    if changed.is_err() {
                        return Err(StageError::NotReady {
                            workload,
                            seconds: timeout.as_secs(),
                            ready,
                            want,
                            pod,
                            log_tail: state::log_tail(&log, 20),
                            log,
                        });
                    }
                }
            }
        }
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    // Poll them together: pin each and await in a join loop.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = set.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// What a wait expects of one workload.
struct Expect {
    id: String,
    job: bool,
    pods: Vec<String>,
}

impl Expect {
    fn of(w: &WorkloadPlan, pods: Vec<String>) -> Expect {
        Expect {
            id: w.id(),
            job: w.kind == WorkloadKind::Job,
            pods,
        }
    }
}

enum Verdict {
    Done,
    Failed(StageError),
    Waiting {
        workload: String,
        pod: String,
        ready: usize,
        want: usize,
        log: PathBuf,
    },
}

fn judge(st: &StageState, expect: &[Expect]) -> Verdict {
    for e in expect {
        let pods: Vec<&PodState> = e
            .pods
            .iter()
            .filter_map(|n| st.pods.iter().find(|p| &p.name == n))
            .collect();
        if e.job {
            for p in &pods {
                if let Some(c) = p.containers.iter().find(|c| c.finished && !c.succeeded) {
                    return Verdict::Failed(StageError::JobFailed {
                        job: e.id.clone(),
                        status: c.last_exit.clone().unwrap_or_else(|| "failed".into()),
                        log_tail: state::log_tail(&c.log, 20),
                        log: c.log.clone(),
                    });
                }
            }
            let done = pods.len() == e.pods.len()
                && pods
                    .iter()
                    .all(|p| p.containers.iter().all(|c| c.succeeded));
            if !done {
                let p = pods.first();
                return Verdict::Waiting {
                    workload: e.id.clone(),
                    pod: p.map(|p| p.name.clone()).unwrap_or_default(),
                    ready: 0,
                    want: e.pods.len(),
                    log: p
                        .and_then(|p| p.log_of(None))
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                };
            }
        } else {
            let ready = pods.iter().filter(|p| p.ready()).count();
            if ready < e.pods.len() {
                let p = pods.iter().find(|p| !p.ready()).or(pods.first());
                return Verdict::Waiting {
                    workload: e.id.clone(),
                    pod: p.map(|p| p.name.clone()).unwrap_or_default(),
                    ready,
                    want: e.pods.len(),
                    log: p
                        .and_then(|p| p.log_of(None))
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                };
            }
        }
    }
    Verdict::Done
}

fn workload_state(w: &WorkloadPlan) -> WorkloadState {
    WorkloadState {
        kind: w.kind.as_str().to_owned(),
        name: w.name.clone(),
        namespace: w.namespace.clone(),
        wave: w.wave,
        hook: w.hook,
        replicas: w.pods.len(),
        ready: 0,
        template_hash: w.template_hash.clone(),
    }
}

fn service_state(s: &ServicePlan) -> ServiceState {
    ServiceState {
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        ip: s.ip,
        selector: s.selector.clone(),
        ports: s
            .ports
            .iter()
            .map(|p| ServicePortState {
                name: p.name.clone(),
                port: p.port,
                address: format!("{}:{}", s.ip, p.proxy_port),
                target: match &p.target {
                    TargetPort::Number(n) => n.to_string(),
                    TargetPort::Name(n) => n.clone(),
                },
            })
            .collect(),
    }
}

fn write_volume_file(f: &plan::VolumeFile) -> Result<(), StageError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = f.path.parent() {
        std::fs::create_dir_all(parent).map_err(StageError::io(parent))?;
    }
    let _ = std::fs::remove_file(&f.path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(&f.path)
        .map_err(StageError::io(&f.path))?;
    file.write_all(&f.contents).map_err(StageError::io(&f.path))
}

/// One container's life: start, probe, restart with backoff, stop.
struct ContainerRun {
    inner: Arc<Inner>,
    pod: String,
    ci: usize,
    c: ContainerPlan,
    ip: Ipv4Addr,
    restart: RestartPolicy,
    job: bool,
    backoff_limit: u32,
    grace: Duration,
    log: PathBuf,
}

/// Before a container's first successful readiness probe, probe this often (a start-up fast
/// path); afterwards the manifest's periodSeconds applies.
const STARTUP_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The kubelet resets a container's backoff after it ran this long.
const BACKOFF_RESET: Duration = Duration::from_secs(600);

impl ContainerRun {
    fn note(&self, text: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = writeln!(f, "--- rel stage: {text}");
        }
    }

    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let err = out.try_clone()?;
        let mut cmd = tokio::process::Command::new(&self.c.program);
        cmd.args(&self.c.args)
            .env_clear()
            .envs(self.c.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.c.working_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false);
        cmd.spawn()
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut restarts: u32 = 0;
        let mut delay_step: u32 = 0;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            self.note(&format!(
                "start #{} of {}/{} ({})",
                restarts + 1,
                self.pod,
                self.c.name,
                self.c.digest
            ));
            let status = match self.spawn() {
                Err(e) => {
                    self.note(&format!("cannot start {}: {e}", self.c.program.display()));
                    None
                }
                Ok(mut child) => {
                    let process = child.id().and_then(ProcessId::of);
                    let pid = child.id();
                    self.inner.update(|s| {
                        if let Some(p) = s.pods.iter_mut().find(|p| p.name == self.pod) {
                            if let Some(c) = p.containers.get_mut(self.ci) {
                                c.process = process;
                                c.ready = self.c.readiness.is_none() && !self.job;
                            }
                            if p.containers
                                .iter()
                                .all(|c| c.process.is_some() || c.finished)
                            {
                                p.phase = PodPhase::Running;
                            }
                        }
                    });
                    let probe = self.c.readiness.clone().filter(|_| !self.job).map(|p| {
                        let inner = self.inner.clone();
                        let (pod, ci, ip) = (self.pod.clone(), self.ci, self.ip);
                        tokio::spawn(async move {
                            tokio::time::sleep(p.initial_delay).await;
                            let (mut ready, mut ever, mut ok_n, mut fail_n) = (false, false, 0, 0);
                            loop {
                                if crate::probe::probe_once(ip, &p).await {
                                    fail_n = 0;
                                    ok_n += 1;
                                    if !ready && ok_n >= p.success_threshold {
                                        ready = true;
                                        ever = true;
                                        inner.container(&pod, ci, |c| c.ready = true);
                                    }
                                } else {
                                    ok_n = 0;
                                    fail_n += 1;
                                    if ready && fail_n >= p.failure_threshold {
                                        ready = false;
                                        inner.container(&pod, ci, |c| c.ready = false);
                                    }
                                }
                                let wait = if ever {
                                    p.period
                                } else {
                                    STARTUP_PROBE_INTERVAL.min(p.period)
                                };
                                tokio::time::sleep(wait).await;
                            }
                        })
                    });
                    let outcome = tokio::select! {
                        status = child.wait() => Some(status),
                        _ = stop.wait_for(|s| *s) => None,
                    };
                    if let Some(t) = &probe {
                        t.abort();
                    }
                    match outcome {
                        None => {
                            self.stop_child(&mut child, pid).await;
                            self.inner.container(&self.pod, self.ci, |c| {
                                c.process = None;
                                c.ready = false;
                                c.finished = true;
                            });
                            return;
                        }
                        Some(status) => {
                            // Whatever the main process left in its group goes with it.
                            if let Some(pid) = pid {
                                state::signal_group(pid, libc::SIGKILL);
                            }
                            status.ok()
                        }
                    }
                }
            };
            let (exit, success) = describe(status);
            self.note(&format!("{}/{} exited: {exit}", self.pod, self.c.name));
            let retry = match (self.restart, self.job) {
                (RestartPolicy::Always, _) => true,
                (_, true) => !success && restarts < self.backoff_limit,
                (RestartPolicy::OnFailure, false) => !success,
                (RestartPolicy::Never, false) => false,
            };
            self.inner.update(|s| {
                if let Some(p) = s.pods.iter_mut().find(|p| p.name == self.pod) {
                    if let Some(c) = p.containers.get_mut(self.ci) {
                        c.process = None;
                        c.ready = false;
                        c.last_exit = Some(exit.clone());
                        if !retry {
                            c.finished = true;
                            c.succeeded = success;
                        }
                    }
                    if !retry && p.containers.iter().all(|c| c.finished) {
                        p.phase = if p.containers.iter().all(|c| c.succeeded) {
                            PodPhase::Succeeded
                        } else {
                            PodPhase::Failed
                        };
                    }
                }
            });
            if !retry {
                return;
            }
            restarts += 1;
            if started.elapsed() >= BACKOFF_RESET {
                delay_step = 0;
            }
            // The kubelet's CrashLoopBackOff: doubling from the base, capped, for ever.
            let delay = retry::Backoff::exponential(u32::MAX, self.inner.opts.backoff_base)
                .with_max_delay(self.inner.opts.backoff_cap)
                .delay(delay_step.saturating_add(1));
            delay_step += 1;
            self.inner
                .container(&self.pod, self.ci, |c| c.restarts = restarts);
            self.note(&format!("restarting in {} ms", delay.as_millis()));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => {
                    self.inner.container(&self.pod, self.ci, |c| c.finished = true);
                    return;
                }
            }
        }
    }

    /// preStop (the sleep action), SIGTERM to the process group, the grace period, SIGKILL.
    async fn stop_child(&self, child: &mut tokio::process::Child, pid: Option<u32>) {
        self.inner.update(|s| {
            if let Some(p) = s.pods.iter_mut().find(|p| p.name == self.pod) {
                p.phase = PodPhase::Terminating;
                if let Some(c) = p.containers.get_mut(self.ci) {
                    c.ready = false;
                }
            }
        });
        let deadline = tokio::time::Instant::now() + self.grace;
        if let Some(sleep) = self.c.pre_stop_sleep {
            let until = (tokio::time::Instant::now() + sleep).min(deadline);
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                _ = child.wait() => {}
            }
        }
        let Some(pid) = pid else {
            return;
        };
        state::signal_group(pid, libc::SIGTERM);
        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                self.note(&format!(
                    "{} did not stop within {} s: SIGKILL",
                    self.pod,
                    self.grace.as_secs()
                ));
                state::signal_group(pid, libc::SIGKILL);
                child.wait().await.ok()
            }
        };
        state::signal_group(pid, libc::SIGKILL);
        let (exit, _) = describe(status);
        self.note(&format!("{}/{} stopped: {exit}", self.pod, self.c.name));
    }
}

fn describe(status: Option<std::process::ExitStatus>) -> (String, bool) {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => ("could not start".to_owned(), false),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (format!("exit {code}"), code == 0),
            (None, Some(sig)) => (format!("signal {sig}"), false),
            _ => ("unknown".to_owned(), false),
        },
    }
}

/// A flag that turns true on the first SIGTERM or SIGINT (Ctrl-C): when a foreground stage or
/// a detached supervisor should stop. The handlers are installed now (inside a runtime), so a
/// signal during the start is not lost and does not kill the process; pass the receiver as
/// [`RunOptions::cancel`], then wait on it once the stage is ready.
pub fn shutdown_flag() -> std::io::Result<watch::Receiver<bool>> {
    shutdown_flag_inner()
}

/// A stream of SIGHUP: how a detached supervisor is asked to converge to the current manifests.
pub fn hangups() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

fn shutdown_flag_inner() -> std::io::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}
