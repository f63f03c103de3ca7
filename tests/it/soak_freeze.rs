//! Soak windows and freezes, through real git repositories: `soak = "24h"` refuses a promotion
//! with the exact time it becomes eligible, `--override-soak --reason` goes into the trailers and
//! `rel audit`, `rel freeze`/`rel unfreeze` commit `releases/freezes.yaml`, and promote, pin and
//! deploy into a frozen environment are refused. "Now" is injected with `REL_NOW`; nothing sleeps.

use std::time::Duration;

use crate::promote_support::*;
use crate::support::*;

const BRANCH: &str = "rel/promote/prod/0.4.0";

/// rel at a fixed "now".
fn rel_at(p: &GitProject, now: &str, args: &[&str]) -> Run {
    rel_env(
        p.path(),
        args,
        &[("REL_ACTOR", "alice@example.com"), ("REL_NOW", now)],
    )
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

/// `t + secs`, RFC 3339 UTC.
fn plus(t: &str, secs: u64) -> String {
    let at = rel::clock::parse_rfc3339(t).unwrap() + Duration::from_secs(secs);
    rel::clock::format(at)
}

/// The fixture with `soak = "24h"` on staging, 0.3.0 pinned in prod, 0.4.0 validated in staging
/// (recorded now); returns the record's `recordedAt`.
fn soaking_project() -> (GitProject, String) {
    let p = GitProject::new();
    let config = p.work.read("rel.toml").replace(
        "promotes-to = \"prod\"\n",
        "promotes-to = \"prod\"\nsoak = \"24h\"\n",
    );
    assert!(config.contains("soak = \"24h\""));
    p.work.write("rel.toml", &config);
    p.git(&["commit", "--quiet", "-am", "staging soaks 24h"]);
    // What `with_releases` does, with the record's output kept.
    p.lock("0.3.0", [D1, D2, D3]);
    p.git(&["add", "releases/0.3.0.yaml"]);
    p.git(&["commit", "--quiet", "-m", "release 0.3.0"]);
    p.lock("0.4.0", [D4, D5, D6]);
    let ev = p.evidence("0.4.0", "staging");
    let recorded = p.rel(&[
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    recorded.expect(0);
    let record = p.work.read("releases/0.4.0.staging.validation.yaml");
    let at = record
        .lines()
        .find_map(|l| l.strip_prefix("recordedAt: "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert!(
        recorded.stdout().contains(&format!(
            "soak 24h: 0.4.0 may be promoted to prod from {} (in ",
            plus(&at, 86_400)
        )),
        "{}",
        recorded.stdout()
    );
    (p, at)
}

fn trailers(p: &GitProject, rev: &str) -> String {
    p.git(&["log", "-1", "--format=%(trailers:only,unfold)", rev])
}

#[test]
fn soak_refuses_with_the_exact_eligible_time_and_allows_once_it_is_over() {
    let (p, at) = soaking_project();
    let eligible = plus(&at, 24 * 3600);

    let early = rel_at(
        &p,
        &plus(&at, 3600),
        &["promote", "--version", "0.4.0", "--env", "prod"],
    );
    early.expect(1);
    let err = early.stderr();
    assert!(
        err.contains(&format!(
            "release 0.4.0 is still soaking in staging: validated {at}, soak 24h; it may be promoted to prod at {eligible} (in 23h)"
        )),
        "{err}"
    );
    assert!(err.contains("--override-soak --reason"), "{err}");
    // Nothing was committed: no branch, and a dry run is refused the same way.
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
    let dry = rel_at(
        &p,
        &plus(&at, 24 * 3600 - 1),
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--dry-run",
        ],
    );
    dry.expect(1);
    assert!(dry.stderr().contains("(in 1s)"), "{}", dry.stderr());

    // At the eligible second the promotion goes through, and says the soak was kept.
    let ok = rel_at(
        &p,
        &eligible,
        &["promote", "--version", "0.4.0", "--env", "prod"],
    );
    ok.expect(0);
    assert!(
        ok.stdout().contains(&format!(
            "  soak: staging 24h over (validated {at}, eligible {eligible})\n"
        )),
        "{}",
        ok.stdout()
    );
    let t = trailers(&p, BRANCH);
    assert!(
        t.contains(&format!("Rel-Soak: 24h\nRel-Soak-Eligible: {eligible}\nRel-Clock: {eligible}\nRel-Actor: alice@example.com")),
        "{t}"
    );
    assert!(!t.contains("Rel-Soak-Override"), "{t}");
}

#[test]
fn override_soak_records_the_reason_in_the_trailers_and_the_audit_log() {
    let (p, at) = soaking_project();
    let now = plus(&at, 2 * 3600);
    let eligible = plus(&at, 24 * 3600);

    // --override-soak needs a reason, and a reason needs the override (clap: exit 2).
    let bare = rel_at(
        &p,
        &now,
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--override-soak",
        ],
    );
    bare.expect(2);
    assert!(bare.stderr().contains("--reason"), "{}", bare.stderr());
    let blank = rel_at(
        &p,
        &now,
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--override-soak",
            "--reason",
            " ",
        ],
    );
    blank.expect(2);
    assert!(
        blank.stderr().contains("--override-soak needs a reason"),
        "{}",
        blank.stderr()
    );

    let reason = "hotfix for incident 42: login loop";
    // The pull request says so too (here in the dry run's copy of it).
    let dry = rel_at(
        &p,
        &now,
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--override-soak",
            "--reason",
            reason,
            "--dry-run",
        ],
    );
    dry.expect(0);
    assert!(
        dry.stdout().contains(&format!(
            "**Soak overridden**: staging soaks 24h (eligible {eligible}, 22h early): {reason}"
        )),
        "{}",
        dry.stdout()
    );
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
    let run = rel_at(
        &p,
        &now,
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--override-soak",
            "--reason",
            reason,
        ],
    );
    run.expect(0);
    assert!(
        run.stdout().contains(&format!(
            "  soak: staging 24h NOT over (eligible {eligible}, in 22h): overridden, reason: {reason}\n"
        )),
        "{}",
        run.stdout()
    );
    let t = trailers(&p, BRANCH);
    assert!(
        t.contains(&format!(
            "Rel-Soak: 24h\nRel-Soak-Eligible: {eligible}\nRel-Soak-Override: {reason}\nRel-Clock: {now}\n"
        )),
        "{t}"
    );

    // Merged, the override is in the audit log, typed and among the trailers.
    p.git(&["merge", "--quiet", "--ff-only", BRANCH]);
    let audit = p.rel(&["audit", "--format", "json"]);
    audit.expect(0);
    let entries = json(&audit);
    let promote = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "promote")
        .unwrap_or_else(|| panic!("{entries}"));
    assert_eq!(promote["soakOverride"], reason);
    assert_eq!(promote["trailers"]["Rel-Soak-Override"], reason);
    assert_eq!(promote["trailers"]["Rel-Soak-Eligible"], eligible.as_str());
    assert_eq!(promote["version"], "0.4.0");
    assert_eq!(promote["env"], "prod");
    let table = p.rel(&["audit", "--env", "prod"]);
    table.expect(0);
    assert!(
        table.stdout().contains("promote (soak overridden)"),
        "{}",
        table.stdout()
    );

    // Once the soak is over, --override-soak overrides nothing and records nothing.
    let p2 = soaking_project();
    let late = rel_at(
        &p2.0,
        &plus(&p2.1, 25 * 3600),
        &[
            "promote",
            "--version",
            "0.4.0",
            "--env",
            "prod",
            "--override-soak",
            "--reason",
            "x",
        ],
    );
    late.expect(0);
    assert!(
        late.stdout()
            .contains("--override-soak was not needed (the soak in staging is over)"),
        "{}",
        late.stdout()
    );
    assert!(!trailers(&p2.0, BRANCH).contains("Rel-Soak-Override"));
}

