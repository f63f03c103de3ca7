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
        command: "openssl",
        package: Some("openssl"),
        why: "an independent verifier of the Ed25519 image and provenance signatures",
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

/// A Python module the tests run (`python3 -m MODULE`) and the PyPI package that provides it.
pub struct PythonModule {
    pub module: &'static str,
    pub package: &'static str,
    pub why: &'static str,
}

/// Every Python module the test suite runs.
pub const PYTHON_MODULES: &[PythonModule] = &[
    PythonModule {
        module: "kubernetes_validate",
        package: "kubernetes-validate",
        why: "offline validation of the rendered templates against the Kubernetes 1.32 schemas",
    },
    PythonModule {
        module: "cyclonedx.validation.json",
        package: "cyclonedx-python-lib[json-validation]",
        why: "the CycloneDX 1.5 JSON schema, an independent check of rel's SBOMs",
    },
    PythonModule {
        // The schema validator the extra above brings (the module imports without it).
        module: "jsonschema",
        package: "cyclonedx-python-lib[json-validation]",
        why: "the CycloneDX 1.5 JSON schema, an independent check of rel's SBOMs",
    },
];

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Make sure every Python module is importable: `pip install` the missing ones (into the user's
/// site when not root), otherwise fail naming them.
pub fn ensure_python_modules() -> Result<(), String> {
    if !on_path("python3") {
        return Err("the tests need python3 (for kubernetes-validate); install it: apt-get install -y python3 python3-pip".to_owned());
    }
    let missing: Vec<&PythonModule> = PYTHON_MODULES
        .iter()
        .filter(|m| !python_has(m.module))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|m| m.package).collect();
    packages.dedup();
    eprintln!("xtask: installing {} with pip ({})", packages.join(" "), {
        let mut why: Vec<&str> = missing.iter().map(|m| m.why).collect();
        why.dedup();
        why.join("; ")
    });
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--quiet"]);
    if !is_root() {
        pip.arg("--user");
    }
    // Debian's python3 marks its site "externally managed" (PEP 668); a test tool installs there
    // on purpose.
    pip.env("PIP_BREAK_SYSTEM_PACKAGES", "1").args(&packages);
    run(&mut pip).map_err(|e| {
        format!(
            "{e}; install them with: python3 -m pip install {}",
            packages.join(" ")
        )
    })?;
    let still: Vec<&str> = PYTHON_MODULES
        .iter()
        .filter(|m| !python_has(m.module))
        .map(|m| m.package)
        .collect();
    if !still.is_empty() {
        return Err(format!(
            "pip finished but {} is still not importable",
            still.join(", ")
        ));
    }
    Ok(())
}
