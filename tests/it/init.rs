//! `rel init` in a fresh two-crate Cargo workspace, then `rel release` with no edit, end to end to
//! a rendered overlay that `kubectl kustomize` renders identically.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Two tiny dependency-free bin crates: `api` (one bin) and `node` (two bins, each behind its
/// role feature), committed in a git repository with a lockfile.
pub(crate) fn two_crate_workspace() -> Project {
    let p = Project::empty();
    p.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"api\", \"node\", \"xtask\"]\nresolver = \"2\"\n",
    );
    p.write(
        "api/Cargo.toml",
        "[package]\nname = \"api\"\nversion = \"0.3.0\"\nedition = \"2021\"\n",
    );
    p.write("api/src/main.rs", "fn main() { println!(\"api\"); }\n");
    p.write(
        "node/Cargo.toml",
        r#"[package]
name = "node"
version = "0.2.0"
edition = "2021"

[features]
gateway = []
worker = []

[[bin]]
name = "gateway"
path = "src/bin/gateway.rs"
required-features = ["gateway"]

[[bin]]
name = "queue_worker"
path = "src/bin/worker.rs"
required-features = ["worker"]
"#,
    );
    p.write(
        "node/src/bin/gateway.rs",
        "fn main() { println!(\"gateway\"); }\n",
    );
    p.write(
        "node/src/bin/worker.rs",
        "fn main() { println!(\"worker\"); }\n",
    );
    p.write(
        "xtask/Cargo.toml",
        "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    p.write("xtask/src/main.rs", "fn main() {}\n");
    p.write(".gitignore", "/target\n");
    run(p.path(), "cargo", &["generate-lockfile", "--offline"]);
    run(p.path(), "git", &["init", "-q", "-b", "main"]);
    commit(p.path(), "workspace");
    p
}

