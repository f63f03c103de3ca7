//! `rel promote`: copy a validated release's digests into the next environment's overlay.
//!
//! One commit sets every component at once, on branch `rel/promote/<env>/<version>`, built from
//! the current commit without touching the working tree. Nothing is committed unless the version
//! has a validation record for the source environment whose lockfile hash still matches, is not
//! on hold, has soaked in the source environment for its `soak` window (or the caller overrides
//! it with a reason, which the trailers record), the target environment is not frozen, and the
//! pinned overlay checks out against the lockfile.

use std::path::Path;

use git2::Oid;

use crate::Error;
use crate::config::Config;
use crate::forge::body::{Input, Row};
use crate::git_repo::{FileChange, Repo};
use crate::hold::Holds;
use crate::lockfile::Lockfile;
use crate::overlay_pin::{PinPlan, kustomization_file, pins_of, plan_text};
use crate::record::{ValidationRecord, sha256_hex};
use crate::trailers::{Action, Trailers, key};
use crate::version::Version;

/// Why a promotion cannot be planned: bad input (exit 2) or a refusal after checking (exit 1).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PromoteError {
    #[error("no environment promotes to {env} in rel.toml")]
    #[diagnostic(
        code(rel::promote::no_source),
        help(
            "say where the release was validated with `--from <env>`, or set `promotes-to = \"{env}\"` on that environment"
        )
    )]
    NoSource { env: String },

    #[error("--from {env} is the target environment itself")]
    #[diagnostic(
        code(rel::promote::self_promotion),
        help("promote from the environment where the release was validated")
    )]
    FromItself { env: String },

    #[error("--override-soak needs a reason")]
    #[diagnostic(
        code(rel::promote::no_reason),
        help(
            "say why the soak window cannot be waited out: `--override-soak --reason \"hotfix for incident 42\"`"
        )
    )]
    NoReason,

    #[error("there is no release {version} (releases/{version}.yaml)")]
    #[diagnostic(
        code(rel::promote::no_release),
        help("lock it first: `rel lock --version {version}`")
    )]
    NoRelease { version: Version },

    #[error("release {version} is on hold: {reason} (since {since}, by {actor})")]
    #[diagnostic(
        code(rel::promote::held),
        help(
            "fix the cause and cut a new version, or release it with `rel hold clear {version}` if it is safe again"
        )
    )]
    Held {
        version: Version,
        reason: String,
        since: String,
        actor: String,
    },

    #[error(
        "release {version} has no validation record for {from}: it did not pass the deep gate there"
    )]
    #[diagnostic(
        code(rel::promote::not_validated),
        help(
            "run the deep gate in {from} and record it: `rel gate smoke --profile deep --env {from} --version {version} --format json > evidence.json && rel record --version {version} --env {from} --evidence evidence.json`"
        )
    )]
    NotValidated { version: Version, from: String },

    #[error(
        "releases/{version}.yaml changed since it was validated in {from} (recorded sha256 {recorded}, now {now})"
    )]
    #[diagnostic(
        code(rel::promote::lockfile_changed),
        help(
            "a validated lockfile never changes: restore it (`git checkout -- releases/{version}.yaml`), or cut a new version and validate that"
        )
    )]
    LockfileChanged {
        version: Version,
        from: String,
        recorded: String,
        now: String,
    },

    #[error(
        "{path} is not committed: the promotion branch is built from the last commit, which must hold the evidence"
    )]
    #[diagnostic(
        code(rel::promote::evidence_uncommitted),
        help(
            "commit it first: `git add {path} && git commit -m \"release {version}\"` (`rel record` commits its record itself)"
        )
    )]
    EvidenceUncommitted { path: String, version: Version },

    #[error("{overlay} is not committed")]
    #[diagnostic(
        code(rel::promote::overlay_uncommitted),
        help("commit the {env} overlay first")
    )]
    OverlayUncommitted { overlay: String, env: String },

    #[error("{overlay} is not UTF-8 text")]
    #[diagnostic(
        code(rel::promote::not_text),
        help("an overlay is YAML text: restore it from history (`git log -p -- {overlay}`)")
    )]
    NotText { overlay: String },

    #[error(
        "branch {branch} already exists and holds something other than rel's promotion of {version} to {env}"
    )]
    #[diagnostic(
        code(rel::promote::branch_taken),
        help(
            "look at it with `git log {branch}`; if it is stale, delete it (`git branch -D {branch}`) and run again"
        )
    )]
    BranchTaken {
        branch: String,
        version: Version,
        env: String,
    },

    #[error("release {version} is not trusted for {env} ([trust] in rel.toml):\n{failed}")]
    #[diagnostic(
        code(rel::promote::untrusted),
        help(
            "sign the release with a trusted key (REL_SIGNING_KEY=... `rel build --push`, `rel lock`, `rel record`), then check it with `rel verify --version {version} --env {env}`"
        )
    )]
    Untrusted {
        version: Version,
        env: String,
        /// The failed checks, one per line.
        failed: String,
    },
}

