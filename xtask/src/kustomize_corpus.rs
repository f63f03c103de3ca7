//! `cargo xtask kustomize-corpus DIR [--jobs N] [--timeout SECS] [--fresh]`: renders every
//! kustomization directory under DIR with `kubectl kustomize` and with rel's renderer (the
//! release `bench_render` example), in parallel with a per-directory timeout, and prints the
//! count of each class (identical / differs / rel refuses / both fail / kubectl refuses) and the
//! directories that are not identical. kubectl's results are cached under the temp directory
//! (keyed by path) because they do not change while the renderer is worked on; `--fresh`
//! ignores the cache. `--renderer BIN` compares another build (e.g. an older commit's
//! `bench_render`) instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KUSTOMIZATION_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// What one renderer did with a directory.
struct Outcome {
    ok: bool,
    stdout: Vec<u8>,
    /// The first line of standard error (the reason, when it failed).
    reason: String,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    Identical,
    Differs,
    RelRefuses,
    BothFail,
    KubectlRefuses,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Identical => "identical",
            Class::Differs => "differs",
            Class::RelRefuses => "rel refuses",
            Class::BothFail => "both fail",
            Class::KubectlRefuses => "kubectl refuses",
        }
    }
}

fn find_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    let mut is_kustomization = false;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if name != ".git" {
                subdirs.push(e.path());
            }
        } else if KUSTOMIZATION_NAMES.contains(&name.as_ref()) {
            is_kustomization = true;
        }
    }
    if is_kustomization {
        out.push(dir.to_path_buf());
    }
    subdirs.sort();
    for d in subdirs {
        find_dirs(&d, out);
    }
}

/// Runs `cmd`, killing it after `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Outcome {
    let tmp = std::env::temp_dir().join(format!(
        "rel-corpus-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let (Ok(out), Ok(err)) = (
        std::fs::File::create(tmp.with_extension("out")),
        std::fs::File::create(tmp.with_extension("err")),
    ) else {
        return Outcome {
            ok: false,
            stdout: Vec::new(),
            reason: "cannot create temp files".into(),
        };
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ok: false,
                stdout: Vec::new(),
                reason: format!("cannot run: {e}"),
            };
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let stdout = std::fs::read(tmp.with_extension("out")).unwrap_or_default();
    let stderr = std::fs::read_to_string(tmp.with_extension("err")).unwrap_or_default();
    let _ = std::fs::remove_file(tmp.with_extension("out"));
    let _ = std::fs::remove_file(tmp.with_extension("err"));
    match status {
        None => Outcome {
            ok: false,
            stdout,
            reason: format!("timed out after {}s", timeout.as_secs()),
        },
        Some(s) => Outcome {
            ok: s.success(),
            stdout,
            reason: stderr
                .lines()
                .rev()
                .find(|l| l.contains("rror"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("")
                .chars()
                .take(300)
                .collect(),
        },
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn cache_path(dir: &Path) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir()
        .join("rel-kustomize-corpus-cache")
        .join(format!("{h:016x}"))
}

fn kubectl(dir: &Path, timeout: Duration, fresh: bool) -> Outcome {
    let cache = cache_path(dir);
    if !fresh
        && let (Ok(status), Ok(stdout)) = (
            std::fs::read_to_string(cache.with_extension("status")),
            std::fs::read(cache.with_extension("out")),
        )
    {
        let (ok, reason) = status.split_once('\n').unwrap_or((&status, ""));
        return Outcome {
            ok: ok == "ok",
            stdout,
            reason: reason.to_string(),
        };
    }
    let mut cmd = Command::new("kubectl");
    cmd.arg("kustomize").arg(dir);
    let o = run(cmd, timeout);
    if !o.reason.starts_with("timed out") {
        let _ = std::fs::create_dir_all(cache.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(cache.with_extension("out"), &o.stdout);
        let _ = std::fs::write(
            cache.with_extension("status"),
            format!("{}\n{}", if o.ok { "ok" } else { "fail" }, o.reason),
        );
    }
    o
}

/// `cargo xtask kustomize-corpus DIR...`
pub fn corpus(args: &[String]) -> i32 {
    let mut roots = Vec::new();
    let mut jobs = 4usize;
    let mut timeout = Duration::from_secs(60);
    let mut fresh = false;
    let mut renderer: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--jobs" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => jobs = n,
                None => return usage(),
            },
            "--timeout" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => timeout = Duration::from_secs(n),
                None => return usage(),
            },
            "--fresh" => fresh = true,
            "--renderer" => match it.next() {
                Some(p) => renderer = Some(PathBuf::from(p)),
                None => return usage(),
            },
            s if s.starts_with('-') => return usage(),
            s => roots.push(PathBuf::from(s)),
        }
    }
    if roots.is_empty() {
        return usage();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = match renderer {
        Some(bin) => bin,
        None => match crate::bench_render::renderer_example(&root) {
            Ok(bin) => bin,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
    };
    let mut dirs = Vec::new();
    for r in &roots {
        find_dirs(r, &mut dirs);
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(PathBuf, Class, String)>> = Mutex::new(Vec::new());
    let rel_time = Mutex::new((Duration::ZERO, Duration::ZERO));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(dir) = dirs.get(i) else { break };
                    let want = kubectl(dir, timeout, fresh);
                    let mut cmd = Command::new(&bin);
                    cmd.arg(dir);
                    let started = Instant::now();
                    let got = run(cmd, timeout);
                    let took = started.elapsed();
                    let (class, reason) = match (want.ok, got.ok) {
                        (true, true) if want.stdout == got.stdout => {
                            (Class::Identical, String::new())
                        }
                        (true, true) => (Class::Differs, String::new()),
                        (true, false) => (Class::RelRefuses, got.reason),
                        (false, false) => (Class::BothFail, want.reason),
                        (false, true) => (Class::KubectlRefuses, want.reason),
                    };
                    if want.ok && got.ok {
                        let mut t = rel_time.lock().expect("lock");
                        t.0 += took;
                    }
                    results
                        .lock()
                        .expect("lock")
                        .push((dir.clone(), class, reason));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("lock");
    results.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
    for (_, c, _) in &results {
        *counts.entry(*c).or_default() += 1;
    }
    println!(
        "{} kustomization directories under {}",
        results.len(),
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in [
        Class::Identical,
        Class::Differs,
        Class::RelRefuses,
        Class::BothFail,
        Class::KubectlRefuses,
    ] {
        println!(
            "  {:<16} {}",
            c.label(),
            counts.get(&c).copied().unwrap_or(0)
        );
    }
    println!(
        "  (rel's time on the directories both render: {:.2}s)",
        rel_time.lock().expect("lock").0.as_secs_f64()
    );
    for (dir, class, reason) in &results {
        match class {
            Class::Identical | Class::BothFail => {}
            _ => println!("{:<16} {}  {}", class.label(), dir.display(), reason),
        }
    }
    let bad = counts.get(&Class::Differs).copied().unwrap_or(0)
        + counts.get(&Class::RelRefuses).copied().unwrap_or(0);
    i32::from(bad > 0)
}

fn usage() -> i32 {
    eprintln!(
        "usage: cargo xtask kustomize-corpus DIR... [--jobs N] [--timeout SECS] [--fresh] [--renderer BIN]"
    );
    2
}