pub(crate) fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn commit(dir: &Path, message: &str) {
    run(dir, "git", &["add", "-A"]);
    run(
        dir,
        "git",
        &[
            "-c",
            "user.name=rel-test",
            "-c",
            "user.email=rel-test@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    );
}

/// Every file under `dir` (but target/ and .git/) with its content, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "target" || name == ".git" {
                continue;
            }
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const FILES: &[&str] = &[
    "rel.toml",
    "templates/base/kustomization.yaml",
    "templates/base/api.yaml",
    "templates/base/gateway.yaml",
    "templates/base/queue-worker.yaml",
    "overlays/local/kustomization.yaml",
    "overlays/local/namespace.yaml",
    "overlays/staging/kustomization.yaml",
    "overlays/prod/kustomization.yaml",
    "releases/.gitkeep",
];

#[test]
fn init_then_release_with_no_edit_renders_like_kubectl() {
    let p = two_crate_workspace();
    let before = tree(p.path());

    // --dry-run shows every file and its content, and writes nothing.
    let dry = p.rel(&["init", "--dry-run"]);
    dry.expect(0);
    for f in FILES {
        assert!(
            dry.stdout().contains(&format!("create    {f}\n")),
            "{f}:\n{}",
            dry.stdout()
        );
    }
    assert!(dry.stdout().contains("--- rel.toml (create)\n"));
    assert!(dry.stdout().contains("[components.queue-worker]"));
    assert!(dry.stdout().contains("*.env.source\n"), "{}", dry.stdout());
    assert_eq!(tree(p.path()), before, "--dry-run wrote something");

    p.rel(&["init"]).expect(0);
    for f in FILES {
        assert!(p.path().join(f).is_file(), "{f} not written");
    }
    // Inferred: one component per bin, the role feature from `required-features`, the xtask
    // bin left out, the bin name kept where the component name had to change.
    let config = p.read("rel.toml");
    for expected in [
        "[components.api]\ncrate = \"api\"\n",
        "[components.gateway]\ncrate = \"node\"\nfeatures = [\"gateway\"]",
        "[components.queue-worker]\ncrate = \"node\"\nbin = \"queue_worker\"\nfeatures = [\"worker\"]",
        "promotes-to = \"staging\"",
        "promotes-to = \"prod\"",
    ] {
        assert!(config.contains(expected), "{expected:?} not in:\n{config}");
    }
    assert!(!config.contains("[components.xtask]"), "{config}");
    let gitignore = p.read(".gitignore");
    assert!(gitignore.starts_with("/target\n"), "{gitignore}");
    assert_eq!(gitignore.matches("/target").count(), 1, "{gitignore}");
    for line in ["*.env.source", "*.key", "/.rel/"] {
        assert!(
            gitignore.lines().any(|l| l == line),
            "{line} not in {gitignore}"
        );
    }
    let base = p.read("templates/base/gateway.yaml");
    for kind in [
        "kind: Deployment",
        "kind: Service",
        "kind: PodDisruptionBudget",
    ] {
        assert!(base.contains(kind), "{kind}");
    }
    let staging = p.read("overlays/staging/kustomization.yaml");
    let placeholder = format!("/gateway\n    digest: sha256:{}\n", "0".repeat(64));
    assert!(staging.contains(&placeholder), "{staging}");
    commit(p.path(), "rel init");

    // `rel release` with no edit: build → lock → gate → pin local → render.
    let release = p.rel(&["release"]);
    release.expect(0);
    let out = release.stdout();
    assert!(out.contains("coherence gate PASSED"), "{out}");
    assert!(out.contains("rendered "), "{out}");
    let build: serde_json::Value = serde_json::from_str(&p.read("target/rel/build.json")).unwrap();
    let components = build["components"].as_array().unwrap();
    assert_eq!(components.len(), 3, "{build}");
    let local = p.read("overlays/local/kustomization.yaml");
    for c in components {
        let digest = c["digest"].as_str().unwrap();
        assert!(
            local.contains(&format!("digest: {digest}\n")),
            "{digest} not pinned:\n{local}"
        );
    }
    assert!(!local.contains(&"0".repeat(64)), "{local}");
    // Only the digests changed: comments and layout of the generated overlay stay.
    let diff = run(
        p.path(),
        "git",
        &["diff", "--numstat", "--", "overlays/local"],
    );
    assert_eq!(
        diff.trim(),
        "3\t3\toverlays/local/kustomization.yaml",
        "{diff}"
    );

    // The rendered overlay is what kubectl kustomize renders, every image by digest.
    let ours = p.read("target/rel/rendered/local/all.yaml");
    let theirs = run(p.path(), "kubectl", &["kustomize", "overlays/local"]);
    assert_eq!(ours, theirs);
    for c in components {
        let image = format!(
            "{}@{}",
            c["image"].as_str().unwrap(),
            c["digest"].as_str().unwrap()
        );
        assert!(
            ours.contains(&format!("image: {image}\n")),
            "{image} not in:\n{ours}"
        );
    }
    assert_eq!(ours.matches("kind: Deployment").count(), 3);
    assert_eq!(ours.matches("kind: PodDisruptionBudget").count(), 3);
    // The other environments render too, on their placeholders.
    for env in ["staging", "prod"] {
        run(
            p.path(),
            "kubectl",
            &["kustomize", &format!("overlays/{env}")],
        );
        p.rel(&["render", &format!("overlays/{env}")]).expect(0);
    }

    // A rerun refuses: the overlay now differs from what init would write. Nothing is written.
    let after_release = tree(p.path());
    let rerun = p.rel(&["init"]);
    rerun.expect(1);
    assert!(
        rerun.stderr().contains("overlays/local/kustomization.yaml")
            && rerun.stderr().contains("--force"),
        "{}",
        rerun.stderr()
    );
    assert_eq!(
        tree(p.path()),
        after_release,
        "a refused init wrote something"
    );
    // --dry-run says so too, without writing.
    let dry = p.rel(&["init", "--dry-run"]);
    dry.expect(1);
    assert!(
        dry.stdout()
            .contains("conflict  overlays/local/kustomization.yaml\n"),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stdout().contains("unchanged rel.toml\n"),
        "{}",
        dry.stdout()
    );
    assert_eq!(tree(p.path()), after_release);

    // --force puts the generated file back (the placeholders) and leaves the rest alone.
    p.write("rel.toml", &format!("{config}\n# my edit\n"));
    p.rel(&["init", "--force"]).expect(0);
    assert!(
        p.read("overlays/local/kustomization.yaml")
            .contains(&"0".repeat(64))
    );
    assert_eq!(p.read("rel.toml"), config);
    assert_eq!(
        p.read(".gitignore"),
        gitignore,
        ".gitignore lines added twice"
    );
    // And a rerun with nothing changed is a no-op.
    let same = p.rel(&["init"]);
    same.expect(0);
    assert!(
        !same.stdout().lines().any(|l| !l.starts_with("unchanged")),
        "{}",
        same.stdout()
    );
}

#[test]
fn init_outside_a_workspace_says_so() {
    let p = Project::empty();
    let r = p.rel(&["init"]);
    r.expect(2);
    assert!(
        r.stderr().contains("not in a Cargo workspace"),
        "{}",
        r.stderr()
    );
    assert!(tree(p.path()).is_empty());
}
