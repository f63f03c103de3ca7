//! `rel diff`: what pinning a release (or a commit's overlay) changes in an environment's rendered
//! manifests, per object, offline.
//!
//! Both sides are rendered with the native renderer. The working tree is never written: a pinned
//! overlay is rendered from a temporary tree that mirrors the project (symbolic links to
//! everything but the overlay directory, which is copied and then pinned in the copy); `--rev`
//! reads the repository's tree at that commit into a temporary directory through git2. The
//! comparison itself, its normalisation and the masking of secrets are `crates/manifest-diff`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image_ref::Digest;
use manifest_diff::{ImageMove, ManifestDiff, Masker, View};

use crate::Error;

/// What `rel diff` was asked that it cannot compare.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DiffInputError {
    #[error("nothing to compare against")]
    #[diagnostic(
        code(rel::diff::nothing),
        help(
            "pass --version V (the release to pin), --from V1 --to V2, or --rev GIT_REV (the overlay at a commit)"
        )
    )]
    Nothing,

    #[error("--from needs --to")]
    #[diagnostic(
        code(rel::diff::from_without_to),
        help("pass --from V1 --to V2 to compare two releases pinned into the overlay")
    )]
    FromWithoutTo,

    #[error("{overlay} does not exist at {rev}")]
    #[diagnostic(
        code(rel::diff::no_overlay_at),
        help("pick a revision where the environment's overlay exists (`git log -- {overlay}`)")
    )]
    NoOverlayAt { overlay: String, rev: String },

    #[error("{} is outside the project at {}", overlay.display(), root.display())]
    #[diagnostic(
        code(rel::diff::outside),
        help("keep the environment's overlay inside the repository")
    )]
    Outside { overlay: PathBuf, root: PathBuf },
}
use crate::config::Config;
use crate::lockfile::Lockfile;
use crate::overlay_pin::{PinPlan, kustomization_file, pins_of, plan_text};
use crate::version::Version;

/// What to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub env: String,
    /// The "after" side: the overlay pinned to this release (`--version V`, `--to V2`).
    pub version: Option<Version>,
    /// The "before" side pinned to this release first (`--from V1`).
    pub from: Option<Version>,
    /// The "before" side read from this git revision instead of the working tree (`--rev`).
    /// Without `version`, the "after" side is the working tree.
    pub rev: Option<String>,
}

/// The result: what changes between the two sides.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffOutcome {
    pub env: String,
    /// What the "before" side is, e.g. `overlays/staging (working tree)`.
    pub before: String,
    /// What the "after" side is, e.g. `overlays/staging pinned to release 0.2.0`.
    pub after: String,
    /// Per component, the digest move and source commit range (changed components only).
    pub images: Vec<ImageMove>,
    #[serde(flatten)]
    pub diff: ManifestDiff,
}

impl DiffOutcome {
    pub fn has_changes(&self) -> bool {
        !self.diff.is_empty()
    }

    /// The one-line title: `staging: <before> → <after>`.
    pub fn title(&self) -> String {
        format!("{}: {} → {}", self.env, self.before, self.after)
    }

    /// Unified-style text; `color` adds ANSI colours.
    pub fn to_text(&self, color: bool) -> String {
        let title = self.title();
        manifest_diff::render::text(&self.view(&title), color)
    }

    /// Markdown for a pull request body, at most `budget` bytes.
    pub fn to_markdown(&self, budget: usize) -> String {
        let title = format!("Manifest changes in {}", self.env);
        manifest_diff::render::markdown(&self.view(&title), budget)
    }

    fn view<'a>(&'a self, title: &'a str) -> View<'a> {
        View {
            title,
            images: &self.images,
            diff: &self.diff,
        }
    }
}

