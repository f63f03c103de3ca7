//! Fixture builder: a temporary project and a way to run `rel` in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// The repository root (where the real rel.toml and fixtures live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// This repository's rel.toml without rel's own component: the three services. Tests of locking,
/// pinning and gating reason with the services; tests/it/build.rs builds the rel image.
pub fn services_config() -> String {
    let config = std::fs::read_to_string(repo_root().join("rel.toml")).unwrap();
    let (head, rest) = config
        .split_once("[components.rel]\ncrate = \"rel\"\n")
        .expect("rel.toml has the rel component");
    format!("{head}{rest}")
}

/// A temporary project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A project with the given rel.toml.
    pub fn with_config(config: &str) -> Project {
        let p = Project::empty();
        p.write("rel.toml", config);
        p
    }

    /// A copy of a fixture directory.
    pub fn from_fixture(name: &str) -> Project {
        let p = Project::empty();
        copy_dir(&fixture(name), p.path());
        p
    }

    /// The three-component project of this repository's rel.toml (its services).
    pub fn platform() -> Project {
        Project::with_config(&services_config())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Run `rel ARGS` in the project directory.
    pub fn rel(&self, args: &[&str]) -> Run {
        rel_in(self.path(), args)
    }
}

/// Variables of the test process a rel child may see: what cargo, rustup and git need to find
/// their toolchains and temp space. Everything else (REL_*, tokens, KUBECONFIG, DOCKER_CONFIG,
/// GITHUB_ACTIONS...) is absent unless a test sets it.
const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
];

/// Clears `cmd`'s environment down to [`ENV_ALLOWLIST`], with colour off.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear();
    for key in ENV_ALLOWLIST {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.env("NO_COLOR", "1")
}

/// The one way tests run rel: the rel binary in `dir` with a cleared environment (see
/// [`ENV_ALLOWLIST`]) and stdin from /dev/null. A test adds the variables its case needs.
pub fn rel_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rel"));
    clean_env(&mut cmd);
    cmd.current_dir(dir).stdin(std::process::Stdio::null());
    cmd
}

/// Runs `cmd` (built by [`rel_command`]) to the end.
pub fn run_rel(mut cmd: Command) -> Run {
    let args = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let output = cmd.output().expect("run rel");
    Run { args, output }
}

/// Run `rel ARGS` in `dir` (see [`rel_command`]).
pub fn rel_in(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = rel_command(dir);
    cmd.args(args);
    run_rel(cmd)
}

pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Assert the exit code, showing both streams on mismatch.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "rel {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// An overlay's `images:` pins of this repository's three components set back to the placeholder
/// digests the tests reason with (identity D1, gateway D2, worker D3), whatever release the
/// repository's overlays pin today.
pub fn with_placeholder_pins(overlay: &str) -> String {
    let mut out = String::with_capacity(overlay.len());
    let mut pending: Option<&str> = None;
    for line in overlay.split_inclusive('\n') {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- name: registry.example.com/platform/") {
            pending = match name {
                "identity" => Some(D1),
                "gateway" => Some(D2),
                "worker" => Some(D3),
                _ => None,
            };
        } else if let (Some(d), Some(_)) = (pending, t.strip_prefix("digest: sha256:")) {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}digest: {d}\n"));
            pending = None;
            continue;
        }
        out.push_str(line);
    }
    out
}