impl PromoteError {
    /// Refusals after checking the release are exit 1; input rel cannot act on is exit 2.
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            PromoteError::NoSource { .. }
            | PromoteError::FromItself { .. }
            | PromoteError::NoReason
            | PromoteError::NoRelease { .. }
            | PromoteError::NotText { .. } => crate::error::Exit::Error,
            _ => crate::error::Exit::Failed,
        }
    }
}

/// What to promote where.
#[derive(Debug, Clone)]
pub struct Request {
    pub version: Version,
    pub env: String,
    pub from: Option<String>,
    pub actor: String,
    /// `--override-soak --reason R`: promote before the source's soak window is over, recording R.
    pub override_soak: Option<String>,
}

/// Everything a promotion will do, computed before anything changes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version: Version,
    pub env: String,
    pub from_env: String,
    /// `rel/promote/<env>/<version>`.
    pub branch: String,
    /// The commit the promotion is built on (HEAD).
    pub base: Oid,
    pub lockfile: Lockfile,
    pub lockfile_rel: String,
    pub lockfile_sha256: String,
    pub record: ValidationRecord,
    pub record_rel: String,
    /// The overlay file, relative to the repository root.
    pub overlay_rel: String,
    pub pin: PinPlan,
    /// The release the environment ran before, when its pins matched one.
    pub previous: Option<Lockfile>,
    pub message: String,
    /// The source environment's soak window and where the version stands in it (no window: `None`).
    pub soak: Option<crate::soak::Soak>,
    /// The soak was not over and `--override-soak` let the promotion through: its reason.
    pub soak_override: Option<String>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.pin.is_noop()
    }

    pub fn title(&self) -> String {
        format!("rel: promote {} to {}", self.version, self.env)
    }

    /// The pull request body, under `limit` characters.
    pub fn pr_body(&self, limit: usize, source_repo: Option<&str>) -> String {
        let prev = self.previous.as_ref();
        let rows = self
            .pin
            .changes
            .iter()
            .map(|c| {
                let new = self.lockfile.components.get(&c.component);
                let old = prev.and_then(|p| p.components.get(&c.component));
                Row {
                    component: c.component.clone(),
                    image: c.image.clone(),
                    old_digest: c.old_digest.clone(),
                    new_digest: c.new_digest.clone(),
                    old_tag: old.and_then(|o| o.tag.clone()),
                    new_tag: new.and_then(|n| n.tag.clone()),
                    old_commit: old.and_then(|o| o.source_commit.clone()),
                    new_commit: new.and_then(|n| n.source_commit.clone()),
                }
            })
            .collect();
        let r = &self.record;
        let soak_line = self.soak.as_ref().map(|s| match &self.soak_override {
            Some(reason) => format!(
                "**Soak overridden**: {} soaks {} (eligible {}, {} early): {reason}",
                s.env,
                s.soak,
                s.eligible_at,
                s.remaining()
            ),
            None => format!(
                "Soaked in **{}** for its {} window (validated {}, eligible {})",
                s.env, s.soak, s.validated_at, s.eligible_at
            ),
        });
        let input = Input {
            headline: format!(
                "Promote release **{}** to **{}** (from {}): digest copy, no rebuild. Every component is pinned in one commit.",
                self.version, self.env, self.from_env
            ),
            previous_version: prev.map(|p| p.version.to_string()),
            rows,
            evidence: vec![
                format!(
                    "Validated in **{}**: `{}` gate, profile `{}`: {} passed, {} failed, {} warnings, {} skipped ({}, recorded {} by {})",
                    r.env,
                    r.gate,
                    r.profile,
                    r.summary.pass,
                    r.summary.fail,
                    r.summary.warn,
                    r.summary.skip,
                    self.record_rel,
                    r.recorded_at,
                    r.actor
                ),
                format!(
                    "Lockfile `{}` sha256 `{}` (unchanged since validation)",
                    self.lockfile_rel, self.lockfile_sha256
                ),
                format!(
                    "Overlay `{}` checked against the lockfile after pinning",
                    self.overlay_rel
                ),
            ]
            .into_iter()
            .chain(soak_line)
            .collect(),
            source_repo: source_repo.map(str::to_owned),
            footer: vec![
                format!(
                    "Merging deploys: Argo CD reconciles `{}`.",
                    self.overlay_rel
                ),
                format!(
                    "To roll back after merge: `rel rollback --env {}` (reverts this commit and holds {}).",
                    self.env, self.version
                ),
            ],
        };
        crate::forge::body::render(&input, limit)
    }
}

