//! The headroom gate: is there room on the nodes for a rolling update's extra pods? (seed 001 §7)
//!
//! For each Deployment and Argo Rollout of the rendered overlay, the surge pods a rollout adds
//! (`maxSurge`, a percentage of replicas rounded up as Kubernetes does; a blue-green Rollout adds a
//! full set), each sized by its effective requests (the larger of the containers' sum and the
//! largest init container, per resource, as the scheduler counts). Against the nodes: allocatable
//! minus what the pods on them already request; cordoned nodes and nodes outside the configured
//! pool do not count. Per workload: does one surge pod fit on some node? In total: do all surge
//! pods fit at once (first-fit decreasing, the mesh rolling together)?
//!
//! Not enough room is a warning by default and a failure with `fail`.

pub mod quantity;

use std::collections::BTreeMap;

use quantity::Quantity;

use crate::kube_source::{ContainerSpec, Node, Pod};
use crate::manifests::{Container, Strategy, Workload, WorkloadKind};
use crate::report::{Check, Report, Status};

/// CPU and memory together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: Quantity,
    pub memory: Quantity,
}

impl Resources {
    fn fits_in(&self, free: &Resources) -> bool {
        self.cpu <= free.cpu && self.memory <= free.memory
    }
    fn minus(self, o: Resources) -> Resources {
        Resources {
            cpu: self.cpu - o.cpu,
            memory: self.memory - o.memory,
        }
    }
    fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu: self.cpu + o.cpu,
            memory: self.memory + o.memory,
        }
    }
    /// How many of these fit in `free` (at most `u32::MAX`).
    fn count_fitting(&self, free: &Resources) -> u32 {
        let per = |need: Quantity, have: Quantity| -> u32 {
            if need.is_zero() {
                return u32::MAX;
            }
            if have < need {
                return 0;
            }
            u32::try_from(have.nanos() / need.nanos()).unwrap_or(u32::MAX)
        };
        per(self.cpu, free.cpu).min(per(self.memory, free.memory))
    }
    fn times(self, n: u32) -> Resources {
        Resources {
            cpu: self.cpu * n,
            memory: self.memory * n,
        }
    }
}

impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} CPU, {} memory", self.cpu.cpu(), self.memory.memory())
    }
}

/// What the gate looks at.
pub struct Input<'a> {
    pub env: &'a str,
    pub workloads: &'a [Workload],
    pub nodes: &'a [Node],
    /// Pods whose requests occupy the nodes; `None` when the source gave none.
    pub pods: Option<&'a [Pod]>,
    /// Only nodes with all these labels count.
    pub node_labels: &'a BTreeMap<String, String>,
    /// Not enough room fails instead of warning.
    pub fail: bool,
}

/// Effective requests of one pod: per resource, the larger of the containers' sum and the
/// largest init container.
fn effective<'a>(
    containers: impl Iterator<Item = (bool, &'a BTreeMap<String, String>)>,
) -> Result<Resources, String> {
    let mut sum = Resources::default();
    let mut init_max = Resources::default();
    for (init, requests) in containers {
        let get = |k: &str| {
            requests
                .get(k)
                .map(|v| Quantity::parse(v).map_err(|e| format!("requests.{k}: {e}")))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let r = Resources {
            cpu: get("cpu")?,
            memory: get("memory")?,
        };
        if init {
            init_max = Resources {
                cpu: init_max.cpu.max(r.cpu),
                memory: init_max.memory.max(r.memory),
            };
        } else {
            sum = sum.plus(r);
        }
    }
    Ok(Resources {
        cpu: sum.cpu.max(init_max.cpu),
        memory: sum.memory.max(init_max.memory),
    })
}

fn workload_requests(w: &Workload) -> Result<Resources, String> {
    effective(
        w.containers
            .iter()
            .map(|c: &Container| (c.init, &c.requests)),
    )
}

fn pod_requests(p: &Pod) -> Result<Resources, String> {
    fn requests(init: bool, c: &ContainerSpec) -> (bool, &BTreeMap<String, String>) {
        (init, &c.resources.requests)
    }
    let init = p.spec.init_containers.iter().map(|c| requests(true, c));
    effective(init.chain(p.spec.containers.iter().map(|c| requests(false, c))))
}

/// A node that counts, with what is free on it.
struct Room {
    name: String,
    free: Resources,
}

/// Surge pods of one workload.
struct Surge {
    id: String,
    pods: u32,
    per_pod: Resources,
}

/// Quantities the gate cannot read: the input is wrong, so the gate cannot run (exit 2).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("headroom cannot size the surge: {}", .0.join("; "))]
#[diagnostic(help(
    "write requests and allocatable as Kubernetes quantities, never negative (e.g. `250m`, `1.5`, `128Mi`); a request above 10^21 is refused as input error"
))]
pub struct BadQuantities(pub Vec<String>);

