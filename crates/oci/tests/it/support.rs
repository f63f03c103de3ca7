//! Fixtures: a static test binary; Debian tools, the registry on port 0 and `run` come from the
//! workspace's `test-support` crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use test_support::{Registry, run, tool};

/// A small static binary (Rust, `+crt-static`): prints a line, or with `serve ADDR` answers HTTP.
/// Built once per target directory.
pub fn static_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixture/hello.rs");
        // Named after its source, so that a changed fixture is built again.
        let source_digest = oci::Digest::of(&std::fs::read(&src).unwrap());
        let out = dir.join(format!(
            "rel-oci-fixture-hello-{}",
            &source_digest.hex()[..12]
        ));
        if out.is_file() {
            return out;
        }
        // Every test process may build it at once: each in a directory of its own, since rustc
        // names its intermediate objects after the output's stem (a shared stem had one
        // process's linker read objects another was rewriting: a bus error).
        let work = tempfile::tempdir_in(dir).unwrap();
        let tmp = work.path().join("hello");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = Command::new(rustc)
            .args([
                "-O",
                "-C",
                "target-feature=+crt-static",
                "-C",
                "strip=symbols",
                "--remap-path-prefix",
            ])
            .arg(format!("{}=/src", src.parent().unwrap().display()))
            .arg(&src)
            .arg("-o")
            .arg(&tmp)
            .status()
            .expect("rustc runs");
        assert!(
            status.success(),
            "building the static fixture binary failed"
        );
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
    .clone()
}