/// Compute the diff `opts` asks for. Changes nothing on disk but temporary directories.
pub fn diff(config: &Config, opts: &DiffOptions) -> Result<DiffOutcome, Error> {
    let env = config.environment(&opts.env)?;
    let overlay = config.overlay_dir(env);
    let shown = env.overlay.display().to_string();
    if opts.version.is_none() && opts.rev.is_none() {
        return Err(DiffInputError::Nothing.into());
    }
    if opts.from.is_some() && opts.version.is_none() {
        return Err(DiffInputError::FromWithoutTo.into());
    }
    let load = |v: &Version| Lockfile::load(&crate::releases::lockfile_path(&config.root, v));
    let to = opts.version.as_ref().map(load).transpose()?;
    let from = opts.from.as_ref().map(load).transpose()?;

    // The tree the "before" side (and a pinned "after" side) starts from.
    let mut base = match &opts.rev {
        Some(rev) => Tree::at_rev(config, &overlay, rev)?,
        None => Tree::working(config, &overlay)?,
    };
    let file = kustomization_file(&base.overlay)?;
    let base_text =
        std::fs::read_to_string(&file).map_err(|e| Error::io("read the overlay", &file, e))?;
    let base_label = match &opts.rev {
        Some(rev) => format!("{shown} at {rev}"),
        None => format!("{shown} (working tree)"),
    };

    let (before_text, before_label) = match &from {
        Some(l) => (
            plan_text(&base_text, &file, l, config)?.new_text,
            format!("{base_label} pinned to release {}", l.version),
        ),
        None => (base_text.clone(), base_label.clone()),
    };
    let before = base.render(&file, &before_text)?;
    let (after, after_text, after_label) = match &to {
        Some(l) => {
            let text = plan_text(&base_text, &file, l, config)?.new_text;
            (
                base.render(&file, &text)?,
                text,
                format!("pinned to release {}", l.version),
            )
        }
        None => {
            // --rev alone: the commit's overlay against the working tree's.
            let real = kustomization_file(&overlay)?;
            let text = std::fs::read_to_string(&real)
                .map_err(|e| Error::io("read the overlay", &real, e))?;
            (
                render_dir(&overlay)?,
                text,
                format!("{shown} (working tree)"),
            )
        }
    };
    let masker = Masker::random()?;
    let manifests = manifest_diff::diff(&before, &after, &masker)?;
    let known: Vec<&Lockfile> = to.iter().chain(from.iter()).collect();
    let images = image_moves(config, &file, &before_text, &after_text, &known)?;
    Ok(DiffOutcome {
        env: opts.env.clone(),
        before: before_label,
        after: after_label,
        images,
        diff: manifests,
    })
}

/// The Markdown section for a pull request body: the environment's overlay as `pin.old_text`
/// and as `pin.new_text`, the rest of the tree (bases, patches) from the working tree through a
/// temporary mirror, at most `budget` bytes. `previous` (the release the environment ran, when
/// known) gives the old source commits.
pub fn pin_markdown(
    config: &Config,
    env: &str,
    pin: &PinPlan,
    lockfile: &Lockfile,
    previous: Option<&Lockfile>,
    budget: usize,
) -> Result<String, Error> {
    let overlay = config.overlay_dir(config.environment(env)?);
    let tree = Tree::working(config, &overlay)?;
    markdown_in(tree, config, env, pin, &[lockfile], previous, budget)
}

/// What `rel promote` puts in the pull request body (and prints with `--dry-run`): the
/// promotion's manifest diff as Markdown, at most `budget` bytes. Rendered from the tree of the
/// commit the promotion is built on (`plan.base`), so uncommitted changes do not show.
pub fn promotion_markdown(
    config: &Config,
    plan: &crate::promote::Plan,
    budget: usize,
) -> Result<String, Error> {
    let overlay = config.overlay_dir(config.environment(&plan.env)?);
    let tree = Tree::at_rev(config, &overlay, &plan.base.to_string())?;
    markdown_in(
        tree,
        config,
        &plan.env,
        &plan.pin,
        &[&plan.lockfile],
        plan.previous.as_ref(),
        budget,
    )
}

fn markdown_in(
    mut tree: Tree,
    config: &Config,
    env: &str,
    pin: &PinPlan,
    lockfiles: &[&Lockfile],
    previous: Option<&Lockfile>,
    budget: usize,
) -> Result<String, Error> {
    let file = tree.overlay.join(pin.file.file_name().unwrap_or_default());
    let before = tree.render(&file, &pin.old_text)?;
    let after = tree.render(&file, &pin.new_text)?;
    let masker = Masker::random()?;
    let manifests = manifest_diff::diff(&before, &after, &masker)?;
    let known: Vec<&Lockfile> = lockfiles.iter().copied().chain(previous).collect();
    let images = image_moves(config, &file, &pin.old_text, &pin.new_text, &known)?;
    let outcome = DiffOutcome {
        env: env.to_owned(),
        before: String::new(),
        after: String::new(),
        images,
        diff: manifests,
    };
    Ok(outcome.to_markdown(budget))
}

