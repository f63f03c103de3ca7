//! Rendered objects → what the stage will run: every pod with its name, address, program, env,
//! volumes and probe; every Service with its address and ports; the order (hooks, then sync
//! waves); and the rewrites. Everything the stage cannot run is refused here, before anything
//! starts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use image_ref::Digest;
use serde::Serialize;
use serde_json::Value;

use crate::env::{self, DataObjects, EnvContext};
use crate::error::StageError;
use crate::net::{AddressBlock, Allocator, proxy_port};
use crate::objects::{self, Container, IntOrString, Meta, PodTemplate, Probe, ServiceSpec};
use crate::rewrite::{Rewrite, Rewriter, ServiceTarget};

/// Argo CD's sync-wave annotation.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// Argo CD's hook annotation.
pub const HOOK: &str = "argocd.argoproj.io/hook";

/// A Secret the cluster provides and the manifests only reference (in a cluster, the
/// ExternalSecret makes it from the secret store: the genesis envelope and its master key).
/// It is visible in every namespace of the stage.
#[derive(Clone)]
pub struct ClusterSecret {
    pub name: String,
    pub data: BTreeMap<String, zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSecret")
            .field("name", &self.name)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where things are and what the cluster provides.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `.rel/stage/<env>`: logs, volumes, state.
    pub stage_dir: PathBuf,
    /// OCI layout directories (or directories of layouts) to find images in.
    pub image_roots: Vec<PathBuf>,
    /// The unpacked-image cache (content-addressed by manifest digest).
    pub image_cache: PathBuf,
    /// Namespace of objects the manifests leave unqualified.
    pub default_namespace: String,
    pub cluster_secrets: Vec<ClusterSecret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Rollout,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::Rollout => "Rollout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// What a readiness probe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ProbeAction {
    Http {
        port: u16,
        path: String,
        https: bool,
    },
    Tcp {
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbePlan {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerPlan {
    pub name: String,
    /// The image as the manifest writes it.
    pub image: String,
    pub digest: Digest,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub working_dir: PathBuf,
    /// The whole environment of the process (nothing else is inherited).
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    pub ports: Vec<(Option<String>, u16)>,
    pub readiness: Option<ProbePlan>,
    pub pre_stop_sleep: Option<Duration>,
}

/// A file a configMap or secret volume holds.
#[derive(Clone)]
pub struct VolumeFile {
    pub path: PathBuf,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
    pub mode: u32,
}

impl std::fmt::Debug for VolumeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VolumeFile({})", self.path.display())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PodPlan {
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    /// The controller Kubernetes would name: `ReplicaSet gateway-5d8c7f9b4a`, `Job x`.
    pub owner_kind: String,
    pub owner_name: String,
    pub containers: Vec<ContainerPlan>,
    pub dirs: Vec<PathBuf>,
    #[serde(skip)]
    pub files: Vec<VolumeFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadPlan {
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: String,
    pub wave: i64,
    /// A PreSync hook or migration Job: runs to completion before any workload starts.
    pub hook: bool,
    pub template_hash: String,
    pub restart: RestartPolicy,
    pub backoff_limit: u32,
    pub grace: Duration,
    pub pods: Vec<PodPlan>,
}

impl WorkloadPlan {
    /// `Deployment/gateway`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePortPlan {
    pub name: Option<String>,
    pub port: u16,
    pub proxy_port: u16,
    pub target: TargetPort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePortPlan>,
}

/// Everything the stage will run, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub block: AddressBlock,
    /// Hooks first (wave order), then the workloads (wave order; same wave in manifest order).
    pub workloads: Vec<WorkloadPlan>,
    pub services: Vec<ServicePlan>,
    pub rewrites: Vec<Rewrite>,
    /// Objects the stage does not run, with the reason (`CronJob/x: runs on a schedule`).
    pub skipped: Vec<String>,
}

impl Plan {
    /// The workload groups in start order: hooks one by one, then each sync wave.
    pub fn groups(&self) -> Vec<Vec<&WorkloadPlan>> {
        let mut groups: Vec<Vec<&WorkloadPlan>> = Vec::new();
        for w in self.workloads.iter().filter(|w| w.hook) {
            groups.push(vec![w]);
        }
        let mut waves: BTreeMap<i64, Vec<&WorkloadPlan>> = BTreeMap::new();
        for w in self.workloads.iter().filter(|w| !w.hook) {
            waves.entry(w.wave).or_default().push(w);
        }
        groups.extend(waves.into_values());
        groups
    }
}

fn ns_of(meta: &Meta, opts: &PlanOptions) -> String {
    meta.namespace
        .clone()
        .unwrap_or_else(|| opts.default_namespace.clone())
}

fn bad(object: &str, message: impl std::fmt::Display) -> StageError {
    StageError::Manifest {
        object: object.to_owned(),
        message: message.to_string(),
    }
}

/// One workload before its pods are made.
struct Candidate {
    kind: WorkloadKind,
    meta: Meta,
    template: Value,
    replicas: u32,
    restart: RestartPolicy,
    backoff_limit: u32,
    hook: bool,
    wave: i64,
}

/// Plan `objects` for the stage. `alloc` hands out addresses (a fresh one for `up`, the running
/// stage's for a converge); `services_before` keeps the addresses Services already have.
pub fn plan(
    objects: &[Value],
    opts: &PlanOptions,
    alloc: &mut Allocator,
    services_before: &[ServicePlan],
) -> Result<Plan, StageError> {
    let mut config_maps = DataObjects::new();
    let mut secrets = DataObjects::new();
    let mut services_raw = Vec::new();
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    let mut namespaces = std::collections::BTreeSet::new();
    let deployments: BTreeMap<String, Value> = objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter_map(|o| Some((o.pointer("/metadata/name")?.as_str()?.to_owned(), o.clone())))
        .collect();

    for obj in objects {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let meta: Meta = objects::field(obj, "/metadata").map_err(|e| bad(kind, e))?;
        let id = format!("{kind}/{}", meta.name);
        let ns = ns_of(&meta, opts);
        match kind {
            "ConfigMap" => {
                let mut data: BTreeMap<String, String> =
                    objects::field(obj, "/data").map_err(|e| bad(&id, e))?;
                let binary: BTreeMap<String, String> =
                    objects::field(obj, "/binaryData").map_err(|e| bad(&id, e))?;
                for (k, v) in binary {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_bytes())
                        .map_err(|e| bad(&id, format!("binaryData `{k}`: {e}")))?;
                    data.insert(k, String::from_utf8_lossy(&bytes).into_owned());
                }
                config_maps.insert((ns, meta.name), data);
            }
            "Secret" => {
                let encoded: BTreeMap<String, String> =
                    objects::field(obj, "/data").map_err(|e| bad(&id, e))?;
                let mut data: BTreeMap<String, String> =
                    objects::field(obj, "/stringData").map_err(|e| bad(&id, e))?;
                for (k, v) in encoded {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.trim().as_bytes())
                        .map_err(|e| bad(&id, format!("data `{k}` is not base64: {e}")))?;
                    data.entry(k)
                        .or_insert_with(|| String::from_utf8_lossy(&bytes).into_owned());
                }
                secrets.insert((ns, meta.name), data);
            }
            "Service" => {
                let spec: ServiceSpec = objects::field(obj, "/spec").map_err(|e| bad(&id, e))?;
                if spec.kind.as_deref() == Some("ExternalName") {
                    skipped.push(format!("{id}: ExternalName Services are not proxied"));
                } else {
                    services_raw.push((meta, ns, spec));
                }
            }
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "Rollout" => {
                let wkind = match kind {
                    "Deployment" => WorkloadKind::Deployment,
                    "StatefulSet" => WorkloadKind::StatefulSet,
                    "DaemonSet" => WorkloadKind::DaemonSet,
                    "Job" => WorkloadKind::Job,
                    _ => WorkloadKind::Rollout,
                };
                let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
                let template = match (wkind, spec.get("template"), spec.get("workloadRef")) {
                    (_, Some(t), _) => t.clone(),
                    (WorkloadKind::Rollout, None, Some(r)) => {
                        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                        deployments
                            .get(name)
                            .and_then(|d| d.pointer("/spec/template"))
                            .cloned()
                            .ok_or_else(|| {
                                bad(&id, format!("workloadRef names Deployment `{name}`, which is not in the manifests"))
                            })?
                    }
                    _ => return Err(bad(&id, "has no spec.template")),
                };
                let replicas = match wkind {
                    WorkloadKind::Job => spec
                        .get("parallelism")
                        .and_then(Value::as_u64)
                        .unwrap_or(1)
                        .min(1) as u32,
                    WorkloadKind::DaemonSet => 1,
                    _ => spec.get("replicas").and_then(Value::as_u64).unwrap_or(1) as u32,
                };
                let hook_annotation = meta.annotations.get(HOOK).map(String::as_str).unwrap_or("");
                let hooks: Vec<&str> = hook_annotation.split(',').map(str::trim).collect();
                if hooks.iter().any(|h| {
                    matches!(
                        *h,
                        "PostSync" | "SyncFail" | "PostDelete" | "Skip" | "PreDelete"
                    )
                }) {
                    skipped.push(format!(
                        "{id}: Argo CD {hook_annotation} hook (the stage runs PreSync hooks only)"
                    ));
                    continue;
                }
                let hook = wkind == WorkloadKind::Job
                    && (hooks.contains(&"PreSync")
                        || meta
                            .labels
                            .get("app.kubernetes.io/component")
                            .map(String::as_str)
                            == Some("migration"));
                let wave = match meta.annotations.get(SYNC_WAVE) {
                    Some(w) => w
                        .trim()
                        .parse()
                        .map_err(|_| bad(&id, format!("{SYNC_WAVE} `{w}` is not an integer")))?,
                    None => 0,
                };
                let policy = template
                    .pointer("/spec/restartPolicy")
                    .and_then(Value::as_str);
                let restart = match (wkind, policy) {
                    (WorkloadKind::Job, Some("OnFailure")) => RestartPolicy::OnFailure,
                    (WorkloadKind::Job, _) => RestartPolicy::Never,
                    _ => RestartPolicy::Always,
                };
                let backoff_limit = spec
                    .get("backoffLimit")
                    .and_then(Value::as_u64)
                    .unwrap_or(6) as u32;
                namespaces.insert(ns);
                candidates.push(Candidate {
                    kind: wkind,
                    meta,
                    template,
                    replicas,
                    restart,
                    backoff_limit,
                    hook,
                    wave,
                });
            }
            "CronJob" => skipped.push(format!("{id}: runs on a schedule; not started")),
            _ => {}
        }
    }
    // Secrets the cluster provides, in every namespace of the stage.
    for secret in &opts.cluster_secrets {
        for ns in &namespaces {
            secrets.insert(
                (ns.clone(), secret.name.clone()),
                secret
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
                    .collect(),
            );
        }
    }

