//! Compiling a component's binary with cargo: release, locked, static, reproducible paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target we build images for. `+crt-static` on the gnu target gives a static binary that runs
/// `FROM scratch` (the musl target is not assumed to be installed).
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";

/// One binary to compile.
#[derive(Debug, Clone)]
pub(crate) struct CompileRequest<'a> {
    /// The workspace root (holds `Cargo.toml` and `Cargo.lock`).
    pub workspace: &'a Path,
    pub krate: &'a str,
    pub bin: &'a str,
    pub features: &'a [String],
    /// Where cargo puts its output; kept apart from the dev target dir so the release flags do not
    /// invalidate everyday builds.
    pub target_dir: &'a Path,
    /// Show cargo's progress (a terminal) or capture it and show it only on failure (CI).
    pub show_progress: bool,
    /// The source commit, given to the build as `REL_GIT_COMMIT` (services report it at `/version`).
    pub git_commit: Option<&'a str>,
    /// The release version, given to the build as `REL_RELEASE_VERSION` (services report it at
    /// `/version` instead of their crate version); `None` for a build that is not a release.
    pub release_version: Option<&'a str>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    #[error("could not start cargo: {0}")]
    #[diagnostic(help(
        "rel builds with the cargo that runs it (CARGO) or `cargo` on PATH: install Rust with rustup, or set CARGO to cargo's path"
    ))]
    Spawn(#[source] std::io::Error),
    #[error(
        "cargo build of `{krate}` (bin `{bin}`, features [{features}]) failed with {status}\n{output}"
    )]
    #[diagnostic(help(
        "fix the compile error above; the build is `cargo build --release --locked` for the static musl-free target, so Cargo.lock must be up to date (`cargo update -w` if a dependency changed)"
    ))]
    Failed {
        krate: String,
        bin: String,
        features: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("cargo reported success but the binary is not at {}", .0.display())]
    #[diagnostic(help(
        "check that the component's `bin` in rel.toml names a [[bin]] target of its crate, and that no build script moves the output"
    ))]
    Missing(PathBuf),
}

/// Build the RUSTFLAGS that make the binary static and free of build-machine paths.
///
/// Cargo hands rustc the sources of workspace members as paths relative to the workspace root, so
/// the checkout's location never reaches the binary (the release profile carries no debug info);
/// the flags only remap the cargo home and the toolchain. Keeping the workspace path out of the
/// flags also keeps them equal across checkouts, so a shared `REL_CARGO_TARGET_DIR` reuses every
/// compiled dependency.
pub(crate) fn rustflags(_workspace: &Path) -> Vec<String> {
    let mut flags = vec!["-C".to_owned(), "target-feature=+crt-static".to_owned()];
    if let Some(home) = cargo_home() {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    if let Some(home) = std::env::var_os(crate::env_vars::HOME) {
        // rustup's toolchain sources live under $HOME/.rustup.
        flags.push(format!(
            "--remap-path-prefix={}/.rustup=/rustup",
            PathBuf::from(home).display()
        ));
    }
    flags
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os(crate::env_vars::CARGO_HOME)
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os(crate::env_vars::HOME).map(|h| PathBuf::from(h).join(".cargo"))
        })
}

/// Compile one binary; returns its path.
pub(crate) fn compile(req: &CompileRequest<'_>) -> Result<PathBuf, CompileError> {
    let cargo = std::env::var_os(crate::env_vars::CARGO).unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    crate::env_vars::scrub_secrets(&mut cmd);
    cmd.current_dir(req.workspace)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--package")
        .arg(req.krate)
        .arg("--bin")
        .arg(req.bin)
        .arg("--target-dir")
        .arg(req.target_dir);
    if !req.features.is_empty() {
        cmd.arg("--features").arg(req.features.join(","));
    }
    // CARGO_ENCODED_RUSTFLAGS keeps paths with spaces intact; it wins over RUSTFLAGS.
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        rustflags(req.workspace).join("\x1f"),
    );
    cmd.env_remove("RUSTFLAGS");
    // Binaries embed no build-time timestamps of their own; keep cargo from varying either.
    cmd.env("CARGO_INCREMENTAL", "0");
    match req.git_commit {
        Some(c) => cmd.env("REL_GIT_COMMIT", c),
        None => cmd.env_remove("REL_GIT_COMMIT"),
    };
    match req.release_version {
        Some(v) => cmd.env("REL_RELEASE_VERSION", v),
        None => cmd.env_remove("REL_RELEASE_VERSION"),
    };
    let output = if req.show_progress {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let status = cmd.status().map_err(CompileError::Spawn)?;
        (status, String::new())
    } else {
        cmd.arg("--quiet");
        let out = cmd.output().map_err(CompileError::Spawn)?;
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    if !output.0.success() {
        return Err(CompileError::Failed {
            krate: req.krate.to_owned(),
            bin: req.bin.to_owned(),
            features: req.features.join(", "),
            status: output.0,
            output: output.1,
        });
    }
    let path = req.target_dir.join(TARGET).join("release").join(req.bin);
    if !path.is_file() {
        return Err(CompileError::Missing(path));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_static_and_do_not_depend_on_the_checkout() {
        let f = rustflags(Path::new("/src/my ws"));
        assert_eq!(&f[..2], ["-C", "target-feature=+crt-static"]);
        assert_eq!(f, rustflags(Path::new("/elsewhere")));
        assert!(!f.iter().any(|x| x.contains("my ws")));
    }
}
