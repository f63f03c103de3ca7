//! `rel diff`: the per-object change a pin or promotion makes, on this repository's real
//! overlays; secrets never shown; `--rev` against a real git repository.

use std::path::Path;

use base64::Engine as _;

use crate::promote_support::{D4, D5, git};
use crate::support::*;

/// This repository's rel.toml, overlays and templates, in a temporary project.
fn platform() -> Project {
    let p = Project::platform();
    for dir in ["overlays", "templates"] {
        copy_tree(&repo_root().join(dir), &p.path().join(dir));
    }
    // The tests reason with the placeholder pins, whatever release the repository pins today.
    let overlay = with_placeholder_pins(&p.read("overlays/staging/kustomization.yaml"));
    p.write("overlays/staging/kustomization.yaml", &overlay);
    p
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Lock `version` with the given identity, gateway and worker digests.
fn lock(p: &Project, version: &str, [identity, gateway, worker]: [&str; 3]) {
    p.rel(&[
        "lock",
        "--version",
        version,
        "--digest",
        &format!("identity={identity}"),
        "--digest",
        &format!("gateway={gateway}"),
        "--digest",
        &format!("worker={worker}"),
    ])
    .expect(0);
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

/// `Kind/name` of every object in a JSON diff.
fn keys(v: &serde_json::Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["key"]["kind"].as_str().unwrap(),
                o["key"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn pinning_a_release_changes_exactly_the_image_fields_of_the_right_objects() {
    let p = platform();
    // staging pins identity=D1, gateway=D2, worker=D3; 0.2.0 moves identity and worker only.
    lock(&p, "0.2.0", [D4, D2, D5]);
    let overlay_before = p.read("overlays/staging/kustomization.yaml");

    let run = p.rel(&[
        "diff",
        "--env",
        "staging",
        "--version",
        "0.2.0",
        "--format",
        "json",
    ]);
    run.expect(1);
    let v = json(&run);
    // identity runs in its Deployment and in the migration Job; the gateway does not move.
    assert_eq!(
        keys(&v),
        [
            "Deployment/identity",
            "Deployment/worker",
            "Job/platform-migrate"
        ]
    );
    for o in v["objects"].as_array().unwrap() {
        assert_eq!(o["change"], "changed");
        assert_eq!(
            o["fields"].as_array().unwrap().len(),
            0,
            "only images change: {o}"
        );
        let images = o["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{o}");
        let (old, new) = match o["key"]["name"].as_str().unwrap() {
            "worker" => (D3, D5),
            _ => (D1, D4),
        };
        assert!(images[0]["old"].as_str().unwrap().ends_with(old), "{o}");
        assert!(images[0]["new"].as_str().unwrap().ends_with(new), "{o}");
    }
    // Unchanged: the other 10 base objects and the 9 of templates/rollouts (the Rollouts run
    // their workloadRef Deployments' templates, so a pin moves only the Deployments).
    assert_eq!(v["unchanged"], 19);
    let moves: Vec<(&str, &str, &str)> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["component"].as_str().unwrap(),
                m["oldDigest"].as_str().unwrap(),
                m["newDigest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(moves, [("identity", D1, D4), ("worker", D3, D5)]);

    // Text: images first, plain (NO_COLOR, not a terminal).
    let run = p.rel(&["diff", "--env", "staging", "--version", "0.2.0"]);
    run.expect(1);
    let text = run.stdout();
    assert!(!text.contains('\x1b'), "{text}");
    assert!(
        text.contains("Images:\n  identity  registry.example.com/platform/identity  sha256:111111111111 -> sha256:444444444444\n"),
        "{text}"
    );
    assert!(
        text.contains("3 objects change: 0 added, 0 removed, 3 changed (19 unchanged)."),
        "{text}"
    );
    assert!(text.contains(&format!(
        "~ Deployment platform-staging/worker (1 image)\n  @@ spec.template.spec.containers[worker].image (image) — component worker @@\n-   registry.example.com/platform/worker@{D3}\n+   registry.example.com/platform/worker@{D5}\n"
    )), "{text}");

    // The working tree is never modified.
    assert_eq!(
        p.read("overlays/staging/kustomization.yaml"),
        overlay_before
    );
    assert!(
        !p.path()
            .join("overlays/staging/kustomization.yaml.tmp")
            .exists()
    );

    // A release the overlay already pins: no change, exit 0.
    lock(&p, "0.1.0", [D1, D2, D3]);
    let run = p.rel(&["diff", "--env", "staging", "--version", "0.1.0"]);
    run.expect(0);
    assert!(
        run.stdout().contains("No change (22 objects the same)."),
        "{}",
        run.stdout()
    );

    // --from/--to: two releases pinned into the same overlay.
    let run = p.rel(&[
        "diff", "--env", "staging", "--from", "0.2.0", "--to", "0.1.0", "--format", "json",
    ]);
    run.expect(1);
    let v = json(&run);
    assert_eq!(v["images"][0]["oldDigest"], D4);
    assert_eq!(v["images"][0]["newDigest"], D1);
    assert_eq!(keys(&v).len(), 3);
}

#[test]
fn markdown_for_a_pr_body_stays_under_the_budget() {
    let p = platform();
    lock(&p, "0.2.0", [D4, D5, D5]);
    let full = p.rel(&[
        "diff",
        "--env",
        "staging",
        "--version",
        "0.2.0",
        "--format",
        "markdown",
    ]);
    full.expect(1);
    let md = full.stdout();
    assert_eq!(md.matches("<details>").count(), 4, "{md}");
    assert!(md.contains("| gateway | `registry.example.com/platform/gateway` | `sha256:222222222222` → `sha256:555555555555` |"), "{md}");
    let small = p.rel(&[
        "diff",
        "--env",
        "staging",
        "--version",
        "0.2.0",
        "--format",
        "markdown",
        "--budget",
        "1200",
    ]);
    small.expect(1);
    let md = small.stdout();
    assert!(md.len() <= 1200, "{} bytes:\n{md}", md.len());
    let shown = md.matches("<details>").count();
    assert!(shown < 4, "{md}");
    assert!(
        md.contains(&format!("_… {} more object", 4 - shown))
            && md.contains("not shown to keep this section under 1200 bytes._"),
        "{md}"
    );
}

#[test]
fn the_promotion_markdown_api_renders_a_pin_plan() {
    let p = platform();
    lock(&p, "0.2.0", [D4, D2, D3]);
    let config = rel::config::Config::load(&p.path().join("rel.toml")).unwrap();
    let lockfile = rel::lockfile::Lockfile::load(&p.path().join("releases/0.2.0.yaml")).unwrap();
    let overlay = config.overlay_dir(config.environment("staging").unwrap());
    let plan = rel::overlay_pin::plan(&overlay, &lockfile, &config).unwrap();
    let md = rel::diff::pin_markdown(&config, "staging", &plan, &lockfile, None, 65_536).unwrap();
    assert!(md.starts_with("### Manifest changes in staging\n"), "{md}");
    assert!(
        md.contains("2 objects change: 0 added, 0 removed, 2 changed"),
        "{md}"
    );
    assert!(
        md.contains("<code>~ Job platform-staging/platform-migrate (1 image)</code>"),
        "{md}"
    );
    assert_eq!(
        p.read("overlays/staging/kustomization.yaml"),
        with_placeholder_pins(
            &std::fs::read_to_string(repo_root().join("overlays/staging/kustomization.yaml"))
                .unwrap()
        ),
        "the working tree is untouched"
    );
}

const OLD_SECRET: &str = "planted-old-s3cret-value";
const NEW_SECRET: &str = "planted-new-s3cret-value";

fn with_secret_generator(p: &Project, value: &str) {
    let k = p.read("overlays/staging/kustomization.yaml");
    let base = k.split("\nsecretGenerator:").next().unwrap().to_owned();
    p.write(
        "overlays/staging/kustomization.yaml",
        &format!("{base}\nsecretGenerator:\n  - name: platform-secrets\n    literals:\n      - DB_PASSWORD={value}\n      - API_USER=svc-user\n"),
    );
}

fn init_repo(p: &Project) {
    let w = p.path();
    git(w, &["init", "--quiet", "--initial-branch=main"]);
    git(w, &["config", "user.name", "Alice"]);
    git(w, &["config", "user.email", "alice@example.com"]);
    git(w, &["config", "commit.gpgsign", "false"]);
    git(w, &["add", "-A"]);
    git(
        w,
        &["commit", "--quiet", "-m", "staging with a generated secret"],
    );
}

#[test]
fn a_secret_generator_change_shows_as_changed_without_values() {
    let p = platform();
    with_secret_generator(&p, OLD_SECRET);
    init_repo(&p);
    // The generated names carry kustomize's (unkeyed) content hash: never shown either.
    let names: Vec<String> = [OLD_SECRET, NEW_SECRET]
        .iter()
        .map(|v| {
            with_secret_generator(&p, v);
            let r = p.rel(&["render", "--env", "staging"]);
            r.expect(0);
            let out = r.stdout();
            let at = out
                .find("name: platform-secrets-")
                .expect("a generated secret");
            out[at + 6..].lines().next().unwrap().to_owned()
        })
        .collect();
    assert_ne!(names[0], names[1]);

    let mut outputs = String::new();
    for format in ["auto", "text", "json", "markdown"] {
        let run = p.rel(&[
            "diff", "--env", "staging", "--rev", "HEAD", "--format", format,
        ]);
        run.expect(1);
        outputs.push_str(&run.stdout());
        outputs.push_str(&run.stderr());
        if format == "json" {
            let v = json(&run);
            assert_eq!(
                keys(&v),
                [
                    "Deployment/gateway",
                    "Deployment/identity",
                    "Deployment/worker",
                    "Job/platform-migrate",
                    "Secret/platform-secrets-<hash>"
                ]
            );
            let secret = v["objects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["key"]["kind"] == "Secret")
                .unwrap();
            assert_eq!(secret["change"], "changed");
            let fields: Vec<&str> = secret["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap())
                .collect();
            // API_USER did not change; DB_PASSWORD did, and the name with it.
            assert_eq!(fields, ["data.DB_PASSWORD", "metadata.name"]);
            let old = secret["fields"][0]["old"].as_str().unwrap();
            let new = secret["fields"][0]["new"].as_str().unwrap();
            assert!(
                old.starts_with("<secret:") && new.starts_with("<secret:") && old != new,
                "{secret}"
            );
        }
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for planted in [
        OLD_SECRET.to_owned(),
        NEW_SECRET.to_owned(),
        b64(OLD_SECRET),
        b64(NEW_SECRET),
        b64("svc-user"),
        names[0].clone(),
        names[1].clone(),
    ] {
        assert!(!outputs.contains(&planted), "{planted} leaked:\n{outputs}");
    }
    assert!(outputs.contains("platform-secrets-<hash:"), "{outputs}");
}

#[test]
fn rev_reads_the_overlay_from_the_commit_not_the_working_tree() {
    let p = platform();
    lock(&p, "0.2.0", [D4, D2, D3]);
    init_repo(&p);
    let head = git(p.path(), &["rev-parse", "HEAD"]);
    // The working tree moves on: the gateway is pinned to D5 (uncommitted).
    p.rel(&["pin", "--env", "staging", "--version", "0.2.0"])
        .expect(0);
    lock(&p, "0.3.0", [D4, D5, D3]);
    p.rel(&["pin", "--env", "staging", "--version", "0.3.0"])
        .expect(0);

    // HEAD's overlay against the working tree's: identity and gateway moved.
    let run = p.rel(&[
        "diff", "--env", "staging", "--rev", "HEAD", "--format", "json",
    ]);
    run.expect(1);
    let v = json(&run);
    assert_eq!(
        keys(&v),
        [
            "Deployment/gateway",
            "Deployment/identity",
            "Job/platform-migrate"
        ]
    );
    assert!(v["before"].as_str().unwrap().ends_with("at HEAD"), "{v}");

    // HEAD's overlay pinned to 0.2.0: only identity moves (HEAD pins gateway at D2).
    let run = p.rel(&[
        "diff",
        "--env",
        "staging",
        "--rev",
        &head[..12],
        "--version",
        "0.2.0",
        "--format",
        "json",
    ]);
    run.expect(1);
    assert_eq!(
        keys(&json(&run)),
        ["Deployment/identity", "Job/platform-migrate"]
    );

    // The working tree already pins 0.3.0: nothing changes.
    p.rel(&["diff", "--env", "staging", "--version", "0.3.0"])
        .expect(0);

    // A revision that does not exist is an input error (2), with a help.
    let run = p.rel(&["diff", "--env", "staging", "--rev", "no-such-branch"]);
    run.expect(2);
    assert!(
        run.stderr().contains("is not a commit in this repository"),
        "{}",
        run.stderr()
    );
}

#[test]
fn errors_exit_2_with_a_help() {
    let p = platform();
    let run = p.rel(&["diff", "--env", "staging", "--version", "9.9.9"]);
    run.expect(2);
    assert!(run.stderr().contains("9.9.9.yaml"), "{}", run.stderr());
    let run = p.rel(&["diff", "--env", "nowhere", "--version", "0.1.0"]);
    run.expect(2);
    assert!(
        run.stderr().contains("unknown environment `nowhere`"),
        "{}",
        run.stderr()
    );
    let run = p.rel(&["diff", "--env", "staging"]);
    run.expect(2);
    assert!(
        run.stderr().contains("nothing to compare against"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("--rev GIT_REV"), "{}", run.stderr());
    // --rev outside a git repository.
    let run = p.rel(&["diff", "--env", "staging", "--rev", "HEAD"]);
    run.expect(2);
}

#[test]
fn promotion_markdown_renders_the_promotion_from_its_base_commit() {
    use crate::promote_support::GitProject;
    let p = GitProject::new().with_releases();
    // The fixture's base is empty: give it the identity Deployment, committed.
    p.work
        .write("base/kustomization.yaml", "resources:\n  - identity.yaml\n");
    p.work.write(
        "base/identity.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: identity\nspec:\n  template:\n    spec:\n      containers:\n        - name: identity\n          image: registry.example.com/platform/identity:0.1.0\n",
    );
    p.git(&["add", "base"]);
    p.git(&["commit", "--quiet", "-m", "base: identity"]);
    // An uncommitted edit of the base: not part of the promotion, so not in its diff.
    let base = p.work.read("base/kustomization.yaml");
    p.work.write(
        "base/kustomization.yaml",
        &format!("{base}commonAnnotations:\n  uncommitted: \"yes\"\n"),
    );
    let rendered = p.work.rel(&["render", "--env", "prod"]);
    assert!(rendered.expect(0).stdout().contains("uncommitted"));
    let config = rel::config::Config::load(&p.path().join("rel.toml")).unwrap();
    let repo = rel::git_repo::Repo::open(p.path()).unwrap();
    let plan = rel::promote::plan(
        &repo,
        &config,
        &rel::promote::Request {
            version: "0.4.0".parse().unwrap(),
            env: "prod".into(),
            from: None,
            actor: "alice@example.com".into(),
            override_soak: None,
        },
    )
    .unwrap();
    let md = rel::diff::promotion_markdown(&config, &plan, 65_536).unwrap();
    assert!(md.starts_with("### Manifest changes in prod\n"), "{md}");
    assert!(
        md.contains("| identity | `registry.example.com/platform/identity` |"),
        "{md}"
    );
    assert!(md.contains("(image) — component identity @@"), "{md}");
    assert!(!md.contains("uncommitted"), "{md}");
    assert!(
        md.contains("1 object change: 0 added, 0 removed, 1 changed (0 unchanged)."),
        "{md}"
    );
    // Under a small budget it says what it left out.
    let small = rel::diff::promotion_markdown(&config, &plan, 700).unwrap();
    assert!(
        small.len() <= 700 && small.contains("1 more object not shown"),
        "{small}"
    );
}

#[test]
fn promotion_dry_run_and_the_pull_request_over_the_forge_carry_the_manifest_diff() {
    use crate::promote_support::{FakeForge, GitProject, Kind, TOKEN, rel_env};
    let forge = FakeForge::start(Kind::Github);
    let p = GitProject::with_forge(Kind::Github, &forge);
    // The fixture's base is empty: give it the identity Deployment, committed and pushed.
    p.work
        .write("base/kustomization.yaml", "resources:\n  - identity.yaml\n");
    p.work.write(
        "base/identity.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: identity\nspec:\n  template:\n    spec:\n      containers:\n        - name: identity\n          image: registry.example.com/platform/identity:0.1.0\n",
    );
    p.git(&["add", "base"]);
    p.git(&["commit", "--quiet", "-m", "base: identity"]);
    p.git(&["push", "--quiet", "origin", "main"]);
    let p = p.with_releases();
    let promote = ["promote", "--version", "0.4.0", "--env", "prod"];
    let want = [
        "### Manifest changes in prod\n",
        "(image) — component identity @@",
        "1 object change: 0 added, 0 removed, 1 changed (0 unchanged).",
    ];

    let dry = p.rel(&[&promote[..], &["--dry-run"]].concat());
    dry.expect(0);
    for w in want {
        assert!(
            dry.stdout().contains(w),
            "dry run lacks {w:?}:\n{}",
            dry.stdout()
        );
    }

    let env = [("REL_ACTOR", "alice@example.com"), ("GITHUB_TOKEN", TOKEN)];
    rel_env(p.path(), &[&promote[..], &["--open-pr"]].concat(), &env).expect(0);
    let prs = forge.prs();
    assert_eq!(prs.len(), 1);
    for w in want {
        assert!(
            prs[0].body.contains(w),
            "PR body lacks {w:?}:\n{}",
            prs[0].body
        );
    }
    assert!(prs[0].body.chars().count() <= 65_536);
}
