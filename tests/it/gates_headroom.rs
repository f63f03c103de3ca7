//! `rel gate headroom` against node and overlay fixtures, with the answers worked out by hand.
//!
//! The overlay (tests/fixtures/gates/platform, rendered in tests/fixtures/gates/rendered):
//! - identity: Deployment, 2 replicas, maxSurge 1 → 1 surge pod × (250m, 256Mi)
//! - gateway: Deployment, 3 replicas, maxSurge 25% → ceil(0.75) = 1 pod × (500m, 512Mi)
//! - worker: Rollout canary, 3 replicas, maxSurge 50% → ceil(1.5) = 2 pods × (1500m, 1Gi): the
//!   init container (1500m, 256Mi) outweighs the container (1, 1Gi) on CPU, not on memory
//! - reaper: CronJob, not a rolling workload
//!
//! Surge in total: 250m + 500m + 2 × 1500m = 3750m CPU; 256Mi + 512Mi + 2 × 1Gi = 2816Mi.
//!
//! The nodes (tests/fixtures/gates/cluster/nodes-and-pods.json), pool agentpool=nodepool1:
//! - node-a: allocatable 3860m, 8Gi; requested identity 250m/256Mi + gateway 500m/512Mi +
//!   worker 1500m/1Gi + metrics-agent 50m/64Mi = 2300m/1856Mi → free 1560m, 6336Mi
//! - node-b: allocatable 5.5, 16Gi; requested identity 250m/256Mi + 2 × gateway 500m/512Mi +
//!   2 × worker 1500m/1Gi = 4250m/3328Mi (the Succeeded reaper pod holds nothing) → free 1250m, 13056Mi
//! - node-c: cordoned; node-d: the system pool. Neither counts.
//!
//! Free in total: 2810m CPU, 19392Mi. First fit, largest first: worker#1 → node-a (60m left);
//! worker#2 fits neither; gateway → node-b (750m left); identity → node-b. One pod short.

use crate::gates_server::*;
use crate::support::*;

fn platform() -> Project {
    let p = Project::from_fixture("gates/platform");
    p.write(
        "nodes.json",
        &std::fs::read_to_string(fixture("gates/cluster/nodes-and-pods.json")).unwrap(),
    );
    p
}

fn rendered() -> String {
    fixture("gates/rendered/staging.yaml").display().to_string()
}

fn headroom(p: &Project, extra: &[&str]) -> Run {
    let r = rendered();
    let mut args = vec![
        "gate",
        "headroom",
        "--env",
        "staging",
        "--rendered",
        r.as_str(),
        "--nodes",
        "nodes.json",
    ];
    args.extend_from_slice(extra);
    p.rel(&args)
}

/// Change one node's allocatable CPU.
fn set_cpu(p: &Project, from: &str, to: &str) {
    let text = p.read("nodes.json");
    assert!(text.contains(&format!("\"cpu\": \"{from}\"")));
    p.write(
        "nodes.json",
        &text.replace(
            &format!("\"cpu\": \"{from}\""),
            &format!("\"cpu\": \"{to}\""),
        ),
    );
}

const NODE_A: &str = "node-a (1560m CPU, 6336Mi memory free)";

