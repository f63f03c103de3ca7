//! Rendered Kubernetes manifests, and the workloads in them.
//!
//! Drift and headroom read the same thing: an overlay rendered to a multi-document YAML stream.
//! [`load_manifests`] is the one entry point; it takes the stream from a file, stdin, or by
//! rendering an environment's overlay ([`render_overlay`]). [`workloads`] pulls out what the gates
//! need: each Deployment, StatefulSet, DaemonSet, Job, CronJob and Argo Rollout with its
//! containers, images, replicas, rollout strategy and resource requests.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;

/// Manifests the gates cannot read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ManifestError {
    #[error("{} has no kustomization.yaml", dir.display())]
    #[diagnostic(
        code(rel::manifests::no_kustomization),
        help(
            "fix `overlay = ...` of the environment in rel.toml, or pass already-rendered manifests with --rendered FILE"
        )
    )]
    NoKustomization { dir: PathBuf },

    #[error("cannot render {}", dir.display())]
    #[diagnostic(
        code(rel::manifests::render),
        help(
            "fix the overlay named above (`rel render DIR` shows the same error), or pass already-rendered manifests with --rendered FILE"
        )
    )]
    Render {
        dir: PathBuf,
        #[source]
        source: kustomize::Error,
    },

    #[error("{origin}: invalid JSON")]
    #[diagnostic(
        code(rel::manifests::json),
        help("pass the output of `kubectl kustomize` or `kubectl get -o json`")
    )]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{origin}{at}: invalid YAML: {detail}")]
    #[diagnostic(
        code(rel::manifests::yaml),
        help("pass the output of `kubectl kustomize DIR` (a multi-document YAML stream)")
    )]
    Yaml {
        origin: String,
        /// `:line:col`, when known.
        at: String,
        detail: String,
    },
}

/// Where the manifests come from.
#[derive(Debug, Clone)]
pub enum ManifestSource {
    /// Already rendered, in a file (`--rendered FILE`).
    File(PathBuf),
    /// Already rendered, on stdin (`--rendered -`).
    Stdin,
    /// An overlay directory to render (`--env E`).
    Overlay(PathBuf),
}

/// The objects of a manifest stream, with `List` objects flattened into their items.
pub fn load_manifests(source: &ManifestSource) -> Result<Vec<Value>, Error> {
    let (text, origin) = match source {
        ManifestSource::File(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| Error::io("read the rendered manifests", path, e))?,
            path.display().to_string(),
        ),
        ManifestSource::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::io("read the rendered manifests", "<stdin>", e))?;
            (text, "<stdin>".to_owned())
        }
        ManifestSource::Overlay(dir) => (render_overlay(dir)?, dir.display().to_string()),
    };
    parse_manifests(&text, &origin)
}

/// Render a kustomize overlay directory to a YAML stream with rel's native renderer
/// (`crates/kustomize-rs`), byte-identical to `kubectl kustomize DIR`.
pub fn render_overlay(dir: &Path) -> Result<String, Error> {
    if !["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|n| dir.join(n).is_file())
    {
        return Err(ManifestError::NoKustomization {
            dir: dir.to_owned(),
        }
        .into());
    }
    kustomize::render(dir)
        .map(|r| r.to_yaml())
        .map_err(|source| {
            ManifestError::Render {
                dir: dir.to_owned(),
                source,
            }
            .into()
        })
}

/// Parse a multi-document YAML (or JSON) stream into objects.
pub fn parse_manifests(text: &str, origin: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = if text.trim_start().starts_with('{') {
        vec![
            serde_json::from_str(text).map_err(|source| ManifestError::Json {
                origin: origin.to_owned(),
                source,
            })?,
        ]
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            ManifestError::Yaml {
                origin: origin.to_owned(),
                at,
                detail: e.to_string().lines().next().unwrap_or("").to_owned(),
            }
        })?
    };
    let mut out = Vec::new();
    for doc in docs {
        flatten(doc, &mut out);
    }
    Ok(out)
}

