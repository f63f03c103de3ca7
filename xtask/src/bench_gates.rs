//! `cargo xtask bench gates`: the gates' performance targets, measured on this machine.
//!
//! - smoke: 50 checks against a local HTTP server where one check takes 1 s; the whole run must
//!   take under 1.2 s (the checks run concurrently, each under its own timeout).
//! - drift `--pods`: 10,000 pods of 100 workloads; `rel` must finish under 0.5 s. Side by side, the
//!   `kubectl get pods -o json | jq` way of the seed's drift-check.sh on the same JSON (with the
//!   expected digest per workload handed to jq ready-made), and both must find the same stale pods.
//!
//! Flags: `--debug` measures the debug build instead of `--release`; `--runs N` (default 5).
//! `REL_BENCH_KEEP=1` keeps the generated inputs (in the temp directory) for profiling.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SMOKE_CHECKS: usize = 50;
const SMOKE_LIMIT: Duration = Duration::from_millis(1200);
const PODS: usize = 10_000;
const WORKLOADS: usize = 100;
const COMPONENTS: usize = 20;
const DRIFT_LIMIT: Duration = Duration::from_millis(500);

pub fn run(args: &[String]) -> Result<(), String> {
    let debug = args.iter().any(|a| a == "--debug");
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .ok_or("--runs takes a positive number")?,
        None => 5,
    };
    let rel = build_rel(debug)?;
    let work = std::env::temp_dir().join(format!("rel-bench-gates-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    let result = (|| {
        let smoke = bench_smoke(&rel, &work, runs)?;
        let drift = bench_drift(&rel, &work, runs)?;
        println!(
            "\nbench gates ({} build, best of {runs} runs; median in brackets)",
            if debug { "debug" } else { "release" }
        );
        println!(
            "  smoke, {SMOKE_CHECKS} checks, one takes 1 s:   {}  (limit {} ms)",
            show(&smoke),
            SMOKE_LIMIT.as_millis()
        );
        println!(
            "  drift --pods, {PODS} pods, rel:        {}  (limit {} ms)",
            show(&drift.rel),
            DRIFT_LIMIT.as_millis()
        );
        println!(
            "  drift, same JSON, {:<19} {}",
            format!("{}:", drift.other_name),
            show(&drift.other)
        );
        let mut failed = Vec::new();
        if smoke[0] >= SMOKE_LIMIT {
            failed.push(format!(
                "smoke took {} ms (limit {} ms)",
                smoke[0].as_millis(),
                SMOKE_LIMIT.as_millis()
            ));
        }
        if drift.rel[0] >= DRIFT_LIMIT {
            failed.push(format!(
                "drift took {} ms (limit {} ms)",
                drift.rel[0].as_millis(),
                DRIFT_LIMIT.as_millis()
            ));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    })();
    if std::env::var_os("REL_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

/// Sorted durations: `best [median]`.
fn show(d: &[Duration]) -> String {
    format!(
        "{:>6.1} ms [{:.1} ms]",
        d[0].as_secs_f64() * 1e3,
        d[d.len() / 2].as_secs_f64() * 1e3
    )
}

fn build_rel(debug: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--quiet", "-p", "rel", "--bin", "rel"]);
    if !debug {
        cmd.arg("--release");
    }
    crate::provision::run(&mut cmd)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target
        .join(if debug { "debug" } else { "release" })
        .join("rel"))
}

/// Run `cmd` `runs` times; the sorted wall times, and the last run's output.
fn time(
    runs: usize,
    mut make: impl FnMut() -> Command,
    ok_codes: &[i32],
) -> Result<(Vec<Duration>, String), String> {
    let mut times = Vec::new();
    let mut last = String::new();
    for _ in 0..runs {
        let mut cmd = make();
        let started = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| format!("could not run {cmd:?}: {e}"))?;
        times.push(started.elapsed());
        let code = out.status.code().unwrap_or(-1);
        if !ok_codes.contains(&code) {
            return Err(format!(
                "{cmd:?} exited {code}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        last = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    times.sort();
    Ok((times, last))
}

/// A tiny HTTP/1.1 server, a thread per connection: `/slow` answers after 1 s, anything else at once.
fn serve() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                if request_line.contains(" /slow ") {
                    std::thread::sleep(Duration::from_secs(1));
                }
                let body = "ok";
                let _ = (&stream).write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes(),
                );
            });
        }
    });
    Ok(port)
}