    // Services: keep the addresses they had.
    let mut services = Vec::new();
    for (meta, ns, spec) in services_raw {
        let id = format!("Service/{}", meta.name);
        let ip = match services_before
            .iter()
            .find(|s| s.name == meta.name && s.namespace == ns)
        {
            Some(s) => {
                alloc.reserve(s.ip);
                s.ip
            }
            None => alloc.service()?,
        };
        let mut ports = Vec::new();
        for p in &spec.ports {
            if p.protocol.as_deref().is_some_and(|p| p != "TCP") {
                return Err(StageError::Unsupported {
                    workload: id,
                    what: format!(
                        "port {} over {}",
                        p.port,
                        p.protocol.as_deref().unwrap_or("")
                    ),
                });
            }
            let target = match &p.target_port {
                None => TargetPort::Number(p.port),
                Some(IntOrString::Int(n)) => TargetPort::Number(
                    u16::try_from(*n).map_err(|_| bad(&id, format!("targetPort {n}")))?,
                ),
                Some(IntOrString::String(s)) => match s.parse::<u16>() {
                    Ok(n) => TargetPort::Number(n),
                    Err(_) => TargetPort::Name(s.clone()),
                },
            };
            ports.push(ServicePortPlan {
                name: p.name.clone(),
                port: p.port,
                proxy_port: proxy_port(p.port),
                target,
            });
        }
        services.push(ServicePlan {
            name: meta.name,
            namespace: ns,
            ip,
            selector: spec.selector,
            ports,
        });
    }
    let targets: Vec<ServiceTarget> = services
        .iter()
        .map(|s| ServiceTarget {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            ip: s.ip.to_string(),
            ports: s.ports.iter().map(|p| (p.port, p.proxy_port)).collect(),
        })
        .collect();

