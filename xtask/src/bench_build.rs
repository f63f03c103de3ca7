//! `cargo xtask bench build`: rel's image build + push against umoci + skopeo and against the
//! floor (gzip + sha256 of the layer), side by side on one local `docker-registry`.
//!
//! (a) rel, cold: layer (tar + gzip + hashes), image, push to a new repository, empty cache.
//! (b) `umoci init` + `umoci new` + `umoci insert` + `skopeo copy` of the same binary.
//! (c) the one-core floor: one gzip stream (flate2, level 1) + sha256 of the layer tar, in memory.
//! (c2) the N-core floor: rel's block-parallel gzip on every core + sha256, in memory.
//! (d) rel, no change: the same push again; it must upload zero blobs.
//! (e) `rel build --push` without and with a signing key, and `rel verify` (bench_trust.rs).
//! (f) `rel build --push` of three services with no change: warm cargo, layer cache hits, no
//!     compression (bench_warm.rs).
//!
//! Flags: `--binary PATH` (default: the first 10 MiB of `/usr/bin/docker-registry`, a real Go
//! binary), `--rounds N` (default 5; medians are reported), `--rows LETTERS` (default `abcdef`:
//! the rows to run; (a) to (d) run together).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEN_MIB: usize = 10 << 20;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut binary: Option<PathBuf> = None;
    let mut rounds = 5usize;
    let mut rows = "abcdef".to_owned();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--binary" => binary = Some(it.next().ok_or("--binary needs a path")?.into()),
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--rounds needs a number > 0")?
            }
            "--rows" => {
                rows = it
                    .next()
                    .filter(|r| !r.is_empty() && r.chars().all(|c| "abcdef".contains(c)))
                    .ok_or("--rows needs row letters among `abcdef`, e.g. `--rows ae`")?
                    .clone()
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo xtask bench build [--binary PATH] [--rounds N] [--rows abcdef]"
                ));
            }
        }
    }
    let registry_bin = tool("docker-registry", "docker-registry")?;
    let umoci = tool("umoci", "umoci")?;
    let skopeo = tool("skopeo", "skopeo")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_owned();

    eprintln!("building the bench driver (release)...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "oci",
            "--example",
            "bench_push",
        ])
        // `cargo run` hands xtask its own package variables; build scripts that watch them would
        // rebuild the whole release tree on every bench run.
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_PKG_VERSION")
        .env_remove("CARGO_PKG_VERSION_MAJOR")
        .env_remove("CARGO_PKG_VERSION_MINOR")
        .env_remove("CARGO_PKG_VERSION_PATCH")
        .env_remove("CARGO_PKG_VERSION_PRE")
        .env_remove("CARGO_PKG_AUTHORS")
        .env_remove("CARGO_PKG_DESCRIPTION")
        .env_remove("CARGO_PKG_HOMEPAGE")
        .env_remove("CARGO_PKG_REPOSITORY")
        .env_remove("CARGO_PKG_LICENSE")
        .env_remove("CARGO_PKG_LICENSE_FILE")
        .env_remove("CARGO_PKG_RUST_VERSION")
        .env_remove("CARGO_PKG_README")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_MANIFEST_PATH")
        .env_remove("CARGO_CRATE_NAME")
        .env_remove("CARGO_BIN_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building `oci` example `bench_push` failed".into());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let driver = target_dir.join("release/examples/bench_push");

    let work = TempDir::new()?;
    let (bin, what) = match binary {
        Some(p) => {
            let what = p.display().to_string();
            (p, what)
        }
        None => {
            let bytes = std::fs::read(&registry_bin)
                .map_err(|e| format!("cannot read {}: {e}", registry_bin.display()))?;
            let p = work.0.join("app");
            std::fs::write(&p, &bytes[..bytes.len().min(TEN_MIB)]).map_err(|e| e.to_string())?;
            (p, format!("first 10 MiB of {}", registry_bin.display()))
        }
    };
    let size = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();

    let registry = RegistryProcess::start(&registry_bin, &work.0)?;
    let host = format!("127.0.0.1:{}", registry.port);
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    if rows.contains(['a', 'b', 'c', 'd']) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut c2 = Vec::new();
        let mut repush_uploads = 0u64;
        let mut layer_size = 0u64;
        for round in 0..rounds {
            eprintln!("round {}/{rounds}...", round + 1);
            let floor = run_json(Command::new(&driver).arg("floor").arg(&bin).arg("1"))?;
            c.push(number(&floor, "secs")?);
            let floor_n = run_json(
                Command::new(&driver)
                    .arg("floor")
                    .arg(&bin)
                    .arg("1")
                    .arg(threads.to_string()),
            )?;
            c2.push(number(&floor_n, "secs")?);

            let cache = work.0.join(format!("cache-{round}"));
            let repo = format!("bench/rel-{round}:v1");
            // One push by the bench driver: its JSON line and how long it took.
            let push = || -> Result<(String, f64), String> {
                let started = Instant::now();
                let out = run_json(
                    Command::new(&driver)
                        .arg("push")
                        .arg(&bin)
                        .arg(&host)
                        .arg(&repo)
                        .arg(&cache),
                )?;
                Ok((out, started.elapsed().as_secs_f64()))
            };
            let (cold, secs) = push()?;
            a.push(secs);
            if number(&cold, "uploaded")? < 1.0 {
                return Err(format!("the cold push uploaded nothing: {cold}"));
            }
            layer_size = number(&cold, "layer_size")? as u64;

            let (again, secs) = push()?;
            d.push(secs);
            repush_uploads += number(&again, "uploaded")? as u64;

            let layout = work.0.join(format!("umoci-{round}"));
            let image = format!("{}:latest", layout.display());
            let started = Instant::now();
            quiet(Command::new(&umoci).args(["init", "--layout"]).arg(&layout))?;
            quiet(Command::new(&umoci).args(["new", "--image"]).arg(&image))?;
            quiet(
                Command::new(&umoci)
                    .args(["insert", "--rootless", "--image"])
                    .arg(&image)
                    .arg(&bin)
                    .arg("/app/app"),
            )?;
            quiet(
                Command::new(&skopeo)
                    .args(["copy", "--quiet", "--dest-tls-verify=false"])
                    .arg(format!("oci:{image}"))
                    .arg(format!("docker://{host}/bench/umoci-{round}:v1")),
            )?;
            b.push(started.elapsed().as_secs_f64());
        }
        let (a, b, c, c2, d) = (
            median(&mut a),
            median(&mut b),
            median(&mut c),
            median(&mut c2),
            median(&mut d),
        );
        println!(
            "cargo xtask bench build: {:.1} MiB binary ({what}), layer {:.1} MiB gzip, {rounds} round(s), medians",
            size as f64 / 1048576.0,
            layer_size as f64 / 1048576.0
        );
        println!();
        println!("{:<58} {:>9}", "step", "time");
        println!(
            "{:<58} {:>7.3} s",
            "(a) rel: layer + image + push, cold cache, new repository", a
        );
        println!(
            "{:<58} {:>7.3} s",
            "(b) umoci init/new/insert + skopeo copy", b
        );
        println!(
            "{:<58} {:>7.3} s",
            "(c) floor: one-core gzip (one stream, level 1) + sha256", c
        );
        println!(
            "{:<58} {:>7.3} s",
            format!("(c2) floor: rel's block gzip on {threads} core(s) + sha256"),
            c2
        );
        println!("{:<58} {:>7.3} s", "(d) rel: no-change re-push", d);
        println!();
        let speedup = b / a;
        let over_floor = a / c;
        println!(
            "(b)/(a) = {speedup:.1}x faster than umoci + skopeo   (goal >= 3x: {})",
            verdict(speedup >= 3.0)
        );
        println!(
            "(a)/(c) = {over_floor:.2}x the one-core floor          (goal <= 1.0x: {})",
            verdict(over_floor <= 1.0)
        );
        println!("(a)/(c2) = {:.2}x the {threads}-core floor", a / c2);
        println!(
            "(d) uploaded {repush_uploads} blob(s) over {rounds} re-push(es)   (goal 0: {})",
            verdict(repush_uploads == 0)
        );
        if repush_uploads > 0 {
            return Err("a no-change re-push uploaded blobs".into());
        }
    }

    if rows.contains('e') {
        // (e) What a signing key adds to `rel build --push` (see bench_trust.rs).
        let t = crate::bench_trust::run(&root, &host, &bin, &work.0, rounds)?;
        let added = (t.signed - t.plain) / t.plain;
        let added_all = (t.signed_all - t.plain_all) / t.plain_all;
        println!();
        println!(
            "{:<58} {:>9} {:>9} {:>9}",
            "(e) rel build --push, warm cargo + cache, new repository", "no key", "signed", "added"
        );
        for (row, plain, signed, pct) in [
            (
                "(e1) one component (10 MiB image)",
                t.plain,
                t.signed,
                added,
            ),
            (
                "(e2) three components (3 x 10 MiB)",
                t.plain_all,
                t.signed_all,
                added_all,
            ),
        ] {
            println!(
                "{row:<58} {plain:>7.3} s {signed:>7.3} s {:>+8.1}%",
                pct * 100.0
            );
        }
        println!(
            "{:<58} {:>7.3} s",
            "(e3) rel verify of the three-image release", t.verify
        );
        let added_promote = (t.promote_trusted - t.promote) / t.promote;
        println!(
            "{:<58} {:>7.3} s {:>7.3} s {:>+8.1}%",
            "(e4) rel promote of the signed release: no [trust], [trust]",
            t.promote,
            t.promote_trusted,
            added_promote * 100.0
        );
        println!(
            "(e1) signing adds {:+.1}%, (e2) {:+.1}%, (e4) verifying adds {:+.1}%   (goal < 10%: {}, {}, {})",
            added * 100.0,
            added_all * 100.0,
            added_promote * 100.0,
            verdict(added < 0.10),
            verdict(added_all < 0.10),
            verdict(added_promote < 0.10)
        );
    }

    if rows.contains('f') {
        // (f) A no-change `rel build --push` of three services (bench_warm.rs).
        let w = crate::bench_warm::run(&root, &host, &bin, &work.0, rounds)?;
        println!();
        println!(
            "{:<58} {:>7.3} s",
            "(f) rel build --push of 3 services, no change (warm)", w.no_change
        );
        println!(
            "(f) = {:.3} s   (goal < 2 s: {}); layers compressed by it: {}   (goal 0: {})",
            w.no_change,
            verdict(w.no_change < 2.0),
            w.blobs_rewritten,
            verdict(w.blobs_rewritten == 0)
        );
    }
    Ok(())
}

