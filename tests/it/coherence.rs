//! `rel gate coherence` against the seed's release and each way it can go wrong.

use crate::support::*;

const SEED: &str = "releases/0.9.14.yaml";

fn seed() -> Project {
    Project::from_fixture("seed")
}

/// Edit the seed lockfile with `f`, run the gate, expect exit 1, return stdout.
fn failing(f: impl Fn(String) -> String) -> String {
    let p = seed();
    let text = f(p.read(SEED));
    p.write(SEED, &text);
    let run = p.rel(&["gate", "coherence", SEED]);
    run.expect(1);
    run.stdout()
}

fn fail_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("FAIL ")).collect()
}

#[test]
fn seed_release_passes_with_all_eight_components() {
    let p = seed();
    let run = p.rel(&["gate", "coherence", SEED]);
    run.expect(0);
    let out = run.stdout();
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with("/present: expected by rel.toml and present"))
            .count(),
        8,
        "{out}"
    );
    assert!(out.contains(
        "PASS component/memql-bff-copresent/builtAgainstEngine: 0.9.14 equals engineVersion"
    ));
    assert!(
        out.ends_with("coherence gate PASSED: 21 passed, 0 failed, 0 warnings, 0 skipped\n"),
        "{out}"
    );
}

#[test]
fn by_version_inside_the_project() {
    let p = seed();
    p.rel(&["gate", "coherence", "--version", "0.9.14"])
        .expect(0);
    let sub = p.path().join("releases");
    crate::support::rel_in(&sub, &["gate", "coherence", "--version", "0.9.14"]).expect(0);
    let run = p.rel(&["gate", "coherence", "--version", "0.9.15"]);
    run.expect(2);
    assert!(
        run.stderr().contains("there is no release lockfile"),
        "{}",
        run.stderr()
    );
}

#[test]
fn missing_component() {
    let out = failing(|t| {
        t.replace("  memql-planner:\n    repo: znasllc-io/memql\n    digest: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d\n", "")
    });
    assert_eq!(
        fail_lines(&out),
        [
            "FAIL component/memql-planner/present: rel.toml expects component `memql-planner` but the lockfile does not pin it; rebuild with `rel build` and `rel lock`, or add it with `rel lock --digest memql-planner=sha256:...`"
        ]
    );
}

#[test]
fn unknown_component() {
    let out =
        failing(|t| format!("{t}  memql-extra:\n    repo: znasllc-io/memql\n    digest: {D1}\n"));
    let f = fail_lines(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0].starts_with("FAIL component/memql-extra/known: releases/0.9.14.yaml:31:5: component `memql-extra` is not in rel.toml"), "{out}");
    assert!(
        f[0].contains("add `[components.memql-extra]` to rel.toml"),
        "{out}"
    );
}

#[test]
fn tag_only_pin() {
    let out = failing(|t| {
        t.replace(
            "    digest: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d\n",
            "    tag: \"0.9.14\"\n",
        )
    });
    let f = fail_lines(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0].starts_with("FAIL component/memql-planner/digest: releases/0.9.14.yaml:17:5: `memql-planner` is pinned by tag `0.9.14` only"), "{out}");
}

#[test]
fn malformed_digest() {
    let out = failing(|t| {
        t.replace(
            "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
            "sha256:9E8D7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        )
    });
    assert_eq!(
        fail_lines(&out),
        [
            "FAIL component/memql-planner/digest: releases/0.9.14.yaml:18:13: digest `sha256:9E8D7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d` has uppercase hex at position 8: digests are lowercase"
        ]
    );
    let out = failing(|t| {
        t.replace(
            "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
            "sha256:9e8d7c",
        )
    });
    assert!(
        fail_lines(&out)[0].ends_with("has 6 hex characters after `sha256:`: expected 64"),
        "{out}"
    );
    let out = failing(|t| {
        t.replace(
            "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
            "md5:9e8d7c",
        )
    });
    assert!(
        fail_lines(&out)[0].ends_with("uses algorithm `md5`: only `sha256` is supported"),
        "{out}"
    );
}

#[test]
fn built_against_engine_differs() {
    let out = failing(|t| {
        t.replacen(
            "builtAgainstEngine: \"0.9.14\" #",
            "builtAgainstEngine: \"0.9.13\" #",
            1,
        )
    });
    assert_eq!(
        fail_lines(&out),
        [
            "FAIL component/memql-bff-copresent/builtAgainstEngine: releases/0.9.14.yaml:25:25: `memql-bff-copresent` was built against engine 0.9.13 but the release's engineVersion is 0.9.14; rebuild `memql-bff-copresent` against 0.9.14 or fix engineVersion"
        ]
    );
}

#[test]
fn built_against_engine_missing_when_required() {
    let out = failing(|t| t.replace("    builtAgainstEngine: \"0.9.14\"\n", ""));
    let f = fail_lines(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0].starts_with("FAIL component/copresent-spa/builtAgainstEngine: releases/0.9.14.yaml:27:5: rel.toml says `copresent-spa` must carry `builtAgainstEngine`"), "{out}");
}