    let mut workloads = Vec::new();
    let mut rewrites = Vec::new();
    let mut ctx = Shared {
        opts,
        config_maps: &config_maps,
        secrets: &secrets,
        targets: &targets,
    };
    for c in candidates {
        workloads.push(plan_workload(&mut ctx, c, alloc, &mut rewrites)?);
    }
    // Hooks in wave order, then the rest in wave order (stable: manifest order within a wave).
    workloads.sort_by_key(|w| (!w.hook, w.wave));
    Ok(Plan {
        block: alloc.block,
        workloads,
        services,
        rewrites,
        skipped,
    })
}

struct Shared<'a> {
    opts: &'a PlanOptions,
    config_maps: &'a DataObjects,
    secrets: &'a DataObjects,
    targets: &'a [ServiceTarget],
}

const POD_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn suffix(seed: &str) -> String {
    let d = Digest::of(seed.as_bytes());
    d.hex()
        .as_bytes()
        .chunks(2)
        .take(5)
        .map(|pair| {
            let n = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
            POD_SUFFIX_ALPHABET[usize::from(n) % POD_SUFFIX_ALPHABET.len()] as char
        })
        .collect()
}

fn plan_workload(
    sh: &mut Shared<'_>,
    c: Candidate,
    alloc: &mut Allocator,
    rewrites: &mut Vec<Rewrite>,
) -> Result<WorkloadPlan, StageError> {
    let id = format!("{}/{}", c.kind.as_str(), c.meta.name);
    let ns = ns_of(&c.meta, sh.opts);
    let template: PodTemplate =
        serde_json::from_value(c.template.clone()).map_err(|e| bad(&id, e))?;
    let spec = &template.spec;
    let unsupported = |what: String| StageError::Unsupported {
        workload: id.clone(),
        what,
    };
    if spec.host_network {
        return Err(unsupported("hostNetwork: true".into()));
    }
    if !spec.init_containers.is_empty() {
        return Err(unsupported("initContainers".into()));
    }
    if spec.containers.is_empty() {
        return Err(bad(&id, "has no containers"));
    }
    let template_hash =
        Digest::of(&serde_json::to_vec(&c.template).unwrap_or_default()).hex()[..10].to_owned();
    let grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30));

    for v in &spec.volumes {
        let known = v.empty_dir.is_some()
            || v.persistent_volume_claim.is_some()
            || v.config_map.is_some()
            || v.secret.is_some();
        if !known {
            let what = v
                .other
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            return Err(unsupported(format!("volume `{}` ({what})", v.name)));
        }
    }
    // Images, once per container (every replica runs the same); none needed at zero replicas.
    let mut images = Vec::new();
    if c.replicas > 0 {
        for container in &spec.containers {
            images.push(image_of(sh.opts, &id, container)?);
        }
    }

    let mut pods = Vec::new();
    for index in 0..c.replicas {
        let (name, owner_kind, owner_name, extra_label) = match c.kind {
            WorkloadKind::Deployment => (
                format!(
                    "{}-{template_hash}-{}",
                    c.meta.name,
                    suffix(&format!("{id}/{template_hash}/{index}"))
                ),
                "ReplicaSet",
                format!("{}-{template_hash}", c.meta.name),
                Some(("pod-template-hash", template_hash.clone())),
            ),
            WorkloadKind::Rollout => (
                format!(
                    "{}-{template_hash}-{}",
                    c.meta.name,
                    suffix(&format!("{id}/{template_hash}/{index}"))
                ),
                "ReplicaSet",
                format!("{}-{template_hash}", c.meta.name),
                Some(("rollouts-pod-template-hash", template_hash.clone())),
            ),
            WorkloadKind::StatefulSet => (
                format!("{}-{index}", c.meta.name),
                "StatefulSet",
                c.meta.name.clone(),
                None,
            ),
            WorkloadKind::DaemonSet => (
                format!(
                    "{}-{}",
                    c.meta.name,
                    suffix(&format!("{id}/{template_hash}"))
                ),
                "DaemonSet",
                c.meta.name.clone(),
                None,
            ),
            WorkloadKind::Job => (
                format!(
                    "{}-{}",
                    c.meta.name,
                    suffix(&format!("{id}/{template_hash}"))
                ),
                "Job",
                c.meta.name.clone(),
                Some(("job-name", c.meta.name.clone())),
            ),
        };
        let mut labels = template.metadata.labels.clone();
        if let Some((k, v)) = extra_label {
            labels.insert(k.to_owned(), v);
        }
        let ip = alloc.pod()?;
        let pod_dir = sh.opts.stage_dir.join("pods").join(&name);
        // Volumes → directories (and files for configMap/secret volumes).
        let mut volume_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for v in &spec.volumes {
            let dir = if v.empty_dir.is_some() {
                pod_dir.join("volumes").join(&v.name)
            } else if let Some(claim) = &v.persistent_volume_claim {
                sh.opts
                    .stage_dir
                    .join("volumes")
                    .join(&ns)
                    .join(&claim.claim_name)
            } else if let Some(cm) = &v.config_map {
                let dir = pod_dir.join("volumes").join(&v.name);
                project(
                    &id,
                    "ConfigMap",
                    &cm.name,
                    cm.optional,
                    &cm.items,
                    sh.config_maps.get(&(ns.clone(), cm.name.clone())),
                    &dir,
                    0o644,
                    &mut files,
                )?;
                dir
            } else if let Some(s) = &v.secret {
                let dir = pod_dir.join("volumes").join(&v.name);
                project(
                    &id,
                    "Secret",
                    &s.secret_name,
                    s.optional,
                    &s.items,
                    sh.secrets.get(&(ns.clone(), s.secret_name.clone())),
                    &dir,
                    0o600,
                    &mut files,
                )?;
                dir
            } else {
                let what = v
                    .other
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| "unknown".into());
                return Err(unsupported(format!("volume `{}` ({what})", v.name)));
            };
            dirs.push(dir.clone());
            volume_dirs.insert(v.name.clone(), dir);
        }

        let mut containers = Vec::new();
        for (container, (digest, unpacked)) in spec.containers.iter().zip(&images) {
            let mut mounts: Vec<(String, PathBuf)> = Vec::new();
            for m in &container.volume_mounts {
                let dir = volume_dirs.get(&m.name).ok_or_else(|| {
                    bad(
                        &id,
                        format!("volumeMount `{}` names no volume of the pod", m.name),
                    )
                })?;
                let dir = match &m.sub_path {
                    Some(sub) if !sub.is_empty() => {
                        let d = dir.join(sub);
                        dirs.push(d.clone());
                        d
                    }
                    _ => dir.clone(),
                };
                mounts.push((m.mount_path.trim_end_matches('/').to_owned(), dir));
            }
            mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            let ip_text = ip.to_string();
            let ctx = EnvContext {
                workload: &id,
                namespace: &ns,
                pod_name: &name,
                pod_ip: &ip_text,
                labels: &labels,
                annotations: &template.metadata.annotations,
                config_maps: sh.config_maps,
                secrets: sh.secrets,
            };
            let image_env = unpacked.config.env.clone().unwrap_or_default();
            let mut env = env::resolve(container, &image_env, &ctx)?;
            if env.get("HOSTNAME").is_none() {
                env.set(
                    "HOSTNAME",
                    env::EnvValue {
                        value: name.clone(),
                        secret: false,
                    },
                );
            }
            let rewriter = Rewriter {
                pod_ip: &ip_text,
                namespace: &ns,
                services: sh.targets,
                mounts: &mounts,
            };
            let mut record = |field: String, secret: bool, from: &str, to: &str, kinds| {
                let (from, to) = if secret {
                    ("(secret)".to_owned(), "(secret)".to_owned())
                } else {
                    (from.to_owned(), to.to_owned())
                };
                rewrites.push(Rewrite {
                    pod: name.clone(),
                    container: container.name.clone(),
                    field,
                    kinds,
                    from,
                    to,
                });
            };
            for (k, v) in env.iter_mut() {
                let (new, kinds) = rewriter.rewrite(&v.value);
                if !kinds.is_empty() {
                    record(format!("env {k}"), v.secret, &v.value, &new, kinds);
                    v.value = new;
                }
            }
            // Command and args, as the kubelet combines them with the image's.
            let lookup = |n: &str| env.get(n).map(|v| v.value.clone());
            let (command, args): (Vec<String>, Vec<String>) =
                match (&container.command, &container.args) {
                    (Some(cmd), args) => (cmd.clone(), args.clone().unwrap_or_default()),
                    (None, Some(args)) => (
                        unpacked.config.entrypoint.clone().unwrap_or_default(),
                        args.clone(),
                    ),
                    (None, None) => (
                        unpacked.config.entrypoint.clone().unwrap_or_default(),
                        unpacked.config.cmd.clone().unwrap_or_default(),
                    ),
                };
            let mut argv: Vec<String> = Vec::new();
            for (i, a) in command.iter().chain(args.iter()).enumerate() {
                let expanded = if i < command.len() && container.command.is_none()
                    || i >= command.len() && container.args.is_none() && container.command.is_none()
                {
                    a.clone()
                } else {
                    env::expand(a, lookup)
                };
                let (new, kinds) = rewriter.rewrite(&expanded);
                if !kinds.is_empty() {
                    record(format!("argv[{i}]"), false, &expanded, &new, kinds);
                }
                argv.push(new);
            }
            if argv.is_empty() {
                return Err(StageError::NoCommand {
                    workload: id.clone(),
                    container: container.name.clone(),
                });
            }
            let working = container
                .working_dir
                .clone()
                .or_else(|| unpacked.config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".to_owned());
            let working_dir = map_path(&working, &mounts, &unpacked.rootfs);
            let program = find_program(
                &id,
                container,
                &argv[0],
                &env,
                &unpacked.rootfs,
                &working_dir,
            )?;
            let ports: Vec<(Option<String>, u16)> = container
                .ports
                .iter()
                .map(|p| (p.name.clone(), p.container_port))
                .collect();
            let readiness = match &container.readiness_probe {
                Some(p) => Some(probe_plan(&id, p, &ports)?),
                None => None,
            };
            let pre_stop_sleep = match container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
            {
                Some(h) if h.sleep.is_some() => Some(Duration::from_secs(
                    h.sleep.as_ref().map_or(0, |s| s.seconds),
                )),
                Some(h) if h.exec.is_some() || h.http_get.is_some() => {
                    return Err(unsupported("a preStop exec or httpGet hook".into()));
                }
                _ => None,
            };
            containers.push(ContainerPlan {
                name: container.name.clone(),
                image: container.image.clone(),
                digest: digest.clone(),
                program,
                args: argv[1..].to_vec(),
                working_dir,
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.value.clone()))
                    .collect(),
                ports,
                readiness,
                pre_stop_sleep,
            });
        }
        pods.push(PodPlan {
            name,
            namespace: ns.clone(),
            ip,
            labels,
            owner_kind: owner_kind.to_owned(),
            owner_name,
            containers,
            dirs,
            files,
        });
    }
    Ok(WorkloadPlan {
        kind: c.kind,
        name: c.meta.name.clone(),
        namespace: ns,
        wave: c.wave,
        hook: c.hook,
        template_hash,
        restart: c.restart,
        backoff_limit: c.backoff_limit,
        grace,
        pods,
    })
}

