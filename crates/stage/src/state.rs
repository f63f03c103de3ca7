//! The stage's state file, `<stage dir>/state.json`: written atomically by the supervisor on every
//! change (a pod started, became ready, crashed, restarted, stopped), read by any other process —
//! `rel up status`, `rel up logs`, `rel down`, and the gates ([`StageState::live_pods`]).
//!
//! [`down`] stops a stage from another process using only this file: SIGTERM to the supervisor
//! (which stops its pods gracefully), then SIGKILL to every process group of the file that is
//! still alive. Processes are identified by pid *and* start time, so a reused pid is never hit.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::StageError;
use crate::net::AddressBlock;
use crate::rewrite::Rewrite;

pub const STATE_FILE: &str = "state.json";
pub const PID_FILE: &str = "supervisor.pid";
pub const LOG_DIR: &str = "logs";
/// The signal that asks a supervisor to converge.
pub const SIGHUP: i32 = libc::SIGHUP;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Hooks and waves are starting.
    Starting,
    /// Every workload is ready; the stage serves.
    Ready,
    /// A rolling replacement is under way.
    Converging,
    Stopping,
    Stopped,
    /// Start failed; `message` says why. Nothing of the stage runs.
    Failed,
}

/// A process, by pid and start time (`/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<ProcessId> {
        let pid = std::process::id();
        start_ticks(pid).map(|start_ticks| ProcessId { pid, start_ticks })
    }

    pub fn of(pid: u32) -> Option<ProcessId> {
        start_ticks(pid).map(|start_ticks| ProcessId { pid, start_ticks })
    }

    /// Still running (not a zombie), and the same process as recorded.
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest: state is field 3 (index 0 here), starttime field 22 (index 19).
        fields.first().is_some_and(|s| *s != "Z" && *s != "X")
            && fields.get(19).and_then(|t| t.parse().ok()) == Some(self.start_ticks)
    }
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadState {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub wave: i64,
    pub hook: bool,
    pub replicas: usize,
    pub ready: usize,
    pub template_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Terminating,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    pub digest: String,
    pub process: Option<ProcessId>,
    pub ready: bool,
    pub restarts: u32,
    /// The last exit: `exit 1`, `signal 9`.
    pub last_exit: Option<String>,
    pub log: PathBuf,
    /// Exited for good (a Job's container, or a stopped pod).
    pub finished: bool,
    /// Exited 0 for good.
    pub succeeded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodState {
    pub name: String,
    pub namespace: String,
    pub workload_kind: String,
    pub workload_name: String,
    pub owner_kind: String,
    pub owner_name: String,
    pub template_hash: String,
    pub labels: BTreeMap<String, String>,
    pub ip: Ipv4Addr,
    pub ports: Vec<(Option<String>, u16)>,
    pub phase: PodPhase,
    pub containers: Vec<ContainerState>,
}

impl PodState {
    pub fn ready(&self) -> bool {
        self.phase == PodPhase::Running && self.containers.iter().all(|c| c.ready)
    }

    pub fn restarts(&self) -> u32 {
        self.containers.iter().map(|c| c.restarts).sum()
    }

    /// `gateway-5d8c7f9b4a-x7k2p/gateway`
    pub fn log_of(&self, container: Option<&str>) -> Option<&Path> {
        match container {
            Some(c) => self.containers.iter().find(|x| x.name == c),
            None => self.containers.first(),
        }
        .map(|c| c.log.as_path())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePortState {
    pub name: Option<String>,
    pub port: u16,
    /// Where the proxy listens: `127.64.7.200:10080`.
    pub address: String,
    /// The pods' port: a number or a port name.
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceState {
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePortState>,
}

/// Everything about a running (or stopped) stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageState {
    pub env: String,
    pub phase: Phase,
    pub message: Option<String>,
    pub supervisor: Option<ProcessId>,
    pub block: AddressBlock,
    pub workloads: Vec<WorkloadState>,
    pub pods: Vec<PodState>,
    pub services: Vec<ServiceState>,
    pub rewrites: Vec<Rewrite>,
    /// How many converges finished (ok or not) since the start: a caller that asked the
    /// supervisor for one (SIGHUP) waits for this to grow.
    #[serde(default)]
    pub converges: u64,
}

impl StageState {
    /// The stage's pods as Kubernetes Pod objects (the JSON `kubectl get pods -o json` gives,
    /// reduced to what the gates read): metadata (name, namespace, labels, controller owner
    /// reference), `spec.containers` (name, image), `status.phase`, `status.podIP` and
    /// `status.containerStatuses` with `imageID` = `<image name>@<digest it runs>`. Finished Job
    /// pods are `Succeeded`/`Failed`, so the drift gate skips them.
    pub fn live_pods(&self) -> Vec<Value> {
        self.pods
            .iter()
            .map(|p| {
                let phase = match p.phase {
                    PodPhase::Pending => "Pending",
                    PodPhase::Running | PodPhase::Terminating => "Running",
                    PodPhase::Succeeded => "Succeeded",
                    PodPhase::Failed => "Failed",
                };
                let repo = |image: &str| {
                    image
                        .rsplit_once('@')
                        .map(|(r, _)| r.to_owned())
                        .unwrap_or_else(|| image.to_owned())
                };
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": p.name,
                        "namespace": p.namespace,
                        "labels": p.labels,
                        "ownerReferences": [{
                            "kind": p.owner_kind,
                            "name": p.owner_name,
                            "controller": true,
                        }],
                    },
                    "spec": {
                        "nodeName": "localhost",
                        "containers": p.containers.iter().map(|c| json!({
                            "name": c.name,
                            "image": c.image,
                        })).collect::<Vec<_>>(),
                    },
                    "status": {
                        "phase": phase,
                        "podIP": p.ip.to_string(),
                        "containerStatuses": p.containers.iter().map(|c| json!({
                            "name": c.name,
                            "image": c.image,
                            "imageID": format!("{}@{}", repo(&c.image), c.digest),
                            "ready": c.ready,
                            "restartCount": c.restarts,
                        })).collect::<Vec<_>>(),
                    },
                })
            })
            .collect()
    }

    /// `{"kind": "List", "items": [...]}` of [`StageState::live_pods`]: what `--pods FILE` takes.
    pub fn live_pod_list(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": self.live_pods()})
    }

    /// Every process of the stage the file names (pods' containers; not the supervisor).
    pub fn processes(&self) -> Vec<ProcessId> {
        self.pods
            .iter()
            .flat_map(|p| p.containers.iter().filter_map(|c| c.process))
            .collect()
    }
}

