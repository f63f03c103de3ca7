//! Long rendered texts, compared whole (insta snapshots in `tests/it/snapshots/`): the help a
//! newcomer reads and gate reports as CI logs show them.
//! A change to any of them shows as a diff in review (`cargo insta review` to accept one).

use crate::support::*;

#[test]
fn top_level_help() {
    let run = rel_in(&repo_root(), &["--help"]);
    run.expect(0);
    insta::assert_snapshot!("help", run.stdout());
}

#[test]
fn coherence_report_of_the_seed_release() {
    let p = Project::from_fixture("seed");
    let run = p.rel(&["gate", "coherence", "releases/0.9.14.yaml"]);
    run.expect(0);
    insta::assert_snapshot!("coherence_seed", run.stdout());
}

#[test]
fn coherence_report_of_a_broken_lockfile() {
    let p = Project::from_fixture("seed");
    let text = p
        .read("releases/0.9.14.yaml")
        .replacen("digest: sha256:", "digest: sha256:zz", 1)
        .replacen("engineVersion: \"0.9.14\"", "engineVersion: \"0.9.x\"", 1);
    p.write("releases/0.9.14.yaml", &text);
    let run = p.rel(&["gate", "coherence", "releases/0.9.14.yaml"]);
    run.expect(1);
    insta::assert_snapshot!("coherence_broken", run.stdout());
}
