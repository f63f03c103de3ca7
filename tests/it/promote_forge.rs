//! `rel promote --open-pr` against an in-test forge speaking GitHub's, Gitea's and GitLab's API:
//! create, find the open one by head branch, update.

use crate::promote_support::*;
use crate::support::*;

fn open_pr_creates_then_updates(kind: Kind, word: &str, update_method: &str, auth: (&str, String)) {
    let forge = FakeForge::start(kind);
    let p = GitProject::with_forge(kind, &forge).with_releases();
    let var = match kind {
        Kind::Github => "GITHUB_TOKEN",
        Kind::Gitea => "GITEA_TOKEN",
        Kind::Gitlab => "GITLAB_TOKEN",
    };
    let env = [("REL_ACTOR", "alice@example.com"), (var, TOKEN)];
    let run = rel_env(
        p.path(),
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--open-pr",
        ],
        &env,
    );
    run.expect(0);
    assert!(
        run.stdout()
            .contains("pushed rel/promote/prod/0.4.0 to origin (with a lease)"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains(&format!("opened {word} #1: http://127.0.0.1:")),
        "{}",
        run.stdout()
    );
    assert!(
        !run.stdout().contains(TOKEN) && !run.stderr().contains(TOKEN),
        "the token leaked"
    );
    assert!(p.remote_tip("rel/promote/prod/0.4.0").is_some());

    let prs = forge.prs();
    assert_eq!(prs.len(), 1);
    let pr = &prs[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str(), pr.title.as_str()),
        (
            "rel/promote/prod/0.4.0",
            "main",
            "rel: promote 0.4.0 to prod"
        )
    );
    for d in [D1, D2, D3, D4, D5, D6] {
        assert!(pr.body.contains(d), "body lacks {d}:\n{}", pr.body);
    }
    assert!(
        pr.body
            .contains("Validated in **staging**: `smoke` gate, profile `deep`: 2 passed, 0 failed"),
        "{}",
        pr.body
    );
    assert!(
        pr.body.contains("Replaces release **0.3.0**"),
        "{}",
        pr.body
    );
    // What the promotion changes in the cluster, rendered and folded per object.
    assert!(
        pr.body.contains("### Manifest changes in prod")
            && pr.body.contains("| identity | `registry.example.com/platform/identity` | `sha256:111111111111` → `sha256:444444444444` |"),
        "the PR body carries the rendered diff:\n{}",
        pr.body
    );
    let first = forge.requests();
    assert!(
        first
            .iter()
            .all(|r| r.header(auth.0) == Some(auth.1.as_str())),
        "{first:?}"
    );
    assert_eq!(
        first.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        vec!["GET", "POST"]
    );

    // Again: the open pull request is found by its head branch and updated, not duplicated.
    let again = rel_env(
        p.path(),
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--open-pr",
        ],
        &env,
    );
    again.expect(0);
    assert!(
        again
            .stdout()
            .contains(&format!("updated {word} #1: http://127.0.0.1:")),
        "{}",
        again.stdout()
    );
    assert_eq!(forge.prs().len(), 1);
    let methods: Vec<String> = forge.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["GET", "POST", "GET", update_method]);
}

#[test]
fn open_pr_on_github() {
    open_pr_creates_then_updates(
        Kind::Github,
        "pull request",
        "PATCH",
        ("Authorization", format!("Bearer {TOKEN}")),
    );
}

#[test]
fn open_pr_on_gitea() {
    open_pr_creates_then_updates(
        Kind::Gitea,
        "pull request",
        "PATCH",
        ("Authorization", format!("token {TOKEN}")),
    );
}

#[test]
fn open_pr_on_gitlab() {
    open_pr_creates_then_updates(
        Kind::Gitlab,
        "merge request",
        "PUT",
        ("PRIVATE-TOKEN", TOKEN.to_owned()),
    );
}

#[test]
fn open_pr_without_a_token_refuses_before_committing_anything() {
    let forge = FakeForge::start(Kind::Github);
    let p = GitProject::with_forge(Kind::Github, &forge).with_releases();
    let run = p.rel(&[
        "promote",
        "--version",
        "0.4.0",
        "--env",
        "prod",
        "--open-pr",
    ]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("--open-pr on GitHub needs a token in GITHUB_TOKEN"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
    assert!(p.remote_tip("rel/promote/prod/0.4.0").is_none());
    assert!(forge.requests().is_empty());
}

#[test]
fn a_rejected_token_names_the_endpoint_but_never_the_token() {
    let forge = FakeForge::start(Kind::Gitea);
    let p = GitProject::with_forge(Kind::Gitea, &forge).with_releases();
    let run = rel_env(
        p.path(),
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--open-pr",
        ],
        &[("GITEA_TOKEN", "wrong-token-value")],
    );
    run.expect(2);
    assert!(
        run.stderr().contains("GET http://127.0.0.1:"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("/api/v1/repos/org/gitops/pulls: HTTP 401 Unauthorized"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("check that the token has pull request write access"),
        "{}",
        run.stderr()
    );
    assert!(
        !run.stderr().contains("wrong-token-value") && !run.stdout().contains("wrong-token-value")
    );
}
