//! `rel record`: the validation record, its commit and trailers, and every refusal.

use crate::promote_support::*;
use crate::support::*;

#[test]
fn record_writes_and_commits_the_record_with_trailers_and_freezes_the_lockfile() {
    let p = GitProject::new();
    p.lock("0.4.0", [D4, D5, D6]);
    let ev = p.evidence("0.4.0", "staging");
    let run = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    run.expect(0);
    assert!(run.stdout().starts_with("recorded releases/0.4.0.staging.validation.yaml: release 0.4.0 passed smoke/deep in staging (2 checks passed, 0 warnings)\n"), "{}", run.stdout());
    assert!(run.stdout().contains("committed "), "{}", run.stdout());

    let record = p.work.read("releases/0.4.0.staging.validation.yaml");
    let lock_sha = sha256_of(&p.path().join("releases/0.4.0.yaml"));
    assert!(
        record.contains(&format!("lockfileSha256: {lock_sha}\n")),
        "{record}"
    );
    assert!(
        record.contains("version: \"0.4.0\"\nenv: staging\n"),
        "{record}"
    );
    assert!(record.contains("gate: smoke\nprofile: deep\n"), "{record}");
    assert!(
        record.contains("actor: \"alice@example.com\"\n"),
        "{record}"
    );
    assert!(record.contains("recordedAt: \"20"), "{record}");

    // One commit holding the lockfile and the record, with trailers; the tree is clean.
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    assert_eq!(
        p.git(&["show", "--name-only", "--format=", "HEAD"]),
        "releases/0.4.0.staging.validation.yaml\nreleases/0.4.0.yaml"
    );
    let trailers = p.git(&["log", "-1", "--format=%(trailers:only,unfold)"]);
    assert_eq!(
        trailers,
        format!(
            "Rel-Action: record\nRel-Version: 0.4.0\nRel-Env: staging\nRel-Lockfile-Sha256: {lock_sha}\nRel-Evidence: smoke/deep pass=2 fail=0 warn=0 skip=0\nRel-Actor: alice@example.com"
        )
    );

    // The lockfile is now immutable.
    let forced = p.rel(&[
        "lock",
        "--version",
        "0.4.0",
        "--force",
        "--digest",
        &format!("identity={D1}"),
        "--digest",
        &format!("gateway={D5}"),
        "--digest",
        &format!("worker={D6}"),
    ]);
    forced.expect(1);
    assert!(
        forced.stderr().contains("release 0.4.0 is validated"),
        "{}",
        forced.stderr()
    );

    // The same evidence again is a no-op; different evidence is refused.
    let again = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    again.expect(0);
    assert!(again.stdout().contains("already records this evidence"));
    let other = p.remote.path().join("other.json");
    std::fs::write(
        &other,
        deep_report(p.path(), "0.4.0", "staging", true).replace("echo in 40 ms", "echo in 41 ms"),
    )
    .unwrap();
    let changed = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        other.to_str().unwrap(),
    ]);
    changed.expect(1);
    assert!(
        changed
            .stderr()
            .contains("releases/0.4.0.staging.validation.yaml already exists (recorded 20"),
        "{}",
        changed.stderr()
    );
    assert!(
        changed
            .stderr()
            .contains("a validation record never changes"),
        "{}",
        changed.stderr()
    );
    assert_eq!(
        p.work.read("releases/0.4.0.staging.validation.yaml"),
        record
    );
}

#[test]
fn record_refuses_evidence_that_is_not_a_green_deep_gate_for_that_version_and_env() {
    let p = GitProject::new();
    p.lock("0.4.0", [D4, D5, D6]);
    let head = p.git(&["rev-parse", "HEAD"]);
    let write = |name: &str, text: String| {
        let f = p.remote.path().join(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    let cases = [
        (
            write("red.json", deep_report(p.path(), "0.4.0", "staging", false)),
            1,
            "the deep gate failed (1 failed: audio)",
        ),
        (
            write("v.json", deep_report(p.path(), "0.3.9", "staging", true)),
            1,
            "is evidence for version 0.3.9, not 0.4.0",
        ),
        (
            write("e.json", deep_report(p.path(), "0.4.0", "prod", true)),
            1,
            "is evidence for environment prod, not staging",
        ),
        (
            write(
                "quick.json",
                deep_report(p.path(), "0.4.0", "staging", true)
                    .replace("\"profile\": \"deep\"", "\"profile\": \"quick\""),
            ),
            1,
            "with profile `quick`, not `deep`",
        ),
        (
            write(
                "coh.json",
                deep_report(p.path(), "0.4.0", "staging", true)
                    .replace("\"gate\": \"smoke\"", "\"gate\": \"coherence\""),
            ),
            1,
            "is a `coherence` gate report, not the `smoke` gate",
        ),
        (
            write("junk.json", "<html>".into()),
            2,
            "is not a gate report",
        ),
        (
            write(
                "other-lock.json",
                deep_report(p.path(), "0.4.0", "staging", true).replace(
                    &sha256_of(&p.path().join("releases/0.4.0.yaml")),
                    &"ab".repeat(32),
                ),
            ),
            1,
            "ran against another lockfile",
        ),
        (
            write(
                "unbound.json",
                deep_report(p.path(), "0.4.0", "staging", true).replace(
                    &format!(
                        ", \"lockfileSha256\": \"{}\"",
                        sha256_of(&p.path().join("releases/0.4.0.yaml"))
                    ),
                    "",
                ),
            ),
            1,
            "does not name the lockfile it ran against",
        ),
    ];
    for (file, code, want) in cases {
        let run = p.rel(&[
            "record",
            "--version",
            "0.4.0",
            "--env",
            "staging",
            "--evidence",
            file.to_str().unwrap(),
        ]);
        run.expect(code);
        assert!(run.stderr().contains(want), "{want}: {}", run.stderr());
        assert!(
            run.stderr().contains("rel gate smoke --profile deep")
                || run.stderr().contains("a failed gate is not evidence"),
            "{}",
            run.stderr()
        );
    }
    assert!(
        !p.path()
            .join("releases/0.4.0.staging.validation.yaml")
            .exists()
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head, "nothing committed");

    let ev = p.evidence("0.4.0", "staging");
    let no_lock = p.rel(&[
        "record",
        "--version",
        "0.5.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    no_lock.expect(2);
    assert!(
        no_lock
            .stderr()
            .contains("there is no releases/0.5.0.yaml to record"),
        "{}",
        no_lock.stderr()
    );
    assert!(
        no_lock.stderr().contains("rel lock --version 0.5.0"),
        "{}",
        no_lock.stderr()
    );
    let env = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "qa",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    env.expect(2);
    assert!(
        env.stderr().contains("unknown environment `qa`"),
        "{}",
        env.stderr()
    );
}

#[test]
fn record_without_git_writes_the_file_only() {
    let p = Project::from_fixture("promote");
    p.rel(&[
        "lock",
        "--version",
        "0.4.0",
        "--digest",
        &format!("identity={D4}"),
        "--digest",
        &format!("gateway={D5}"),
        "--digest",
        &format!("worker={D6}"),
    ])
    .expect(0);
    let ev = p.path().join("ev.json");
    std::fs::write(&ev, deep_report(p.path(), "0.4.0", "staging", true)).unwrap();
    let run = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        "ev.json",
    ]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("not committed: commit releases/0.4.0.staging.validation.yaml"),
        "{}",
        run.stdout()
    );
    assert!(
        p.path()
            .join("releases/0.4.0.staging.validation.yaml")
            .is_file()
    );
}

pub fn sha256_of(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