fn tool(name: &str, package: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
        .and_then(|p| p)
        .ok_or_else(|| format!("`{name}` not found: install the Debian package `{package}` (apt-get install -y {package})"))
}

fn run_json(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed with {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A number field from a flat JSON line (the bench driver's output).
fn number(json: &str, key: &str) -> Result<f64, String> {
    let pat = format!("\"{key}\":");
    let start = json
        .find(&pat)
        .ok_or_else(|| format!("no `{key}` in {json}"))?
        + pat.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .map_err(|_| format!("`{key}` is not a number in {json}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        let p = std::env::temp_dir().join(format!("rel-bench-build-{}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct RegistryProcess {
    child: Child,
    port: u16,
}

impl RegistryProcess {
    /// Port 0: the registry binds a free port and logs `listening on 127.0.0.1:PORT` (info
    /// level), read here; a thread drains the rest of its log so it never blocks.
    fn start(bin: &Path, work: &Path) -> Result<Self, String> {
        let config = work.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
                work.join("registry-data").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let port = line
                    .split("listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|p| p.parse().ok());
                if let Some(port) = port
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let mut reg = RegistryProcess { child, port: 0 };
        reg.port = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "docker-registry did not say where it listens within 20 s".to_owned())?;
        Ok(reg)
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