fn flatten(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Null => {}
        Value::Object(ref m)
            if m.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && m.get("items").is_some_and(Value::is_array) =>
        {
            if let Value::Object(mut m) = doc
                && let Some(Value::Array(items)) = m.remove("items")
            {
                for item in items {
                    flatten(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

/// The kinds of workload the gates look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    /// Argo Rollouts (`argoproj.io/v1alpha1`).
    Rollout,
    /// An Argo Rollouts AnalysisTemplate or ClusterAnalysisTemplate: the pod templates of its
    /// `job` metrics (the deploy gate runs rel's own image this way). Its pods come and go with
    /// each analysis run, so it has no replicas and no rollout of its own.
    AnalysisTemplate,
}

impl WorkloadKind {
    fn parse(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            "Rollout" => WorkloadKind::Rollout,
            "AnalysisTemplate" | "ClusterAnalysisTemplate" => WorkloadKind::AnalysisTemplate,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Rollout => "Rollout",
            WorkloadKind::AnalysisTemplate => "AnalysisTemplate",
        }
    }
}

/// A number or a percentage, as in `maxSurge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

impl IntOrPercent {
    fn parse(v: &Value) -> Option<IntOrPercent> {
        match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(IntOrPercent::Int),
            Value::String(s) => match s.strip_suffix('%') {
                Some(p) => p.trim().parse().ok().map(IntOrPercent::Percent),
                None => s.trim().parse().ok().map(IntOrPercent::Int),
            },
            _ => None,
        }
    }

    /// The absolute value for `replicas`; percentages round up, as Kubernetes rounds `maxSurge`.
    pub fn resolve_up(self, replicas: u32) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => (u64::from(replicas) * u64::from(p)).div_ceil(100) as u32,
        }
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How a workload rolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Deployment `RollingUpdate` or Rollout canary: up to `max_surge` extra pods.
    Surge { max_surge: IntOrPercent },
    /// Deployment `Recreate`: old pods go first, no extra pods.
    Recreate,
    /// Rollout blue-green: a full second ReplicaSet.
    BlueGreen,
    /// StatefulSet, DaemonSet, Job, CronJob: not sized by headroom.
    Other,
}

/// One container of a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// The image reference as written (may be invalid or tag-only: the gates report it).
    pub image: String,
    /// `resources.requests`, values as written (`250m`, `1`, `128Mi`).
    pub requests: BTreeMap<String, String>,
    pub init: bool,
}

/// A workload of the rendered manifests.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: Option<String>,
    /// `spec.replicas` when written.
    pub replicas: Option<u32>,
    pub strategy: Strategy,
    pub containers: Vec<Container>,
}

impl Workload {
    /// `Deployment/gateway`
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }
}

/// The workloads among `objects`, in order.
///
/// A Rollout that adopts a Deployment through `spec.workloadRef` has no pod template of its own:
/// it runs the referenced Deployment's (same namespace), so it gets that Deployment's containers.
pub fn workloads(objects: &[Value]) -> Vec<Workload> {
    let mut all: Vec<Workload> = objects.iter().filter_map(workload).collect();
    for obj in objects {
        let Some(target) = workload_ref(obj) else {
            continue;
        };
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = obj.pointer("/metadata/name").and_then(Value::as_str);
        let adopted = all
            .iter()
            .find(|w| {
                w.kind == WorkloadKind::Deployment && w.name == target && w.namespace == namespace
            })
            .map(|w| w.containers.clone());
        if let (Some(containers), Some(w)) = (
            adopted,
            all.iter_mut().find(|w| {
                w.kind == WorkloadKind::Rollout
                    && Some(w.name.as_str()) == name
                    && w.namespace == namespace
                    && w.containers.is_empty()
            }),
        ) {
            w.containers = containers;
        }
    }
    all
}

/// The Deployment a Rollout adopts (`spec.workloadRef` of kind Deployment), if any.
fn workload_ref(obj: &Value) -> Option<&str> {
    if obj.get("kind")?.as_str()? != "Rollout" {
        return None;
    }
    let r = obj.pointer("/spec/workloadRef")?;
    if r.get("kind").and_then(Value::as_str) != Some("Deployment") {
        return None;
    }
    r.get("name")?.as_str()
}

fn workload(obj: &Value) -> Option<Workload> {
    let kind = WorkloadKind::parse(obj.get("kind")?.as_str()?)?;
    let meta = obj.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_owned();
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let pod_specs: Vec<(Option<&str>, &Value)> = match kind {
        WorkloadKind::CronJob => spec
            .pointer("/jobTemplate/spec/template/spec")
            .map(|p| (None, p))
            .into_iter()
            .collect(),
        // One pod template per `job` metric; containers are named `<metric>/<container>`, as
        // two metrics may each run a container of the same name.
        WorkloadKind::AnalysisTemplate => spec
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let pod = m.pointer("/provider/job/spec/template/spec")?;
                Some((m.get("name").and_then(Value::as_str), pod))
            })
            .collect(),
        _ => spec
            .pointer("/template/spec")
            .map(|p| (None, p))
            .into_iter()
            .collect(),
    };
    let replicas = spec
        .get("replicas")
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok());
    let strategy = match kind {
        WorkloadKind::Deployment => match spec.pointer("/strategy/type").and_then(Value::as_str) {
            Some("Recreate") => Strategy::Recreate,
            _ => Strategy::Surge {
                max_surge: spec
                    .pointer("/strategy/rollingUpdate/maxSurge")
                    .and_then(IntOrPercent::parse)
                    .unwrap_or(IntOrPercent::Percent(25)),
            },
        },
        WorkloadKind::Rollout => {
            if spec.pointer("/strategy/blueGreen").is_some() {
                Strategy::BlueGreen
            } else {
                Strategy::Surge {
                    max_surge: spec
                        .pointer("/strategy/canary/maxSurge")
                        .and_then(IntOrPercent::parse)
                        .unwrap_or(IntOrPercent::Percent(25)),
                }
            }
        }
        _ => Strategy::Other,
    };
    let mut containers = Vec::new();
    for ((metric, pod_spec), (field, init)) in pod_specs
        .iter()
        .flat_map(|p| [(*p, ("initContainers", true)), (*p, ("containers", false))])
    {
        for c in pod_spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let requests = c
                .pointer("/resources/requests")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
                .unwrap_or_default();
            let container = c.get("name").and_then(Value::as_str).unwrap_or("");
            containers.push(Container {
                name: match metric {
                    Some(metric) => format!("{metric}/{container}"),
                    None => container.to_owned(),
                },
                image: c.get("image").map(scalar).unwrap_or_default(),
                requests,
                init,
            });
        }
    }
    Some(Workload {
        kind,
        name,
        namespace,
        replicas,
        strategy,
        containers,
    })
}

