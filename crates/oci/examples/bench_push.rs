#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)] // an example program: its output is the point
//! The library side of `cargo xtask bench build` (run in release mode).
//!
//! `bench_push push BINARY REGISTRY REPO:TAG CACHE_DIR` builds the layer (or takes it from the
//! cache), assembles the image and pushes it, then prints one JSON line with the timings and blob
//! counts. `bench_push floor BINARY LEVEL [THREADS]` times only gzip + sha256 of the layer's tar:
//! without THREADS as one flate2 stream on one core (the one-core floor), with THREADS as layers
//! are compressed (block-parallel) on that many threads.

use std::time::Instant;

use oci::registry::{BlobOutcome, ClientOptions, PushOptions, Registry};
use oci::{ImageRef, ImageSpec, LayerCache, LayerSpec};

const MTIME: u64 = 1_700_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("push") if args.len() == 5 => push(&args[1], &args[2], &args[3], &args[4]),
        Some("floor") if args.len() == 3 || args.len() == 4 => floor(
            &args[1],
            args[2].parse().expect("LEVEL is 0..=9"),
            args.get(3).map(|t| t.parse().expect("THREADS is a number")),
        ),
        _ => {
            eprintln!(
                "usage: bench_push push BINARY REGISTRY REPO:TAG CACHE_DIR | floor BINARY LEVEL [THREADS]"
            );
            std::process::exit(2);
        }
    }
}

fn push(binary: &str, registry: &str, repo_tag: &str, cache_dir: &str) {
    let start = Instant::now();
    let target: ImageRef = format!("{registry}/{repo_tag}").parse().expect("reference");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let published = rt.block_on(async {
        let client = Registry::new(registry, None, ClientOptions::default()).expect("client");
        oci::build_and_push(
            &LayerCache::new(cache_dir),
            &LayerSpec::binary(binary, "app", MTIME),
            None,
            &ImageSpec::new(vec!["/app/app".into()], MTIME),
            &client,
            &target,
            &PushOptions::default(),
            oci::Watch::default(),
        )
        .await
        .expect("build and push")
    });
    let secs = start.elapsed().as_secs_f64();
    let report = &published.push;
    println!(
        "{}",
        serde_json::json!({
            "secs": secs,
            "cache": published.cache,
            "digest": report.digest,
            "uploaded": report.count(|o| *o == BlobOutcome::Uploaded),
            "already_present": report.count(|o| *o == BlobOutcome::AlreadyPresent),
            "bytes_uploaded": report.bytes_uploaded,
            "layer_size": published.layer.size,
        })
    );
}

fn floor(binary: &str, level: u32, threads: Option<usize>) {
    let tar = oci::layer::layer_tar(&LayerSpec::binary(binary, "app", MTIME)).expect("tar");
    let start = Instant::now();
    let (digest, size) = match threads {
        None => oci::layer::gzip_and_hash(&tar, level),
        Some(t) => oci::layer::gzip_and_hash_parallel(&tar, level, t),
    }
    .expect("gzip");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "secs": secs, "digest": digest, "size": size, "level": level, "threads": threads })
    );
}