#[test]
fn freeze_and_unfreeze_commit_with_trailers_and_refuse_promote_pin_and_deploy_meanwhile() {
    let p = GitProject::new().with_releases();
    let head = p.git(&["rev-parse", "HEAD"]);

    // A dry run prints the file and the commit and changes nothing.
    let dry = p.rel(&[
        "freeze",
        "--env",
        "prod",
        "--reason",
        "incident 42",
        "--dry-run",
    ]);
    dry.expect(0);
    assert!(
        dry.stdout().contains("--- releases/freezes.yaml\n"),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stdout().contains("Rel-Action: freeze\n"),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stdout()
            .ends_with("dry run: nothing was written or committed\n")
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert!(!p.path().join("releases/freezes.yaml").exists());
    let dry_json = p.rel(&[
        "freeze",
        "--env",
        "prod",
        "--reason",
        "incident 42",
        "--dry-run",
        "--format",
        "json",
    ]);
    dry_json.expect(0);
    let j = json(&dry_json);
    assert_eq!(j["env"], "prod");
    assert_eq!(j["action"], "freeze");
    assert_eq!(j["done"], "dry-run");
    assert_eq!(j["file"], "releases/freezes.yaml");
    assert_eq!(j["freeze"]["reason"], "incident 42");
    assert_eq!(j["freeze"]["actor"], "alice@example.com");
    assert_eq!(j["freeze"]["until"], serde_json::Value::Null);
    assert_eq!(j["commit"], serde_json::Value::Null);

    let run = p.rel(&[
        "freeze",
        "--env",
        "prod",
        "--reason",
        "incident 42: db failover",
    ]);
    run.expect(0);
    assert!(
        run.stdout()
            .starts_with("froze prod: incident 42: db failover (by alice@example.com, since "),
        "{}",
        run.stdout()
    );
    assert_eq!(p.git(&["rev-parse", "HEAD~1"]), head);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    assert_eq!(
        p.git(&["show", "--name-only", "--format=", "HEAD"]),
        "releases/freezes.yaml"
    );
    assert_eq!(p.git(&["log", "-1", "--format=%s"]), "rel: freeze prod");
    assert_eq!(
        trailers(&p, "HEAD"),
        "Rel-Action: freeze\nRel-Env: prod\nRel-Reason: incident 42: db failover\nRel-Actor: alice@example.com"
    );
    let committed = p.git(&["show", "HEAD:releases/freezes.yaml"]);
    assert!(
        committed.contains("  - env: \"prod\"\n    reason: \"incident 42: db failover\"\n"),
        "{committed}"
    );

    let frozen = "prod is frozen: incident 42: db failover (by alice@example.com, since ";
    let promote = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    promote.expect(1);
    assert!(promote.stderr().contains(frozen), "{}", promote.stderr());
    assert!(
        promote
            .stderr()
            .contains("until `rel unfreeze`); promote 0.4.0 to prod refused"),
        "{}",
        promote.stderr()
    );
    assert!(
        promote.stderr().contains("rel unfreeze --env prod"),
        "{}",
        promote.stderr()
    );
    assert_eq!(p.git(&["branch", "--list", "rel/*"]), "");
    for args in [
        &["pin", "--env", "prod", "--version", "0.4.0"][..],
        &["pin", "--env", "prod", "--version", "0.4.0", "--dry-run"],
        &[
            "pin",
            "--overlay",
            "overlays/prod",
            "--lockfile",
            "releases/0.4.0.yaml",
        ],
        &[
            "deploy",
            "--env",
            "prod",
            "--version",
            "0.4.0",
            "--skip-build",
            "--dry-run",
        ],
        &[
            "deploy",
            "--env",
            "prod",
            "--version",
            "0.4.0",
            "--skip-build",
            "--no-gate",
        ],
        &["release", "--env", "prod", "--version", "0.5.0"],
    ] {
        let r = p.rel(args);
        r.expect(1);
        assert!(r.stderr().contains(frozen), "{args:?}: {}", r.stderr());
    }
    assert_eq!(p.git(&["status", "--porcelain"]), "", "nothing was written");
    // Staging is not frozen.
    p.rel(&["pin", "--env", "staging", "--version", "0.4.0", "--dry-run"])
        .expect(0);

    // An uncommitted unfreeze of the working tree does not lift the committed freeze for a
    // promotion (its branch is built on the last commit).
    let local = p.rel(&["unfreeze", "--env", "prod", "--no-commit"]);
    local.expect(0);
    assert!(
        local.stdout().contains("(not committed: commit it)"),
        "{}",
        local.stdout()
    );
    let promote = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    promote.expect(1);
    assert!(promote.stderr().contains(frozen), "{}", promote.stderr());
    p.git(&["checkout", "--", "releases/freezes.yaml"]);

    // Freezing again with the same reason changes nothing; another reason replaces the freeze.
    let again = p.rel(&[
        "freeze",
        "--env",
        "prod",
        "--reason",
        "incident 42: db failover",
    ]);
    again.expect(0);
    assert!(
        again.stdout().starts_with("already so: prod is frozen"),
        "{}",
        again.stdout()
    );
    assert_eq!(p.git(&["rev-parse", "HEAD~1"]), head);

    // Unfreeze: a commit with trailers; promotion works again; a second unfreeze is an error.
    let un = p.rel(&["unfreeze", "--env", "prod"]);
    un.expect(0);
    assert!(
        un.stdout()
            .starts_with("unfroze prod (frozen by alice@example.com since "),
        "{}",
        un.stdout()
    );
    assert_eq!(
        trailers(&p, "HEAD"),
        "Rel-Action: unfreeze\nRel-Env: prod\nRel-Actor: alice@example.com"
    );
    assert!(
        p.git(&["show", "HEAD:releases/freezes.yaml"])
            .contains("freezes: []")
    );
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    let twice = p.rel(&["unfreeze", "--env", "prod"]);
    twice.expect(2);
    assert!(
        twice.stderr().contains("prod is not frozen"),
        "{}",
        twice.stderr()
    );
    p.rel(&["promote", "--version", "0.4.0", "--env", "prod"])
        .expect(0);

    // The audit log has both, with the reason.
    let audit = p.rel(&["audit", "--env", "prod", "--format", "json"]);
    audit.expect(0);
    let entries = json(&audit);
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unfreeze", "freeze"], "{entries}");
    assert_eq!(entries[1]["reason"], "incident 42: db failover");
    assert_eq!(entries[1]["actor"], "alice@example.com");
    assert_eq!(entries[1]["until"], serde_json::Value::Null);

    // Bad input: unknown environment, empty reason, a dirty freezes file.
    let unknown = p.rel(&["freeze", "--env", "qa", "--reason", "x"]);
    unknown.expect(2);
    assert!(
        unknown.stderr().contains("unknown environment `qa`"),
        "{}",
        unknown.stderr()
    );
    let empty = p.rel(&["freeze", "--env", "prod", "--reason", "  "]);
    empty.expect(2);
    assert!(
        empty.stderr().contains("--reason is empty"),
        "{}",
        empty.stderr()
    );
    p.work
        .write("releases/freezes.yaml", "freezes: []\n# edited\n");
    let dirty = p.rel(&["freeze", "--env", "prod", "--reason", "x"]);
    dirty.expect(1);
    assert!(
        dirty
            .stderr()
            .contains("releases/freezes.yaml has uncommitted changes"),
        "{}",
        dirty.stderr()
    );
}

#[test]
fn a_freeze_until_a_time_ends_by_itself() {
    let p = GitProject::new().with_releases();
    let t0 = "2030-01-01T00:00:00Z";
    let past = rel_at(
        &p,
        t0,
        &[
            "freeze",
            "--env",
            "prod",
            "--reason",
            "x",
            "--until",
            "2029-12-31",
        ],
    );
    past.expect(2);
    assert!(
        past.stderr().contains("is not in the future"),
        "{}",
        past.stderr()
    );

    rel_at(
        &p,
        t0,
        &[
            "freeze",
            "--env",
            "prod",
            "--reason",
            "new year change freeze",
            "--until",
            "2h",
        ],
    )
    .expect(0);
    let until = "2030-01-01T02:00:00Z";
    assert_eq!(
        trailers(&p, "HEAD"),
        format!(
            "Rel-Action: freeze\nRel-Env: prod\nRel-Reason: new year change freeze\nRel-Until: {until}\nRel-Clock: {t0}\nRel-Actor: alice@example.com"
        )
    );

    let during = rel_at(
        &p,
        &plus(t0, 7199),
        &["promote", "--version", "0.4.0", "--env", "prod"],
    );
    during.expect(1);
    assert!(
        during.stderr().contains(&format!("prod is frozen: new year change freeze (by alice@example.com, since {t0}, until {until}); promote 0.4.0 to prod refused")),
        "{}",
        during.stderr()
    );
    assert!(
        during.stderr().contains(&format!("wait until {until}")),
        "{}",
        during.stderr()
    );

    let status = rel_at(&p, &plus(t0, 3 * 3600), &["status", "--format", "json"]);
    status.expect(0);
    let s = json(&status);
    assert_eq!(s[0]["env"], "prod");
    assert_eq!(s[0]["freeze"]["active"], false);
    assert_eq!(s[0]["freeze"]["until"], until);
    let table = rel_at(&p, &plus(t0, 3 * 3600), &["status"]);
    assert!(
        table.stdout().contains(&format!(
            "  freeze expired at {until}: new year change freeze"
        )),
        "{}",
        table.stdout()
    );

    // At `until` it no longer freezes: promote and pin go through.
    rel_at(
        &p,
        until,
        &["pin", "--env", "prod", "--version", "0.4.0", "--dry-run"],
    )
    .expect(0);
    rel_at(
        &p,
        until,
        &["promote", "--version", "0.4.0", "--env", "prod"],
    )
    .expect(0);
    // A bad REL_NOW is an error, not the system clock.
    let bad = rel_at(
        &p,
        "soon",
        &["promote", "--version", "0.4.0", "--env", "prod"],
    );
    bad.expect(2);
    assert!(
        bad.stderr().contains("REL_NOW=soon is not a time"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn status_json_shows_freezes_soak_remaining_and_holds() {
    let (p, at) = soaking_project();
    rel_at(
        &p,
        &plus(&at, 60),
        &[
            "freeze",
            "--env",
            "prod",
            "--reason",
            "audit week",
            "--until",
            "2d",
        ],
    )
    .expect(0);
    p.work.write(
        "releases/holds.yaml",
        "holds:\n  - version: \"0.3.9\"\n    env: \"prod\"\n    reason: \"rolled back: 5xx\"\n    since: \"2026-11-30T08:00:00Z\"\n    actor: \"bob@example.com\"\n",
    );
    let now = plus(&at, 3600);
    let run = rel_at(&p, &now, &["status", "--format", "json"]);
    run.expect(0);
    let s = json(&run);
    let (prod, staging) = (&s[0], &s[1]);
    assert_eq!(prod["env"], "prod");
    assert_eq!(prod["freeze"]["env"], "prod");
    assert_eq!(prod["freeze"]["reason"], "audit week");
    assert_eq!(prod["freeze"]["actor"], "alice@example.com");
    assert_eq!(prod["freeze"]["since"], plus(&at, 60).as_str());
    assert_eq!(prod["freeze"]["until"], plus(&at, 60 + 2 * 86_400).as_str());
    assert_eq!(prod["freeze"]["active"], true);
    assert_eq!(prod["soak"], serde_json::Value::Null);
    assert_eq!(prod["soaking"], serde_json::json!([]));
    assert_eq!(prod["holds"][0]["version"], "0.3.9");
    assert_eq!(prod["holds"][0]["reason"], "rolled back: 5xx");
    assert_eq!(staging["env"], "staging");
    assert_eq!(staging["freeze"], serde_json::Value::Null);
    assert_eq!(staging["soak"], "24h");
    assert_eq!(
        staging["soaking"],
        serde_json::json!([{
            "version": "0.4.0",
            "env": "staging",
            "soak": "24h",
            "validatedAt": at,
            "eligibleAt": plus(&at, 86_400),
            "remainingSeconds": 23 * 3600,
            "eligible": false,
        }])
    );
    assert_eq!(staging["holds"], serde_json::json!([]));

    let table = rel_at(&p, &now, &["status"]);
    table.expect(0);
    let out = table.stdout();
    assert!(
        out.contains("  FROZEN: audit week (by alice@example.com, since "),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  soak 24h: 0.4.0 soaking, eligible at {} (in 23h)\n",
            plus(&at, 86_400)
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "  hold: 0.3.9 (by bob@example.com, since 2026-11-30T08:00:00Z): rolled back: 5xx\n"
        ),
        "{out}"
    );
    let later = rel_at(&p, &plus(&at, 86_400), &["status", "--format", "json"]);
    let s = json(&later);
    assert_eq!(s[1]["soaking"][0]["eligible"], true);
    assert_eq!(s[1]["soaking"][0]["remainingSeconds"], 0);
}

#[test]
fn a_freeze_rerun_after_a_kill_restores_the_working_tree_and_commits_nothing() {
    let p = GitProject::new().with_releases();
    p.rel(&["freeze", "--env", "prod", "--reason", "incident 7"])
        .expect(0);
    let head = p.git(&["rev-parse", "HEAD"]);
    // The state a kill after the commit and before the working-tree write leaves: HEAD has the
    // file, the index and the working tree do not.
    p.git(&["rm", "--quiet", "--cached", "releases/freezes.yaml"]);
    std::fs::remove_file(p.path().join("releases/freezes.yaml")).unwrap();
    assert_ne!(p.git(&["status", "--porcelain"]), "");

    let rerun = p.rel(&["freeze", "--env", "prod", "--reason", "incident 7"]);
    rerun.expect(0);
    assert!(
        rerun
            .stdout()
            .starts_with("already so: prod is frozen: incident 7"),
        "{}",
        rerun.stdout()
    );
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    assert!(p.work.read("releases/freezes.yaml").contains("incident 7"));
}

#[test]
fn a_bad_soak_in_rel_toml_points_at_its_line() {
    let p = GitProject::new();
    let config = p.work.read("rel.toml").replace(
        "promotes-to = \"prod\"\n",
        "promotes-to = \"prod\"\nsoak = \"1 day\"\n",
    );
    p.work.write("rel.toml", &config);
    let line = config.lines().position(|l| l.starts_with("soak")).unwrap() + 1;
    let run = p.rel(&["status"]);
    run.expect(2);
    let err = run.stderr();
    assert!(err.contains(&format!("rel.toml:{line}:")), "{err}");
    assert!(
        err.contains("`soak = \"1 day\"` is not a soak window"),
        "{err}"
    );
    assert!(err.contains("`soak = \"24h\"`"), "{err}");
}
