//! `build --verify-reproducible V`: rebuild every component of release V from its source commit
//! in a clean git worktree (`target/rel/reproduce/<commit>`, removed afterwards) and compare the
//! digests with the lockfile's. The promise that images are a function of the commit, checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lockfile::Lockfile;
use crate::ops::build::{BuildOptions, build};
use crate::ops::{RegistryOptions, Workspace};
use crate::report::{Check, Report};
use crate::version::Version;
use crate::{Error, env_vars};

/// Why the reproducibility check cannot run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReproduceError {
    #[error("there is no {lockfile} to rebuild")]
    #[diagnostic(
        code(rel::reproduce::no_lockfile),
        help("lock the release first: `rel lock --version {version}`")
    )]
    NoLockfile { lockfile: String, version: Version },

    #[error("git {args} failed: {stderr}")]
    #[diagnostic(
        code(rel::reproduce::git),
        help(
            "the reproducibility check needs the project in a git clone with the lockfile's commits"
        )
    )]
    Git { args: String, stderr: String },

    #[error("cannot check out {commit} for the rebuild")]
    #[diagnostic(
        code(rel::reproduce::checkout),
        help("the lockfile's sourceCommit must be in this clone: `git fetch` it")
    )]
    Checkout {
        commit: String,
        #[source]
        source: Box<ReproduceError>,
    },
}

/// Rebuild and compare; `Err` only when the check cannot run (no lockfile, no git).
pub(crate) fn verify_reproducible(ws: &Workspace, version: &Version) -> Result<Report, Error> {
    let root = ws.root();
    let lock_path = crate::releases::lockfile_path(root, version);
    if !lock_path.is_file() {
        return Err(ReproduceError::NoLockfile {
            lockfile: ws.display(&lock_path),
            version: version.clone(),
        }
        .into());
    }
    let lockfile = Lockfile::load(&lock_path)?;
    let mut report = Report::new("reproducible", version.to_string());
    // Components rel built, grouped by the commit and tag they were built at.
    let mut groups: BTreeMap<(String, Option<String>), Vec<String>> = BTreeMap::new();
    for (name, c) in &lockfile.components {
        match (&c.krate, &c.source_commit) {
            (Some(_), Some(commit)) => groups
                .entry((commit.clone(), c.tag.clone()))
                .or_default()
                .push(name.clone()),
            _ => report.push(Check::skip(
                name.clone(),
                "not built by rel (no crate or source commit in the lockfile)",
            )),
        }
    }
    let toplevel = git(root, &["rev-parse", "--show-toplevel"])?;
    let prefix = git(root, &["rev-parse", "--show-prefix"])?;
    for ((commit, tag), names) in groups {
        let dir = root.join("target/rel/reproduce").join(&commit);
        remove_worktree(Path::new(&toplevel), &dir);
        git(
            Path::new(&toplevel),
            &[
                "worktree",
                "add",
                "--detach",
                "--force",
                &dir.to_string_lossy(),
                &commit,
            ],
        )
        .map_err(|e| match e {
            Error::Reproduce(source @ ReproduceError::Git { .. }) => ReproduceError::Checkout {
                commit: commit.clone(),
                source: Box::new(source),
            }
            .into(),
            other => other,
        })?;
        let result = rebuild(ws, &dir.join(&prefix), &names, tag);
        remove_worktree(Path::new(&toplevel), &dir);
        let rebuilt = result?;
        for name in names {
            let locked = &lockfile.components[&name].digest;
            match rebuilt.get(&name) {
                Some(d) if d == locked => report.push(Check::pass(
                    name,
                    format!("rebuilt from {} to the locked {locked}", short(&commit)),
                )),
                Some(d) => report.push(Check::fail(
                    name,
                    format!(
                        "rebuilt from {} to {d}, the lockfile pins {locked}: the image is not reproducible from its commit (or the lockfile names another image, or another rel version built it: the layer is rel's format, and this rel adds `.dep-v0` to every binary)",
                        short(&commit)
                    ),
                )),
                None => report.push(Check::fail(name, "the rebuild produced no image")),
            }
        }
    }
    Ok(report)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Build `names` in the checkout at `project` without pushing; their digests.
fn rebuild(
    ws: &Workspace,
    project: &Path,
    names: &[String],
    tag: Option<String>,
) -> Result<BTreeMap<String, image_ref::Digest>, Error> {
    let config = crate::config::Config::load(&project.join(crate::config::FILE_NAME))?;
    let clean = Workspace::new(config, ws.cwd.clone());
    let mut opts = BuildOptions::from_env(
        names.to_vec(),
        RegistryOptions {
            tag,
            ..Default::default()
        },
    );
    // Compiled dependencies are shared with the everyday release builds (the remapped paths keep
    // the output independent of where the checkout is).
    if opts.cargo_target_dir.is_none() {
        opts.cargo_target_dir = Some(ws.root().join(crate::build::OUT_DIR).join("cargo"));
    }
    let outcome = build(&clean, &opts, |_| {})?;
    Ok(outcome
        .output
        .components
        .into_iter()
        .map(|c| (c.component, c.digest))
        .collect())
}

fn remove_worktree(toplevel: &Path, dir: &PathBuf) {
    if dir.exists() {
        let _ = git(
            toplevel,
            &["worktree", "remove", "--force", &dir.to_string_lossy()],
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = git(toplevel, &["worktree", "prune"]);
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = env_vars::scrub_secrets(&mut Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| Error::io("run git", dir, e))?;
    if !out.status.success() {
        return Err(ReproduceError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