/// Check every precondition and compute the promotion. Changes nothing.
pub fn plan(repo: &Repo, config: &Config, req: &Request) -> Result<Plan, Error> {
    let root = &config.root;
    let target = config.environment(&req.env)?;
    let from_env = match &req.from {
        Some(f) => config.environment(f)?.name.clone(),
        None => config
            .promotes_from(&req.env)
            .map(|e| e.name.clone())
            .ok_or_else(|| PromoteError::NoSource {
                env: req.env.clone(),
            })?,
    };
    if from_env == req.env {
        return Err(PromoteError::FromItself { env: from_env }.into());
    }
    let version = &req.version;
    if let Some(reason) = &req.override_soak
        && reason.trim().is_empty()
    {
        return Err(PromoteError::NoReason.into());
    }
    crate::freeze::ensure_not_frozen(root, &req.env, &format!("promote {version} to {}", req.env))?;

    let lock_path = crate::releases::lockfile_path(root, version);
    let lock_bytes = match std::fs::read(&lock_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PromoteError::NoRelease {
                version: version.clone(),
            }
            .into());
        }
        Err(e) => return Err(Error::io("read the lockfile", &lock_path, e)),
    };
    let lockfile = Lockfile::load(&lock_path)?;

    let holds = Holds::load(root)?;
    if let Some(h) = holds.get(version) {
        return Err(PromoteError::Held {
            version: version.clone(),
            reason: h.reason.clone(),
            since: h.since.to_string(),
            actor: h.actor.clone(),
        }
        .into());
    }

    let record = ValidationRecord::load(root, version, &from_env)?.ok_or_else(|| {
        PromoteError::NotValidated {
            version: version.clone(),
            from: from_env.clone(),
        }
    })?;
    let lockfile_sha256 = sha256_hex(&lock_bytes);
    if record.lockfile_sha256 != lockfile_sha256 {
        return Err(PromoteError::LockfileChanged {
            version: version.clone(),
            from: from_env.clone(),
            recorded: record.lockfile_sha256.clone(),
            now: lockfile_sha256,
        }
        .into());
    }

    let record_path = crate::releases::record_path(root, version, &from_env);
    let lockfile_rel = repo.rel_path(&lock_path)?;
    let record_rel = repo.rel_path(&record_path)?;

    let soak = match config.environment(&from_env)?.soak {
        Some(window) => Some(crate::soak::Soak::of(
            &record,
            &record_rel,
            window,
            crate::clock::now()?,
        )?),
        None => None,
    };
    let soak_override = match &soak {
        Some(s) if !s.eligible => match &req.override_soak {
            Some(reason) => Some(reason.trim().to_owned()),
            None => return Err(s.refusal(&req.env)),
        },
        _ => None,
    };
    let base = repo.head_commit()?;
    crate::freeze::ensure_not_frozen_at(
        repo,
        base,
        root,
        &req.env,
        &format!("promote {version} to {}", req.env),
    )?;
    for (rel, bytes) in [
        (&lockfile_rel, lock_bytes.clone()),
        (&record_rel, std::fs::read(&record_path).unwrap_or_default()),
    ] {
        if repo.read_file(base, rel)?.as_deref() != Some(bytes.as_slice()) {
            return Err(PromoteError::EvidenceUncommitted {
                path: rel.to_string(),
                version: version.clone(),
            }
            .into());
        }
    }

    let overlay_file = kustomization_file(&config.overlay_dir(target))?;
    let overlay_rel = repo.rel_path(&overlay_file)?;
    let old_text =
        repo.read_file(base, &overlay_rel)?
            .ok_or_else(|| PromoteError::OverlayUncommitted {
                overlay: overlay_rel.clone(),
                env: req.env.clone(),
            })?;
    let old_text = String::from_utf8(old_text).map_err(|_| PromoteError::NotText {
        overlay: overlay_rel.clone(),
    })?;
    let pin = plan_text(&old_text, Path::new(&overlay_rel), &lockfile, config)?;

    let all = crate::status::releases(root);
    let previous =
        crate::status::match_release(&pins_of(&old_text, Path::new(&overlay_rel))?, &all, config)
            .filter(|l| l.version != *version)
            .cloned();

    let mut t = Trailers::new();
    t.push(key::ACTION, Action::Promote)
        .push(key::VERSION, version)
        .push(key::ENV, &req.env)
        .push(key::FROM_ENV, &from_env)
        .push(key::LOCKFILE_SHA256, &lockfile_sha256)
        .push(
            key::EVIDENCE,
            format!("{} {}", record_rel, record.evidence_line()),
        );
    if let Some(p) = &previous {
        t.push(key::PREVIOUS_VERSION, &p.version);
    }
    if let Some(s) = &soak {
        t.push(key::SOAK, &s.soak)
            .push(key::SOAK_ELIGIBLE, &s.eligible_at);
        if let Some(reason) = &soak_override {
            t.push(key::SOAK_OVERRIDE, reason);
        }
    }
    if let Some(clock) = crate::clock::injected() {
        t.push(key::CLOCK, clock);
    }
    t.push(key::ACTOR, &req.actor);
    let changed: Vec<String> = pin
        .changes
        .iter()
        .filter(|c| c.changed())
        .map(|c| format!("{}: {} -> {}", c.component, c.old_shown(), c.new_digest))
        .collect();
    let body = format!(
        "Pins the {} digests validated in {from_env} into {overlay_rel}\n(digest copy, no rebuild). {} of {} components change:\n\n{}",
        lockfile.components.len(),
        changed.len(),
        lockfile.components.len(),
        changed.join("\n")
    );
    let message = t.message(&format!("rel: promote {version} to {}", req.env), &body);

    Ok(Plan {
        version: version.clone(),
        env: req.env.clone(),
        from_env,
        branch: format!("rel/promote/{}/{version}", req.env),
        base,
        lockfile,
        lockfile_rel,
        lockfile_sha256,
        record,
        record_rel,
        overlay_rel,
        pin,
        previous,
        message,
        soak,
        soak_override,
    })
}

