//! `cargo xtask <task>`: developer tasks for this workspace.

use std::process::ExitCode;

mod bench_build;
mod bench_diff;
mod bench_gates;
mod bench_git;
mod bench_render;
mod bench_stage;
mod bench_trust;
mod bench_warm;
mod fuzz;
mod kustomize;
mod kustomize_corpus;
mod kustomize_openapi;
mod provision;
mod services;
mod test;
mod tidy;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  test [ARGS]
      install what the tests need (Debian packages with apt-get when root, otherwise named), check
      fmt, clippy (-D warnings) and tidy, and run every test of the workspace; ARGS go to
      cargo-nextest (or cargo test).
  fuzz [--seconds N] [TARGET...]
      build the cargo-fuzz targets of fuzz/ and run each for N seconds (default 10): the
      renderer, lockfiles, rel.toml, image references, the envelope opener, pod lists and
      kubeconfigs. Installs cargo-fuzz when missing.
  tidy
      the rules the compiler cannot check: atomic writes only, environment variables named in
      src/env_vars.rs, crates free of CLI wording, a help on every error, a true code map.
  run-services [--base-port N] [--check]
      build identity, gateway and worker, migrate a local SQLite database, start all three on
      127.0.0.1 (ports N, N+1, N+2; default 8081) and print curl commands to query them.
      --check: query once through the gateway, stop the services (SIGTERM) and exit.
  kustomize-oracle [CASE...]
      regenerate crates/kustomize-rs/tests/cases/*/expected.yaml with `kubectl kustomize`.
  kustomize-corpus DIR... [--jobs N] [--timeout SECS] [--fresh] [--renderer BIN]
      every kustomization directory under DIR, rendered by kubectl and by rel; counts per class.
  kustomize-openapi SWAGGER.pb
      regenerate crates/kustomize-rs/src/builtin/openapi_patch.txt from kustomize's embedded schema.
  kustomize-fuzz [--runs N] [--seed S]
      random overlays over a base, rendered by rel and by `kubectl kustomize`; any difference is kept.
  bench render [--sizes 500,1000,2000]
      rel's renderer against `kubectl kustomize` on generated overlays, side by side.
  bench build [--binary PATH] [--rounds N] [--rows abcdef]
      assembling and pushing an image with rel against umoci + skopeo, the gzip+sha256 floor,
      and a no-change re-push, against a local docker-registry.
  bench git [--dev]
      rel audit against git log over 10,000 commits; rel promote --dry-run of 50 components.
  bench diff [--size 2000] [--changed 10] [--rounds 3]
      rel diff of a promotion on a generated overlay against kubectl kustomize ×2 + diff -u.
  bench gates
      smoke with 50 checks (one takes 1 s) and drift --pods on 10,000 pods against jq, timed.
  bench stage [--debug] [--runs N] [--seconds S]
      rel up --env local from a warm image cache to ready, and req/s through the gateway Service
      against straight to a gateway pod (the proxy's overhead).";

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(1))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("tidy") => tidy::run(&workspace_root()),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("run-services") => return services::run_services(&args[1..]),
        Some("kustomize-oracle") => return code(kustomize::oracle(&args[1..])),
        Some("kustomize-corpus") => return code(kustomize_corpus::corpus(&args[1..])),
        Some("kustomize-openapi") => return code(kustomize_openapi::run(&args[1..])),
        Some("kustomize-fuzz") => return code(kustomize::fuzz(&args[1..])),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("render") => return code(bench_render::run(&args[2..])),
            Some("build") => bench_build::run(&args[2..]),
            Some("gates") => bench_gates::run(&args[2..]),
            Some("git") => bench_git::run(&args[2..]),
            Some("diff") => bench_diff::run_bench(&args[2..]),
            Some("stage") => bench_stage::run(&args[2..]),
            _ => Err(format!(
                "usage: cargo xtask bench <render|build|gates|git|diff|stage> [args]\n\n{USAGE}"
            )),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