#[test]
fn one_surge_pod_short_is_a_warning_by_default() {
    let p = platform();
    let run = headroom(&p, &[]);
    run.expect(0);
    let out = run.stdout();
    let want = [
        "PASS nodes: 2 schedulable node(s) with agentpool=nodepool1: 2810m CPU, 19392Mi memory free; cordoned, not counted: node-c".to_owned(),
        format!("PASS workload/Deployment/gateway: maxSurge 25% of 3 replica(s) → 1 pod(s) × (500m CPU, 512Mi memory) = 500m CPU, 512Mi memory; one fits on {NODE_A}"),
        format!("PASS workload/Deployment/identity: maxSurge 1 of 2 replica(s) → 1 pod(s) × (250m CPU, 256Mi memory) = 250m CPU, 256Mi memory; one fits on {NODE_A}"),
        format!("PASS workload/Rollout/worker: maxSurge 50% of 3 replica(s) → 2 pod(s) × (1500m CPU, 1Gi memory) = 3 CPU, 2Gi memory; one fits on {NODE_A}"),
        "WARN total: 1 of 4 surge pod(s) do not fit at once (Rollout/worker ×1): the surge needs 3750m CPU, 2816Mi memory, 2810m CPU, 19392Mi memory is free; add a node (or raise the autoscaler floor), lower maxSurge, or lower the requests".to_owned(),
        "headroom gate PASSED: 4 passed, 0 failed, 1 warnings, 0 skipped".to_owned(),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

#[test]
fn with_fail_not_enough_headroom_fails() {
    let p = platform();
    let run = headroom(&p, &["--fail"]);
    run.expect(1);
    assert!(
        run.stdout()
            .contains("FAIL total: 1 of 4 surge pod(s) do not fit at once (Rollout/worker ×1)"),
        "{}",
        run.stdout()
    );

    // `fail = true` in rel.toml does the same.
    let config = p.read("rel.toml").replace(
        "node-labels = { agentpool = \"nodepool1\" }",
        "node-labels = { agentpool = \"nodepool1\" }\nfail = true",
    );
    p.write("rel.toml", &config);
    headroom(&p, &[]).expect(1);
}

#[test]
fn with_a_roomier_node_every_surge_pod_fits() {
    let p = platform();
    // node-b: 7500m - 4250m = 3250m free. worker#1 → node-a, worker#2, gateway, identity → node-b.
    set_cpu(&p, "5.5", "7.5");
    let run = headroom(&p, &["--fail", "--format", "json"]);
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let total = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "total")
        .unwrap();
    assert_eq!(total["status"], "pass");
    assert_eq!(
        total["detail"],
        "all 4 surge pod(s) fit at once: they need 3750m CPU, 2816Mi memory of 4810m CPU, 19392Mi memory free"
    );
    assert_eq!(v["context"]["surge-cpu"], "3750m");
    assert_eq!(v["context"]["surge-memory"], "2816Mi");
    assert_eq!(v["context"]["nodes"], "2");
    assert_eq!(v["context"]["env"], "staging");
}

#[test]
fn a_surge_pod_that_fits_on_no_node() {
    let p = platform();
    // node-a: 3000m - 2300m = 700m free; node-b keeps 1250m: no node takes a 1500m worker pod.
    set_cpu(&p, "3860m", "3");
    let run = headroom(&p, &[]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.contains("WARN workload/Rollout/worker: maxSurge 50% of 3 replica(s) → 2 pod(s) × (1500m CPU, 1Gi memory) = 3 CPU, 2Gi memory; no node has room for one surge pod: the roomiest node, node-b, has 1250m CPU, 13056Mi memory free"),
        "{out}"
    );
    // 700m + 1250m free: gateway → node-a (200m left), identity → node-a; both workers left over.
    assert!(
        out.contains("WARN total: 2 of 4 surge pod(s) do not fit at once (Rollout/worker ×2)"),
        "{out}"
    );
}

#[test]
fn renders_the_overlay_when_no_rendered_file_is_given() {
    assert!(
        test_support::kubectl()
            .arg("version")
            .arg("--client")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs kubectl on PATH (the kustomize oracle; see xtask/src/provision.rs)"
    );
    let p = platform();
    let rendered = headroom(&p, &[]);
    let run = p.rel(&[
        "gate",
        "headroom",
        "--env",
        "staging",
        "--nodes",
        "nodes.json",
    ]);
    run.expect(0);
    assert_eq!(run.stdout(), rendered.stdout());
}

#[test]
fn nodes_from_stdin_and_bad_input() {
    let p = platform();
    let r = rendered();
    let nodes = std::fs::read(fixture("gates/cluster/nodes-and-pods.json")).unwrap();
    let run = rel_stdin(
        p.path(),
        &[
            "gate",
            "headroom",
            "--env",
            "staging",
            "--rendered",
            &r,
            "--nodes",
            "-",
        ],
        &nodes,
    );
    run.expect(0);
    assert!(
        run.stdout().contains("WARN total: 1 of 4"),
        "{}",
        run.stdout()
    );

    p.write("broken.json", "{\"kind\": \"List\"");
    let run = p.rel(&[
        "gate",
        "headroom",
        "--env",
        "staging",
        "--rendered",
        &r,
        "--nodes",
        "broken.json",
    ]);
    run.expect(2);
    assert!(
        run.stderr().contains("could not read nodes from") && run.stderr().contains("broken.json"),
        "{}",
        run.stderr()
    );

    let run = p.rel(&["gate", "headroom", "--env", "staging", "--rendered", &r]);
    run.expect(2);
    assert!(run.stderr().contains("--nodes"), "{}", run.stderr());

    // An allocatable quantity that is not one is bad input (exit 2), naming the node.
    let text = p
        .read("nodes.json")
        .replacen("\"cpu\": \"3860m\"", "\"cpu\": \"3.8.6\"", 1);
    p.write("nodes.json", &text);
    let run = headroom(&p, &[]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("node node-a: allocatable `3.8.6` is not a Kubernetes quantity"),
        "{}",
        run.stderr()
    );
}
