//! `rel gate smoke` against in-test services over HTTP and TLS, and each way it can fail.

use std::time::{Duration, Instant};

use crate::gates_server::*;
use crate::support::*;

/// Every kind of check against the fake services (DNS, HTTP, readyz, JWKS, WebSocket, SPA,
/// version, and the deep-only authenticated query).
fn checks() -> &'static str {
    r#"
[[environments.staging.smoke.checks]]
kind = "dns"

[[environments.staging.smoke.checks]]
name = "identity health"
kind = "http"
path = "/healthz"
body-contains = "ok"

[[environments.staging.smoke.checks]]
kind = "readyz"

[[environments.staging.smoke.checks]]
kind = "jwks"

[[environments.staging.smoke.checks]]
kind = "websocket"
path = "/ws"

[[environments.staging.smoke.checks]]
kind = "spa"

[[environments.staging.smoke.checks]]
kind = "version"

[[environments.staging.smoke.checks]]
kind = "query"
body = '{"query": "ping"}'
json-field = "/data/answer"
equals = "42"
"#
}

fn project(base_url: Option<&str>, extra: &str) -> Project {
    let base = base_url
        .map(|u| format!("base-url = \"{u}\"\n"))
        .unwrap_or_default();
    Project::with_config(&format!(
        "registry = \"registry.example.com/platform\"\n\n[environments.staging]\n\n[environments.staging.smoke]\n{base}timeout = \"3s\"\nretries = 1\n{}{extra}",
        checks()
    ))
}

fn rows<'a>(out: &'a str, status: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(&format!("{status} ")))
        .collect()
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout()))
}

#[test]
fn baseline_over_http_passes_and_skips_the_deep_only_query() {
    let s = Server::http(app(Behavior::default()));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(0);
    let out = run.stdout();
    assert_eq!(rows(&out, "PASS").len(), 7, "{out}");
    assert_eq!(
        rows(&out, "SKIP"),
        ["SKIP query /api/query: runs in the deep profile only"],
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "PASS websocket /ws: WebSocket upgrade {}/ws → 101 Switching Protocols",
            s.http_url()
        )),
        "{out}"
    );
    assert!(
        out.contains("PASS spa /: GET") && out.contains("all 2 referenced assets load"),
        "{out}"
    );
    assert!(
        out.contains("PASS jwks /.well-known/jwks.json")
            && out.contains("1 usable key(s): OKP/Ed25519 kid identity-1"),
        "{out}"
    );
    assert!(
        out.contains("PASS dns: 127.0.0.1 resolves to 127.0.0.1"),
        "{out}"
    );
    assert!(
        out.ends_with("smoke gate PASSED: 7 passed, 0 failed, 0 warnings, 1 skipped\n"),
        "{out}"
    );
}

#[test]
fn deep_with_a_token_passes_and_its_json_is_the_evidence() {
    let s = Server::http(app(Behavior::default()));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--profile",
        "deep",
        "--token",
        GOOD_TOKEN,
        "--version",
        RUNNING,
        "--format",
        "json",
    ]);
    run.expect(0);
    let v = json(&run);
    assert_eq!(v["gate"], "smoke");
    assert_eq!(v["status"], "pass");
    assert_eq!(v["context"]["env"], "staging");
    assert_eq!(v["context"]["profile"], "deep");
    assert_eq!(v["context"]["version"], RUNNING);
    assert_eq!(v["context"]["base-url"], s.http_url());
    assert_eq!(v["summary"]["pass"], 8);
    assert_eq!(v["summary"]["skip"], 0);
    let query = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "query /api/query")
        .unwrap();
    assert!(
        query["detail"]
            .as_str()
            .unwrap()
            .contains("authenticated POST")
            && query["detail"]
                .as_str()
                .unwrap()
                .contains("`/data/answer` = `42`")
    );
    assert!(!run.stdout().contains("s3cret") && !run.stderr().contains("s3cret"));
}

#[test]
fn deep_takes_the_token_from_the_environment_and_never_prints_a_wrong_one() {
    let s = Server::http(app(Behavior::default()));
    let p = project(Some(&s.http_url()), "");
    let deep = ["gate", "smoke", "--env", "staging", "--profile", "deep"];
    rel_env(p.path(), &deep, &[("REL_SMOKE_TOKEN", GOOD_TOKEN)]).expect(0);

    // The fake gateway echoes a rejected Authorization header in its body.
    let run = rel_env(
        p.path(),
        &deep,
        &[("REL_SMOKE_TOKEN", "wrong-s3cret-value")],
    );
    run.expect(1);
    let out = run.stdout();
    assert_eq!(rows(&out, "FAIL").len(), 1, "{out}");
    assert!(
        out.contains("FAIL query /api/query: POST")
            && out.contains("401 Unauthorized: the gateway refused the token"),
        "{out}"
    );
    assert!(
        !out.contains("wrong-s3cret-value") && !run.stderr().contains("wrong-s3cret-value"),
        "{out}"
    );

    // --help names the variable but never shows its value.
    let help = rel_env(
        p.path(),
        &["gate", "smoke", "--help"],
        &[("REL_SMOKE_TOKEN", "wrong-s3cret-value")],
    );
    assert!(
        help.stdout().contains("REL_SMOKE_TOKEN") && !help.stdout().contains("wrong-s3cret-value")
    );
}

