//! `lock`: compose a release lockfile from a build result and explicit pins, check it with the
//! coherence gate, and write `releases/<version>.yaml` (created exclusively; a changed lockfile
//! is refused unless forced while unvalidated).

use std::collections::BTreeMap;
use std::path::PathBuf;

use image_ref::Digest;

use crate::Error;
use crate::build_output::BuildOutput;
use crate::config::{ComponentSource, Config};
use crate::lockfile::{LockedComponent, Lockfile};
use crate::ops::Workspace;
use crate::version::Version;

/// Why `rel lock` writes nothing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("the lockfile rel would write is not coherent:\n{report}")]
    #[diagnostic(
        code(rel::lock::incoherent),
        help("fix the inputs named above (rel.toml, --digest, --built-against) and run again")
    )]
    Incoherent { report: String },

    #[error("{shown} already exists with different content:\n{changes}")]
    #[diagnostic(
        code(rel::lock::changed),
        help(
            "a lockfile is the record of a release: cut a new version, or pass --force to replace it (allowed only while the version is not validated)"
        )
    )]
    Changed { shown: String, changes: String },

    #[error("{source_name} names component `{name}`, which rel.toml does not define")]
    #[diagnostic(
        code(rel::lock::unknown_component),
        help("components in rel.toml: {known}")
    )]
    UnknownComponent {
        name: String,
        source_name: String,
        known: String,
    },

    #[error("nothing to lock: no --digest given and no build result at {shown}")]
    #[diagnostic(
        code(rel::lock::nothing),
        help("run `rel build` first, or pin each component with `--digest NAME=sha256:...`")
    )]
    Nothing { shown: String },

    #[error("--built-against names `{name}`, which has no digest to lock")]
    #[diagnostic(
        code(rel::lock::built_against_without_digest),
        help("add `--digest {name}=sha256:...`")
    )]
    BuiltAgainstWithoutDigest { name: String },

    #[error("no digest for {missing}: every component of rel.toml must be pinned")]
    #[diagnostic(
        code(rel::lock::missing),
        help("build them with `rel build`, or pin them: {flags}")
    )]
    Missing { missing: String, flags: String },

    #[error("{names} must carry builtAgainstEngine (rel.toml: built-against-engine = true)")]
    #[diagnostic(
        code(rel::lock::built_against),
        help("say which engine each was built against: {flags}")
    )]
    NeedsBuiltAgainst { names: String, flags: String },
}

impl LockError {
    /// A lockfile that exists with other content is refused (exit 1); the rest is input (exit 2).
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            LockError::Changed { .. } => crate::error::Exit::Failed,
            _ => crate::error::Exit::Error,
        }
    }
}

/// What to lock.
#[derive(Debug, Clone)]
pub(crate) struct LockOptions {
    pub version: Version,
    /// [default: the release version]
    pub engine_version: Option<Version>,
    /// Build result [default: target/rel/build.json when no digest is given].
    pub from: Option<PathBuf>,
    /// Components pinned by digest; they override the build result.
    pub digests: Vec<(String, Digest)>,
    /// Engine versions external components were built against.
    pub built_against: Vec<(String, Version)>,
    /// Replace an existing lockfile with different content (only while not validated).
    pub force: bool,
}

/// What `lock` did.
#[derive(Debug)]
pub(crate) enum Locked {
    Wrote { path: PathBuf, lockfile: Lockfile },
    UpToDate { path: PathBuf, lockfile: Lockfile },
}

impl Locked {
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            Locked::Wrote { path, .. } | Locked::UpToDate { path, .. } => path,
        }
    }

    pub(crate) fn lockfile(&self) -> &Lockfile {
        match self {
            Locked::Wrote { lockfile, .. } | Locked::UpToDate { lockfile, .. } => lockfile,
        }
    }
}

/// Compose, check and write the lockfile; sign it (`releases/<v>.yaml.minisig`) when the
/// workspace has a signing key.
pub(crate) fn lock(ws: &Workspace, args: &LockOptions) -> Result<Locked, Error> {
    if let Some(key) = &ws.signer {
        crate::signing::ensure_minisign(key, "a lockfile")?;
    }
    let locked = write_lockfile(ws, args)?;
    if let Some(key) = &ws.signer {
        let path = locked.path();
        let bytes = std::fs::read(path).map_err(|e| Error::io("read the lockfile", path, e))?;
        crate::signing::write_detached(key, path, &bytes)?;
    }
    Ok(locked)
}

fn write_lockfile(ws: &Workspace, args: &LockOptions) -> Result<Locked, Error> {
    let config = &ws.config;
    let lockfile = compose(ws, args)?;
    let text = lockfile.to_yaml();

    // Check our own output with the same gate CI will run.
    let path = crate::releases::lockfile_path(&config.root, &args.version);
    let shown = ws.display(&path);
    let loaded = crate::lockfile::parse_raw(shown.as_ref(), &text)?;
    let report = crate::gate::coherence::check(&loaded, Some(config));
    if !report.passed() {
        return Err(LockError::Incoherent {
            report: report.to_plain(),
        }
        .into());
    }

    let refuse_changed = |existing: &str| {
        Error::from(LockError::Changed {
            shown: shown.to_string(),
            changes: describe_changes(existing, &lockfile),
        })
    };
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == text => {
            return Ok(Locked::UpToDate { path, lockfile });
        }
        Ok(existing) => {
            if !args.force {
                return Err(refuse_changed(&existing));
            }
            crate::releases::ensure_mutable(&config.root, &args.version)?;
            tracing::warn!(
                "replacing {shown} (--force):\n{}",
                describe_changes(&existing, &lockfile)
            );
            crate::atomic_write::write(&path, text.as_bytes())
                .map_err(|e| Error::io("write the lockfile", &path, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new lockfile is created exclusively: of two racing writers exactly one wins, and
            // the other compares against the winner's content like any later run would.
            match crate::atomic_write::create_new(&path, text.as_bytes(), None) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = std::fs::read_to_string(&path)
                        .map_err(|e| Error::io("read the existing lockfile", &path, e))?;
                    if existing == text {
                        return Ok(Locked::UpToDate { path, lockfile });
                    }
                    return Err(refuse_changed(&existing));
                }
                Err(e) => return Err(Error::io("write the lockfile", &path, e)),
            }
        }
        Err(e) => return Err(Error::io("read the existing lockfile", &path, e)),
    }
    Ok(Locked::Wrote { path, lockfile })
}

