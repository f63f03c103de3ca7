//! The drift and headroom gates on this repository's staging overlay, whose gateway and worker
//! roll with Argo Rollouts (templates/rollouts, `workloadRef` to Deployments scaled to 0):
//! recorded pod lists of a blue/green mid-switch (both ReplicaSets live) and a canary at 25%.

use serde_json::{Value, json};

use crate::support::*;

const IDENTITY: &str = "sha256:06409e8cc96f0af0508f4dacc726c94317028ae5eadd76f2e5dac17f7df93b95";
const GATEWAY: &str = "sha256:ae2403f44f5e208a70ace0cb090097015b764a4f2a221945d56c3c04dd06fb80";
const WORKER: &str = "sha256:7d1584c8fe97bf98cd4f49fcb0ad9da9136e300f4d8de99062bb4380cb4f02c7";
const REL: &str = "sha256:87a2dd0a34cc3ff942aec17962d914f53253cc2afdb785bf74891be4a205fff1";
const OLD: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// A running pod of ReplicaSet `<component>-<hash>`; `rollout` picks the Rollout's hash label.
fn pod(component: &str, hash: &str, n: usize, digest: &str, rollout: bool) -> Value {
    let image = format!("registry.example.com/platform/{component}@{digest}");
    let label = if rollout {
        "rollouts-pod-template-hash"
    } else {
        "pod-template-hash"
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{component}-{hash}-{n}"), "namespace": "platform-staging",
            "labels": {"app.kubernetes.io/name": component, label: hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": format!("{component}-{hash}"), "controller": true, "uid": "0"}]
        },
        "spec": {"nodeName": "node-a", "containers": [{"name": component, "image": image,
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": component, "image": image, "imageID": format!("docker-pullable://{image}"),
             "ready": true, "restartCount": 0}]}
    })
}

/// identity's two pods (Deployment) plus `rest`.
fn pod_list(rest: Vec<Value>) -> Value {
    let mut items = vec![
        pod("identity", "6d4b75cb6d", 1, IDENTITY, false),
        pod("identity", "6d4b75cb6d", 2, IDENTITY, false),
    ];
    items.extend(rest);
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn drift(pods: &Value) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pods.json");
    std::fs::write(&file, pods.to_string()).unwrap();
    rel_in(
        &repo_root(),
        &[
            "gate",
            "drift",
            "--env",
            "staging",
            "--version",
            "0.2.0",
            "--pods",
            file.to_str().unwrap(),
        ],
    )
}

fn lines<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(" live/"))
        .collect()
}

#[test]
fn drift_blue_green_mid_switch_fails_until_the_old_replica_set_is_gone() {
    let canary_done = vec![
        pod("worker", "7c5d9f6b8", 1, WORKER, true),
        pod("worker", "7c5d9f6b8", 2, WORKER, true),
    ];
    // Mid-switch: the active ReplicaSet still runs the old digest next to the preview.
    let mut mid = vec![
        pod("gateway", "5f7c9d8b4", 1, OLD, true),
        pod("gateway", "5f7c9d8b4", 2, OLD, true),
        pod("gateway", "8d6b7c9f5", 1, GATEWAY, true),
        pod("gateway", "8d6b7c9f5", 2, GATEWAY, true),
    ];
    mid.extend(canary_done.clone());
    let run = drift(&pod_list(mid));
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        lines(&out, "FAIL"),
        [
            "FAIL live/Rollout/gateway: 2/4 pods run the pinned digests; stale: gateway-5f7c9d8b4-1 (gateway runs sha256:eeeeeeeeeeee…, pinned sha256:ae2403f44f5e…); gateway-5f7c9d8b4-2 (gateway runs sha256:eeeeeeeeeeee…, pinned sha256:ae2403f44f5e…)"
        ],
        "{out}"
    );
    // The adopted Deployments own no pods: the Rollouts' pods are the Rollouts'.
    assert!(
        out.contains("PASS live/Deployment/gateway: scaled to 0 replicas: no pods"),
        "{out}"
    );
    assert!(
        out.contains("PASS live/Rollout/worker: 2/2 pods run the pinned digests"),
        "{out}"
    );
    // The deploy gate's AnalysisTemplate runs rel's own image, pinned like the services; its
    // Job pods exist only during an analysis run.
    assert!(
        out.contains(&format!(
            "PASS image/AnalysisTemplate/deploy-gate/deep-smoke/rel: rel @ {REL}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("PASS pin/rel: {REL} as in release 0.2.0")),
        "{out}"
    );
    assert!(
        out.contains("PASS live/AnalysisTemplate/deploy-gate: no analysis running now"),
        "{out}"
    );

    // After promotion and scaleDownDelaySeconds: only the new ReplicaSet.
    let mut done = vec![
        pod("gateway", "8d6b7c9f5", 1, GATEWAY, true),
        pod("gateway", "8d6b7c9f5", 2, GATEWAY, true),
    ];
    done.extend(canary_done);
    let run = drift(&pod_list(done));
    run.expect(0);
    assert!(
        run.stdout()
            .contains("PASS live/Rollout/gateway: 2/2 pods run the pinned digests"),
        "{}",
        run.stdout()
    );
}

#[test]
fn drift_canary_at_25_percent_names_the_stable_pods_still_on_the_old_digest() {
    let pods = pod_list(vec![
        pod("gateway", "8d6b7c9f5", 1, GATEWAY, true),
        pod("gateway", "8d6b7c9f5", 2, GATEWAY, true),
        // stable: two pods on the old digest; canary (maxSurge 1): one on the pinned digest.
        pod("worker", "6b8f7d5c9", 1, OLD, true),
        pod("worker", "6b8f7d5c9", 2, OLD, true),
        pod("worker", "7c5d9f6b8", 1, WORKER, true),
    ]);
    let run = drift(&pods);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        lines(&out, "FAIL"),
        [
            "FAIL live/Rollout/worker: 1/3 pods run the pinned digests; stale: worker-6b8f7d5c9-1 (worker runs sha256:eeeeeeeeeeee…, pinned sha256:7d1584c8fe97…); worker-6b8f7d5c9-2 (worker runs sha256:eeeeeeeeeeee…, pinned sha256:7d1584c8fe97…)"
        ],
        "{out}"
    );
}

