//! `cargo xtask bench diff [--size 2000] [--changed 10] [--rounds 3] [--keep]`: what a promotion
//! changes, on a generated overlay of N Deployments over 3 bases (namespace, commonLabels, a
//! configMapGenerator, a JSON 6902 patch on every Deployment, 50 image pins; the overlay of
//! `bench render`), of which `--changed` images get a new digest in the release.
//!
//! rel: `rel diff --env bench --version 2.0.0` (release build): renders the overlay as it is and
//! pinned in a temporary tree, and diffs per object. Against: `kubectl kustomize` of the overlay
//! as it is, `kubectl kustomize` of a pinned copy, and `diff -u` of the two outputs, run one
//! after the other in the same run. Reports the median wall time of each over the rounds, the
//! ratio, and checks both agree on whether anything changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGES: usize = 50;
const VERSION: &str = "2.0.0";

fn digest(img: usize, release: usize) -> String {
    format!(
        "sha256:{}",
        format!("{img:02x}{:02x}", release + 0xa0).repeat(16)
    )
}

fn overlay(digest_of: impl Fn(usize) -> String) -> String {
    let mut k = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: bench
commonLabels:
  env: bench
  team: platform
resources:
- ../base-0
- ../base-1
- ../base-2
configMapGenerator:
- name: shared-config
  literals:
  - REGION=eu-west-1
  - LOG_LEVEL=info
patches:
- target:
    kind: Deployment
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/env
      value:
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
images:
",
    );
    for img in 0..IMAGES {
        let _ = write!(
            k,
            "- name: registry.example.com/team/img-{img:02}\n  digest: {}\n",
            digest_of(img)
        );
    }
    k
}

/// The project: rel.toml (50 external components), three bases, the overlay as deployed
/// (`overlay/`), the same overlay pinned to the release by hand (`overlay-pinned/`, for kubectl),
/// and the release's lockfile written by `rel lock`.
fn generate(root: &Path, n: usize, changed: usize, rel: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot write the benchmark project: {e}");
    let _ = std::fs::remove_dir_all(root);
    for b in 0..3 {
        let dir = root.join(format!("base-{b}"));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let docs: Vec<String> = (0..n)
            .filter(|i| i % 3 == b)
            .map(crate::bench_render::deployment)
            .collect();
        std::fs::write(dir.join("deployments.yaml"), docs.join("---\n")).map_err(io)?;
        std::fs::write(
            dir.join("kustomization.yaml"),
            "resources:\n- deployments.yaml\n",
        )
        .map_err(io)?;
    }
    let release = |img: usize| usize::from(img < changed);
    for (dir, text) in [
        ("overlay", overlay(|img| digest(img, 0))),
        ("overlay-pinned", overlay(|img| digest(img, release(img)))),
    ] {
        std::fs::create_dir_all(root.join(dir)).map_err(io)?;
        std::fs::write(root.join(dir).join("kustomization.yaml"), text).map_err(io)?;
    }
    let mut toml = String::from(
        "registry = \"registry.example.com/team\"\n\n[environments.bench]\noverlay = \"overlay\"\n",
    );
    for img in 0..IMAGES {
        let _ = write!(
            toml,
            "\n[components.img-{img:02}]\nrepo = \"team/img-{img:02}\"\n"
        );
    }
    std::fs::write(root.join("rel.toml"), toml).map_err(io)?;
    let mut lock = Command::new(rel);
    lock.current_dir(root)
        .args(["lock", "--version", VERSION])
        .stdout(Stdio::null());
    for img in 0..IMAGES {
        lock.args([
            "--digest".to_owned(),
            format!("img-{img:02}={}", digest(img, release(img))),
        ]);
    }
    match lock.status() {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("rel lock failed: {other:?}")),
    }
}