pub fn check(input: &Input) -> Result<Report, BadQuantities> {
    let mut report =
        Report::new("headroom", input.env.to_owned()).with_context("env", input.env.to_owned());
    let short = if input.fail {
        Status::Fail
    } else {
        Status::Warn
    };
    let fix = "add a node (or raise the autoscaler floor), lower maxSurge, or lower the requests";

    // Nodes, and what is already requested on them.
    let mut rooms: Vec<Room> = Vec::new();
    let mut cordoned = Vec::new();
    let mut bad_quantities = Vec::new();
    let mut requested: BTreeMap<&str, Resources> = BTreeMap::new();
    for pod in input.pods.unwrap_or(&[]) {
        let Some(node) = pod.spec.node_name.as_deref() else {
            continue;
        };
        if pod.is_terminated() {
            continue;
        }
        match pod_requests(pod) {
            Ok(r) => {
                *requested.entry(node).or_default() =
                    requested.get(node).copied().unwrap_or_default().plus(r)
            }
            Err(e) => bad_quantities.push(format!("pod {}: {e}", pod.metadata.name)),
        }
    }
    for node in input.nodes {
        if !input
            .node_labels
            .iter()
            .all(|(k, v)| node.metadata.labels.get(k) == Some(v))
        {
            continue;
        }
        if node.spec.unschedulable {
            cordoned.push(node.metadata.name.clone());
            continue;
        }
        let alloc = &node.status.allocatable;
        let parse = |k: &str| alloc.get(k).map(|v| Quantity::parse(v)).transpose();
        match (parse("cpu"), parse("memory")) {
            (Ok(cpu), Ok(memory)) => {
                let allocatable = Resources {
                    cpu: cpu.unwrap_or_default(),
                    memory: memory.unwrap_or_default(),
                };
                let used = requested
                    .get(node.metadata.name.as_str())
                    .copied()
                    .unwrap_or_default();
                rooms.push(Room {
                    name: node.metadata.name.clone(),
                    free: allocatable.minus(used),
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                bad_quantities.push(format!("node {}: allocatable {e}", node.metadata.name))
            }
        }
    }
    for w in input
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::Rollout))
    {
        if let Err(e) = workload_requests(w) {
            bad_quantities.push(format!("{}: {e}", w.id()));
        }
    }
    if !bad_quantities.is_empty() {
        return Err(BadQuantities(bad_quantities));
    }
    let pool = if input.node_labels.is_empty() {
        String::new()
    } else {
        format!(
            " with {}",
            input
                .node_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let total_free = rooms
        .iter()
        .fold(Resources::default(), |acc, r| acc.plus(r.free));
    report = report.with_context("nodes", rooms.len().to_string());
    if rooms.is_empty() {
        report.push(Check::fail(
            "nodes",
            format!(
                "no schedulable node{pool} in the input{}; nothing to place surge pods on",
                if cordoned.is_empty() {
                    String::new()
                } else {
                    format!(" ({} cordoned)", cordoned.join(", "))
                }
            ),
        ));
    } else {
        let mut detail = format!(
            "{} schedulable node(s){pool}: {total_free} free",
            rooms.len()
        );
        if !cordoned.is_empty() {
            detail.push_str(&format!("; cordoned, not counted: {}", cordoned.join(", ")));
        }
        report.push(Check::pass("nodes", detail));
    }
    if input.pods.is_none_or(<[Pod]>::is_empty) {
        report.push(Check::warn(
            "requested",
            "the input has no pods, so nothing counts as already requested and the free room is overstated; use `kubectl get nodes,pods -A -o json` or --live",
        ));
    }

    // Surge pods per workload.
    let mut surges: Vec<Surge> = Vec::new();
    for w in input
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::Rollout))
    {
        let id = w.id();
        let name = format!("workload/{id}");
        let replicas = w.replicas.unwrap_or(1);
        let (pods, how) = match &w.strategy {
            // Zero replicas roll no pods, whatever maxSurge says (a Deployment adopted by a
            // Rollout's workloadRef stays at zero).
            Strategy::Surge { .. } if replicas == 0 => (0, "0 replicas".to_owned()),
            Strategy::Surge { max_surge } => (
                max_surge.resolve_up(replicas),
                format!("maxSurge {max_surge} of {replicas} replica(s)"),
            ),
            Strategy::BlueGreen => (
                replicas,
                format!("blue-green: a second set of {replicas} replica(s)"),
            ),
            Strategy::Recreate => (0, "Recreate".to_owned()),
            Strategy::Other => continue,
        };
        let per_pod = match workload_requests(w) {
            Ok(r) => r,
            Err(e) => {
                report.push(Check::fail(name, format!("{id}: {e}")));
                continue;
            }
        };
        if pods == 0 {
            report.push(Check::pass(name, format!("{how}: no surge pods")));
            continue;
        }
        if per_pod.cpu.is_zero() && per_pod.memory.is_zero() {
            report.push(Check::warn(name, format!("{how} → {pods} surge pod(s) with no resource requests: cannot be sized; set resources.requests")));
            continue;
        }
        let total = per_pod.times(pods);
        let head = format!("{how} → {pods} pod(s) × ({per_pod}) = {total}");
        match rooms
            .iter()
            .filter(|r| per_pod.fits_in(&r.free))
            .max_by_key(|r| (r.free.cpu, r.free.memory))
        {
            Some(best) => report.push(Check::pass(
                name,
                format!("{head}; one fits on {} ({} free)", best.name, best.free),
            )),
            None => {
                let most = rooms.iter().max_by_key(|r| (r.free.cpu, r.free.memory));
                let most = most.map_or("no node".to_owned(), |r| {
                    format!("the roomiest node, {}, has {} free", r.name, r.free)
                });
                report.push(Check::new(
                    name,
                    short,
                    format!("{head}; no node has room for one surge pod: {most}; {fix}"),
                ));
            }
        }
        surges.push(Surge { id, pods, per_pod });
    }

    // All at once: first-fit decreasing over the free room. A surge's pods are identical, so
    // first-fit places them a node at a time (as many as fit, then the next node): the same
    // placement as pod by pod, without materialising a pod per replica.
    let mut groups: Vec<&Surge> = surges.iter().collect();
    groups.sort_by_key(|s| std::cmp::Reverse((s.per_pod.cpu, s.per_pod.memory)));
    let needed = groups.iter().fold(Resources::default(), |acc, s| {
        acc.plus(s.per_pod.times(s.pods))
    });
    let mut free: Vec<Resources> = rooms.iter().map(|r| r.free).collect();
    let mut unplaced: BTreeMap<&str, u32> = BTreeMap::new();
    for surge in &groups {
        let mut left = surge.pods;
        for f in free.iter_mut() {
            if left == 0 {
                break;
            }
            let n = surge.per_pod.count_fitting(f).min(left);
            if n > 0 {
                *f = f.minus(surge.per_pod.times(n));
                left -= n;
            }
        }
        if left > 0 {
            *unplaced.entry(surge.id.as_str()).or_default() += left;
        }
    }
    let count: u64 = groups.iter().map(|s| u64::from(s.pods)).sum();
    report = report
        .with_context("surge-cpu", needed.cpu.cpu())
        .with_context("surge-memory", needed.memory.memory());
    if count == 0 {
        report.push(Check::pass("total", "no workload adds surge pods"));
    } else if unplaced.is_empty() {
        report.push(Check::pass(
            "total",
            format!(
                "all {count} surge pod(s) fit at once: they need {needed} of {total_free} free"
            ),
        ));
    } else {
        let missing: u32 = unplaced.values().sum();
        let which = unplaced
            .iter()
            .map(|(id, n)| format!("{id} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        report.push(Check::new(
            "total",
            short,
            format!("{missing} of {count} surge pod(s) do not fit at once ({which}): the surge needs {needed}, {total_free} is free; {fix}"),
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(cpu: &str, mem: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("cpu".to_owned(), cpu.to_owned()),
            ("memory".to_owned(), mem.to_owned()),
        ])
    }

    #[test]
    fn effective_requests_take_the_larger_of_sum_and_init() {
        let c = [
            (false, reqs("100m", "64Mi")),
            (false, reqs("150m", "64Mi")),
            (true, reqs("200m", "512Mi")),
        ];
        let r = effective(c.iter().map(|(i, r)| (*i, r))).unwrap();
        assert_eq!(r.cpu.cpu(), "250m");
        assert_eq!(r.memory.memory(), "512Mi");
    }
}
