#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)] // an example program: its output is the point
//! Renders a kustomization directory and writes the YAML stream to standard output, like
//! `kubectl kustomize DIR`. Used by `cargo xtask bench render` (built in release mode) to time
//! the library against kubectl.

use std::io::Write;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: bench_render DIR");
        std::process::exit(2);
    };
    match kustomize::render(std::path::Path::new(&dir)) {
        Ok(r) => {
            let out = r.to_yaml();
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(out.as_bytes()).is_err() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