/// Per component whose pin differs between the two overlay texts: the digests and the source
/// commits, from the given lockfiles first, then from any lockfile in `releases/`.
fn image_moves(
    config: &Config,
    file: &Path,
    before: &str,
    after: &str,
    known: &[&Lockfile],
) -> Result<Vec<ImageMove>, Error> {
    let old = pins_of(before, file)?;
    let new = pins_of(after, file)?;
    let mut all: Vec<&str> = old.keys().chain(new.keys()).map(String::as_str).collect();
    all.sort_unstable();
    all.dedup();
    let changed: Vec<&str> = all
        .into_iter()
        .filter(|i| old.get(*i) != new.get(*i))
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let releases = crate::status::releases(&config.root);
    let lockfiles: Vec<&Lockfile> = known.iter().copied().chain(releases.iter()).collect();
    // digest → (component, source commit, repo)
    let mut by_digest: BTreeMap<&Digest, (String, Option<String>, Option<String>)> =
        BTreeMap::new();
    for l in lockfiles.iter().rev() {
        for (name, c) in &l.components {
            by_digest.insert(
                &c.digest,
                (name.clone(), c.source_commit.clone(), c.repo.clone()),
            );
        }
    }
    let component_of = |image: &str| {
        config
            .components
            .iter()
            .find(|(_, c)| c.image.to_string() == image)
            .map(|(n, _)| n.clone())
    };
    Ok(changed
        .into_iter()
        .map(|image| {
            let od = old.get(image).cloned();
            let nd = new.get(image).cloned();
            let o = od.as_ref().and_then(|d| by_digest.get(d));
            let n = nd.as_ref().and_then(|d| by_digest.get(d));
            let component = component_of(image)
                .or_else(|| n.or(o).map(|(c, _, _)| c.clone()))
                .unwrap_or_else(|| image.rsplit('/').next().unwrap_or(image).to_owned());
            ImageMove {
                component,
                image: image.to_owned(),
                old_digest: od.clone(),
                new_digest: nd.clone(),
                old_commit: o.and_then(|(_, c, _)| c.clone()),
                new_commit: n.and_then(|(_, c, _)| c.clone()),
                source_repo: n
                    .or(o)
                    .and_then(|(_, _, r)| r.clone())
                    .or_else(|| config.repo.clone()),
            }
        })
        .collect())
}

fn render_dir(dir: &Path) -> Result<Vec<kustomize::Object>, Error> {
    kustomize::render(dir)
        .map(|r| r.objects)
        .map_err(|source| Error::Render {
            dir: dir.display().to_string(),
            source,
        })
}

/// A tree to render an overlay from, with the overlay's kustomization replaceable.
struct Tree {
    /// The overlay directory in this tree.
    overlay: PathBuf,
    /// Where the tree lives: the real working tree (not writable) or a temporary copy.
    kind: TreeKind,
}

enum TreeKind {
    /// The working tree; a mirror is made on the first render of a changed text.
    Working {
        root: PathBuf,
        real_overlay: PathBuf,
        mirror: Option<TempDir>,
    },
    /// A temporary directory rel owns (a commit's tree, or a mirror): written in place.
    Owned { _dir: TempDir },
}

impl Tree {
    fn working(config: &Config, overlay: &Path) -> Result<Tree, Error> {
        // Mirror from the repository root when there is one, so overlays may reach above rel.toml.
        let root = crate::git_repo::Repo::discover(&config.root)
            .ok()
            .flatten()
            .map(|r| r.workdir().to_path_buf())
            .unwrap_or_else(|| config.root.clone());
        let root = root.canonicalize().unwrap_or(root);
        let real_overlay = overlay
            .canonicalize()
            .map_err(|e| Error::io("find the overlay directory", overlay, e))?;
        Ok(Tree {
            overlay: real_overlay.clone(),
            kind: TreeKind::Working {
                root,
                real_overlay,
                mirror: None,
            },
        })
    }

    /// The repository's tree at `rev`, written to a temporary directory.
    fn at_rev(config: &Config, overlay: &Path, rev: &str) -> Result<Tree, Error> {
        let repo = crate::git_repo::Repo::open(&config.root)?;
        let commit = repo.resolve_commit(rev)?;
        let rel = repo.rel_path(overlay)?;
        let dir = TempDir::new()?;
        write_tree(repo.raw(), commit, dir.path())?;
        let overlay = dir.path().join(&rel);
        if !overlay.is_dir() {
            return Err(DiffInputError::NoOverlayAt {
                overlay: rel.to_string(),
                rev: rev.to_string(),
            }
            .into());
        }
        Ok(Tree {
            overlay,
            kind: TreeKind::Owned { _dir: dir },
        })
    }

    /// Render the overlay with its kustomization file (`file`, in `self.overlay` or the real
    /// overlay) holding `text`.
    fn render(&mut self, file: &Path, text: &str) -> Result<Vec<kustomize::Object>, Error> {
        let name = file.file_name().unwrap_or_default().to_owned();
        if let TreeKind::Working {
            root,
            real_overlay,
            mirror,
        } = &mut self.kind
        {
            let current = std::fs::read_to_string(real_overlay.join(&name)).ok();
            if mirror.is_none() && current.as_deref() == Some(text) {
                return render_dir(real_overlay);
            }
            if mirror.is_none() {
                let dir = TempDir::new()?;
                self.overlay = mirror_tree(root, real_overlay, dir.path())?;
                *mirror = Some(dir);
            }
        }
        let target = self.overlay.join(&name);
        std::fs::write(&target, text)
            .map_err(|e| Error::io("write a temporary overlay", &target, e))?;
        render_dir(&self.overlay)
    }
}