#[allow(clippy::too_many_arguments)]
fn project(
    id: &str,
    kind: &'static str,
    name: &str,
    optional: Option<bool>,
    items: &[objects::KeyToPath],
    data: Option<&BTreeMap<String, String>>,
    dir: &Path,
    mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), StageError> {
    let Some(data) = data else {
        if optional == Some(true) {
            return Ok(());
        }
        return Err(StageError::MissingReference {
            workload: id.to_owned(),
            kind,
            name: name.to_owned(),
            key: None,
        });
    };
    let pairs: Vec<(String, String)> = if items.is_empty() {
        data.keys().map(|k| (k.clone(), k.clone())).collect()
    } else {
        items
            .iter()
            .map(|i| (i.key.clone(), i.path.clone()))
            .collect()
    };
    for (key, path) in pairs {
        let value = data.get(&key).ok_or_else(|| StageError::MissingReference {
            workload: id.to_owned(),
            kind,
            name: name.to_owned(),
            key: Some(key.clone()),
        })?;
        if Path::new(&path)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(
                id,
                format!("volume item path `{path}` must be relative"),
            ));
        }
        files.push(VolumeFile {
            path: dir.join(&path),
            contents: zeroize::Zeroizing::new(value.as_bytes().to_vec()),
            mode,
        });
    }
    Ok(())
}