/// Build the lockfile from the build result, `--digest` and `--built-against`.
fn compose(ws: &Workspace, args: &LockOptions) -> Result<Lockfile, Error> {
    let config = &ws.config;
    let engine_version = args
        .engine_version
        .clone()
        .unwrap_or_else(|| args.version.clone());
    let unknown = |name: &str, source: &str| {
        Error::from(LockError::UnknownComponent {
            name: name.to_owned(),
            source_name: source.to_owned(),
            known: config
                .components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })
    };

    let from = match &args.from {
        Some(p) => Some(if p.is_absolute() {
            p.clone()
        } else {
            ws.cwd.join(p)
        }),
        None if args.digests.is_empty() => {
            Some(config.root.join(crate::build_output::DEFAULT_PATH))
        }
        None => None,
    };
    let mut entries: BTreeMap<String, LockedComponent> = BTreeMap::new();
    if let Some(from) = &from {
        if args.from.is_none() && !from.exists() {
            return Err(LockError::Nothing {
                shown: ws.display(from).to_string(),
            }
            .into());
        }
        let build = BuildOutput::read(from)?;
        for built in build.components {
            let Some(component) = config.components.get(&built.component) else {
                return Err(unknown(&built.component, &ws.display(from)));
            };
            entries.insert(
                built.component.clone(),
                LockedComponent {
                    repo: repo_of(config, &component.source),
                    image: Some(built.image.without_version()),
                    tag: built.tag,
                    digest: built.digest,
                    built_against_engine: None,
                    source_commit: built.source_commit,
                    krate: Some(built.krate),
                    base: built.base,
                },
            );
        }
    }
    for (name, digest) in &args.digests {
        let (name, digest) = (name.clone(), digest.clone());
        let Some(component) = config.components.get(&name) else {
            return Err(unknown(&name, "--digest"));
        };
        let entry = entries
            .entry(name.clone())
            .or_insert_with(|| LockedComponent {
                repo: repo_of(config, &component.source),
                image: Some(component.image.clone()),
                tag: None,
                digest: digest.clone(),
                built_against_engine: None,
                source_commit: None,
                krate: match &component.source {
                    ComponentSource::Built { krate, .. } => Some(krate.clone()),
                    ComponentSource::External { .. } => None,
                },
                base: None,
            });
        entry.digest = digest;
    }
    for (name, version) in &args.built_against {
        let (name, version) = (name.clone(), version.clone());
        if !config.components.contains_key(&name) {
            return Err(unknown(&name, "--built-against"));
        }
        let Some(entry) = entries.get_mut(&name) else {
            return Err(LockError::BuiltAgainstWithoutDigest { name: name.clone() }.into());
        };
        entry.built_against_engine = Some(version);
    }

    let missing: Vec<&str> = config
        .components
        .keys()
        .filter(|n| !entries.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(LockError::Missing {
            missing: missing.join(", "),
            flags: missing
                .iter()
                .map(|m| format!("--digest {m}=sha256:..."))
                .collect::<Vec<_>>()
                .join(" "),
        }
        .into());
    }
    let needs: Vec<&str> = config
        .components
        .values()
        .filter(|c| {
            c.built_against_engine
                && entries
                    .get(&c.name)
                    .is_some_and(|e| e.built_against_engine.is_none())
        })
        .map(|c| c.name.as_str())
        .collect();
    if !needs.is_empty() {
        return Err(LockError::NeedsBuiltAgainst {
            names: needs.join(", "),
            flags: needs
                .iter()
                .map(|m| format!("--built-against {m}={engine_version}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
        .into());
    }
    Ok(Lockfile {
        version: args.version.clone(),
        engine_version,
        components: entries,
    })
}

fn repo_of(config: &Config, source: &ComponentSource) -> Option<String> {
    match source {
        ComponentSource::External { repo } => Some(repo.clone()),
        ComponentSource::Built { .. } => config.repo.clone(),
    }
}

/// A short, human description of what differs between an existing lockfile and the new one.
fn describe_changes(existing: &str, new: &Lockfile) -> String {
    let old = crate::lockfile::parse_raw("existing".as_ref(), existing).ok();
    let mut lines = Vec::new();
    let old_components = old
        .as_ref()
        .and_then(|o| o.raw.components.as_ref())
        .map(|c| &c.value);
    for (name, c) in &new.components {
        let before = old_components
            .and_then(|m| m.get(name))
            .and_then(|o| o.value.digest.as_ref())
            .map(|d| d.value.clone());
        match before {
            Some(b) if b == c.digest.to_string() => {}
            Some(b) => lines.push(format!("  {name}: {b} -> {}", c.digest)),
            None => lines.push(format!("  {name}: (none) -> {}", c.digest)),
        }
    }
    if let Some(m) = old_components {
        for name in m.keys().filter(|n| !new.components.contains_key(*n)) {
            lines.push(format!("  {name}: removed"));
        }
    }
    if lines.is_empty() {
        lines.push("  (same digests; other fields differ)".to_owned());
    }
    lines.join("\n")
}
