//! `cargo xtask bench render [--sizes 500,1000,2000] [--keep]`: renders a generated overlay
//! (N Deployments over 3 bases, with a namespace, commonLabels, a configMapGenerator, one JSON
//! 6902 patch on every Deployment and 50 image pins) with rel's renderer (the `bench_render`
//! example of `kustomize-rs`, release build) and with `kubectl kustomize`, side by side, and
//! reports wall time, peak RSS and the ratios. It also checks both outputs are byte-identical.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Measure {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
    ok: bool,
}

/// Runs `cmd`, writing its stdout to `out`, and reports wall time and peak RSS (from `wait4`,
/// which covers the child and the descendants it waited for).
fn measure(program: &Path, args: &[&str], out: &Path) -> std::io::Result<Measure> {
    let file = std::fs::File::create(out)?;
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    std::mem::forget(child);
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    Ok(Measure {
        wall,
        cpu,
        max_rss_kb: usage.ru_maxrss,
        ok,
    })
}

/// One generated Deployment of the bench overlays (bench render and bench diff share them).
pub(crate) fn deployment(i: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i:05}
  labels:
    app: svc-{i:05}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: svc-{i:05}
  template:
    metadata:
      labels:
        app: svc-{i:05}
    spec:
      containers:
      - name: main
        image: registry.example.com/team/img-{img:02}:1.0.{i}
        envFrom:
        - configMapRef:
            name: shared-config
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
      - name: sidecar
        image: registry.example.com/team/img-{side:02}:2.0
",
        img = i % 50,
        side = (i + 1) % 50
    )
}

/// Writes the overlay for `n` Deployments under `root` and returns the overlay directory.
fn generate(root: &Path, n: usize) -> std::io::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(root);
    for b in 0..3 {
        let dir = root.join(format!("base-{b}"));
        std::fs::create_dir_all(&dir)?;
        let mut docs = String::new();
        for i in (0..n).filter(|i| i % 3 == b) {
            if !docs.is_empty() {
                docs.push_str("---\n");
            }
            docs.push_str(&deployment(i));
        }
        std::fs::write(dir.join("deployments.yaml"), docs)?;
        std::fs::write(
            dir.join("kustomization.yaml"),
            "resources:\n- deployments.yaml\n",
        )?;
    }
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&overlay)?;
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
    for img in 0..50 {
        let _ = write!(
            k,
            "- name: registry.example.com/team/img-{img:02}\n  digest: sha256:{:064x}\n",
            img + 1
        );
    }
    std::fs::write(overlay.join("kustomization.yaml"), k)?;
    Ok(overlay)
}

fn row(label: &str, rel: &Measure, kub: &Measure, verdict: &str) {
    println!(
        "{:<18}  {:>8.3}s {:>8.3}s {:>7.1}MB  {:>8.3}s {:>8.3}s {:>7.1}MB  {:>7.1}x {:>7.1}x {:>6.1}x  {}",
        label,
        rel.wall.as_secs_f64(),
        rel.cpu.as_secs_f64(),
        rel.max_rss_kb as f64 / 1024.0,
        kub.wall.as_secs_f64(),
        kub.cpu.as_secs_f64(),
        kub.max_rss_kb as f64 / 1024.0,
        kub.wall.as_secs_f64() / rel.wall.as_secs_f64().max(1e-9),
        kub.cpu.as_secs_f64() / rel.cpu.as_secs_f64().max(1e-9),
        kub.max_rss_kb as f64 / (rel.max_rss_kb.max(1)) as f64,
        verdict
    );
}