/// The image digest of `container` and the unpacked image.
fn image_of(
    opts: &PlanOptions,
    id: &str,
    container: &Container,
) -> Result<(Digest, oci::unpack::UnpackedImage), StageError> {
    let digest = container
        .image
        .rsplit_once('@')
        .and_then(|(_, d)| d.parse::<Digest>().ok())
        .ok_or_else(|| StageError::NotPinned {
            workload: id.to_owned(),
            container: container.name.clone(),
            image: container.image.clone(),
        })?;
    let image_err = |source| StageError::Image {
        workload: id.to_owned(),
        container: container.name.clone(),
        source,
    };
    // A cached tree needs no layout.
    let layout = oci::unpack::find_layout(&opts.image_roots, &digest);
    let layout = match layout {
        Ok(dir) => dir,
        Err(e) => {
            if opts
                .image_cache
                .join(digest.hex())
                .join("config.json")
                .is_file()
            {
                PathBuf::new()
            } else {
                return Err(image_err(e));
            }
        }
    };
    let unpacked =
        oci::unpack::unpack_image(&layout, &digest, &opts.image_cache).map_err(image_err)?;
    Ok((digest, unpacked))
}

/// A path as the container sees it → where it is on this machine: under a mount, or in the
/// image's root filesystem.
fn map_path(path: &str, mounts: &[(String, PathBuf)], rootfs: &Path) -> PathBuf {
    for (mount, dir) in mounts {
        if let Some(rest) = path.strip_prefix(mount.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return dir.join(rest.trim_start_matches('/'));
        }
    }
    rootfs.join(path.trim_start_matches('/'))
}