#[test]
fn deep_without_a_token_fails_where_baseline_skips() {
    let s = Server::http(app(Behavior::default()));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--profile",
        "deep",
        "--version",
        RUNNING,
    ]);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        rows(&out, "FAIL"),
        [
            "FAIL query /api/query: missing input: no token for the authenticated query: pass --token or set REL_SMOKE_TOKEN; the deep profile runs every check, so a missing input fails"
        ],
        "{out}"
    );
    assert!(
        out.ends_with("smoke gate FAILED: 7 passed, 1 failed, 0 warnings, 0 skipped\n"),
        "{out}"
    );
}

#[test]
fn without_a_base_url_baseline_skips_everything_and_deep_fails() {
    let p = project(None, "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(0);
    assert_eq!(rows(&run.stdout(), "SKIP").len(), 8, "{}", run.stdout());
    assert!(run.stdout().contains("SKIP readyz /readyz: no base URL: set `base-url` in [environments.staging.smoke] or pass --base-url"));

    let run = p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--profile",
        "deep",
        "--token",
        "tok",
    ]);
    run.expect(1);
    let out = run.stdout();
    // 8 checks, plus the evidence row: a deep run must say which version it validated.
    assert_eq!(rows(&out, "FAIL").len(), 9, "{out}");
    assert!(
        out.contains("FAIL evidence/version: a deep run must name the version it validates"),
        "{out}"
    );

    // --base-url supplies it.
    let s = Server::http(app(Behavior::default()));
    p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--base-url",
        &s.http_url(),
    ])
    .expect(0);
}

