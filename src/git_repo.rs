//! Git plumbing for promotion, rollback, records and audit.
//!
//! Everything local goes through `git2` (libgit2): reading files at a commit, building commits
//! from trees without touching the working tree, creating branches and moving them with
//! compare-and-swap, walking history for trailers.
//!
//! Pushing goes through the user's `git` (`git push --force-with-lease=<ref>:<expected>`), for two
//! reasons: libgit2's https and ssh transports need OpenSSL/libssh2 (we build git2 without them),
//! and the user's `git` already has their credentials (credential helpers, ssh agent, the forge's
//! CLI login) so rel never handles a git password or puts a token in argv. `--force-with-lease`
//! with an explicit expected value is checked by the remote when it updates the ref, so a branch
//! that moved under us is never overwritten.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{ErrorCode, ObjectType, Oid, Repository, Signature};

use crate::error::Exit;

/// What can go wrong in the repository rel works in.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GitError {
    #[error("git: could not {action}: {}", source.message())]
    #[diagnostic(
        code(rel::git::repository),
        help("check the repository with `git status`; rel needs a readable git repository")
    )]
    Libgit2 {
        action: &'static str,
        #[source]
        source: git2::Error,
    },

    #[error("{} is inside a bare git repository", path.display())]
    #[diagnostic(code(rel::git::bare), help("run rel in a clone with a working tree"))]
    Bare { path: PathBuf },

    #[error("{} is not inside a git repository", path.display())]
    #[diagnostic(
        code(rel::git::not_a_repository),
        help(
            "rel promotes and rolls back through git: run it in a clone of the GitOps repository"
        )
    )]
    NotARepository { path: PathBuf },

    #[error("cannot resolve {}", path.display())]
    #[diagnostic(
        code(rel::git::path),
        help("check that the path and its parent directory exist and are readable")
    )]
    ResolvePath {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is outside the git repository at {}", path.display(), root.display())]
    #[diagnostic(
        code(rel::git::outside),
        help("keep rel.toml, releases/ and overlays/ inside the repository")
    )]
    OutsideRepository { path: PathBuf, root: PathBuf },

    #[error("the repository has no commits yet")]
    #[diagnostic(
        code(rel::git::no_commits),
        help("commit rel.toml, releases/ and overlays/ first")
    )]
    NoCommits,

    #[error("`{rev}` is not a commit in this repository: {}", source.message())]
    #[diagnostic(
        code(rel::git::revision),
        help("give a commit id or a branch name (`git log --oneline` lists them)")
    )]
    UnknownRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },

    #[error("{refname} is locked by {} (a git or rel process is updating it, or one was killed while it did)", lock.display())]
    #[diagnostic(
        code(rel::git::locked),
        help("if no git or rel command is running in this clone, remove the stale lock with `rm '{}'` and run the command again", lock.display())
    )]
    Locked { refname: String, lock: PathBuf },

    #[error("branch {name} already exists (another rel run created it, or an earlier one)")]
    #[diagnostic(
        code(rel::git::branch_exists),
        help(
            "look at it with `git log {name}`; delete it with `git branch -D {name}` to start over"
        )
    )]
    BranchExists { name: String },

    #[error("{refname} moved while rel was working (someone committed); nothing was changed")]
    #[diagnostic(code(rel::git::moved), help("run the command again"))]
    Moved { refname: String },

    #[error("HEAD is detached")]
    #[diagnostic(
        code(rel::git::detached),
        help("check out the branch the environments live on (e.g. `git switch main`)")
    )]
    DetachedHead,

    #[error("could not {action}: {}", path.display())]
    #[diagnostic(
        code(rel::git::working_tree),
        help(
            "check that the working tree is writable; the branch already moved, so `git status` shows what is left to update (`git checkout -- PATH`)"
        )
    )]
    WorkingTree {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{}` is not a git remote name", remote.escape_debug())]
    #[diagnostic(
        code(rel::git::remote_name),
        help("set `[forge] remote` in rel.toml to a remote `git remote` lists (e.g. `origin`)")
    )]
    RemoteName { remote: String },

    #[error("could not run `git {command}`")]
    #[diagnostic(
        code(rel::git::no_git),
        help("install git (rel pushes through it, with your credentials)")
    )]
    NoGit {
        command: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{remote}/{branch} moved since rel last saw it (expected {expected}); nothing was overwritten"
    )]
    #[diagnostic(
        code(rel::git::remote_moved),
        help(
            "someone else pushed: `git fetch {remote}` and look at `git log {remote}/{branch}`, then run rel again"
        )
    )]
    RemoteMoved {
        remote: String,
        branch: String,
        expected: String,
    },

    #[error("git push to {remote} failed: {stderr}")]
    #[diagnostic(
        code(rel::git::push),
        help(
            "check the remote URL and your git credentials (`git push` must work from this clone)"
        )
    )]
    PushFailed { remote: String, stderr: String },
}

impl GitError {
    /// Refusals (a lock held, a branch that moved or exists) are rel saying no: exit 1.
    pub fn exit(&self) -> Exit {
        match self {
            GitError::Locked { .. }
            | GitError::BranchExists { .. }
            | GitError::Moved { .. }
            | GitError::RemoteMoved { .. } => Exit::Failed,
            _ => Exit::Error,
        }
    }
}

fn git_error(action: &'static str, source: git2::Error) -> GitError {
    GitError::Libgit2 { action, source }
}

type Error = GitError;

/// One file to change in a commit: new bytes, or `None` to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    pub contents: Option<Vec<u8>>,
}

/// A commit as audit and rollback see it.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: Oid,
    /// Seconds since the epoch (committer time).
    pub time: i64,
    pub author: String,
    pub message: String,
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The remote already had exactly this commit.
    UpToDate,
}

/// A repository with a working tree.
pub struct Repo {
    repo: Repository,
    workdir: PathBuf,
}

impl Repo {
    /// The repository containing `path`, or `None` when it is not inside one.
    pub fn discover(path: &Path) -> Result<Option<Repo>, Error> {
        match Repository::discover(path) {
            Ok(repo) => {
                let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
                    return Err(GitError::Bare {
                        path: path.to_owned(),
                    });
                };
                let workdir = workdir.canonicalize().unwrap_or(workdir);
                Ok(Some(Repo { repo, workdir }))
            }
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git_error("open the repository", e)),
        }
    }

    /// The repository containing `path`; an error when there is none.
    pub fn open(path: &Path) -> Result<Repo, Error> {
        Repo::discover(path)?.ok_or_else(|| GitError::NotARepository {
            path: path.to_owned(),
        })
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    /// `abs` relative to the repository root, `/`-separated.
    pub fn rel_path(&self, abs: &Path) -> Result<String, Error> {
        let abs_in = abs;
        let abs = abs.canonicalize().or_else(|_| {
            // A file that does not exist yet: canonicalize its parent.
            let parent = abs.parent().unwrap_or(abs).canonicalize()?;
            Ok::<_, std::io::Error>(parent.join(abs.file_name().unwrap_or_default()))
        });
        let abs = abs.map_err(|source| GitError::ResolvePath {
            path: abs_in.to_owned(),
            source,
        })?;
        let rel = abs
            .strip_prefix(&self.workdir)
            .map_err(|_| GitError::OutsideRepository {
                path: abs.clone(),
                root: self.workdir.clone(),
            })?;
        Ok(rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// The commit HEAD points at.
    pub fn head_commit(&self) -> Result<Oid, Error> {
        let head = self.repo.head().map_err(|e| {
            if e.code() == ErrorCode::UnbornBranch {
                GitError::NoCommits
            } else {
                git_error("read HEAD", e)
            }
        })?;
        head.peel_to_commit()
            .map(|c| c.id())
            .map_err(|e| git_error("read HEAD", e))
    }

    /// The branch HEAD is on (`main`), or `None` when detached.
    pub fn head_branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        if head.is_branch() {
            head.shorthand().map(str::to_owned)
        } else {
            None
        }
    }

    /// Resolve a revision (`main`, `HEAD~2`, a full or short commit id) to a commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<Oid, Error> {
        let obj = self
            .repo
            .revparse_single(rev)
            .map_err(|source| GitError::UnknownRevision {
                rev: rev.to_owned(),
                source,
            })?;
        obj.peel_to_commit()
            .map(|c| c.id())
            .map_err(|e| git_error("resolve a commit", e))
    }

    /// The bytes of `path` at `commit`, or `None` when it does not exist there.
    pub fn read_file(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| git_error("read a commit", e))?;
        match tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Blob) => {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .map_err(|e| git_error("read a file", e))?;
                Ok(Some(blob.content().to_vec()))
            }
            Ok(_) => Ok(None),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git_error("read a file", e)),
        }
    }

    /// The blob id of `path` at `commit`.
    pub fn blob_id(&self, commit: &git2::Commit<'_>, path: &Path) -> Option<Oid> {
        commit.tree().ok()?.get_path(path).ok().map(|e| e.id())
    }

    /// The names of the files directly in `dir` at `commit`.
    pub fn list_dir(&self, commit: Oid, dir: &str) -> Result<Vec<String>, Error> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| git_error("read a commit", e))?;
        let sub = match tree.get_path(Path::new(dir)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(git_error("read a directory", e)),
        };
        let sub = self
            .repo
            .find_tree(sub.id())
            .map_err(|e| git_error("read a directory", e))?;
        Ok(sub
            .iter()
            .filter_map(|e| e.name().map(str::to_owned))
            .collect())
    }

    /// Make a commit whose tree is `parent`'s with `changes` applied. No ref moves.
    pub fn commit_on(
        &self,
        parent: Oid,
        changes: &[FileChange],
        message: &str,
    ) -> Result<Oid, Error> {
        let parent = self
            .repo
            .find_commit(parent)
            .map_err(|e| git_error("read the parent commit", e))?;
        let base = parent
            .tree()
            .map_err(|e| git_error("read the parent tree", e))?;
        let tree = self.apply(Some(&base), changes, "")?;
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(|e| git_error("build the tree", e))?;
        let author = self.identity(Role::Author);
        let committer = self.identity(Role::Committer);
        self.repo
            .commit(None, &author, &committer, message, &tree, &[&parent])
            .map_err(|e| git_error("create the commit", e))
    }

    /// Apply the changes under `prefix` to `base`, recursively; returns the new tree id.
    fn apply(
        &self,
        base: Option<&git2::Tree<'_>>,
        changes: &[FileChange],
        prefix: &str,
    ) -> Result<Oid, Error> {
        let mut builder = self
            .repo
            .treebuilder(base)
            .map_err(|e| git_error("build a tree", e))?;
        let mut subdirs: Vec<&str> = Vec::new();
        for change in changes {
            let rest = &change.path[prefix.len()..];
            match rest.split_once('/') {
                Some((dir, _)) => {
                    if !subdirs.contains(&dir) {
                        subdirs.push(dir);
                    }
                }
                None => match &change.contents {
                    Some(bytes) => {
                        let blob = self
                            .repo
                            .blob(bytes)
                            .map_err(|e| git_error("write a blob", e))?;
                        builder
                            .insert(rest, blob, 0o100644)
                            .map_err(|e| git_error("build a tree", e))?;
                    }
                    None => {
                        if builder.get(rest).ok().flatten().is_some() {
                            builder
                                .remove(rest)
                                .map_err(|e| git_error("build a tree", e))?;
                        }
                    }
                },
            }
        }
        for dir in subdirs {
            let sub_prefix = format!("{prefix}{dir}/");
            let sub_changes: Vec<FileChange> = changes
                .iter()
                .filter(|c| c.path.starts_with(&sub_prefix))
                .cloned()
                .collect();
            let existing = builder
                .get(dir)
                .ok()
                .flatten()
                .filter(|e| e.kind() == Some(ObjectType::Tree))
                .map(|e| e.id());
            let existing = match existing {
                Some(id) => Some(
                    self.repo
                        .find_tree(id)
                        .map_err(|e| git_error("read a tree", e))?,
                ),
                None => None,
            };
            let id = self.apply(existing.as_ref(), &sub_changes, &sub_prefix)?;
            let empty = self
                .repo
                .find_tree(id)
                .map(|t| t.is_empty())
                .unwrap_or(false);
            if empty {
                if builder.get(dir).ok().flatten().is_some() {
                    builder
                        .remove(dir)
                        .map_err(|e| git_error("build a tree", e))?;
                }
            } else {
                builder
                    .insert(dir, id, 0o040000)
                    .map_err(|e| git_error("build a tree", e))?;
            }
        }
        builder.write().map_err(|e| git_error("write a tree", e))
    }

    /// The lock file of `refname` (`<git dir>/refs/heads/x.lock`), when one exists: git (or
    /// libgit2) holds it while it updates the ref, and a killed process leaves it behind.
    fn ref_lock(&self, refname: &str) -> Option<PathBuf> {
        let lock = self.repo.path().join(format!("{refname}.lock"));
        lock.exists().then_some(lock)
    }

    /// The refusal for a locked ref, naming the lock file and how to clear it.
    fn locked(&self, refname: &str) -> Error {
        let lock = self
            .ref_lock(refname)
            .unwrap_or_else(|| self.repo.path().join(format!("{refname}.lock")));
        GitError::Locked {
            refname: refname.to_owned(),
            lock,
        }
    }

    /// The tip of local branch `name`.
    pub fn branch_tip(&self, name: &str) -> Option<Oid> {
        self.repo.refname_to_id(&format!("refs/heads/{name}")).ok()
    }

    /// Create local branch `name` at `oid`; refused when it exists (atomic: git's ref lock).
    pub fn create_branch(&self, name: &str, oid: Oid) -> Result<(), Error> {
        let refname = format!("refs/heads/{name}");
        match self
            .repo
            .reference(&refname, oid, false, &format!("rel: create {name}"))
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == ErrorCode::Locked || self.ref_lock(&refname).is_some() => {
                Err(self.locked(&refname))
            }
            Err(e) if e.code() == ErrorCode::Exists => Err(GitError::BranchExists {
                name: name.to_owned(),
            }),
            Err(e) => Err(git_error("create the branch", e)),
        }
    }

    /// Move local branch `name` from `expected` to `new` (compare-and-swap).
    pub fn move_branch(&self, name: &str, expected: Oid, new: Oid) -> Result<(), Error> {
        let refname = format!("refs/heads/{name}");
        self.repo
            .reference_matching(
                &refname,
                new,
                true,
                expected,
                &format!("rel: update {name}"),
            )
            .map(|_| ())
            .map_err(|e| {
                if self.ref_lock(&refname).is_some() {
                    self.locked(&refname)
                } else if matches!(e.code(), ErrorCode::Modified | ErrorCode::Locked) {
                    GitError::Moved {
                        refname: refname.clone(),
                    }
                } else {
                    git_error("move the branch", e)
                }
            })
    }

    /// Delete local branch `name` if it still points at `oid` (cleanup after a failed push).
    pub fn delete_branch_if_at(&self, name: &str, oid: Oid) {
        if let Ok(mut r) = self.repo.find_reference(&format!("refs/heads/{name}"))
            && r.target() == Some(oid)
        {
            let _ = r.delete();
        }
    }

    /// Paths among `paths` whose working-tree or index content differs from HEAD.
    pub fn dirty_paths(&self, paths: &[String]) -> Result<Vec<String>, Error> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        for p in paths {
            opts.pathspec(p);
        }
        opts.disable_pathspec_match(true);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| git_error("read the working tree status", e))?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().map(str::to_owned))
            .collect())
    }

    /// Move the current branch from `expected` to `new` (compare-and-swap), then bring the
    /// working tree and index up to date for `changes` (each file written atomically).
    pub fn advance_head(
        &self,
        expected: Oid,
        new: Oid,
        changes: &[FileChange],
        reflog: &str,
    ) -> Result<(), Error> {
        let head = self.repo.head().map_err(|e| git_error("read HEAD", e))?;
        let Some(refname) = head.name().filter(|_| head.is_branch()).map(str::to_owned) else {
            return Err(GitError::DetachedHead);
        };
        self.repo
            .reference_matching(&refname, new, true, expected, reflog)
            .map_err(|e| {
                if e.code() == ErrorCode::Modified || e.code() == ErrorCode::Locked {
                    GitError::Moved {
                        refname: refname.clone(),
                    }
                } else {
                    git_error("move the branch", e)
                }
            })?;
        let mut index = self
            .repo
            .index()
            .map_err(|e| git_error("read the index", e))?;
        for change in changes {
            let abs = self.workdir.join(&change.path);
            match &change.contents {
                Some(bytes) => {
                    crate::atomic_write::write(&abs, bytes).map_err(|source| {
                        GitError::WorkingTree {
                            action: "write a file",
                            path: abs.clone(),
                            source,
                        }
                    })?;
                    index
                        .add_path(Path::new(&change.path))
                        .map_err(|e| git_error("update the index", e))?;
                }
                None => {
                    match std::fs::remove_file(&abs) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(GitError::WorkingTree {
                                action: "remove a file",
                                path: abs,
                                source,
                            });
                        }
                    }
                    let _ = index.remove_path(Path::new(&change.path));
                }
            }
        }
        index.write().map_err(|e| git_error("write the index", e))
    }

    /// Who commits, resolved as `git commit` does: `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`
    /// (`GIT_COMMITTER_*` for the committer) first, then `user.name`/`user.email` of git's
    /// configuration, then `EMAIL`, else `rel <rel@localhost>`. CI systems set the variables.
    fn identity(&self, role: Role) -> Signature<'static> {
        use crate::env_vars;
        let (name_var, email_var) = match role {
            Role::Author => (env_vars::GIT_AUTHOR_NAME, env_vars::GIT_AUTHOR_EMAIL),
            Role::Committer => (env_vars::GIT_COMMITTER_NAME, env_vars::GIT_COMMITTER_EMAIL),
        };
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let config = self.repo.config().ok();
        let cfg = |k: &str| {
            config
                .as_ref()
                .and_then(|c| c.get_string(k).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let name = var(name_var)
            .or_else(|| cfg("user.name"))
            .unwrap_or_else(|| "rel".to_owned());
        let email = var(email_var)
            .or_else(|| cfg("user.email"))
            .or_else(|| var(env_vars::EMAIL))
            .unwrap_or_else(|| "rel@localhost".to_owned());
        Signature::now(&name, &email)
            .or_else(|_| Signature::now("rel", "rel@localhost"))
            .map(|s| s.to_owned())
            .unwrap_or_else(|_| Signature::now("rel", "rel@localhost").expect("static signature"))
    }

    /// The author of the commits rel makes (see [`Repo::identity`]).
    pub fn signature(&self) -> Signature<'static> {
        self.identity(Role::Author)
    }

    /// Who acts, for trailers and records: `REL_ACTOR`, git's `user.email`, `$USER`.
    pub fn actor(&self) -> String {
        actor(Some(self))
    }

    /// Walk the history from `from`, newest first, calling `f` for each commit; stop when `f`
    /// returns false. Only commits whose message may hold trailers of `needle` (lowercase, e.g.
    /// `rel-action`) are passed to `f`.
    ///
    /// The order is git log's default: a queue by committer time where a commit is queued only
    /// once its child has been shown, so children always come before their parents (ties in
    /// the same second included), and the walk streams (no pass over the whole history first).
    /// Each commit is read once.
    pub fn walk(
        &self,
        from: Oid,
        needle: &str,
        mut f: impl FnMut(CommitInfo) -> bool,
    ) -> Result<(), Error> {
        use std::collections::{BinaryHeap, HashSet};
        let needle = needle.as_bytes();
        let mut seen: HashSet<Oid> = HashSet::new();
        // (time, insertion sequence) ordered newest first; the sequence keeps ties stable.
        let mut queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, Oid)> = BinaryHeap::new();
        let mut seq = 0u64;
        let first = self
            .repo
            .find_commit(from)
            .map_err(|e| git_error("read a commit", e))?;
        seen.insert(from);
        queue.push((first.time().seconds(), std::cmp::Reverse(seq), from));
        drop(first);
        while let Some((time, _, id)) = queue.pop() {
            let commit = self
                .repo
                .find_commit(id)
                .map_err(|e| git_error("read a commit", e))?;
            for pid in commit.parent_ids() {
                if seen.insert(pid) {
                    let parent = self
                        .repo
                        .find_commit(pid)
                        .map_err(|e| git_error("read a commit", e))?;
                    seq += 1;
                    queue.push((parent.time().seconds(), std::cmp::Reverse(seq), pid));
                }
            }
            let raw = commit.message_raw_bytes();
            if !contains_ignore_case(raw, needle) {
                continue;
            }
            let info = CommitInfo {
                id,
                time,
                author: commit.author().email().unwrap_or_default().to_owned(),
                message: String::from_utf8_lossy(raw).into_owned(),
            };
            if !f(info) {
                break;
            }
        }
        Ok(())
    }

    /// First-parent history from `from`, newest first, of commits that changed `path`
    /// (its blob differs from the first parent's). Stops after `limit` hits.
    pub fn changes_to(&self, from: Oid, path: &str, limit: usize) -> Result<Vec<Oid>, Error> {
        let mut out = Vec::new();
        let path = Path::new(path);
        let mut current = Some(
            self.repo
                .find_commit(from)
                .map_err(|e| git_error("read a commit", e))?,
        );
        while let Some(c) = current {
            let mine = self.blob_id(&c, path);
            let parent = c.parent(0).ok();
            let theirs = parent.as_ref().and_then(|p| self.blob_id(p, path));
            if mine != theirs {
                out.push(c.id());
                if out.len() >= limit {
                    break;
                }
            }
            current = parent;
        }
        Ok(out)
    }

    /// The paths a commit changed relative to its first parent.
    pub fn changed_paths(&self, commit: Oid) -> Result<Vec<String>, Error> {
        let c = self
            .repo
            .find_commit(commit)
            .map_err(|e| git_error("read a commit", e))?;
        let tree = c.tree().map_err(|e| git_error("read a tree", e))?;
        let parent_tree = c.parent(0).ok().and_then(|p| p.tree().ok());
        let diff = self
            .repo
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
            .map_err(|e| git_error("diff a commit", e))?;
        Ok(diff
            .deltas()
            .filter_map(|d| {
                d.new_file()
                    .path()
                    .or(d.old_file().path())
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
            })
            .collect())
    }

    pub fn commit_info(&self, id: Oid) -> Result<CommitInfo, Error> {
        let c = self
            .repo
            .find_commit(id)
            .map_err(|e| git_error("read a commit", e))?;
        Ok(CommitInfo {
            id,
            time: c.time().seconds(),
            author: c.author().email().unwrap_or_default().to_owned(),
            message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        })
    }

    pub fn first_parent(&self, id: Oid) -> Option<Oid> {
        self.repo.find_commit(id).ok()?.parent_id(0).ok()
    }

    /// The URL of remote `name`.
    pub fn remote_url(&self, name: &str) -> Option<String> {
        self.repo.find_remote(name).ok()?.url().map(str::to_owned)
    }

    /// What rel last saw of `branch` on `remote` (the remote-tracking ref).
    pub fn tracking_tip(&self, remote: &str, branch: &str) -> Option<Oid> {
        self.repo
            .refname_to_id(&format!("refs/remotes/{remote}/{branch}"))
            .ok()
    }

    /// The upstream of the current branch: (remote, branch on the remote).
    pub fn upstream_of_head(&self) -> Option<(String, String)> {
        let branch = self.head_branch()?;
        let cfg = self.repo.config().ok()?;
        let remote = cfg.get_string(&format!("branch.{branch}.remote")).ok()?;
        let merge = cfg.get_string(&format!("branch.{branch}.merge")).ok()?;
        Some((
            remote,
            merge
                .strip_prefix("refs/heads/")
                .unwrap_or(&merge)
                .to_owned(),
        ))
    }

    /// Push `commit` to `branch` on `remote`, only if the remote branch is still at `expected`
    /// (`None`: it must not exist). A moved branch is refused, never overwritten.
    pub fn push_with_lease(
        &self,
        remote: &str,
        commit: Oid,
        branch: &str,
        expected: Option<Oid>,
    ) -> Result<PushOutcome, Error> {
        if !crate::config::valid_remote_name(remote) {
            return Err(GitError::RemoteName {
                remote: remote.to_owned(),
            });
        }
        let refname = format!("refs/heads/{branch}");
        let expect = expected.map(|o| o.to_string()).unwrap_or_default();
        let mut cmd = Command::new("git");
        crate::env_vars::scrub_secrets(&mut cmd);
        cmd.current_dir(&self.workdir)
            .arg("push")
            .arg("--porcelain")
            .arg(format!("--force-with-lease={refname}:{expect}"))
            // `--`: the remote name can never be read as an option.
            .arg("--")
            .arg(remote)
            .arg(format!("{commit}:{refname}"));
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            cmd.env("GIT_TERMINAL_PROMPT", "0");
        }
        tracing::debug!(
            "git push --force-with-lease={refname}:{expect} {remote} {commit}:{refname}"
        );
        let out = cmd.output().map_err(|source| GitError::NoGit {
            command: "push",
            source,
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // Keep our view of the remote current, as `git push` does for configured remotes.
            let _ = self.repo.reference(
                &format!("refs/remotes/{remote}/{branch}"),
                commit,
                true,
                "rel: push",
            );
            return Ok(if stdout.contains("[up to date]") {
                PushOutcome::UpToDate
            } else {
                PushOutcome::Pushed
            });
        }
        let rejected = stdout.lines().any(|l| l.starts_with('!'))
            || stderr.contains("stale info")
            || stderr.contains("[rejected]");
        if rejected {
            return Err(GitError::RemoteMoved {
                remote: remote.to_owned(),
                branch: branch.to_owned(),
                expected: expected
                    .map(short)
                    .unwrap_or_else(|| "no such branch".to_owned()),
            });
        }
        Err(GitError::PushFailed {
            remote: remote.to_owned(),
            stderr: redact_urls(stderr.trim()),
        })
    }
}

#[derive(Clone, Copy)]
enum Role {
    Author,
    Committer,
}

/// Who acts, for trailers and records: `REL_ACTOR`; else the CI's own actor (`GITHUB_ACTOR`,
/// `GITLAB_USER_LOGIN`); else the author email git would use (`GIT_AUTHOR_EMAIL`, `user.email`);
/// else `$USER`; else `unknown`.
pub fn actor(repo: Option<&Repo>) -> String {
    use crate::env_vars;
    for var in [
        env_vars::ACTOR,
        env_vars::GITHUB_ACTOR,
        env_vars::GITLAB_USER_LOGIN,
        env_vars::GIT_AUTHOR_EMAIL,
    ] {
        if let Ok(a) = std::env::var(var)
            && !a.trim().is_empty()
        {
            return a.trim().to_owned();
        }
    }
    let from_git = match repo {
        Some(r) => r
            .repo
            .config()
            .ok()
            .and_then(|c| c.get_string("user.email").ok()),
        None => git2::Config::open_default()
            .ok()
            .and_then(|c| c.get_string("user.email").ok()),
    };
    if let Some(e) = from_git.filter(|e| !e.trim().is_empty()) {
        return e;
    }
    std::env::var(crate::env_vars::USER)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The first 12 hex digits of a commit id.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_owned()
}

/// Credentials removed from every URL in a message (git may echo a remote URL with them).
pub fn redact_urls(text: &str) -> String {
    crate::redact::urls(text)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    let upper = first.to_ascii_uppercase();
    haystack
        .windows(needle.len())
        .any(|w| (w[0] == first || w[0] == upper) && w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut cfg = repo.config().unwrap();
        cfg.set_str("user.name", "Test").unwrap();
        cfg.set_str("user.email", "test@example.com").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = repo.signature().unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let r = Repo::open(dir.path()).unwrap();
        (dir, r)
    }

    #[test]
    fn commit_on_builds_nested_trees_without_touching_the_worktree() {
        let (dir, repo) = init();
        let head = repo.head_commit().unwrap();
        let c = repo
            .commit_on(
                head,
                &[
                    FileChange {
                        path: "overlays/prod/kustomization.yaml".into(),
                        contents: Some(b"x: 1\n".to_vec()),
                    },
                    FileChange {
                        path: "releases/holds.yaml".into(),
                        contents: Some(b"holds: []\n".to_vec()),
                    },
                    FileChange {
                        path: "a.txt".into(),
                        contents: None,
                    },
                ],
                "msg\n",
            )
            .unwrap();
        assert_eq!(
            repo.read_file(c, "overlays/prod/kustomization.yaml")
                .unwrap()
                .unwrap(),
            b"x: 1\n"
        );
        assert_eq!(repo.read_file(c, "a.txt").unwrap(), None);
        assert_eq!(repo.read_file(head, "a.txt").unwrap().unwrap(), b"a\n");
        assert!(!dir.path().join("overlays").exists());
        assert_eq!(repo.changed_paths(c).unwrap().len(), 3);
        assert_eq!(
            repo.list_dir(c, "releases").unwrap(),
            vec!["holds.yaml".to_owned()]
        );
        // Branch creation is exclusive.
        repo.create_branch("rel/promote/prod/0.4.0", c).unwrap();
        let e = repo
            .create_branch("rel/promote/prod/0.4.0", head)
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(repo.branch_tip("rel/promote/prod/0.4.0"), Some(c));
    }

    #[test]
    fn advance_head_is_compare_and_swap() {
        let (dir, repo) = init();
        let head = repo.head_commit().unwrap();
        let change = vec![FileChange {
            path: "a.txt".into(),
            contents: Some(b"b\n".to_vec()),
        }];
        let c = repo.commit_on(head, &change, "change\n").unwrap();
        let other = repo.commit_on(head, &[], "other\n").unwrap();
        let e = repo.advance_head(other, c, &change, "test").unwrap_err();
        assert!(e.to_string().contains("moved while rel was working"), "{e}");
        repo.advance_head(head, c, &change, "test").unwrap();
        assert_eq!(repo.head_commit().unwrap(), c);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "b\n"
        );
        assert!(repo.dirty_paths(&["a.txt".into()]).unwrap().is_empty());
        std::fs::write(dir.path().join("a.txt"), "dirty\n").unwrap();
        assert_eq!(
            repo.dirty_paths(&["a.txt".into()]).unwrap(),
            vec!["a.txt".to_owned()]
        );
        assert_eq!(repo.changes_to(c, "a.txt", 10).unwrap(), vec![c, head]);
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_urls("fatal: https://x:ghp_secret@github.com/o/r.git denied"),
            "fatal: https://***@github.com/o/r.git denied"
        );
        assert_eq!(redact_urls("file:///tmp/r.git"), "file:///tmp/r.git");
        assert!(contains_ignore_case(b"abc\nREL-ACTION: x", b"rel-action"));
        assert!(!contains_ignore_case(b"abc", b"rel-action"));
    }
}