#[test]
fn headroom_sizes_the_blue_green_preview_and_the_canary_surge_not_the_adopted_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.json");
    // One node with room for 4 more of these pods (50m, 64Mi each) beyond the 8 running.
    let mut items = vec![json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
        "status": {"allocatable": {"cpu": "600m", "memory": "768Mi", "pods": "110"}}
    })];
    items.extend(
        pod_list(vec![
            pod("gateway", "8d6b7c9f5", 1, GATEWAY, true),
            pod("gateway", "8d6b7c9f5", 2, GATEWAY, true),
            pod("worker", "7c5d9f6b8", 1, WORKER, true),
            pod("worker", "7c5d9f6b8", 2, WORKER, true),
        ])["items"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    std::fs::write(&file, json!({"kind": "List", "items": items}).to_string()).unwrap();
    let run = rel_in(
        &repo_root(),
        &[
            "gate",
            "headroom",
            "--env",
            "staging",
            "--nodes",
            file.to_str().unwrap(),
        ],
    );
    let out = run.stdout();
    for want in [
        "PASS workload/Deployment/gateway: 0 replicas: no surge pods",
        "PASS workload/Deployment/worker: 0 replicas: no surge pods",
        // A blue/green needs a whole second set of pods.
        "workload/Rollout/gateway: blue-green: a second set of 2 replica(s) → 2 pod(s) × (50m CPU, 64Mi memory) = 100m CPU, 128Mi memory",
        "workload/Rollout/worker: maxSurge 1 of 2 replica(s) → 1 pod(s) × (50m CPU, 64Mi memory) = 50m CPU, 64Mi memory",
        "total: all 4 surge pod(s) fit at once",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    run.expect(0);
}

/// The staging overlay of this repository without its pin of rel's image: the deploy gate would
/// run whatever `rel:0.1.0` means on the day. Drift refuses it, naming the AnalysisTemplate.
#[test]
fn drift_refuses_a_deploy_gate_image_pinned_by_tag_only() {
    let p = Project::with_config(&std::fs::read_to_string(repo_root().join("rel.toml")).unwrap());
    for dir in ["templates", "overlays/staging"] {
        copy_dir(&repo_root().join(dir), &p.path().join(dir));
    }
    p.write(
        "releases/0.2.0.yaml",
        &std::fs::read_to_string(repo_root().join("releases/0.2.0.yaml")).unwrap(),
    );
    let overlay = p.read("overlays/staging/kustomization.yaml");
    let unpinned: String = overlay
        .split_inclusive('\n')
        .filter(|l| !l.contains("platform/rel") && !l.contains(REL) && !l.contains("# rel:"))
        .collect();
    assert_ne!(unpinned, overlay);
    p.write("overlays/staging/kustomization.yaml", &unpinned);
    let run = p.rel(&["gate", "drift", "--env", "staging", "--version", "0.2.0"]);
    run.expect(1);
    let out = run.stdout();
    assert!(
        out.contains("FAIL image/AnalysisTemplate/deploy-gate/deep-smoke/rel: `registry.example.com/platform/rel:0.1.0` is pinned by tag `0.1.0` only"),
        "{out}"
    );
    assert!(
        out.contains("FAIL pin/rel: release 0.2.0 pins sha256:87a2dd0a34cc"),
        "{out}"
    );
}
