//! `rel rollback`: revert or restore, hold, confirm before pushing, and the whole path of the
//! issue: lock → record → promote (PR) → merge → rollback → audit.

use crate::promote_support::*;
use crate::support::*;

const PROD: &str = "overlays/prod/kustomization.yaml";

/// 0.3.0 and 0.4.0 locked, 0.4.0 validated, promoted to prod and merged into main (pushed).
fn promoted() -> GitProject {
    let p = GitProject::new().with_releases();
    p.rel(&["promote", "--version", "0.4.0", "--env", "prod"])
        .expect(0);
    p.git(&["merge", "--quiet", "--ff-only", "rel/promote/prod/0.4.0"]);
    p.git(&["push", "--quiet", "origin", "main"]);
    p
}

#[test]
fn lock_record_promote_pr_rollback_audit_on_a_fresh_clone() {
    let forge = FakeForge::start(Kind::Github);
    let p = GitProject::with_forge(Kind::Github, &forge);
    let fresh = p.clone_remote();
    let dir = fresh.path();
    let env = [("REL_ACTOR", "alice@example.com"), ("GITHUB_TOKEN", TOKEN)];
    let rel = |args: &[&str]| rel_env(dir, args, &env);
    let lock = |v: &str, d: [&str; 3]| {
        rel(&[
            "lock",
            "--version",
            v,
            "--digest",
            &format!("identity={}", d[0]),
            "--digest",
            &format!("gateway={}", d[1]),
            "--digest",
            &format!("worker={}", d[2]),
        ])
        .expect(0);
    };
    lock("0.3.0", [D1, D2, D3]);
    lock("0.4.0", [D4, D5, D6]);
    let ev = p.evidence_for(dir, "0.4.0", "staging");
    rel(&[
        "record",
        "--version",
        "0.3.0",
        "--env",
        "staging",
        "--evidence",
        p.evidence_for(dir, "0.3.0", "staging").to_str().unwrap(),
    ])
    .expect(0);
    rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
    ])
    .expect(0);
    git(dir, &["push", "--quiet", "origin", "main"]);

    let promote = rel(&[
        "promote",
        "--version",
        "0.4.0",
        "--env",
        "prod",
        "--open-pr",
    ]);
    promote.expect(0);
    assert!(
        promote.stdout().contains("opened pull request #1"),
        "{}",
        promote.stdout()
    );
    let body = &forge.prs()[0].body;
    for d in [D1, D2, D3, D4, D5, D6] {
        assert!(body.contains(d), "PR body lacks {d}:\n{body}");
    }
    // The PR is merged (fast-forward), Argo CD deploys 0.4.0 ... and it misbehaves.
    git(
        dir,
        &["merge", "--quiet", "--ff-only", "rel/promote/prod/0.4.0"],
    );
    git(dir, &["push", "--quiet", "origin", "main"]);

    let rollback = rel(&["rollback", "--env", "prod", "--push", "--yes"]);
    rollback.expect(0);
    let before = rollback.stderr();
    assert!(
        before.starts_with("rollback prod: release 0.4.0 -> release 0.3.0\n  how: git revert of "),
        "{before}"
    );
    assert!(
        before.contains(&format!(
            "    registry.example.com/platform/identity  {D4} -> {D1}\n"
        )),
        "{before}"
    );
    assert!(
        before.contains("  hold: 0.4.0 goes on hold in releases/holds.yaml"),
        "{before}"
    );
    let after = rollback.stdout();
    assert!(
        after.contains("committed ")
            && after.contains(" on main: Revert \"rel: promote 0.4.0 to prod\"\n"),
        "{after}"
    );
    assert!(
        after.contains("pushed to origin/main (with a lease)\n"),
        "{after}"
    );
    assert!(
        after.contains("re-converge:\n  1. Argo CD (platform-prod) reconciles overlays/prod"),
        "{after}"
    );
    assert!(
        after.contains("rel gate drift --env prod --live"),
        "{after}"
    );

    // Byte-exact restore, the hold, pushed, clean.
    assert_eq!(
        std::fs::read_to_string(dir.join(PROD)).unwrap(),
        std::fs::read_to_string(fixture("promote/overlays/prod/kustomization.yaml")).unwrap()
    );
    assert!(std::fs::read_to_string(dir.join("releases/holds.yaml")).unwrap().contains("  - version: \"0.4.0\"\n    env: \"prod\"\n    reason: \"rolled back from prod to 0.3.0\""));
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(
        p.remote_tip("main").unwrap(),
        git(dir, &["rev-parse", "HEAD"])
    );
    let promote_commit = git(dir, &["rev-parse", "HEAD~1"]);
    assert_eq!(
        git(dir, &["log", "-1", "--format=%b"])
            .lines()
            .next()
            .unwrap(),
        format!("This reverts commit {promote_commit}.")
    );
    assert_eq!(
        git(dir, &["log", "-1", "--format=%(trailers:only,unfold)"]),
        format!(
            "Rel-Action: rollback\nRel-Env: prod\nRel-Version: 0.3.0\nRel-Rolled-Back: 0.4.0\nRel-Reverts: {promote_commit}\nRel-Actor: alice@example.com"
        )
    );

    // The automation cannot put it back: promote refuses the held version.
    let again = rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    again.expect(1);
    assert!(
        again
            .stderr()
            .contains("release 0.4.0 is on hold: rolled back from prod to 0.3.0"),
        "{}",
        again.stderr()
    );

    // Status and audit tell the story.
    let status = rel(&["status"]);
    status.expect(0);
    assert!(
        status
            .stdout()
            .starts_with("prod (overlays/prod): 0.3.0, validated in staging\n"),
        "{}",
        status.stdout()
    );
    let audit = rel(&["audit", "--format", "json"]);
    let entries: serde_json::Value = serde_json::from_str(&audit.stdout()).unwrap();
    let actions: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["version"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rollback", "0.3.0"),
            ("promote", "0.4.0"),
            ("record", "0.4.0"),
            ("record", "0.3.0")
        ]
    );
    let prod_only = rel(&["audit", "--env", "prod", "--format", "json"]);
    let prod: serde_json::Value = serde_json::from_str(&prod_only.stdout()).unwrap();
    assert_eq!(prod.as_array().unwrap().len(), 2);
}