/// The state of the stage at `stage_dir`, if one was ever started there.
pub fn read(stage_dir: &Path) -> Result<Option<StageState>, StageError> {
    let path = stage_dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StageError::State {
                path,
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StageError::Io { path, source }),
    }
}

/// Write the state atomically (temp file in the same directory, then rename).
pub fn write(stage_dir: &Path, state: &StageState) -> Result<(), StageError> {
    let path = stage_dir.join(STATE_FILE);
    let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    atomic_file::write(&path, &bytes).map_err(StageError::io(&path))
}

/// What [`down`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// The supervisor was running and was asked to stop.
    pub supervisor: Option<u32>,
    /// Processes that were still alive after the supervisor was gone, and were killed.
    pub killed: Vec<u32>,
    /// Pids the state file named (all gone now).
    pub processes: Vec<u32>,
    /// There was no stage state at all.
    pub nothing: bool,
}

/// Send `signal` to the process group `pid` leads (each pod process leads its own group).
pub fn signal_group(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Send `signal` to one process.
pub fn signal_process(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: as above, one process.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Put a command about to be spawned in a new session (`setsid`): no controlling terminal, its
/// own process group, so it outlives the terminal and Ctrl-C of the process that started it.
pub fn new_session(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Stop the stage at `stage_dir` from any process: SIGTERM to its supervisor and a wait of up to
/// `grace` for it to stop its pods; then SIGKILL to every recorded process group still alive.
/// Converges: with nothing running it only tidies the state file. The state file is kept (phase
/// `stopped`) so logs stay findable.
pub fn down(stage_dir: &Path, grace: Duration) -> Result<DownReport, StageError> {
    let Some(mut state) = read(stage_dir)? else {
        return Ok(DownReport {
            nothing: true,
            ..DownReport::default()
        });
    };
    let mut report = DownReport::default();
    let processes = state.processes();
    report.processes = processes.iter().map(|p| p.pid).collect();
    if let Some(sup) = state.supervisor.filter(ProcessId::is_alive) {
        report.supervisor = Some(sup.pid);
        signal_process(sup.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while sup.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if sup.is_alive() {
            signal_process(sup.pid, libc::SIGKILL);
        }
    }
    for p in processes.iter().filter(|p| p.is_alive()) {
        signal_group(p.pid, libc::SIGKILL);
        report.killed.push(p.pid);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<ProcessId> = processes.clone();
    left.extend(state.supervisor);
    while left.iter().any(ProcessId::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<String> = left
        .iter()
        .filter(|p| p.is_alive())
        .map(|p| p.pid.to_string())
        .collect();
    if !survivors.is_empty() {
        return Err(StageError::Survivors {
            pids: survivors.join(","),
        });
    }
    // The supervisor wrote its last state; re-read it and close it off.
    if let Some(latest) = read(stage_dir)? {
        state = latest;
    }
    if state.phase != Phase::Stopped || state.supervisor.is_some() {
        state.phase = Phase::Stopped;
        state.supervisor = None;
        for pod in &mut state.pods {
            for c in &mut pod.containers {
                c.process = None;
                c.ready = false;
            }
        }
        write(stage_dir, &state)?;
    }
    let _ = std::fs::remove_file(stage_dir.join(PID_FILE));
    Ok(report)
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