#[test]
fn version_does_not_match_file_name() {
    let p = seed();
    let text = p.read(SEED).replace(
        "version: \"0.9.14\"\nengineVersion: \"0.9.14\"",
        "version: \"0.9.15\"\nengineVersion: \"0.9.14\"",
    );
    p.write(SEED, &text);
    let run = p.rel(&["gate", "coherence", SEED]);
    run.expect(1);
    assert_eq!(
        fail_lines(&run.stdout()),
        [
            "FAIL version/file-name: releases/0.9.14.yaml:1:10: version `0.9.15` does not match the file name `0.9.14.yaml`; a lockfile lives at releases/<version>.yaml (rename the file or fix `version`)"
        ]
    );
}

#[test]
fn malformed_yaml_is_exit_2_with_file_line_col_and_snippet() {
    let p = seed();
    let text = p
        .read(SEED)
        .replace("  memql-agent:\n", "  memql-agent: [\n");
    p.write(SEED, &text);
    let run = p.rel(&["gate", "coherence", SEED]);
    run.expect(2);
    let err = run.stderr();
    assert!(run.stdout().is_empty());
    assert!(err.contains("releases/0.9.14.yaml:13:"), "{err}");
    assert!(err.contains("invalid release lockfile"), "{err}");
    assert!(err.contains("memql-agent: ["), "snippet shown: {err}");
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn json_output_is_one_document() {
    let p = seed();
    let text = p.read(SEED).replace(
        "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "0.9.14",
    );
    p.write(SEED, &text);
    let run = p.rel(&["gate", "coherence", SEED, "--format", "json"]);
    run.expect(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).expect("one JSON document");
    assert_eq!(v["gate"], "coherence");
    assert_eq!(v["status"], "fail");
    assert_eq!(v["summary"]["fail"], 1);
    let failed: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed[0]["name"], "component/memql-planner/digest");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("looks like a tag")
    );
}

#[test]
fn junit_and_github_annotations() {
    let p = seed();
    let text = p.read(SEED).replace(
        "sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "sha256:12",
    );
    p.write(SEED, &text);
    let out = rel_command(p.path())
        .args(["gate", "coherence", SEED, "--junit", "out/junit.xml"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let junit = p.read("out/junit.xml");
    assert!(junit.contains("<testcase name=\"component/memql-planner/digest\" classname=\"rel.gate.coherence\">\n      <failure"), "{junit}");
    assert!(junit.contains("tests=\"21\" failures=\"1\""), "{junit}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("::error title=rel gate coherence%3A component/memql-planner/digest::"),
        "{stderr}"
    );
}

#[test]
fn outside_a_project_only_intrinsic_checks_run() {
    let p = Project::empty();
    p.write(
        "0.1.0.yaml",
        &format!(
            "version: 0.1.0\nengineVersion: 0.1.0\ncomponents:\n  anything:\n    digest: {D1}\n"
        ),
    );
    let run = p.rel(&["gate", "coherence", "0.1.0.yaml"]);
    run.expect(0);
    assert!(!run.stdout().contains("/present"));
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::empty();
    let run = p.rel(&["gate", "coherence"]);
    run.expect(2);
    let run = p.rel(&["gate", "coherence", "--version", "0.1.0"]);
    run.expect(2);
    assert!(
        run.stderr().contains("no rel.toml found"),
        "{}",
        run.stderr()
    );
    p.rel(&["gate", "coherence", "x.yaml", "--format", "xml"])
        .expect(2);
    p.rel(&["no-such-command"]).expect(2);
}