#[test]
fn rollback_without_a_terminal_refuses_to_push_unless_yes() {
    let p = promoted();
    let head = p.git(&["rev-parse", "HEAD"]);
    let run = p.rel(&["rollback", "--env", "prod", "--push"]);
    run.expect(2);
    assert!(
        run.stderr().contains(
            "rel rollback will not push without a confirmation, and there is no terminal to ask on"
        ),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("pass --yes"), "{}", run.stderr());
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
}

#[test]
fn rollback_dry_run_shows_the_change_and_changes_nothing() {
    let p = promoted();
    let head = p.git(&["rev-parse", "HEAD"]);
    let run = p.rel(&["rollback", "--env", "prod", "--dry-run"]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.starts_with("rollback prod: release 0.4.0 -> release 0.3.0\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "-    digest: {D4} # rel pins this\n+    digest: {D1} # rel pins this\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("--- commit\nRevert \"rel: promote 0.4.0 to prod\"\n"),
        "{out}"
    );
    assert!(
        out.ends_with("dry run: nothing was committed or pushed\n"),
        "{out}"
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
}

#[test]
fn rollback_after_a_hand_edit_is_a_forward_restore_that_keeps_the_edit() {
    let p = promoted();
    let edited = p
        .work
        .read(PROD)
        .replace("# prod runs two of each", "# prod runs two of each (HA)");
    p.work.write(PROD, &edited);
    p.git(&["commit", "--quiet", "-am", "prod: comment"]);
    // 0.3.0 was never validated: no earlier validated version to go to.
    let refused = p.rel(&["rollback", "--env", "prod"]);
    refused.expect(1);
    assert!(
        refused
            .stderr()
            .contains("found no earlier validated version that prod ran"),
        "{}",
        refused.stderr()
    );
    assert!(
        refused
            .stderr()
            .contains("rel rollback --env prod --to <version>"),
        "{}",
        refused.stderr()
    );

    p.rel(&[
        "record",
        "--version",
        "0.3.0",
        "--env",
        "staging",
        "--evidence",
        p.evidence("0.3.0", "staging").to_str().unwrap(),
    ])
    .expect(0);
    let run = p.rel(&["rollback", "--env", "prod"]);
    run.expect(0);
    assert!(
        run.stderr()
            .contains("how: a forward commit pinning the release's digests"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stdout()
            .contains("on main: rel: roll prod back to 0.3.0\n"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("  1. push it: `git push origin HEAD:main`"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        p.work.read(PROD),
        prod_overlay_with([D1, D2, D3])
            .replace("# prod runs two of each", "# prod runs two of each (HA)")
    );
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    assert_eq!(
        p.git(&["show", "--name-only", "--format=", "HEAD"]),
        format!("{PROD}\nreleases/holds.yaml")
    );
}

#[test]
fn rollback_to_a_commit_restores_that_overlay_byte_exact() {
    let p = promoted();
    let first = p.git(&["rev-list", "--max-parents=0", "HEAD"]);
    let run = p.rel(&["rollback", "--env", "prod", "--to", &first]);
    run.expect(0);
    assert!(
        run.stderr().contains(&format!(
            "how: a forward commit restoring the overlay as it was at {}",
            &first[..12]
        )),
        "{}",
        run.stderr()
    );
    assert_eq!(
        p.work.read(PROD),
        std::fs::read_to_string(fixture("promote/overlays/prod/kustomization.yaml")).unwrap()
    );
    assert_eq!(
        p.git(&[
            "log",
            "-1",
            "--format=%(trailers:key=Rel-Restores,valueonly)"
        ]),
        first
    );
    // Nothing left to do now.
    let again = p.rel(&["rollback", "--env", "prod", "--to", &first]);
    again.expect(1);
    assert!(
        again
            .stderr()
            .contains("prod already pins release 0.3.0: there is nothing to roll back"),
        "{}",
        again.stderr()
    );
}

#[test]
fn rollback_refuses_unvalidated_held_and_unknown_targets() {
    let p = promoted();
    p.lock("0.2.0", [D1, D5, D3]);
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["rollback", "--env", "prod", "--to", "0.2.0"],
            1,
            "release 0.2.0 was never validated (no releases/0.2.0.<env>.validation.yaml)",
        ),
        (
            &["rollback", "--env", "prod", "--to", "0.1.0"],
            2,
            "there is no release 0.1.0",
        ),
        (
            &["rollback", "--env", "prod", "--to", "no-such-ref"],
            2,
            "`no-such-ref` is not a commit in this repository",
        ),
    ];
    for (args, code, want) in cases {
        let r = p.rel(args);
        r.expect(code);
        assert!(r.stderr().contains(want), "{args:?}: {}", r.stderr());
    }
    p.git(&["add", "releases/0.2.0.yaml"]);
    p.git(&["commit", "--quiet", "-m", "0.2.0"]);
    p.rel(&[
        "record",
        "--version",
        "0.2.0",
        "--env",
        "staging",
        "--evidence",
        p.evidence("0.2.0", "staging").to_str().unwrap(),
    ])
    .expect(0);
    p.work.write("releases/holds.yaml", "holds:\n  - version: \"0.2.0\"\n    env: prod\n    reason: \"bad\"\n    since: \"t\"\n    actor: \"a\"\n");
    p.git(&["add", "releases/holds.yaml"]);
    p.git(&["commit", "--quiet", "-m", "hold 0.3.0"]);
    let held = p.rel(&["rollback", "--env", "prod", "--to", "0.2.0"]);
    held.expect(1);
    assert!(
        held.stderr()
            .contains("release 0.2.0 is on hold (bad); rel will not roll prod onto it"),
        "{}",
        held.stderr()
    );
}

#[test]
fn a_refused_push_undoes_the_local_rollback() {
    let p = promoted();
    // Someone else pushes to main meanwhile.
    let other = p.clone_remote();
    std::fs::write(other.path().join("NOTES"), "x\n").unwrap();
    git(other.path(), &["add", "NOTES"]);
    git(other.path(), &["commit", "--quiet", "-m", "other change"]);
    git(other.path(), &["push", "--quiet", "origin", "main"]);
    let remote_main = p.remote_tip("main").unwrap();

    let head = p.git(&["rev-parse", "HEAD"]);
    let overlay = p.work.read(PROD);
    let run = p.rel(&["rollback", "--env", "prod", "--push", "--yes"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("origin/main moved since rel last saw it"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head, "local commit undone");
    assert_eq!(p.work.read(PROD), overlay);
    assert!(!p.path().join("releases/holds.yaml").exists());
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    assert_eq!(
        p.remote_tip("main").unwrap(),
        remote_main,
        "remote untouched"
    );
}

#[test]
fn rollback_refuses_to_commit_over_uncommitted_overlay_edits() {
    let p = promoted();
    p.work.write(PROD, &(p.work.read(PROD) + "# wip\n"));
    let run = p.rel(&["rollback", "--env", "prod"]);
    run.expect(1);
    assert!(run.stderr().contains("overlays/prod/kustomization.yaml has uncommitted changes; rel will not commit over them"), "{}", run.stderr());
}

#[test]
fn rollback_and_status_name_the_argocd_application_and_rollouts_from_rel_toml() {
    let p = promoted();
    // prod's Application is `team/shop-prod` (rel.toml), and its gateway rolls blue/green.
    let config = p.work.read("rel.toml").replace(
        "[environments.prod]\n",
        "[environments.prod]\nargocd-app = \"shop-prod\"\nargocd-namespace = \"team\"\n",
    );
    p.work.write("rel.toml", &config);
    p.work
        .write("base/kustomization.yaml", "resources:\n  - rollout.yaml\n");
    p.work.write(
        "base/rollout.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: gateway\nspec:\n  strategy:\n    blueGreen:\n      activeService: gateway\n",
    );
    p.work.write(
        "overlays/prod/replicas.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: gateway\nspec:\n  replicas: 2\n",
    );
    p.git(&["add", "-A"]);
    p.git(&["commit", "--quiet", "-m", "gateway rolls blue/green"]);

    let run = p.rel(&["rollback", "--env", "prod"]);
    run.expect(0);
    let out = run.stdout();
    assert!(!out.contains("<app>"), "{out}");
    for want in [
        "Argo CD (team/shop-prod) reconciles overlays/prod on its next poll (auto-sync); to go now: `argocd app sync team/shop-prod --prune`",
        "`argocd app wait team/shop-prod --sync --health --timeout 600`",
        "Rollout gateway: blue/green, the restored version comes up as the preview and waits for a human: when deploy-gate passed, `kubectl argo rollouts promote gateway -n platform`",
        "`kubectl argo rollouts get rollout gateway -n platform --watch`",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // rel names the commands; it runs no abort, promote or undo itself (no such tool here).
    assert!(!out.contains("undo"), "{out}");

    let run = p.rel(&["status", "--format", "json"]);
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let prod = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "prod")
        .unwrap();
    assert_eq!(prod["argocd"]["app"], "team/shop-prod");
    assert_eq!(
        prod["argocd"]["rollouts"],
        serde_json::json!([{"name": "gateway", "namespace": "platform", "strategy": "blueGreen"}])
    );
    let lines: Vec<&str> = prod["argocd"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"argocd app get team/shop-prod"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"kubectl argo rollouts promote gateway -n platform"),
        "{lines:?}"
    );
    // staging has no `argocd-app`: the default name, as templates/argocd names it.
    let staging = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "staging")
        .unwrap();
    assert_eq!(staging["argocd"]["app"], "platform-staging");
    let table = p.rel(&["status"]).stdout();
    assert!(
        table.contains("  Argo CD Application team/shop-prod, Rollouts gateway (rel runs none of these; git is the authority):\n"),
        "{table}"
    );
}
