//! `rel promote`: one commit pinning the whole release on a branch, refusals, push with a lease,
//! racing promotions, dry run.

use crate::promote_support::*;
use crate::support::*;

const PROD: &str = "overlays/prod/kustomization.yaml";

#[test]
fn promote_commits_every_pin_at_once_on_a_branch_byte_exact_with_trailers() {
    let p = GitProject::new().with_releases();
    let head = p.git(&["rev-parse", "HEAD"]);
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.starts_with("promote 0.4.0 to prod (from staging): 3 of 3 components change\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  identity  {D1} -> {D4}\n")),
        "{out}"
    );
    assert!(
        out.contains("on branch rel/promote/prod/0.4.0 (your checkout is untouched)"),
        "{out}"
    );

    // HEAD, the working tree and the index are untouched.
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    // One commit on the branch, on top of HEAD, changing only the overlay, byte-exact.
    let branch = "rel/promote/prod/0.4.0";
    assert_eq!(p.git(&["rev-parse", &format!("{branch}~1")]), head);
    assert_eq!(p.git(&["show", "--name-only", "--format=", branch]), PROD);
    assert_eq!(
        p.git(&["show", &format!("{branch}:{PROD}")]) + "\n",
        prod_overlay_with([D4, D5, D6])
    );
    let trailers = p.git(&["log", "-1", "--format=%(trailers:only,unfold)", branch]);
    let sha = crate::promote_record::sha256_of(&p.path().join("releases/0.4.0.yaml"));
    assert_eq!(
        trailers,
        format!(
            "Rel-Action: promote\nRel-Version: 0.4.0\nRel-Env: prod\nRel-From-Env: staging\nRel-Lockfile-Sha256: {sha}\nRel-Evidence: releases/0.4.0.staging.validation.yaml smoke/deep pass=2 fail=0 warn=0 skip=0\nRel-Previous-Version: 0.3.0\nRel-Actor: alice@example.com"
        )
    );
    assert_eq!(
        p.git(&["log", "-1", "--format=%s", branch]),
        "rel: promote 0.4.0 to prod"
    );

    // Running it again reuses the branch; status still shows prod on 0.3.0 (not merged).
    let again = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    again.expect(0);
    assert!(again.stdout().contains("reusing "), "{}", again.stdout());
    let status = p.rel(&["status", "--format", "json"]);
    status.expect(0);
    let s: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(s[0]["env"], "prod");
    assert_eq!(s[0]["release"], "0.3.0");
    assert_eq!(s[1]["env"], "staging");
    assert_eq!(s[0]["pins"]["registry.example.com/platform/identity"], D1);
}