fn bench_smoke(rel: &Path, work: &Path, runs: usize) -> Result<Vec<Duration>, String> {
    let port = serve()?;
    let dir = work.join("smoke");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut config = format!(
        "registry = \"registry.example.com/bench\"\n[environments.bench.smoke]\nbase-url = \"http://127.0.0.1:{port}\"\ntimeout = \"5s\"\n"
    );
    for i in 0..SMOKE_CHECKS - 1 {
        config.push_str(&format!("\n[[environments.bench.smoke.checks]]\nkind = \"http\"\npath = \"/fast/{i}\"\nbody-contains = \"ok\"\n"));
    }
    config.push_str("\n[[environments.bench.smoke.checks]]\nkind = \"http\"\npath = \"/slow\"\n");
    std::fs::write(dir.join("rel.toml"), config).map_err(|e| e.to_string())?;
    let (times, out) = time(
        runs,
        || {
            let mut c = Command::new(rel);
            c.args(["gate", "smoke", "--env", "bench", "--format", "plain"])
                .current_dir(&dir)
                .stdin(Stdio::null());
            c
        },
        &[0],
    )?;
    if !out.contains(&format!("smoke gate PASSED: {SMOKE_CHECKS} passed")) {
        return Err(format!(
            "smoke did not pass all {SMOKE_CHECKS} checks:\n{out}"
        ));
    }
    Ok(times)
}

struct DriftTimes {
    rel: Vec<Duration>,
    other: Vec<Duration>,
    other_name: &'static str,
}

fn digest(n: usize) -> String {
    format!("sha256:{:064x}", n + 1)
}

/// 10,000 pods over 100 Deployments of 20 components; four pods run an old digest.
fn bench_drift(rel: &Path, work: &Path, runs: usize) -> Result<DriftTimes, String> {
    let dir = work.join("drift");
    std::fs::create_dir_all(dir.join("releases")).map_err(|e| e.to_string())?;
    let mut config = String::from("registry = \"registry.example.com/bench\"\n");
    let mut lock = String::from("version: \"1.0.0\"\nengineVersion: \"1.0.0\"\ncomponents:\n");
    for c in 0..COMPONENTS {
        config.push_str(&format!(
            "\n[components.svc-{c}]\nrepo = \"example-org/bench\"\n"
        ));
        lock.push_str(&format!(
            "  svc-{c}:\n    repo: example-org/bench\n    digest: {}\n",
            digest(c)
        ));
    }
    config.push_str("\n[environments.bench]\n");
    std::fs::write(dir.join("rel.toml"), config).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("releases/1.0.0.yaml"), lock).map_err(|e| e.to_string())?;

    let mut rendered = String::new();
    let mut pins = String::from("{");
    for w in 0..WORKLOADS {
        let c = w % COMPONENTS;
        rendered.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{w}\n  namespace: bench\nspec:\n  replicas: {}\n  selector:\n    matchLabels: {{app: app-{w}}}\n  template:\n    metadata:\n      labels: {{app: app-{w}}}\n    spec:\n      containers:\n      - name: main\n        image: registry.example.com/bench/svc-{c}@{}\n",
            PODS / WORKLOADS,
            digest(c)
        ));
        pins.push_str(&format!(
            "{}\"app-{w}\":\"{}\"",
            if w > 0 { "," } else { "" },
            digest(c)
        ));
    }
    pins.push('}');
    std::fs::write(dir.join("rendered.yaml"), rendered).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("pins.json"), &pins).map_err(|e| e.to_string())?;

    let mut pods = String::from(
        "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[\n",
    );
    let mut stale = 0;
    for i in 0..PODS {
        let w = i % WORKLOADS;
        let c = w % COMPONENTS;
        // Pods 0, 2501, 5002, 7503: one stale pod in each of four workloads.
        let old = i % 2501 == 0;
        stale += usize::from(old);
        let d = if old { digest(999) } else { digest(c) };
        let hash = format!("{:010x}", w * 7919);
        pods.push_str(&format!(
            "{}{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"app-{w}-{hash}-{i:05}\",\"namespace\":\"bench\",\"labels\":{{\"app\":\"app-{w}\",\"pod-template-hash\":\"{hash}\"}},\"ownerReferences\":[{{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"app-{w}-{hash}\",\"controller\":true,\"uid\":\"0\"}}]}},\"spec\":{{\"nodeName\":\"node-{}\",\"containers\":[{{\"name\":\"main\",\"image\":\"registry.example.com/bench/svc-{c}@{}\",\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}}}}}]}},\"status\":{{\"phase\":\"Running\",\"podIP\":\"10.0.{}.{}\",\"containerStatuses\":[{{\"name\":\"main\",\"image\":\"registry.example.com/bench/svc-{c}@{d}\",\"imageID\":\"docker-pullable://registry.example.com/bench/svc-{c}@{d}\",\"ready\":true,\"restartCount\":0,\"state\":{{\"running\":{{\"startedAt\":\"2026-11-20T10:00:00Z\"}}}}}}]}}}}\n",
            if i > 0 { "," } else { "" },
            i % 12,
            digest(c),
            i / 256 % 256,
            i % 256
        ));
    }
    pods.push_str("]}\n");
    std::fs::write(dir.join("pods.json"), &pods).map_err(|e| e.to_string())?;
    println!(
        "drift input: {WORKLOADS} workloads, {PODS} pods ({:.1} MB of JSON), {stale} stale",
        pods.len() as f64 / 1e6
    );

    let (rel_times, out) = time(
        runs,
        || {
            let mut c = Command::new(rel);
            c.args([
                "gate",
                "drift",
                "--env",
                "bench",
                "--rendered",
                "rendered.yaml",
                "--pods",
                "pods.json",
                "--format",
                "plain",
            ])
            .current_dir(&dir);
            c
        },
        &[1],
    )?;
    let rel_stale = out.lines().filter(|l| l.starts_with("FAIL live/")).count();

    // The shell way: jq over the same JSON, with the pins ready-made.
    const JQ: &str = r#"
