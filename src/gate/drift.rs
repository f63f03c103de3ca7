//! The drift gate: does the overlay pin exactly the release, and does the cluster run exactly
//! the overlay?
//!
//! Static: every container and init container image of every workload is digest-pinned and owned
//! by a component of `rel.toml`, and the overlay's pins equal a release lockfile (the one asked
//! for, or the one the pins match). Live: every pod of those workloads runs the pinned digest,
//! read from `status.containerStatuses[].imageID` (and init containers): per workload, how many
//! pods are on the pinned digests, which are stale by name, and a warning when pods run more than
//! one version at once (a rollout in progress).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use image_ref::ImageRef;

use crate::config::Config;
use crate::kube_source::Pod;
use crate::lockfile::Lockfile;
use crate::manifests::{Workload, WorkloadKind};
use crate::report::{Check, Report};

/// Which release the overlay must equal.
pub enum Release<'a> {
    /// `--version V`: this lockfile.
    Given(&'a Lockfile),
    /// The lockfiles of `releases/`: the overlay must match one (the newest that matches wins).
    AnyOf(&'a [Lockfile]),
}

/// The digest each workload's containers are pinned to (`None`: not pinned by a valid digest).
#[derive(Debug, Default)]
pub struct Pins {
    by_workload: Vec<BTreeMap<String, Option<String>>>,
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> String {
    match digest.get(..19) {
        Some(head) if digest.len() > 19 => format!("{head}…"),
        _ => digest.to_owned(),
    }
}

/// The static checks; returns the pins the live checks compare against.
pub fn check_static(
    env: &str,
    workloads: &[Workload],
    config: &Config,
    release: Release,
) -> (Report, Pins) {
    let mut report = Report::new("drift", env.to_owned()).with_context("env", env.to_owned());
    let owners: Vec<(&str, &ImageRef)> = config
        .components
        .iter()
        .map(|(n, c)| (n.as_str(), &c.image))
        .collect();
    let mut pins = Pins::default();
    // component -> digest -> workloads pinning it
    let mut pinned: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    // component -> workloads deploying it by tag only
    let mut by_tag: BTreeMap<String, Vec<String>> = BTreeMap::new();

    if workloads.is_empty() {
        report.push(Check::fail("workloads", "the rendered overlay has no workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Rollout, AnalysisTemplate)"));
    }
    for w in workloads {
        let mut by_container = BTreeMap::new();
        for c in &w.containers {
            let name = format!("image/{}/{}", w.id(), c.name);
            let image = match c.image.parse::<ImageRef>() {
                Ok(r) => r,
                Err(e) => {
                    report.push(Check::fail(name, e.to_string()));
                    by_container.insert(c.name.clone(), None);
                    continue;
                }
            };
            let owner = owners
                .iter()
                .find(|(_, i)| **i == image.without_version())
                .map(|(n, _)| *n);
            let digest = image.digest().map(ToString::to_string);
            by_container.insert(c.name.clone(), digest.clone());
            let mut problems = Vec::new();
            if digest.is_none() {
                problems.push(match image.tag() {
                    Some(tag) => format!("`{}` is pinned by tag `{tag}` only; a tag is a label, never an authority: pin it by digest (`rel pin --env {env} --version V`)", c.image),
                    None => format!("`{}` has neither tag nor digest (it means `latest`): pin it by digest (`rel pin --env {env} --version V`)", c.image),
                });
            }
            if owner.is_none() {
                problems.push(format!(
                    "no component owns `{}`: add it to rel.toml as a component (`[components.<name>]` with `image = ...` or `repo = ...`), or remove it from the overlay",
                    image.without_version()
                ));
            }
            if let (Some(owner), None) = (owner, &digest) {
                by_tag.entry(owner.to_owned()).or_default().push(w.id());
            }
            if problems.is_empty() {
                let (owner, digest) = (owner.unwrap_or_default(), digest.unwrap_or_default());
                report.push(Check::pass(name, format!("{owner} @ {digest}")));
                pinned
                    .entry(owner.to_owned())
                    .or_default()
                    .entry(digest)
                    .or_default()
                    .push(w.id());
            } else {
                report.push(Check::fail(name, problems.join("; ")));
            }
        }
        pins.by_workload.push(by_container);
    }

    // The release the pins must equal.
    let matches = |lock: &Lockfile| {
        pinned.iter().all(|(component, digests)| {
            digests.len() == 1
                && lock
                    .components
                    .get(component)
                    .is_some_and(|c| digests.contains_key(&c.digest.to_string()))
        })
    };
    let lock = match release {
        Release::Given(lock) => Some(lock),
        Release::AnyOf(locks) => {
            let found = locks
                .iter()
                .filter(|l| matches(l))
                .max_by(|a, b| a.version.cmp(&b.version));
            match found {
                Some(l) => {
                    report.push(Check::pass(
                        "release",
                        format!("the overlay's pins match release {}", l.version),
                    ));
                    Some(l)
                }
                None if pinned.is_empty() => None,
                None => {
                    let mut versions: Vec<_> = locks.iter().map(|l| &l.version).collect();
                    versions.sort();
                    let known = versions.iter().map(ToString::to_string).collect::<Vec<_>>();
                    report.push(Check::fail(
                        "release",
                        if known.is_empty() {
                            "releases/ has no lockfile to compare the overlay with; pass --version V or write one with `rel lock`".to_owned()
                        } else {
                            format!(
                                "the overlay's pins match no release lockfile (have: {}); pin a release with `rel pin --env {env} --version V`, or name it with --version V to see the differences",
                                known.join(", ")
                            )
                        },
                    ));
                    None
                }
            }
        }
    };

    if let Some(lock) = lock {
        report = report.with_context("version", lock.version.to_string());
        for (component, locked) in &lock.components {
            let name = format!("pin/{component}");
            let want = locked.digest.to_string();
            match pinned.get(component) {
                None if by_tag.contains_key(component) => report.push(Check::fail(
                    name,
                    format!("release {} pins {}, the overlay deploys {component} by tag only ({}); run `rel pin --env {env} --version {}`", lock.version, short(&want), by_tag[component].join(", "), lock.version),
                )),
                None => report.push(Check::warn(name, format!("release {} pins {component} but this overlay deploys no image of it", lock.version))),
                Some(digests) if digests.len() == 1 && digests.contains_key(&want) => {
                    report.push(Check::pass(name, format!("{want} as in release {}", lock.version)))
                }
                Some(digests) => {
                    let found = digests.iter().map(|(d, ws)| format!("{} in {}", short(d), ws.join(", "))).collect::<Vec<_>>().join("; ");
                    report.push(Check::fail(
                        name,
                        format!("release {} pins {}, the overlay pins {found}; run `rel pin --env {env} --version {}`", lock.version, short(&want), lock.version),
                    ));
                }
            }
        }
        for component in pinned.keys().filter(|c| !lock.components.contains_key(*c)) {
            report.push(Check::fail(
                format!("pin/{component}"),
                format!("the overlay deploys {component}, which release {} does not pin; lock it into the release or remove it from the overlay", lock.version),
            ));
        }
    }
    (report, pins)
}

/// Where the live pods came from, for the report.
pub struct LiveInput<'a> {
    pub pods: &'a [Pod],
    /// Namespace of workloads the manifests leave unqualified; `None` accepts any.
    pub namespace: Option<&'a str>,
    /// `pods.json`, `<stdin>`, or the kube context.
    pub source: String,
}

/// The live checks, appended to the static report.
pub fn check_live(report: &mut Report, workloads: &[Workload], pins: &Pins, live: &LiveInput) {
    report
        .context
        .insert("live".to_owned(), live.source.clone());
    let index: HashMap<(WorkloadKind, &str), usize> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| ((w.kind, w.name.as_str()), i))
        .collect();
    let mut pods_of: Vec<Vec<&Pod>> = vec![Vec::new(); workloads.len()];
    for pod in live.pods {
        if pod.is_terminated() {
            continue;
        }
        let Some(i) = owner_of(pod, &index) else {
            continue;
        };
        let w = &workloads[i];
        let pod_ns = pod.metadata.namespace.as_deref();
        let ns_ok = match (w.namespace.as_deref(), live.namespace) {
            (Some(ns), _) | (None, Some(ns)) => pod_ns.is_none_or(|p| p == ns),
            (None, None) => true,
        };
        if ns_ok {
            pods_of[i].push(pod);
        }
    }

    for (i, w) in workloads.iter().enumerate() {
        let name = format!("live/{}", w.id());
        let pods = &pods_of[i];
        let pinned = &pins.by_workload[i];
        let unpinned: Vec<&str> = pinned
            .iter()
            .filter(|(_, d)| d.is_none())
            .map(|(c, _)| c.as_str())
            .collect();
        if !unpinned.is_empty() {
            report.push(Check::fail(
                name,
                format!(
                    "cannot compare: the overlay pins no digest for {}",
                    unpinned.join(", ")
                ),
            ));
            continue;
        }
        if pods.is_empty() {
            match w.kind {
                WorkloadKind::Job | WorkloadKind::CronJob => {
                    report.push(Check::pass(name, "no running pods (not running now)"))
                }
                WorkloadKind::AnalysisTemplate => report.push(Check::pass(
                    name,
                    "no analysis running now (its Job pods live for one analysis run)",
                )),
                _ if w.replicas == Some(0) => {
                    report.push(Check::pass(name, "scaled to 0 replicas: no pods"))
                }
                _ => {
                    let ns = w
                        .namespace
                        .as_deref()
                        .or(live.namespace)
                        .map_or(String::new(), |n| format!(" in namespace {n}"));
                    report.push(Check::fail(
                        name,
                        format!("no live pods{ns} ({}): not deployed yet, or the wrong --context/--namespace", live.source),
                    ));
                }
            }
            continue;
        }
        let mut stale = Vec::new();
        // What each pod runs, to spot more than one version at once.
        let mut versions: BTreeMap<Vec<(String, String)>, usize> = BTreeMap::new();
        for pod in pods {
            let mut runs = Vec::new();
            let mut why = Vec::new();
            for (container, want) in pinned {
                let want = want.as_deref().unwrap_or_default();
                let status = pod
                    .status
                    .container_statuses
                    .iter()
                    .chain(&pod.status.init_container_statuses)
                    .find(|s| &s.name == container);
                match status.and_then(|s| s.digest()) {
                    Some(d) => {
                        runs.push((container.clone(), d.to_owned()));
                        if d != want {
                            why.push(format!(
                                "{container} runs {}, pinned {}",
                                short(d),
                                short(want)
                            ));
                        }
                    }
                    None => {
                        runs.push((container.clone(), "none".to_owned()));
                        why.push(format!("{container} has no image ID yet (pending)"));
                    }
                }
            }
            *versions.entry(runs).or_default() += 1;
            if !why.is_empty() {
                stale.push(format!("{} ({})", pod.metadata.name, why.join(", ")));
            }
        }
        let total = pods.len();
        let good = total - stale.len();
        if stale.is_empty() {
            report.push(Check::pass(
                name.clone(),
                format!("{good}/{total} pods run the pinned digests"),
            ));
        } else {
            const SHOWN: usize = 20;
            let more = if stale.len() > SHOWN {
                format!("; and {} more", stale.len() - SHOWN)
            } else {
                String::new()
            };
            stale.truncate(SHOWN);
            report.push(Check::fail(
                name.clone(),
                format!(
                    "{good}/{total} pods run the pinned digests; stale: {}{more}",
                    stale.join("; ")
                ),
            ));
        }
        if versions.len() > 1 {
            let mut counts: Vec<String> = versions
                .iter()
                .map(|(runs, n)| {
                    let on_pin = runs
                        .iter()
                        .all(|(c, d)| pinned.get(c).and_then(|p| p.as_deref()) == Some(d.as_str()));
                    let what = if on_pin {
                        "the pinned digests".to_owned()
                    } else {
                        runs.iter()
                            .map(|(c, d)| format!("{c}={}", short(d)))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    format!("{n} on {what}")
                })
                .collect();
            counts.sort();
            report.push(Check::warn(
                format!("{name}/mixed"),
                format!("pods run {} versions at once ({}): a rollout in progress; re-run when it has converged", versions.len(), counts.join("; ")),
            ));
        }
    }
}

/// The workload a pod belongs to, through its controller: a ReplicaSet belongs to the Deployment
/// or Rollout whose name it extends with the pod-template hash; a Job may belong to a CronJob.
fn owner_of(pod: &Pod, index: &HashMap<(WorkloadKind, &str), usize>) -> Option<usize> {
    let owner = pod.controller()?;
    let strip_last = |name: &str| name.rsplit_once('-').map(|(head, _)| head.to_owned());
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let labels = &pod.metadata.labels;
            // A Rollout's ReplicaSets label their pods `rollouts-pod-template-hash`, a
            // Deployment's `pod-template-hash`: the label decides between a Rollout and the
            // Deployment of the same name it adopts through `workloadRef`.
            let rollout_hash = labels.get("rollouts-pod-template-hash");
            let hash = rollout_hash.or_else(|| labels.get("pod-template-hash"));
            let base = match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
                Some(b) => b.to_owned(),
                None => strip_last(&owner.name)?,
            };
            let (first, second) = if rollout_hash.is_some() {
                (WorkloadKind::Rollout, WorkloadKind::Deployment)
            } else {
                (WorkloadKind::Deployment, WorkloadKind::Rollout)
            };
            index
                .get(&(first, base.as_str()))
                .or_else(|| index.get(&(second, base.as_str())))
                .copied()
        }
        "StatefulSet" => index
            .get(&(WorkloadKind::StatefulSet, owner.name.as_str()))
            .copied(),
        "DaemonSet" => index
            .get(&(WorkloadKind::DaemonSet, owner.name.as_str()))
            .copied(),
        "Job" => index
            .get(&(WorkloadKind::Job, owner.name.as_str()))
            .copied()
            .or_else(|| {
                strip_last(&owner.name)
                    .and_then(|cron| index.get(&(WorkloadKind::CronJob, cron.as_str())).copied())
            }),
        _ => None,
    }
}

/// Every distinct namespace the live check must read, given a default for unqualified workloads.
pub fn namespaces(workloads: &[Workload], default: &str) -> BTreeSet<String> {
    workloads
        .iter()
        .map(|w| w.namespace.clone().unwrap_or_else(|| default.to_owned()))
        .collect()
}