/// User + system CPU time of the waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Wall and CPU time of one step.
#[derive(Clone, Copy, Default)]
struct Time {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Add for Time {
    type Output = Time;
    fn add(self, o: Time) -> Time {
        Time {
            wall: self.wall + o.wall,
            cpu: self.cpu + o.cpu,
        }
    }
}

/// Run `program args` in `dir` with stdout to `out`; its time and exit code.
fn run(program: &Path, args: &[&str], dir: &Path, out: &Path) -> Result<(Time, i32), String> {
    let file = std::fs::File::create(out).map_err(|e| e.to_string())?;
    let cpu = children_cpu();
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let time = Time {
        wall: start.elapsed(),
        cpu: children_cpu().saturating_sub(cpu),
    };
    Ok((time, status.code().unwrap_or(-1)))
}

/// The median wall time and the median CPU time of the rounds.
fn median(v: &[Time]) -> Time {
    let mid = |mut d: Vec<Duration>| {
        d.sort();
        d[d.len() / 2]
    };
    Time {
        wall: mid(v.iter().map(|t| t.wall).collect()),
        cpu: mid(v.iter().map(|t| t.cpu).collect()),
    }
}

pub fn run_bench(args: &[String]) -> Result<(), String> {
    let usage = "usage: cargo xtask bench diff [--size 2000] [--changed 10] [--rounds 3] [--keep]";
    let (mut n, mut changed, mut rounds, mut keep) = (2000usize, 10usize, 3usize, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number; {usage}"))
        };
        match a.as_str() {
            "--size" => n = num("--size")?,
            "--changed" => changed = num("--changed")?.min(IMAGES),
            "--rounds" => rounds = num("--rounds")?.max(1),
            "--keep" => keep = true,
            other => return Err(format!("unknown argument {other:?}; {usage}")),
        }
    }
    let root = crate::workspace_root();
    eprintln!("building rel (release)...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--bin", "rel"])
        .current_dir(&root)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        return Err("cargo build --release --bin rel failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let rel = target.join("release/rel");
    let tmp = std::env::temp_dir().join(format!("rel-bench-diff-{}", std::process::id()));
    generate(&tmp, n, changed, &rel)?;
    let kubectl = PathBuf::from("kubectl");
    let diff = PathBuf::from("diff");
    let out = |name: &str| tmp.join(name);

    let (mut rel_times, mut kub_times) = (Vec::new(), Vec::new());
    let (mut rel_code, mut diff_code) = (0, 0);
    for _ in 0..rounds {
        let (t, code) = run(
            &rel,
            &[
                "diff",
                "--env",
                "bench",
                "--version",
                VERSION,
                "--format",
                "text",
            ],
            &tmp,
            &out("rel-diff.txt"),
        )?;
        rel_times.push(t);
        rel_code = code;

        let (a, ca) = run(
            &kubectl,
            &["kustomize", "overlay"],
            &tmp,
            &out("before.yaml"),
        )?;
        let (b, cb) = run(
            &kubectl,
            &["kustomize", "overlay-pinned"],
            &tmp,
            &out("after.yaml"),
        )?;
        if ca != 0 || cb != 0 {
            return Err("kubectl kustomize failed".into());
        }
        let (c, cd) = run(
            &diff,
            &["-u", "before.yaml", "after.yaml"],
            &tmp,
            &out("kubectl-diff.txt"),
        )?;
        diff_code = cd;
        kub_times.push(a + b + c);
    }
    let rel_t = median(&rel_times);
    let kub_t = median(&kub_times);
    // Both must agree that something changes, and rel must name every Deployment that runs a
    // moved image (main or sidecar), and nothing else.
    let expected = (0..n)
        .filter(|i| i % IMAGES < changed || (i + 1) % IMAGES < changed)
        .count();
    let text = std::fs::read_to_string(out("rel-diff.txt")).map_err(|e| e.to_string())?;
    let reported = text
        .lines()
        .filter(|l| l.starts_with("~ Deployment"))
        .count();
    let agree = rel_code == i32::from(changed > 0)
        && diff_code == i32::from(changed > 0)
        && reported == expected;

    println!(
        "{:<34} {:>11} {:>11} {:>8} {:>8}",
        "input", "wall", "cpu", "wall x", "cpu x"
    );
    let label = format!("{n} deploys, {changed}/{IMAGES} images move");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "{label:<34} {:>9.1}ms {:>9.1}ms {:>8} {:>8}  rel diff --env bench --version {VERSION}",
        ms(rel_t.wall),
        ms(rel_t.cpu),
        "1.0x",
        "1.0x"
    );
    println!(
        "{:<34} {:>9.1}ms {:>9.1}ms {:>7.1}x {:>7.1}x  kubectl kustomize ×2 + diff -u",
        "",
        ms(kub_t.wall),
        ms(kub_t.cpu),
        x(kub_t.wall, rel_t.wall),
        x(kub_t.cpu, rel_t.cpu)
    );
    println!(
        "rel reports {reported} changed Deployments (expected {expected}); exit codes: rel {rel_code}, diff -u {diff_code}; {rounds} rounds"
    );
    if keep {
        eprintln!("inputs and outputs kept in {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if agree {
        Ok(())
    } else {
        Err("rel diff and kubectl + diff -u disagree (rerun with --keep to compare)".into())
    }
}