/// What [`commit`] did to the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchUpdate {
    /// The branch did not exist; it was created.
    Created,
    /// An earlier run made the same promotion on the same base: reused as it is.
    Reused,
    /// An earlier promotion of the same version to the same env, on an older base, was replaced
    /// (the base moved); the old tip is kept to restore it if the push is refused.
    Replaced(Oid),
}

/// Make the promotion commit and point its branch at it.
pub fn commit(repo: &Repo, plan: &Plan) -> Result<(Oid, BranchUpdate), Error> {
    let changes = vec![FileChange {
        path: plan.overlay_rel.clone(),
        contents: Some(plan.pin.new_text.clone().into_bytes()),
    }];
    let Some(tip) = repo.branch_tip(&plan.branch) else {
        let oid = repo.commit_on(plan.base, &changes, &plan.message)?;
        repo.create_branch(&plan.branch, oid)?;
        return Ok((oid, BranchUpdate::Created));
    };
    let pure = repo.first_parent(tip).is_some()
        && repo.changed_paths(tip)? == vec![plan.overlay_rel.clone()];
    if pure
        && repo.first_parent(tip) == Some(plan.base)
        && repo.read_file(tip, &plan.overlay_rel)?.as_deref() == Some(plan.pin.new_text.as_bytes())
    {
        return Ok((tip, BranchUpdate::Reused));
    }
    let t = Trailers::parse(&repo.commit_info(tip)?.message);
    let same_promotion = t.action() == Some(Action::Promote)
        && t.get(key::VERSION) == Some(plan.version.to_string().as_str())
        && t.get(key::ENV) == Some(plan.env.as_str());
    if !(pure && same_promotion) {
        return Err(PromoteError::BranchTaken {
            branch: plan.branch.clone(),
            version: plan.version.clone(),
            env: plan.env.clone(),
        }
        .into());
    }
    // The same promotion on an older base: rebuild it on the current one.
    let oid = repo.commit_on(plan.base, &changes, &plan.message)?;
    repo.move_branch(&plan.branch, tip, oid)?;
    Ok((oid, BranchUpdate::Replaced(tip)))
}
