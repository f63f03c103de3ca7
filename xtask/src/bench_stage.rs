//! `cargo xtask bench stage`: the local stage's targets, measured on this machine.
//!
//! - **Ready time, warm.** `rel up --env local --detach` on the platform (migration Job, then
//!   identity, worker, gateway, two replicas each) until it returns ready, with the unpacked-image
//!   cache already warm. Target: under 2 s.
//! - **Proxy overhead.** Requests per second of `GET /healthz` over keep-alive connections (8 at
//!   once) through the gateway Service's proxy against straight to one gateway pod. The Service
//!   spreads over two pods, so the comparison is per pod-equivalent load only roughly; the number
//!   reported is `1 - service/direct`. Target: under 10 %.
//!
//! The images are the real ones: `rel build` (release, into target/rel/oci); the project is a copy
//! of this repository's rel.toml, templates and overlays/local pinned to them, in a temp directory,
//! with a sealed envelope for `local`.
//!
//! Flags: `--debug` runs the debug `rel`; `--runs N` (default 5); `--seconds S` per throughput
//! run (default 3).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const READY_LIMIT: Duration = Duration::from_secs(2);
const OVERHEAD_LIMIT: f64 = 0.10;
const CONNECTIONS: usize = 8;

pub fn run(args: &[String]) -> Result<(), String> {
    let debug = args.iter().any(|a| a == "--debug");
    let number = |flag: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == flag) {
            Some(i) => args
                .get(i + 1)
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or(format!("{flag} takes a positive number")),
            None => Ok(default),
        }
    };
    let runs = number("--runs", 5)? as usize;
    let seconds = number("--seconds", 3)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_owned();
    let rel = build_rel(&root, debug)?;
    eprintln!("xtask: rel build (release images into target/rel/oci)");
    let built = Command::new(&rel)
        .arg("-C")
        .arg(&root)
        .arg("build")
        .output()
        .map_err(|e| format!("run rel build: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "rel build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    let build_json = std::fs::read_to_string(root.join("target/rel/build.json"))
        .map_err(|e| format!("read target/rel/build.json: {e}"))?;
    let work = std::env::temp_dir().join(format!("rel-bench-stage-{}", std::process::id()));
    let result = (|| {
        let project = project(&rel, &root, &work, &build_json)?;
        let up = || {
            let mut c = Command::new(&rel);
            c.current_dir(&project).args([
                "up",
                "--env",
                "local",
                "--detach",
                "--key-file",
                "key",
                "--format",
                "json",
                "--images",
            ]);
            c.arg(root.join("target/rel/oci"));
            c
        };
        let down = || -> Result<(), String> {
            let out = Command::new(&rel)
                .current_dir(&project)
                .args(["down", "--env", "local"])
                .output()
                .map_err(|e| format!("run rel down: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "rel down: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        // Warm the unpacked-image cache.
        run_ok(&mut up())?;
        down()?;
        let mut times = Vec::new();
        let mut state = String::new();
        for i in 0..runs {
            let started = Instant::now();
            let out = run_ok(&mut up())?;
            times.push(started.elapsed());
            if i + 1 < runs {
                down()?;
            } else {
                state = out;
            }
        }
        times.sort();
        let service =
            service_address(&state, "gateway").ok_or("no gateway Service in the state")?;
        let pod = pod_address(&state, "gateway").ok_or("no gateway pod in the state")?;
        let direct = throughput(&pod, Duration::from_secs(seconds))?;
        let proxied = throughput(&service, Duration::from_secs(seconds))?;
        down()?;
        let overhead = 1.0 - proxied / direct;
        println!(
            "\nbench stage ({} rel, {runs} runs; best [median])",
            if debug { "debug" } else { "release" }
        );
        println!(
            "  up → ready, warm image cache:  {:>7.1} ms [{:.1} ms]  (limit {} ms)",
            times[0].as_secs_f64() * 1e3,
            times[times.len() / 2].as_secs_f64() * 1e3,
            READY_LIMIT.as_millis()
        );
        println!("  GET /healthz, {CONNECTIONS} keep-alive connections, {seconds} s each:");
        println!("    straight to a gateway pod ({pod}):  {direct:>9.0} req/s");
        println!("    through the gateway Service ({service}): {proxied:>9.0} req/s");
        println!(
            "    proxy overhead: {:.1} %  (limit {:.0} %)",
            overhead * 100.0,
            OVERHEAD_LIMIT * 100.0
        );
        let mut failed = Vec::new();
        if times[times.len() / 2] >= READY_LIMIT {
            failed.push(format!(
                "median ready time {} ms (limit {} ms)",
                times[times.len() / 2].as_millis(),
                READY_LIMIT.as_millis()
            ));
        }
        if overhead >= OVERHEAD_LIMIT {
            failed.push(format!("proxy overhead {:.1} %", overhead * 100.0));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    })();
    let _ = Command::new(&rel)
        .current_dir(&work)
        .args(["down", "--env", "local"])
        .output();
    if std::env::var_os("REL_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn build_rel(root: &Path, debug: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--quiet", "-p", "rel", "--bin", "rel"]);
    if !debug {
        cmd.arg("--release");
    }
    crate::provision::run(&mut cmd)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target
        .join(if debug { "debug" } else { "release" })
        .join("rel"))
}

fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The string value of `"key": "..."` at or after `from` in `text`.
fn string_after(text: &str, from: usize, key: &str) -> Option<(String, usize)> {
    let needle = format!("\"{key}\":");
    let at = from + text[from..].find(&needle)? + needle.len();
    let open = at + text[at..].find('"')? + 1;
    let close = open + text[open..].find('"')?;
    Some((text[open..close].to_owned(), close))
}

fn digest_of(build_json: &str, component: &str) -> Option<String> {
    let at = build_json
        .find(&format!("\"component\":\"{component}\""))
        .or_else(|| build_json.find(&format!("\"component\": \"{component}\"")))?;
    string_after(build_json, at, "digest").map(|(d, _)| d)
}

fn service_address(state: &str, name: &str) -> Option<String> {
    let services = state.find("\"services\":")?;
    let at = services + state[services..].find(&format!("\"name\": \"{name}\""))?;
    string_after(state, at, "address").map(|(a, _)| a)
}

fn pod_address(state: &str, workload: &str) -> Option<String> {
    let at = state.find(&format!("\"workload_name\": \"{workload}\""))?;
    string_after(state, at, "ip").map(|(ip, _)| format!("{ip}:8080"))
}

/// A temp project: rel.toml, templates, overlays/local pinned to the built digests, a key and a
/// sealed envelope for `local` in the file store.
fn project(rel: &Path, root: &Path, work: &Path, build_json: &str) -> Result<PathBuf, String> {
    let copy = |rel_path: &str| -> Result<(), String> {
        let status = Command::new("cp")
            .arg("-r")
            .arg(root.join(rel_path))
            .arg(work.join(rel_path))
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cp {rel_path} failed"))
        }
    };
    std::fs::create_dir_all(work.join("overlays")).map_err(|e| format!("{e}"))?;
    copy("rel.toml")?;
    copy("templates")?;
    copy("overlays/local")?;
    let overlay_path = work.join("overlays/local/kustomization.yaml");
    let mut overlay = std::fs::read_to_string(&overlay_path).map_err(|e| format!("{e}"))?;
    for (component, placeholder) in [("identity", '1'), ("gateway", '2'), ("worker", '3')] {
        let digest = digest_of(build_json, component)
            .ok_or(format!("no {component} in target/rel/build.json"))?;
        let old = format!("sha256:{}", placeholder.to_string().repeat(64));
        overlay = overlay.replace(&old, &digest);
    }
    std::fs::write(&overlay_path, overlay).map_err(|e| format!("{e}"))?;
    std::fs::write(
        work.join("genesis-local.env"),
        "IDENTITY_SIGNING_KEY_B64=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nIDENTITY_CLIENTS=bench:service_account:bench-secret-0123456789\n",
    )
    .map_err(|e| format!("{e}"))?;
    for args in [
        &["keygen", "-o", "key"][..],
        &[
            "seal",
            "--env",
            "local",
            "--from",
            "genesis-local.env",
            "-o",
            ".rel/genesis/local.b64",
            "--key-file",
            "key",
        ],
        &["secrets", "push", "--env", "local", "--key-file", "key"],
    ] {
        run_ok(Command::new(rel).current_dir(work).args(args))?;
    }
    Ok(work.to_owned())
}

/// Requests per second of `GET /healthz` on `addr`, over CONNECTIONS keep-alive connections.
fn throughput(addr: &str, duration: Duration) -> Result<f64, String> {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || -> Result<u64, String> {
                let mut stream =
                    TcpStream::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
                stream.set_nodelay(true).ok();
                let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                let mut n = 0;
                let mut buf = vec![0u8; 4096];
                while Instant::now() < deadline {
                    stream
                        .write_all(request.as_bytes())
                        .map_err(|e| format!("write {addr}: {e}"))?;
                    read_response(&mut stream, &mut buf)
                        .map_err(|e| format!("read {addr}: {e}"))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().map_err(|_| "a client thread panicked")??;
    }
    Ok(total as f64 / duration.as_secs_f64())
}

/// Read one HTTP/1.1 response with a Content-Length body.
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut head = Vec::new();
    let end = loop {
        let n = stream.read(buf)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = head.len() - end;
    while have < length {
        let n = stream.read(buf)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        have += n;
    }
    Ok(())
}