pub fn run(args: &[String]) -> i32 {
    let mut sizes = vec![500, 1000, 2000];
    let mut keep = false;
    let mut rel_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                let Some(v) = it.next() else {
                    eprintln!("--sizes needs a value like 500,1000,2000");
                    return 2;
                };
                match v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(s) if !s.is_empty() => sizes = s,
                    _ => {
                        eprintln!("--sizes needs a value like 500,1000,2000");
                        return 2;
                    }
                }
            }
            "--keep" => keep = true,
            "--rel-only" => rel_only = true,
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: cargo xtask bench render [--sizes 500,1000,2000] [--keep] [--rel-only]"
                );
                return 2;
            }
        }
    }
    let root = crate::workspace_root();
    eprintln!("building the renderer (release)...");
    let bin = match renderer_example(&root) {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let kubectl = PathBuf::from("kubectl");
    let tmp = std::env::temp_dir().join(format!("rel-bench-render-{}", std::process::id()));
    println!(
        "{:<18}  {:>9} {:>9} {:>9}  {:>9} {:>9} {:>9}  {:>8} {:>8} {:>7}  output",
        "input",
        "rel wall",
        "rel cpu",
        "rel RSS",
        "kub wall",
        "kub cpu",
        "kub RSS",
        "wall x",
        "cpu x",
        "mem x"
    );
    let mut failed = false;
    // The project's own overlays, when the workspace has any.
    let mut project: Vec<PathBuf> = std::fs::read_dir(root.join("overlays"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("kustomization.yaml").is_file())
                .collect()
        })
        .unwrap_or_default();
    project.sort();
    for dir in project {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let out_dir = tmp.join(format!("overlay-{name}"));
        if std::fs::create_dir_all(&out_dir).is_err() {
            continue;
        }
        let d = dir.to_string_lossy().to_string();
        let (rel, kub) = match (
            measure(&bin, &[&d], &out_dir.join("rel.yaml")),
            measure(&kubectl, &["kustomize", &d], &out_dir.join("kubectl.yaml")),
        ) {
            (Ok(r), Ok(k)) => (r, k),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot run a renderer: {e}");
                return 2;
            }
        };
        let same = rel.ok
            && kub.ok
            && std::fs::read(out_dir.join("rel.yaml")).ok()
                == std::fs::read(out_dir.join("kubectl.yaml")).ok();
        failed |= !same;
        row(
            &format!("overlays/{name}"),
            &rel,
            &kub,
            if same { "identical" } else { "DIFFERENT" },
        );
    }
    for n in sizes {
        let case_dir = tmp.join(format!("n{n}"));
        let overlay = match generate(&case_dir, n) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("cannot write the benchmark overlay: {e}");
                return 2;
            }
        };
        let dir = overlay.to_string_lossy().to_string();
        let rel_out = case_dir.join("rel.yaml");
        let kub_out = case_dir.join("kubectl.yaml");
        let rel = measure(&bin, &[&dir], &rel_out);
        let kub = if rel_only {
            Ok(Measure {
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
                max_rss_kb: 0,
                ok: false,
            })
        } else {
            measure(&kubectl, &["kustomize", &dir], &kub_out)
        };
        let (rel, kub) = match (rel, kub) {
            (Ok(r), Ok(k)) => (r, k),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot run a renderer: {e}");
                return 2;
            }
        };
        let same = rel.ok && kub.ok && std::fs::read(&rel_out).ok() == std::fs::read(&kub_out).ok();
        failed |= !same && !rel_only;
        let label = format!("{n} deploys");
        row(
            &label,
            &rel,
            &kub,
            if rel_only {
                "(kubectl skipped)"
            } else if same {
                "identical"
            } else {
                "DIFFERENT"
            },
        );
    }
    if keep {
        eprintln!("inputs and outputs kept in {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if failed {
        eprintln!("rel's output differs from kubectl's (rerun with --keep to compare)");
        1
    } else {
        0
    }
}

/// Build the release-mode `bench_render` example of kustomize-rs (a thin CLI over the renderer)
/// and return its path. Shared by `bench render` and `kustomize-fuzz`.
pub fn renderer_example(root: &Path) -> Result<PathBuf, String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "kustomize-rs",
            "--example",
            "bench_render",
        ])
        .current_dir(root)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        return Err("cargo build of the bench_render example failed".to_owned());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/examples/bench_render"))
}