#[test]
fn a_service_that_is_down_fails_every_check_naming_the_endpoint() {
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = project(Some(&base), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(1);
    let out = run.stdout();
    let fails = rows(&out, "FAIL");
    assert_eq!(fails.len(), 6, "{out}");
    assert!(
        fails
            .iter()
            .all(|l| l.contains(&format!("127.0.0.1:{port}")) && l.contains("after 2 attempts")),
        "{out}"
    );
    assert!(out.contains(&format!("FAIL readyz /readyz: GET {base}/readyz failed (after 2 attempts): error sending request")), "{out}");
    assert!(out.contains("Connection refused"), "{out}");
}

#[test]
fn readyz_503_fails() {
    let s = Server::http(app(Behavior {
        ready: false,
        ..Behavior::default()
    }));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(1);
    assert_eq!(
        rows(&run.stdout(), "FAIL"),
        [format!(
            "FAIL readyz /readyz: GET {}/readyz → 503 Service Unavailable: schema not migrated: table automation_execution_claims missing (not ready: /readyz answers 503 until the schema is migrated and dependencies are up)",
            s.http_url()
        )]
    );
}

#[test]
fn a_jwks_with_no_keys_fails() {
    let s = Server::http(app(Behavior {
        jwks_keys: false,
        ..Behavior::default()
    }));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(1);
    assert_eq!(
        rows(&run.stdout(), "FAIL"),
        [format!(
            "FAIL jwks /.well-known/jwks.json: GET {}/.well-known/jwks.json: no usable signing key: the `keys` array is empty; tokens cannot be verified",
            s.http_url()
        )]
    );
}

#[test]
fn an_spa_asset_that_does_not_load_fails_by_name() {
    let s = Server::http(app(Behavior {
        missing_asset: true,
        ..Behavior::default()
    }));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(1);
    let fails = rows(&run.stdout(), "FAIL").join("\n");
    assert!(fails.starts_with("FAIL spa /: GET"), "{fails}");
    assert!(
        fails.contains(&format!(
            "1 of 2 assets do not load: {}/assets/index-9c1e.js → 404 Not Found",
            s.http_url()
        )),
        "{fails}"
    );
}

#[test]
fn a_version_that_is_not_the_one_validated_fails() {
    let s = Server::http(app(Behavior::default()));
    let p = project(Some(&s.http_url()), "");
    let run = p.rel(&["gate", "smoke", "--env", "staging", "--version", "0.4.1"]);
    run.expect(1);
    let stdout = run.stdout();
    let fails = rows(&stdout, "FAIL");
    assert_eq!(fails.len(), 1);
    assert!(
        fails[0].contains("runs version 0.4.0, not 0.4.1"),
        "{fails:?}"
    );
}

const TLS_CHECKS: &str = r#"
[[environments.staging.smoke.checks]]
kind = "tls"
min-days = 30

[[environments.staging.smoke.checks]]
kind = "jwks"

[[environments.staging.smoke.checks]]
kind = "websocket"
url = "wss://127.0.0.1:PORT/ws"
"#;

fn tls_project(server: &Server) -> Project {
    let config = format!(
        "registry = \"r.io/p\"\n[environments.staging.smoke]\nbase-url = \"{}\"\nretries = 0\n{}",
        server.https_url(),
        TLS_CHECKS.replace("PORT", &server.addr.port().to_string())
    );
    Project::with_config(&config)
}

#[test]
fn over_tls_with_the_ca_file() {
    let cert = TestCert::new(2099);
    let s = Server::tls(app(Behavior::default()), &cert);
    let p = tls_project(&s);
    p.write("ca.pem", &cert.pem);
    let run = p.rel(&["gate", "smoke", "--env", "staging", "--ca-file", "ca.pem"]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.contains(&format!(
            "PASS tls: {}/: handshake ok, certificate valid for",
            s.https_url()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "PASS websocket wss://127.0.0.1:{}/ws: WebSocket upgrade",
            s.addr.port()
        )),
        "{out}"
    );

    // Without the CA the self-signed certificate is not trusted.
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(1);
    let stdout = run.stdout();
    let fails = rows(&stdout, "FAIL");
    assert_eq!(fails.len(), 3, "{}", run.stdout());
    assert!(
        fails[0].contains("TLS handshake: GET") && fails[0].contains("UnknownIssuer"),
        "{fails:?}"
    );

    // A certificate valid for less than the required days fails.
    let strict = p
        .read("rel.toml")
        .replace("min-days = 30", "min-days = 100000");
    p.write("rel.toml", &strict);
    let run = p.rel(&["gate", "smoke", "--env", "staging", "--ca-file", "ca.pem"]);
    run.expect(1);
    assert!(
        run.stdout()
            .contains("fewer than the 100000 required; renew it"),
        "{}",
        run.stdout()
    );

    // A file with no certificate in it cannot run the gate at all.
    p.write("empty.pem", "nothing here\n");
    let run = p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--ca-file",
        "empty.pem",
    ]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("the CA file holds no usable PEM certificate"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_expired_certificate_fails() {
    let cert = TestCert::new(2021);
    let s = Server::tls(app(Behavior::default()), &cert);
    let p = tls_project(&s);
    p.write("ca.pem", &cert.pem);
    let run = p.rel(&["gate", "smoke", "--env", "staging", "--ca-file", "ca.pem"]);
    run.expect(1);
    let stdout = run.stdout();
    let fails = rows(&stdout, "FAIL");
    assert_eq!(fails.len(), 3, "{}", run.stdout());
    assert!(
        fails[0].starts_with("FAIL tls: TLS handshake: GET")
            && fails[0].contains("certificate expired"),
        "{fails:?}"
    );
}

#[test]
fn a_slow_check_times_out_alone_while_the_others_run_concurrently() {
    let s = Server::http(app(Behavior {
        slow: Duration::from_secs(20),
        ..Behavior::default()
    }));
    let mut extra = String::new();
    for i in 0..20 {
        extra.push_str(&format!("\n[[environments.staging.smoke.checks]]\nname = \"health {i}\"\nkind = \"http\"\npath = \"/healthz\"\n"));
    }
    extra.push_str("\n[[environments.staging.smoke.checks]]\nkind = \"http\"\npath = \"/slow\"\ntimeout = \"700ms\"\n");
    let p = project(Some(&s.http_url()), &extra);
    let started = Instant::now();
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    let took = started.elapsed();
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        rows(&out, "FAIL"),
        [format!(
            "FAIL http /slow: timed out after 700ms ({}/slow)",
            s.http_url()
        )],
        "{out}"
    );
    assert_eq!(rows(&out, "PASS").len(), 27, "{out}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn junit_and_github_annotations() {
    let s = Server::http(app(Behavior {
        ready: false,
        ..Behavior::default()
    }));
    let p = project(Some(&s.http_url()), "");
    let run = rel_env(
        p.path(),
        &["gate", "smoke", "--env", "staging", "--junit", "smoke.xml"],
        &[("GITHUB_ACTIONS", "true")],
    );
    run.expect(1);
    let xml = p.read("smoke.xml");
    assert!(
        xml.contains(r#"<testsuite name="smoke staging" tests="8" failures="1" skipped="1">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="readyz /readyz" classname="rel.gate.smoke">"#),
        "{xml}"
    );
    assert!(
        run.stderr()
            .contains("::error title=rel gate smoke%3A readyz /readyz::GET"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_environment_without_smoke_checks_cannot_run() {
    let p = Project::with_config("registry = \"r.io/p\"\n[environments.staging]\n");
    let run = p.rel(&["gate", "smoke", "--env", "staging"]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("environment `staging` declares no smoke checks"),
        "{}",
        run.stderr()
    );
    let run = p.rel(&["gate", "smoke", "--env", "prod"]);
    run.expect(2);
    assert!(
        run.stderr().contains("unknown environment `prod`"),
        "{}",
        run.stderr()
    );
}
