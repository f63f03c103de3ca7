//! `rel audit`: the history is the audit log.

use crate::promote_support::*;

#[test]
fn audit_lists_rel_actions_from_trailers_and_filters_them() {
    let p = GitProject::new();
    p.validated("0.4.0", [D4, D5, D6]);
    // A commit that is not rel's, with a trailer-like line in its body, is not an action.
    std::fs::write(p.path().join("notes.txt"), "x\n").unwrap();
    p.git(&["add", "notes.txt"]);
    p.git(&[
        "commit",
        "--quiet",
        "-m",
        "docs\n\nRel-Action is explained in the README.\n",
    ]);

    let run = p.rel(&["audit", "--format", "json"]);
    run.expect(0);
    let entries: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", run.stdout());
    let e = &entries[0];
    assert_eq!(e["action"], "record");
    assert_eq!(e["version"], "0.4.0");
    assert_eq!(e["env"], "staging");
    assert_eq!(e["actor"], "alice@example.com");
    assert_eq!(e["subject"], "rel: record 0.4.0 validated in staging");
    assert_eq!(
        e["commit"].as_str().unwrap(),
        p.git(&["rev-parse", "HEAD~1"])
    );
    assert!(e["trailers"]["Rel-Lockfile-Sha256"].as_str().unwrap().len() == 64);

    let table = p.rel(&["audit"]);
    table.expect(0);
    let stdout = table.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{}", table.stdout());
    assert!(
        lines[1].contains("  record  ")
            && lines[1].contains("0.4.0")
            && lines[1].contains("staging")
            && lines[1].contains("alice@example.com"),
        "{}",
        table.stdout()
    );

    let prod = p.rel(&["audit", "--env", "prod", "--format", "json"]);
    prod.expect(0);
    assert_eq!(prod.stdout().trim(), "[]");
    let future = p.rel(&["audit", "--since", "2999-01-01", "--format", "json"]);
    future.expect(0);
    assert_eq!(future.stdout().trim(), "[]");
    let past = p.rel(&[
        "audit",
        "--since",
        "2000-01-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert!(past.stdout().contains("\"record\""));
    let bad = p.rel(&["audit", "--since", "last week"]);
    bad.expect(2);
    assert!(
        bad.stderr().contains("--since last week: not a date"),
        "{}",
        bad.stderr()
    );
}
