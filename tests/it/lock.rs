//! `rel lock`: from digests and from a build result; refusals; atomic, canonical output.

use crate::support::*;

fn build_json(digest_id: &str, digest_gw: &str, digest_wk: &str) -> String {
    format!(
        r#"{{
  "schema": 1,
  "components": [
    {{"component": "identity", "image": "registry.example.com/platform/identity", "tag": "0.4.0", "digest": "{digest_id}", "sourceCommit": "0123456789abcdef0123456789abcdef01234567", "crate": "identity", "bin": "identity", "features": [], "published": "oci-layout:target/rel/oci"}},
    {{"component": "gateway", "image": "registry.example.com/platform/gateway", "tag": "0.4.0", "digest": "{digest_gw}", "sourceCommit": "0123456789abcdef0123456789abcdef01234567", "crate": "node", "bin": "gateway", "features": ["gateway"], "published": "oci-layout:target/rel/oci"}},
    {{"component": "worker", "image": "registry.example.com/platform/worker", "tag": "0.4.0", "digest": "{digest_wk}", "sourceCommit": "0123456789abcdef0123456789abcdef01234567", "crate": "node", "bin": "worker", "features": ["worker"], "published": "oci-layout:target/rel/oci"}}
  ]
}}
"#
    )
}

#[test]
fn lock_from_digests_writes_a_canonical_lockfile_that_passes_the_gate() {
    let p = Project::platform();
    let run = p.rel(&[
        "lock",
        "--version",
        "0.4.0",
        "--digest",
        &format!("identity={D1}"),
        "--digest",
        &format!("gateway={D2}"),
        "--digest",
        &format!("worker={D3}"),
    ]);
    run.expect(0);
    assert!(
        run.stdout()
            .starts_with("wrote releases/0.4.0.yaml: release 0.4.0 with 3 components\n"),
        "{}",
        run.stdout()
    );
    let text = p.read("releases/0.4.0.yaml");
    assert_eq!(
        text,
        format!(
            "# Release lockfile written by `rel lock`: every component pinned by digest.\nversion: \"0.4.0\"\nengineVersion: \"0.4.0\"\ncomponents:\n  gateway:\n    repo: example-org/rel\n    image: registry.example.com/platform/gateway\n    digest: {D2}\n    crate: node\n  identity:\n    repo: example-org/rel\n    image: registry.example.com/platform/identity\n    digest: {D1}\n    crate: identity\n  worker:\n    repo: example-org/rel\n    image: registry.example.com/platform/worker\n    digest: {D3}\n    crate: node\n"
        )
    );
    p.rel(&["gate", "coherence", "--version", "0.4.0"])
        .expect(0);
    // Same inputs again: a no-op.
    let again = p.rel(&[
        "lock",
        "--version",
        "0.4.0",
        "--digest",
        &format!("identity={D1}"),
        "--digest",
        &format!("gateway={D2}"),
        "--digest",
        &format!("worker={D3}"),
    ]);
    again.expect(0);
    assert!(again.stdout().contains("is up to date"));
}

#[test]
fn lock_from_build_result() {
    let p = Project::platform();
    p.write("target/rel/build.json", &build_json(D1, D2, D3));
    p.rel(&["lock", "--version", "0.4.0"]).expect(0);
    let text = p.read("releases/0.4.0.yaml");
    assert!(text.contains(&format!("  identity:\n    repo: example-org/rel\n    image: registry.example.com/platform/identity\n    tag: \"0.4.0\"\n    digest: {D1}\n    sourceCommit: \"0123456789abcdef0123456789abcdef01234567\"\n    crate: identity\n")), "{text}");
    p.rel(&["gate", "coherence", "releases/0.4.0.yaml"])
        .expect(0);
    // An explicit --from path and a --digest override together.
    p.write("elsewhere/build.json", &build_json(D2, D2, D2));
    p.rel(&[
        "lock",
        "--version",
        "0.5.0",
        "--from",
        "elsewhere/build.json",
        "--digest",
        &format!("worker={D3}"),
    ])
    .expect(0);
    let text = p.read("releases/0.5.0.yaml");
    assert!(text.contains(&format!("  worker:\n    repo: example-org/rel\n    image: registry.example.com/platform/worker\n    tag: \"0.4.0\"\n    digest: {D3}\n")), "{text}");
}

