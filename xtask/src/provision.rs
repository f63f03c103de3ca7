//! Finding, and when possible installing, the external tools the tests use.

use std::path::Path;
use std::process::Command;

/// A tool the tests need: the command and the Debian package that provides it.
pub struct Tool {
    pub command: &'static str,
    pub package: Option<&'static str>,
    pub why: &'static str,
}

/// Everything the test suite runs besides cargo.
pub const TOOLS: &[Tool] = &[
    Tool {
        command: "docker-registry",
        package: Some("docker-registry"),
        why: "a real OCI registry for push tests",
    },
    Tool {
        command: "skopeo",
        package: Some("skopeo"),
        why: "independent inspection and copy of pushed images",
    },
    Tool {
        command: "umoci",
        package: Some("umoci"),
        why: "unpacking images to check their root filesystem",
    },
    Tool {
        command: "git",
        package: Some("git"),
        why: "real repositories for promotion and rollback",
    },
    Tool {
        command: "kubectl",
        package: None,
        why: "the kustomize oracle (`kubectl kustomize`, kustomize v5.5)",
    },
];

pub fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| is_executable(&d.join(command))))
        .unwrap_or(false)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Make sure every tool is present: install missing Debian packages with apt-get when root,
/// otherwise fail naming them.
pub fn ensure_tools() -> Result<(), String> {
    let missing: Vec<&Tool> = TOOLS.iter().filter(|t| !on_path(t.command)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().filter_map(|t| t.package).collect();
    let unpackaged: Vec<&Tool> = missing
        .iter()
        .copied()
        .filter(|t| t.package.is_none())
        .collect();
    if !unpackaged.is_empty() {
        let names: Vec<String> = unpackaged
            .iter()
            .map(|t| format!("{} ({})", t.command, t.why))
            .collect();
        return Err(format!(
            "missing {}; install kubectl (it carries kustomize v5.5) and run again",
            names.join(", ")
        ));
    }
    if !is_root() || !on_path("apt-get") {
        return Err(format!(
            "the tests need {}; install them with: sudo apt-get install -y {}",
            missing
                .iter()
                .map(|t| format!("{} ({})", t.command, t.why))
                .collect::<Vec<_>>()
                .join(", "),
            packages.join(" ")
        ));
    }
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    run(Command::new("apt-get").args(["update", "-qq"]).envs(env))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&packages)
        .envs(env))?;
    let still: Vec<&str> = TOOLS
        .iter()
        .filter(|t| !on_path(t.command))
        .map(|t| t.command)
        .collect();
    if !still.is_empty() {
        return Err(format!(
            "apt-get finished but {} is still missing",
            still.join(", ")
        ));
    }
    Ok(())
}

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}
