//! `rel render` against the oracle: `kubectl kustomize` on the same directories.

use crate::support::*;

fn kubectl_kustomize(dir: &std::path::Path) -> String {
    let out = test_support::kubectl()
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl is needed as the rendering oracle (it carries kustomize v5.5); install kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn project_overlays_and_templates_render_byte_identical_to_kubectl() {
    let root = repo_root();
    for env in ["staging", "prod"] {
        let run = rel_in(&root, &["render", "--env", env]);
        run.expect(0);
        assert_eq!(
            run.stdout(),
            kubectl_kustomize(&root.join("overlays").join(env)),
            "overlay {env}"
        );
    }
    for dir in [
        "templates/base",
        "templates/argocd",
        "templates/external-secrets",
    ] {
        let run = rel_in(&root, &["render", dir]);
        run.expect(0);
        assert_eq!(run.stdout(), kubectl_kustomize(&root.join(dir)), "{dir}");
    }
}

#[test]
fn output_dir_gets_the_files_kubectl_writes() {
    let root = repo_root();
    let out = tempfile::tempdir().unwrap();
    let (ours, theirs) = (out.path().join("rel"), out.path().join("kubectl"));
    rel_in(
        &root,
        &["render", "--env", "staging", "-o", ours.to_str().unwrap()],
    )
    .expect(0);
    std::fs::create_dir_all(&theirs).unwrap();
    let status = test_support::kubectl()
        .arg("kustomize")
        .arg(root.join("overlays/staging"))
        .arg("-o")
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    let list = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&ours), list(&theirs));
    assert!(list(&ours).contains(&"apps_v1_deployment_identity.yaml".to_owned()));
    for name in list(&theirs) {
        assert_eq!(
            std::fs::read(ours.join(&name)).unwrap(),
            std::fs::read(theirs.join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn render_errors_name_the_file() {
    let p = Project::empty();
    p.write("k/kustomization.yaml", "resources:\n  - missing.yaml\n");
    let run = p.rel(&["render", "k"]);
    run.expect(2);
    assert!(run.stderr().contains("missing.yaml"), "{}", run.stderr());
    p.write("u/kustomization.yaml", "resourcez:\n  - a.yaml\n");
    let run = p.rel(&["render", "u"]);
    run.expect(2);
    assert!(run.stderr().contains("resourcez"), "{}", run.stderr());
    let run = p.rel(&["render", "--env", "staging"]);
    run.expect(2);
    assert!(run.stderr().contains("no rel.toml"), "{}", run.stderr());
}
