//! `rel pin`: only digests change, comments and layout stay; dry runs change nothing.

use crate::support::*;

const OVERLAY: &str = r#"# Staging overlay.   Comments everywhere, odd spacing, quoting: all must survive.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: platform-staging   # trailing comment
resources:
  - ../../base

images:
    # identity first
    - name: registry.example.com/platform/identity   # the issuer
      digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"

    - digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
      name: 'registry.example.com/platform/gateway'
    # a sidecar nobody pins through rel
    - name: docker.io/library/busybox
      newTag: "1.36"
# end
"#;

const BASE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: identity\nspec:\n  template:\n    spec:\n      containers:\n        - name: identity\n          image: registry.example.com/platform/identity:0.1.0\n        - name: gateway\n          image: registry.example.com/platform/gateway\n        - name: worker\n          image: registry.example.com/platform/worker\n";

fn project() -> Project {
    let p = Project::platform();
    p.write("overlays/staging/kustomization.yaml", OVERLAY);
    p.write("base/kustomization.yaml", "resources:\n  - deploy.yaml\n");
    p.write("base/deploy.yaml", BASE);
    p.rel(&[
        "lock",
        "--version",
        "0.2.0",
        "--digest",
        &format!("identity={D3}"),
        "--digest",
        &format!("gateway={D1}"),
        "--digest",
        &format!("worker={D2}"),
    ])
    .expect(0);
    p
}

#[test]
fn pin_changes_nothing_but_digests_and_appends_missing_entries() {
    let p = project();
    let run = p.rel(&["pin", "--env", "staging", "--version", "0.2.0"]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("pinned overlays/staging/kustomization.yaml to release 0.2.0"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr()
            .contains("images entry `docker.io/library/busybox` matches no component"),
        "{}",
        run.stderr()
    );
    let after = p.read("overlays/staging/kustomization.yaml");
    let before_lines: Vec<&str> = OVERLAY.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    // Every original line is still there, byte for byte, except the two digest values.
    for (i, line) in before_lines.iter().enumerate() {
        let now = after_lines[i];
        if line.contains("sha256:1111") {
            assert_eq!(
                now,
                line.replace(
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                    D3
                ),
                "line {}",
                i + 1
            );
        } else if line.contains("sha256:2222") {
            assert_eq!(
                now,
                line.replace(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                    D1
                ),
                "line {}",
                i + 1
            );
        } else {
            assert_eq!(now, *line, "line {} changed", i + 1);
        }
    }
    // worker had no entry: appended in the file's style.
    assert!(
        after.contains("registry.example.com/platform/worker"),
        "{after}"
    );
    assert!(after.contains(D2), "{after}");
    // The rendered overlay now runs exactly the release's digests.
    let rendered = p.rel(&["render", "overlays/staging"]);
    rendered.expect(0);
    let out = rendered.stdout();
    assert!(
        out.contains(&format!(
            "image: registry.example.com/platform/identity@{D3}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "image: registry.example.com/platform/gateway@{D1}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("image: registry.example.com/platform/worker@{D2}")),
        "{out}"
    );
    // Pinning again is a no-op.
    let again = p.rel(&["pin", "--env", "staging", "--version", "0.2.0"]);
    again.expect(0);
    assert!(again.stdout().contains("already pins release 0.2.0"));
    assert_eq!(p.read("overlays/staging/kustomization.yaml"), after);
}

#[test]
fn dry_run_prints_a_unified_diff_and_writes_nothing() {
    let p = project();
    let run = p.rel(&[
        "pin",
        "--overlay",
        "overlays/staging",
        "--lockfile",
        "releases/0.2.0.yaml",
        "--dry-run",
    ]);
    run.expect(0);
    let diff = run.stdout();
    assert!(
        diff.contains("--- overlays/staging/kustomization.yaml")
            || diff.contains("kustomization.yaml"),
        "{diff}"
    );
    assert!(diff.contains("-      digest: \"sha256:1111111111111111111111111111111111111111111111111111111111111111\""), "{diff}");
    assert!(diff.contains(&format!("+      digest: \"{D3}\"")), "{diff}");
    assert_eq!(p.read("overlays/staging/kustomization.yaml"), OVERLAY);
}

#[test]
fn bad_inputs() {
    let p = project();
    let run = p.rel(&["pin", "--env", "nowhere", "--version", "0.2.0"]);
    run.expect(2);
    assert!(
        run.stderr().contains("unknown environment `nowhere`"),
        "{}",
        run.stderr()
    );
    let run = p.rel(&["pin", "--env", "staging", "--version", "9.9.9"]);
    run.expect(2);
    assert!(
        run.stderr().contains("releases/9.9.9.yaml"),
        "{}",
        run.stderr()
    );
    p.write("overlays/staging/kustomization.yaml", "images: [\n");
    let run = p.rel(&["pin", "--env", "staging", "--version", "0.2.0"]);
    run.expect(2);
    assert_eq!(p.read("overlays/staging/kustomization.yaml"), "images: [\n");
}

#[test]
fn a_release_built_under_another_registry_repoints_the_entry_with_new_name() {
    let p = project();
    let elsewhere = |c: &str, d: &str| {
        format!("  {c}:\n    image: localhost:5000/platform/{c}\n    digest: {d}\n")
    };
    p.write(
        "releases/0.3.0.yaml",
        &format!(
            "version: \"0.3.0\"\nengineVersion: \"0.3.0\"\ncomponents:\n{}{}{}",
            elsewhere("gateway", D2),
            elsewhere("identity", D1),
            elsewhere("worker", D3)
        ),
    );
    let gate = p.rel(&["gate", "coherence", "--version", "0.3.0"]);
    gate.expect(0);
    assert!(
        gate.stdout().contains("WARN component/identity/image"),
        "{}",
        gate.stdout()
    );
    p.rel(&["pin", "--env", "staging", "--version", "0.3.0"])
        .expect(0);
    let after = p.read("overlays/staging/kustomization.yaml");
    assert!(
        after.contains("    - name: registry.example.com/platform/identity   # the issuer\n"),
        "{after}"
    );
    assert!(
        after.contains("newName: localhost:5000/platform/identity"),
        "{after}"
    );
    let out = p.rel(&["render", "overlays/staging"]).stdout();
    assert!(
        out.contains(&format!("image: localhost:5000/platform/identity@{D1}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("image: localhost:5000/platform/gateway@{D2}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("image: localhost:5000/platform/worker@{D3}")),
        "{out}"
    );
    // Pinning the same release again is a no-op: the entries now point at it.
    let again = p.rel(&["pin", "--env", "staging", "--version", "0.3.0"]);
    again.expect(0);
    assert!(
        again.stdout().contains("already pins release 0.3.0"),
        "{}",
        again.stdout()
    );
}