/// Mirror `root` into `into` for rendering `overlay` (inside `root`): the directories on the way
/// down are real, their other entries are symbolic links to the originals, and the overlay
/// directory itself is copied. Returns the overlay's path in the mirror.
fn mirror_tree(root: &Path, overlay: &Path, into: &Path) -> Result<PathBuf, Error> {
    let rel = overlay
        .strip_prefix(root)
        .map_err(|_| DiffInputError::Outside {
            overlay: overlay.to_owned(),
            root: root.to_owned(),
        })?;
    let mut real = root.to_path_buf();
    let mut copy = into.to_path_buf();
    for part in rel.components() {
        for entry in
            std::fs::read_dir(&real).map_err(|e| Error::io("read a directory", &real, e))?
        {
            let entry = entry.map_err(|e| Error::io("read a directory", &real, e))?;
            if entry.file_name() == part.as_os_str() {
                continue;
            }
            link(&entry.path(), &copy.join(entry.file_name()))?;
        }
        real.push(part);
        copy.push(part);
        std::fs::create_dir(&copy)
            .map_err(|e| Error::io("create a temporary directory", &copy, e))?;
    }
    copy_dir(&real, &copy)?;
    Ok(copy)
}

#[cfg(unix)]
fn link(from: &Path, to: &Path) -> Result<(), Error> {
    std::os::unix::fs::symlink(from, to).map_err(|e| Error::io("link into a temporary tree", to, e))
}

#[cfg(not(unix))]
fn link(from: &Path, to: &Path) -> Result<(), Error> {
    if from.is_dir() {
        std::fs::create_dir_all(to)
            .map_err(|e| Error::io("create a temporary directory", to, e))?;
        copy_dir(from, to)
    } else {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| Error::io("copy into a temporary tree", to, e))
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(from).map_err(|e| Error::io("read a directory", from, e))? {
        let entry = entry.map_err(|e| Error::io("read a directory", from, e))?;
        let target = to.join(entry.file_name());
        let ty = entry
            .file_type()
            .map_err(|e| Error::io("read a directory", entry.path(), e))?;
        if ty.is_dir() {
            std::fs::create_dir(&target)
                .map_err(|e| Error::io("create a temporary directory", &target, e))?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| Error::io("copy into a temporary tree", &target, e))?;
        }
    }
    Ok(())
}

/// Write the tree of `commit` under `into` (files and symbolic links; submodules are skipped).
fn write_tree(repo: &git2::Repository, commit: git2::Oid, into: &Path) -> Result<(), Error> {
    let git = |action: &'static str| {
        move |source: git2::Error| {
            Error::from(crate::git_repo::GitError::Libgit2 { action, source })
        }
    };
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git("read the commit's tree"))?;
    let mut failed: Option<Error> = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let Some(name) = entry.name() else {
            return git2::TreeWalkResult::Skip;
        };
        let path = into.join(dir).join(name);
        let result = match entry.kind() {
            Some(git2::ObjectType::Tree) => std::fs::create_dir_all(&path)
                .map_err(|e| Error::io("create a temporary directory", &path, e)),
            Some(git2::ObjectType::Blob) => match repo.find_blob(entry.id()) {
                Ok(blob) if entry.filemode() == 0o120000 => {
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    symlink_or_copy(&target, &path)
                }
                Ok(blob) => std::fs::write(&path, blob.content())
                    .map_err(|e| Error::io("write a temporary file", &path, e)),
                Err(e) => Err(git("read a file")(e)),
            },
            _ => Ok(()),
        };
        match result {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failed = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failed.is_some() { Ok(()) } else { Err(e) })
    .map_err(git("walk the commit's tree"))?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(unix)]
fn symlink_or_copy(target: &str, path: &Path) -> Result<(), Error> {
    std::os::unix::fs::symlink(target, path)
        .map_err(|e| Error::io("write a temporary link", path, e))
}

#[cfg(not(unix))]
fn symlink_or_copy(_target: &str, _path: &Path) -> Result<(), Error> {
    Ok(())
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Error> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "rel-diff-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .map_err(|e| Error::io("create a temporary directory", &path, e))?;
        // Canonical, so the renderer's root checks (which resolve links) agree with our paths.
        let path = path.canonicalize().unwrap_or(path);
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
