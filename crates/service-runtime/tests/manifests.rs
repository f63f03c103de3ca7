//! The manifests in `templates/base` and `overlays/*` keep the promises this crate's drain
//! sequence relies on: rendered with `kubectl kustomize` (the oracle the project tests against),
//! every image is digest-pinned, every Deployment's grace period covers preStop + drain delay +
//! shutdown budget, probes point at `/healthz` and `/readyz`, and pods run as non-root.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

fn render(env: &str) -> String {
    let overlay = workspace_root().join("overlays").join(env);
    let out = test_support::kubectl().arg("kustomize").arg(&overlay).output().unwrap_or_else(|e| {
        panic!("cannot run `kubectl kustomize` ({e}); install kubectl (Debian package `kubernetes-client`)")
    });
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value on the line after the one that equals `marker` (trimmed), e.g. an env var's value.
fn value_after(doc: &str, marker: &str, key: &str) -> Option<String> {
    let mut lines = doc.lines().map(str::trim);
    lines.find(|l| *l == marker)?;
    let next = lines.next()?;
    Some(next.strip_prefix(key)?.trim().trim_matches('"').to_owned())
}

/// Whether `wanted` appears within the few lines after `marker`.
fn block_contains(doc: &str, marker: &str, wanted: &str) -> bool {
    let lines: Vec<&str> = doc.lines().map(str::trim).collect();
    lines
        .iter()
        .position(|l| *l == marker)
        .is_some_and(|at| lines[at..lines.len().min(at + 8)].contains(&wanted))
}

fn field(doc: &str, key: &str) -> Option<String> {
    doc.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().trim_matches('"').to_owned())
}

#[test]
fn overlays_render_pinned_with_a_grace_period_that_covers_the_drain() {
    for env in ["staging", "prod"] {
        let rendered = render(env);
        let namespace = format!("platform-{env}");
        // Every image: the workloads' (the Rollouts adopt these Deployments through workloadRef)
        // and rel's own, which the deploy-gate AnalysisTemplate runs (rel is a component too).
        let images: Vec<&str> = rendered
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .collect();
        assert_eq!(
            images.len(),
            5,
            "{env}: three Deployments, the migration Job and the deploy gate's Job"
        );
        for image in &images {
            let (name, digest) = image
                .split_once("@sha256:")
                .unwrap_or_else(|| panic!("{env}: {image} is not digest-pinned"));
            assert!(
                ["identity", "gateway", "worker", "rel"]
                    .iter()
                    .any(|c| name == format!("registry.example.com/platform/{c}")),
                "{env}: {image} belongs to no component"
            );
            assert!(
                digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        for line in rendered
            .lines()
            .filter(|l| l.trim_start().starts_with("namespace: "))
        {
            assert_eq!(line.trim(), format!("namespace: {namespace}"), "{env}");
        }

        let mut deployments = 0;
        for doc in rendered
            .split("\n---\n")
            // A Rollout names its Deployment (`workloadRef.kind`): match the object's own kind.
            .filter(|d| d.contains("\nkind: Deployment\n"))
        {
            deployments += 1;
            let grace: u64 = field(doc, "terminationGracePeriodSeconds:")
                .unwrap()
                .parse()
                .unwrap();
            let pre_stop: u64 = value_after(doc, "sleep:", "seconds:")
                .unwrap()
                .parse()
                .unwrap();
            let drain_ms: u64 = value_after(doc, "- name: DRAIN_DELAY_MS", "value:")
                .unwrap()
                .parse()
                .unwrap();
            let budget_ms: u64 = value_after(doc, "- name: SHUTDOWN_BUDGET_MS", "value:")
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                grace * 1000 > pre_stop * 1000 + drain_ms + budget_ms,
                "{env}: grace {grace}s must exceed preStop {pre_stop}s + drain {drain_ms}ms + budget {budget_ms}ms:\n{doc}"
            );
            assert!(
                block_contains(doc, "readinessProbe:", "path: /readyz"),
                "{env}: readiness probe:\n{doc}"
            );
            assert!(
                block_contains(doc, "livenessProbe:", "path: /healthz"),
                "{env}: liveness probe:\n{doc}"
            );
            assert_eq!(field(doc, "runAsUser:").as_deref(), Some("65532"), "{env}");
            assert_eq!(
                field(doc, "runAsNonRoot:").as_deref(),
                Some("true"),
                "{env}"
            );
            assert!(doc.contains("requests:"), "{env}: resource requests");
        }
        assert_eq!(deployments, 3, "{env}");
        assert_eq!(
            rendered.matches("kind: PodDisruptionBudget").count(),
            3,
            "{env}"
        );
        assert!(
            rendered.contains("kind: Job") && rendered.contains("- migrate"),
            "{env}: the migration Job"
        );
    }
}