#[test]
fn refuses_to_overwrite_different_content_unless_forced_and_not_validated() {
    let p = Project::platform();
    let args = |d: &str| {
        vec![
            "lock".to_owned(),
            "--version".into(),
            "0.4.0".into(),
            "--digest".into(),
            format!("identity={d}"),
            "--digest".into(),
            format!("gateway={D2}"),
            "--digest".into(),
            format!("worker={D3}"),
        ]
    };
    let run_with = |d: &str, extra: &[&str]| {
        let mut a = args(d);
        a.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        p.rel(&refs)
    };
    run_with(D1, &[]).expect(0);
    let before = p.read("releases/0.4.0.yaml");
    let refused = run_with(D3, &[]);
    refused.expect(1);
    let err = refused.stderr();
    assert!(
        err.contains("releases/0.4.0.yaml already exists with different content"),
        "{err}"
    );
    assert!(err.contains(&format!("identity: {D1} -> {D3}")), "{err}");
    assert_eq!(p.read("releases/0.4.0.yaml"), before, "nothing changed");

    run_with(D3, &["--force"]).expect(0);
    assert!(
        p.read("releases/0.4.0.yaml")
            .contains(&format!("digest: {D3}\n    crate: identity"))
    );

    // Once validated, --force is refused too.
    p.write(
        "releases/0.4.0.staging.validation.yaml",
        "version: \"0.4.0\"\n",
    );
    let refused = run_with(D1, &["--force"]);
    refused.expect(1);
    assert!(
        refused
            .stderr()
            .contains("release 0.4.0 is validated (releases/0.4.0.staging.validation.yaml)"),
        "{}",
        refused.stderr()
    );
    assert!(
        p.read("releases/0.4.0.yaml")
            .contains(&format!("digest: {D3}\n    crate: identity"))
    );
}

#[test]
fn bad_inputs_are_usage_errors_and_write_nothing() {
    let p = Project::platform();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--digest".into(), format!("identity={D1}")],
            "no digest for gateway, worker",
        ),
        (
            vec!["--digest".into(), format!("nosuch={D1}")],
            "names component `nosuch`, which rel.toml does not define",
        ),
        (
            vec!["--digest".into(), "identity=sha256:abc".into()],
            "has 3 hex characters",
        ),
        (
            vec!["--digest".into(), "identity".into()],
            "`identity` is not NAME=sha256:HEX",
        ),
        (vec![], "no build result at target/rel/build.json"),
        (
            vec!["--from".into(), "missing.json".into()],
            "could not read the build result",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["lock".to_owned(), "--version".into(), "0.4.0".into()];
        args.extend(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = p.rel(&refs);
        run.expect(2);
        assert!(run.stderr().contains(want), "{args:?}: {}", run.stderr());
        assert!(!p.path().join("releases/0.4.0.yaml").exists());
    }
    p.write(
        "target/rel/build.json",
        "{\n  \"schema\": 1,\n  \"components\": [ {\"component\": 3} ]\n}\n",
    );
    let run = p.rel(&["lock", "--version", "0.4.0"]);
    run.expect(2);
    assert!(
        run.stderr().contains("target/rel/build.json:3:"),
        "{}",
        run.stderr()
    );
    let run = p.rel(&["lock", "--version", "v0.4"]);
    run.expect(2);
}

#[test]
fn external_components_need_built_against_engine() {
    let config = format!(
        "{}\n[components.console]\nrepo = \"example-org/console\"\nbuilt-against-engine = true\n",
        services_config()
    );
    let p = Project::with_config(&config);
    p.write("target/rel/build.json", &build_json(D1, D2, D3));
    let base = [
        "lock",
        "--version",
        "0.4.0",
        "--from",
        "target/rel/build.json",
    ];
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    args.extend(["--digest".into(), format!("console={D1}")]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = p.rel(&refs);
    run.expect(2);
    assert!(
        run.stderr().contains("--built-against console=0.4.0"),
        "{}",
        run.stderr()
    );
    args.extend(["--built-against".into(), "console=0.4.0".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    p.rel(&refs).expect(0);
    let text = p.read("releases/0.4.0.yaml");
    assert!(text.contains(&format!("  console:\n    repo: example-org/console\n    image: registry.example.com/platform/console\n    digest: {D1}\n    builtAgainstEngine: \"0.4.0\"\n")), "{text}");
    p.rel(&["gate", "coherence", "--version", "0.4.0"])
        .expect(0);
}