#[test]
fn promote_dry_run_prints_the_diff_and_the_pull_request_and_changes_nothing() {
    let p = GitProject::new().with_releases();
    let head = p.git(&["rev-parse", "HEAD"]);
    let run = p.rel(&[
        "promote",
        "--version",
        "0.4.0",
        "--env",
        "prod",
        "--dry-run",
    ]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.contains(&format!("--- a/{PROD}\n+++ b/{PROD}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "-    digest: {D1} # rel pins this\n+    digest: {D4} # rel pins this\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("-    digest: \"{D2}\"\n+    digest: \"{D5}\"\n")),
        "{out}"
    );
    assert!(out.contains("--- pull request (GitHub: rel/promote/prod/0.4.0 into main)\nrel: promote 0.4.0 to prod\n"), "{out}");
    assert!(
        out.contains(&format!(
            "| identity | `registry.example.com/platform/identity` | - | `{D1}` | `{D4}` |"
        )),
        "{out}"
    );
    assert!(out.contains("Replaces release **0.3.0**"), "{out}");
    assert!(out.contains("Rel-Action: promote\n"), "{out}");
    assert!(
        out.ends_with("dry run: nothing was committed, pushed or opened\n"),
        "{out}"
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
    assert_eq!(p.git(&["status", "--porcelain"]), "");

    let json = p.rel(&[
        "promote",
        "--version",
        "0.4.0",
        "--env",
        "prod",
        "--dry-run",
        "--format",
        "json",
    ]);
    json.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(doc["branch"], "rel/promote/prod/0.4.0");
    assert_eq!(doc["dryRun"], true);
    assert_eq!(doc["commit"], serde_json::Value::Null);
    assert_eq!(doc["previousVersion"], "0.3.0");
    assert_eq!(doc["changes"][1]["component"], "identity");
    assert_eq!(doc["changes"][1]["old_digest"], D1);
    assert_eq!(doc["changes"][1]["new_digest"], D4);
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
}

#[test]
fn promote_refuses_without_a_record_for_the_source_env() {
    let p = GitProject::new();
    p.lock("0.4.0", [D4, D5, D6]);
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    assert!(run.stderr().contains("release 0.4.0 has no validation record for staging: it did not pass the deep gate there"), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("rel record --version 0.4.0 --env staging --evidence evidence.json"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
}

#[test]
fn promote_refuses_a_lockfile_changed_since_its_record() {
    let p = GitProject::new().with_releases();
    let lock = p.work.read("releases/0.4.0.yaml");
    p.work.write(
        "releases/0.4.0.yaml",
        &lock.replace(&D6["sha256:".len()..], &D3["sha256:".len()..]),
    );
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    assert!(
        run.stderr().contains(
            "releases/0.4.0.yaml changed since it was validated in staging (recorded sha256 "
        ),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("git checkout -- releases/0.4.0.yaml"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
}

#[test]
fn promote_refuses_a_held_version_until_the_hold_is_cleared() {
    let p = GitProject::new().with_releases();
    p.work.write(
        "releases/holds.yaml",
        "holds:\n  - version: \"0.4.0\"\n    env: prod\n    reason: \"rolled back from prod\"\n    since: \"2026-01-01T00:00:00Z\"\n    actor: \"bob@example.com\"\n",
    );
    p.git(&["add", "releases/holds.yaml"]);
    p.git(&["commit", "--quiet", "-m", "hold"]);
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    assert!(run.stderr().contains("release 0.4.0 is on hold: rolled back from prod (since 2026-01-01T00:00:00Z, by bob@example.com)"), "{}", run.stderr());
    assert!(
        run.stderr().contains("rel hold clear 0.4.0"),
        "{}",
        run.stderr()
    );

    let clear = p.rel(&["hold", "clear", "0.4.0"]);
    clear.expect(0);
    assert!(
        clear
            .stdout()
            .starts_with("released 0.4.0 from hold: committed "),
        "{}",
        clear.stdout()
    );
    assert_eq!(
        p.git(&["log", "-1", "--format=%(trailers:key=Rel-Action,valueonly)"]),
        "hold-clear"
    );
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    p.rel(&["promote", "--version", "0.4.0", "--env", "prod"])
        .expect(0);
    let twice = p.rel(&["hold", "clear", "0.4.0"]);
    twice.expect(2);
    assert!(
        twice.stderr().contains("release 0.4.0 is not on hold"),
        "{}",
        twice.stderr()
    );
}

#[test]
fn promote_refuses_evidence_that_is_not_committed_and_bad_arguments() {
    let p = GitProject::new();
    p.lock("0.4.0", [D4, D5, D6]);
    let ev = p.evidence("0.4.0", "staging");
    p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
        "--no-commit",
    ])
    .expect(0);
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    assert!(run.stderr().contains("releases/0.4.0.yaml is not committed: the promotion branch is built from the last commit"), "{}", run.stderr());

    let cases: [(&[&str], &str); 4] = [
        (
            &["promote", "--version", "0.9.0", "--env", "prod"],
            "there is no release 0.9.0 (releases/0.9.0.yaml)",
        ),
        (
            &["promote", "--version", "0.4.0", "--env", "qa"],
            "unknown environment `qa`",
        ),
        (
            &["promote", "--version", "0.4.0", "--env", "staging"],
            "no environment promotes to staging in rel.toml",
        ),
        (
            &[
                "promote",
                "--version",
                "0.4.0",
                "--env",
                "prod",
                "--from",
                "prod",
            ],
            "--from prod is the target environment itself",
        ),
    ];
    for (args, want) in cases {
        let r = p.rel(args);
        r.expect(2);
        assert!(r.stderr().contains(want), "{args:?}: {}", r.stderr());
    }
}

#[test]
fn promote_pushes_with_a_lease_and_two_racing_promotions_leave_one_winner_and_nothing_behind() {
    let p = GitProject::new().with_releases();
    p.git(&["push", "--quiet", "origin", "main"]);
    let other = p.clone_remote();
    // Two clones promote the same release at the same time.
    let spawn = |dir: &std::path::Path, actor: &str| {
        rel_command(dir)
            .args(["promote", "--version", "0.4.0", "--env", "prod", "--push"])
            .env("REL_ACTOR", actor)
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(p.path(), "alice@example.com"));
        let b = s.spawn(|| spawn(other.path(), "bob@example.com"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let codes = (a.status.code(), b.status.code());
    assert!(
        codes == (Some(0), Some(1)) || codes == (Some(1), Some(0)),
        "{codes:?}\n{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let (winner_dir, loser, loser_dir) = if codes.0 == Some(0) {
        (p.path(), &b, other.path())
    } else {
        (other.path(), &a, p.path())
    };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(stderr.contains("origin/rel/promote/prod/0.4.0 moved since rel last saw it (expected no such branch); nothing was overwritten"), "{stderr}");
    // The remote has the winner's commit; the loser left no branch behind.
    let tip = p.remote_tip("rel/promote/prod/0.4.0").expect("pushed");
    assert_eq!(
        git(winner_dir, &["rev-parse", "rel/promote/prod/0.4.0"]),
        tip
    );
    assert_eq!(git(loser_dir, &["branch", "--list", "rel/*"]), "");
    assert_eq!(git(loser_dir, &["status", "--porcelain"]), "");

    // A branch that moved on the remote is never overwritten: the winner's own rerun is fine
    // (up to date), but a clone that never saw the branch is refused.
    let again = rel_env(
        winner_dir,
        &["promote", "--version", "0.4.0", "--env", "prod", "--push"],
        &[],
    );
    again.expect(0);
    let third = p.clone_remote();
    git(
        third.path(),
        &[
            "update-ref",
            "-d",
            "refs/remotes/origin/rel/promote/prod/0.4.0",
        ],
    );
    let refused = rel_env(
        third.path(),
        &["promote", "--version", "0.4.0", "--env", "prod", "--push"],
        &[("REL_ACTOR", "carol@example.com")],
    );
    refused.expect(1);
    assert_eq!(p.remote_tip("rel/promote/prod/0.4.0").unwrap(), tip);
}

#[test]
fn promote_again_after_main_moved_rebuilds_the_branch_and_pushes_with_the_lease() {
    let p = GitProject::new().with_releases();
    p.rel(&["promote", "--version", "0.4.0", "--env", "prod", "--push"])
        .expect(0);
    let first = p.remote_tip("rel/promote/prod/0.4.0").unwrap();
    p.work.write("README", "docs\n");
    p.git(&["add", "README"]);
    p.git(&["commit", "--quiet", "-m", "docs"]);
    let head = p.git(&["rev-parse", "HEAD"]);
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod", "--push"]);
    run.expect(0);
    assert!(
        run.stdout().contains(&format!(
            "rebuilt on the current base (was {})",
            &first[..12]
        )),
        "{}",
        run.stdout()
    );
    let tip = p.remote_tip("rel/promote/prod/0.4.0").unwrap();
    assert_ne!(tip, first);
    assert_eq!(p.git(&["rev-parse", &format!("{tip}~1")]), head);

    // A branch by that name that is not rel's promotion is never replaced.
    p.git(&["branch", "-f", "rel/promote/prod/0.4.0", "HEAD"]);
    let refused = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    refused.expect(1);
    assert!(refused.stderr().contains("branch rel/promote/prod/0.4.0 already exists and holds something other than rel's promotion of 0.4.0 to prod"), "{}", refused.stderr());
}