[ .items[]
  | select(.status.phase != "Succeeded" and .status.phase != "Failed")
  | (.metadata.labels["pod-template-hash"] // "") as $h
  | (.metadata.ownerReferences[0].name | rtrimstr("-" + $h)) as $w
  | select($p[0][$w] != null)
  | { w: $w, pod: .metadata.name,
      ok: ([.status.containerStatuses[] | (.imageID | split("@") | .[1]) == $p[0][$w]] | all) }
]
| group_by(.w)
| map({ w: .[0].w, total: length, stale: [ .[] | select(.ok | not) | .pod ] })
| map(select(.stale | length > 0))
| length
"#;
    let jq = crate::provision::on_path("jq");
    let (other_name, other_cmd): (&'static str, Box<dyn Fn() -> Command>) = if jq {
        let dir = dir.clone();
        (
            "jq",
            Box::new(move || {
                let mut c = Command::new("jq");
                c.args(["--slurpfile", "p", "pins.json", JQ, "pods.json"])
                    .current_dir(&dir);
                c
            }),
        )
    } else {
        eprintln!("xtask: jq not found (Debian package jq); comparing with python3's json instead");
        const PY: &str = r#"
import json, sys
pins = json.load(open("pins.json"))
bad = set()
for p in json.load(open("pods.json"))["items"]:
    if p["status"].get("phase") in ("Succeeded", "Failed"):
        continue
    h = p["metadata"]["labels"].get("pod-template-hash", "")
    w = p["metadata"]["ownerReferences"][0]["name"].removesuffix("-" + h)
    if w in pins and any(s["imageID"].split("@")[1] != pins[w] for s in p["status"]["containerStatuses"]):
        bad.add(w)
print(len(bad))
"#;
        let dir = dir.clone();
        (
            "python3 json",
            Box::new(move || {
                let mut c = Command::new("python3");
                c.args(["-c", PY]).current_dir(&dir);
                c
            }),
        )
    };
    let (other_times, other_out) = time(runs, other_cmd, &[0])?;
    let other_stale: usize = other_out
        .trim()
        .parse()
        .map_err(|_| format!("{other_name} printed `{}`", other_out.trim()))?;
    if other_stale != rel_stale || rel_stale != stale {
        return Err(format!(
            "stale workloads disagree: rel {rel_stale}, {other_name} {other_stale}, generated {stale}"
        ));
    }
    Ok(DriftTimes {
        rel: rel_times,
        other: other_times,
        other_name,
    })
}