/// A YAML scalar as text: `cpu: 1` and `cpu: "1"` mean the same.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: gateway
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  namespace: platform
spec:
  replicas: 3
  strategy:
    rollingUpdate:
      maxSurge: 34%
  template:
    spec:
      initContainers:
      - name: wait
        image: busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111
      containers:
      - name: gateway
        image: registry.example.com/platform/gateway@sha256:2222222222222222222222222222222222222222222222222222222222222222
        resources:
          requests:
            cpu: 1
            memory: 128Mi
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: reaper
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: reaper
            image: registry.example.com/platform/worker:0.4.0
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: identity
spec:
  strategy:
    blueGreen:
      activeService: identity
"#;

    #[test]
    fn finds_workloads_containers_and_strategies() {
        let objects = parse_manifests(RENDERED, "x.yaml").unwrap();
        assert_eq!(objects.len(), 4);
        let w = workloads(&objects);
        assert_eq!(
            w.iter().map(Workload::id).collect::<Vec<_>>(),
            ["Deployment/gateway", "CronJob/reaper", "Rollout/identity"]
        );
        assert_eq!(w[0].replicas, Some(3));
        assert_eq!(w[0].namespace.as_deref(), Some("platform"));
        assert_eq!(
            w[0].strategy,
            Strategy::Surge {
                max_surge: IntOrPercent::Percent(34)
            }
        );
        assert_eq!(w[0].containers.len(), 2);
        assert!(w[0].containers[0].init && !w[0].containers[1].init);
        assert_eq!(w[0].containers[1].requests["cpu"], "1");
        assert_eq!(
            w[1].containers[0].image,
            "registry.example.com/platform/worker:0.4.0"
        );
        assert_eq!(w[2].strategy, Strategy::BlueGreen);
        assert_eq!(w[2].replicas, None);
    }

    #[test]
    fn a_rollout_with_a_workload_ref_runs_the_deployments_containers() {
        let objects = parse_manifests(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  namespace: staging
spec:
  replicas: 0
  template:
    spec:
      containers:
      - name: gateway
        image: registry.example.com/platform/gateway@sha256:2222222222222222222222222222222222222222222222222222222222222222
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  namespace: other
spec:
  template:
    spec:
      containers:
      - name: elsewhere
        image: elsewhere:1
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: gateway
  namespace: staging
spec:
  replicas: 3
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: gateway
  strategy:
    blueGreen:
      activeService: gateway
"#,
            "x.yaml",
        )
        .unwrap();
        let w = workloads(&objects);
        let rollout = w.iter().find(|w| w.kind == WorkloadKind::Rollout).unwrap();
        assert_eq!(rollout.replicas, Some(3));
        assert_eq!(rollout.strategy, Strategy::BlueGreen);
        assert_eq!(
            rollout
                .containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["gateway"],
            "the Deployment of the Rollout's own namespace"
        );
        assert_eq!(w[0].replicas, Some(0));
    }

    #[test]
    fn surge_rounds_up() {
        assert_eq!(IntOrPercent::Percent(25).resolve_up(3), 1);
        assert_eq!(IntOrPercent::Percent(34).resolve_up(3), 2);
        assert_eq!(IntOrPercent::Percent(25).resolve_up(4), 1);
        assert_eq!(IntOrPercent::Percent(25).resolve_up(5), 2);
        assert_eq!(IntOrPercent::Percent(0).resolve_up(5), 0);
        assert_eq!(IntOrPercent::Int(2).resolve_up(1), 2);
    }

    #[test]
    fn lists_flatten_and_bad_yaml_is_an_error() {
        let objects = parse_manifests(
            r#"{"kind":"List","items":[{"kind":"Pod"},{"kind":"Pod"}]}"#,
            "x",
        )
        .unwrap();
        assert_eq!(objects.len(), 2);
        let e = parse_manifests("a: [\n", "bad.yaml").unwrap_err();
        assert!(e.to_string().starts_with("bad.yaml:"), "{e}");
    }
}