fn find_program(
    id: &str,
    container: &Container,
    argv0: &str,
    env: &env::Env,
    rootfs: &Path,
    working_dir: &Path,
) -> Result<PathBuf, StageError> {
    let candidates: Vec<PathBuf> = if argv0.starts_with('/') {
        vec![rootfs.join(argv0.trim_start_matches('/'))]
    } else if argv0.contains('/') {
        vec![working_dir.join(argv0)]
    } else {
        let path = env.get("PATH").map(|v| v.value.clone()).unwrap_or_else(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| rootfs.join(d.trim_start_matches('/')).join(argv0))
            .collect()
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| StageError::NoExecutable {
            workload: id.to_owned(),
            container: container.name.clone(),
            program: argv0.to_owned(),
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn probe_plan(
    id: &str,
    p: &Probe,
    ports: &[(Option<String>, u16)],
) -> Result<ProbePlan, StageError> {
    let port = |v: &IntOrString| -> Result<u16, StageError> {
        match v {
            IntOrString::Int(n) => {
                u16::try_from(*n).map_err(|_| bad(id, format!("probe port {n}")))
            }
            IntOrString::String(s) => s.parse().or_else(|_| {
                ports
                    .iter()
                    .find(|(n, _)| n.as_deref() == Some(s.as_str()))
                    .map(|(_, p)| *p)
                    .ok_or_else(|| {
                        bad(
                            id,
                            format!("readinessProbe names port `{s}`, which no container port has"),
                        )
                    })
            }),
        }
    };
    let action = if let Some(h) = &p.http_get {
        ProbeAction::Http {
            port: port(&h.port)?,
            path: h.path.clone().unwrap_or_else(|| "/".into()),
            https: h
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https")),
        }
    } else if let Some(t) = &p.tcp_socket {
        ProbeAction::Tcp {
            port: port(&t.port)?,
        }
    } else {
        return Err(StageError::Unsupported {
            workload: id.to_owned(),
            what: "a readinessProbe other than httpGet or tcpSocket".into(),
        });
    };
    if matches!(action, ProbeAction::Http { https: true, .. }) {
        return Err(StageError::Unsupported {
            workload: id.to_owned(),
            what: "an HTTPS readinessProbe".into(),
        });
    }
    Ok(ProbePlan {
        action,
        initial_delay: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0)),
        period: Duration::from_secs(p.period_seconds.unwrap_or(10).max(1)),
        timeout: Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1)),
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1),
        success_threshold: p.success_threshold.unwrap_or(1).max(1),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn opts(dir: &Path) -> PlanOptions {
        PlanOptions {
            stage_dir: dir.join("stage"),
            image_roots: vec![dir.join("oci")],
            image_cache: dir.join("cache"),
            default_namespace: "default".into(),
            cluster_secrets: Vec::new(),
        }
    }

    fn deployment(pod_spec: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}},
        })
    }

    fn plan_err(objects: &[Value]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut alloc = Allocator::new(AddressBlock { a: 99, b: 1 });
        plan(objects, &opts(dir.path()), &mut alloc, &[])
            .unwrap_err()
            .to_string()
    }

    const PINNED: &str = "registry.example.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn what_cannot_run_is_refused_before_anything_starts() {
        let cases = [
            (
                json!({"hostNetwork": true, "containers": [{"name": "c", "image": PINNED}]}),
                "Deployment/web: hostNetwork: true cannot run on the local stage",
            ),
            (
                json!({"initContainers": [{"name": "i", "image": PINNED}], "containers": [{"name": "c", "image": PINNED}]}),
                "initContainers cannot run",
            ),
            (
                json!({"volumes": [{"name": "h", "hostPath": {"path": "/var"}}], "containers": [{"name": "c", "image": PINNED}]}),
                "volume `h` (hostPath) cannot run",
            ),
            (
                json!({"containers": [{"name": "c", "image": "registry.example.com/web:1.0"}]}),
                "image `registry.example.com/web:1.0` is not pinned by digest",
            ),
            (
                json!({"containers": [{"name": "c", "image": PINNED}]}),
                "its image cannot be used",
            ),
        ];
        for (spec, want) in cases {
            let e = plan_err(&[deployment(spec)]);
            assert!(e.contains(want), "{e} (want {want})");
        }
        let e = plan_err(&[json!({
            "kind": "Service",
            "metadata": {"name": "dns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 53, "protocol": "UDP"}]},
        })]);
        assert!(e.contains("port 53 over UDP cannot run"), "{e}");
    }

    #[test]
    fn hooks_come_first_then_waves_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut alloc = Allocator::new(AddressBlock { a: 99, b: 2 });
        // Zero replicas: planned (and ordered) without images.
        let workload = |kind: &str, name: &str, annotations: Value, labels: Value| {
            json!({
                "kind": kind,
                "metadata": {"name": name, "annotations": annotations, "labels": labels},
                "spec": {"replicas": 0, "parallelism": 0, "template": {"spec": {"containers": [{"name": "c", "image": PINNED}]}}},
            })
        };
        let objects = [
            workload("Deployment", "gateway", json!({SYNC_WAVE: "2"}), json!({})),
            workload("Deployment", "identity", json!({}), json!({})),
            workload(
                "Job",
                "migrate",
                json!({HOOK: "PreSync", SYNC_WAVE: "-1"}),
                json!({}),
            ),
            workload(
                "Job",
                "seed",
                json!({}),
                json!({"app.kubernetes.io/component": "migration"}),
            ),
            workload("Deployment", "worker", json!({SYNC_WAVE: "1"}), json!({})),
            workload("Job", "report", json!({HOOK: "PostSync"}), json!({})),
            json!({"kind": "CronJob", "metadata": {"name": "nightly"}}),
        ];
        let p = plan(&objects, &opts(dir.path()), &mut alloc, &[]).unwrap();
        let groups: Vec<Vec<String>> = p
            .groups()
            .iter()
            .map(|g| g.iter().map(|w| w.id()).collect())
            .collect();
        assert_eq!(
            groups,
            [
                vec!["Job/migrate"],
                vec!["Job/seed"],
                vec!["Deployment/identity"],
                vec!["Deployment/worker"],
                vec!["Deployment/gateway"],
            ]
        );
        assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    }
}
