//! `rel rollback`: put an environment back on the previous validated version, through git.
//!
//! The environment's history comes from the trailers of the commits that changed its overlay.
//! When the last change to the overlay was a pure promotion (a `Rel-Action: promote` commit that
//! changed only that file), the rollback is its `git revert`: the overlay returns byte for byte to
//! what it was. Otherwise it is a forward restore commit that pins the target release (or copies
//! the overlay of `--to COMMIT`). Either way the version taken out is put on hold in
//! `releases/holds.yaml`, in the same commit, so automation cannot promote it straight back.

use std::collections::BTreeMap;
use std::path::Path;

use git2::Oid;

use crate::Error;
use crate::config::Config;
use crate::git_repo::{FileChange, Repo, short};
use crate::hold::{Hold, Holds};
use crate::lockfile::Lockfile;
use crate::overlay_pin::{kustomization_file, pins_of, plan_text};
use crate::trailers::{Action, Trailers, key};
use crate::version::Version;

/// Why rel will not plan a rollback.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RollbackError {
    #[error("{overlay} is not committed")]
    #[diagnostic(
        code(rel::rollback::uncommitted),
        help("commit the overlay first: a rollback reverts or restores committed history")
    )]
    Uncommitted { overlay: String },

    #[error("{overlay} is not UTF-8 text")]
    #[diagnostic(
        code(rel::rollback::not_text),
        help("an overlay is YAML text: restore it from history (`git log -p -- {overlay}`)")
    )]
    NotText { overlay: String },

    #[error("there is no release {version} (releases/{version}.yaml)")]
    #[diagnostic(
        code(rel::rollback::no_release),
        help("`rel status` and `rel audit --env {env}` show what {env} ran")
    )]
    NoRelease { version: String, env: String },

    #[error("{overlay} does not exist at {commit}")]
    #[diagnostic(
        code(rel::rollback::no_overlay_at),
        help("pick a commit where the overlay existed (`git log -- {overlay}`)")
    )]
    NoOverlayAt { overlay: String, commit: String },

    #[error(
        "found no earlier validated version that {env} ran (in the Rel-* trailers of the history)"
    )]
    #[diagnostic(
        code(rel::rollback::no_target),
        help(
            "say where to go: `rel rollback --env {env} --to <version>` or `--to <commit>` (`git log -- {overlay}` lists the overlay's commits)"
        )
    )]
    NoTarget { env: String, overlay: String },

    #[error("release {version} was never validated (no releases/{version}.<env>.validation.yaml)")]
    #[diagnostic(
        code(rel::rollback::not_validated),
        help("roll back to a validated version, or to a commit with `--to <commit>`")
    )]
    NotValidated { version: Version },

    #[error("release {version} is on hold ({reason}); rel will not roll {env} onto it")]
    #[diagnostic(
        code(rel::rollback::held),
        help(
            "pick another target with `--to`, or clear the hold first: `rel hold clear {version}`"
        )
    )]
    Held {
        version: Version,
        reason: String,
        env: String,
    },

    #[error("{env} already pins {what}: there is nothing to roll back")]
    #[diagnostic(
        code(rel::rollback::nothing),
        help("`rel status` shows what each environment pins")
    )]
    Nothing { env: String, what: String },

    #[error(
        "rel rollback will not push without a confirmation, and there is no terminal to ask on"
    )]
    #[diagnostic(
        code(rel::rollback::no_terminal),
        help("pass --yes to push from a script or CI (or run it without --push and push by hand)")
    )]
    NoTerminal,

    #[error("HEAD is detached: rel commits the rollback on the current branch")]
    #[diagnostic(
        code(rel::rollback::detached_head),
        help("check out the branch Argo CD follows (e.g. `git switch main`), or use --open-pr")
    )]
    DetachedHead,

    #[error("{paths} has uncommitted changes; rel will not commit over them")]
    #[diagnostic(
        code(rel::rollback::dirty),
        help("commit or stash them first (`git stash`), then run the rollback again")
    )]
    Dirty { paths: String },

    #[error("not confirmed: nothing was committed or pushed")]
    #[diagnostic(
        code(rel::rollback::not_confirmed),
        help("run again and answer y, or pass --yes")
    )]
    NotConfirmed,
}

impl RollbackError {
    /// rel checked and said no (exit 1), or could not plan from what it was given (exit 2).
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            RollbackError::NoTarget { .. }
            | RollbackError::NotValidated { .. }
            | RollbackError::Held { .. }
            | RollbackError::Nothing { .. }
            | RollbackError::Dirty { .. }
            | RollbackError::NotConfirmed => crate::error::Exit::Failed,
            _ => crate::error::Exit::Error,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub env: String,
    /// `--to VERSION|COMMIT`.
    pub to: Option<String>,
    pub actor: String,
}

/// How the overlay gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Method {
    /// `git revert` of a pure promotion commit.
    Revert { commit: Oid, subject: String },
    /// A forward commit pinning a validated release.
    RestoreVersion,
    /// A forward commit restoring the overlay as it was at a commit.
    RestoreCommit { commit: Oid },
}

/// One image pin, before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PinDelta {
    pub image: String,
    pub before: Option<image_ref::Digest>,
    pub after: Option<image_ref::Digest>,
}

/// Everything a rollback will do.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub env: String,
    pub overlay_rel: String,
    /// The commit the rollback is built on (HEAD).
    pub base: Oid,
    pub old_text: String,
    pub new_text: String,
    pub deltas: Vec<PinDelta>,
    /// The release the environment runs now, when its pins match one.
    pub current: Option<Version>,
    /// The release it goes back to, when the restored pins match one.
    pub target: Option<Version>,
    pub method: Method,
    pub holds_rel: String,
    /// The new holds file, when the current version gets a hold.
    pub holds_text: Option<String>,
    pub message: String,
}

impl Plan {
    pub(crate) fn changes(&self) -> Vec<FileChange> {
        let mut out = vec![FileChange {
            path: self.overlay_rel.clone(),
            contents: Some(self.new_text.clone().into_bytes()),
        }];
        if let Some(h) = &self.holds_text {
            out.push(FileChange {
                path: self.holds_rel.clone(),
                contents: Some(h.clone().into_bytes()),
            });
        }
        out
    }

    /// The same files as they are now (to undo a local commit whose push was refused).
    pub(crate) fn undo_changes(&self, repo: &Repo) -> Result<Vec<FileChange>, Error> {
        Ok(vec![
            FileChange {
                path: self.overlay_rel.clone(),
                contents: Some(self.old_text.clone().into_bytes()),
            },
            FileChange {
                path: self.holds_rel.clone(),
                contents: repo.read_file(self.base, &self.holds_rel)?,
            },
        ])
    }

    /// A name for the branch of `--open-pr`.
    pub(crate) fn branch(&self) -> String {
        match &self.target {
            Some(v) => format!("rel/rollback/{}/{v}", self.env),
            None => format!("rel/rollback/{}/{}", self.env, short(self.base)),
        }
    }
}

fn validated(root: &Path, version: &Version) -> bool {
    !crate::releases::records_for(root, version).is_empty()
}

/// Work out the rollback. Changes nothing.
pub(crate) fn plan(repo: &Repo, config: &Config, req: &Request) -> Result<Plan, Error> {
    let root = &config.root;
    let env = config.environment(&req.env)?;
    let overlay_file = kustomization_file(&config.overlay_dir(env))?;
    let overlay_rel = repo.rel_path(&overlay_file)?;
    let holds_rel = repo.rel_path(&crate::hold::path(root))?;
    let base = repo.head_commit()?;
    let old_bytes =
        repo.read_file(base, &overlay_rel)?
            .ok_or_else(|| RollbackError::Uncommitted {
                overlay: overlay_rel.clone(),
            })?;
    let old_text = String::from_utf8(old_bytes).map_err(|_| RollbackError::NotText {
        overlay: overlay_rel.clone(),
    })?;
    let overlay_path = Path::new(&overlay_rel);
    let releases = crate::status::releases(root);
    let old_pins = pins_of(&old_text, overlay_path)?;
    let current =
        crate::status::match_release(&old_pins, &releases, config).map(|l| l.version.clone());
    let holds = Holds::load(root)?;

    // The last commit that changed the overlay, and whether it is a pure promotion of this env.
    let last = repo.changes_to(base, &overlay_rel, 1)?.into_iter().next();
    let pure_promotion = match last {
        Some(c) => {
            let info = repo.commit_info(c)?;
            let t = Trailers::parse(&info.message);
            let pure = t.action() == Some(Action::Promote)
                && t.get(key::ENV) == Some(req.env.as_str())
                && repo.changed_paths(c)? == vec![overlay_rel.clone()]
                && repo.first_parent(c).is_some();
            pure.then(|| {
                (
                    c,
                    info.message.lines().next().unwrap_or_default().to_owned(),
                    t.get(key::PREVIOUS_VERSION)
                        .and_then(|v| v.parse::<Version>().ok()),
                )
            })
        }
        None => None,
    };

    let to_version = req
        .to
        .as_deref()
        .and_then(|t| t.parse::<Version>().ok())
        .filter(|v| crate::releases::lockfile_path(root, v).is_file());
    let (method, new_text, mut target) = match (&req.to, to_version, &pure_promotion) {
        // Default, after a pure promotion: revert it.
        (None, _, Some((commit, subject, prev))) => {
            let parent = repo.first_parent(*commit).expect("checked above");
            let text = repo.read_file(parent, &overlay_rel)?.unwrap_or_default();
            (
                Method::Revert {
                    commit: *commit,
                    subject: subject.clone(),
                },
                String::from_utf8_lossy(&text).into_owned(),
                prev.clone(),
            )
        }
        // --to the version that promotion replaced: also a revert.
        (Some(_), Some(v), Some((commit, subject, Some(prev)))) if *prev == v => {
            let parent = repo.first_parent(*commit).expect("checked above");
            let text = repo.read_file(parent, &overlay_rel)?.unwrap_or_default();
            (
                Method::Revert {
                    commit: *commit,
                    subject: subject.clone(),
                },
                String::from_utf8_lossy(&text).into_owned(),
                Some(v),
            )
        }
        (Some(_), Some(v), _) => (Method::RestoreVersion, String::new(), Some(v)),
        (Some(to), None, _) => {
            if to.parse::<Version>().is_ok() {
                return Err(RollbackError::NoRelease {
                    version: to.clone(),
                    env: req.env.clone(),
                }
                .into());
            }
            let commit = repo.resolve_commit(to)?;
            let text = repo.read_file(commit, &overlay_rel)?.ok_or_else(|| {
                RollbackError::NoOverlayAt {
                    overlay: overlay_rel.clone(),
                    commit: short(commit),
                }
            })?;
            (
                Method::RestoreCommit { commit },
                String::from_utf8_lossy(&text).into_owned(),
                None,
            )
        }
        // Default otherwise: the previous validated version the env ran, from the trailers.
        (None, _, None) => {
            let history = crate::audit::read(
                repo,
                base,
                &crate::audit::Query {
                    env: Some(req.env.clone()),
                    since: None,
                },
            )?;
            let candidate = history
                .iter()
                .filter(|e| {
                    e.env.as_deref() == Some(req.env.as_str())
                        && matches!(e.action.as_str(), "promote" | "rollback")
                })
                .flat_map(|e| {
                    [
                        e.version.clone(),
                        e.trailers.get(key::PREVIOUS_VERSION).cloned(),
                    ]
                })
                .flatten()
                .filter_map(|v| v.parse::<Version>().ok())
                .find(|v| {
                    Some(v) != current.as_ref()
                        && validated(root, v)
                        && holds.get(v).is_none()
                        && crate::releases::lockfile_path(root, v).is_file()
                });
            match candidate {
                Some(v) => (Method::RestoreVersion, String::new(), Some(v)),
                None => {
                    return Err(RollbackError::NoTarget {
                        env: req.env.clone(),
                        overlay: overlay_rel.clone(),
                    }
                    .into());
                }
            }
        }
    };

    let new_text = if method == Method::RestoreVersion {
        let v = target.as_ref().expect("a version target");
        if !validated(root, v) {
            return Err(RollbackError::NotValidated { version: v.clone() }.into());
        }
        let lockfile = Lockfile::load(&crate::releases::lockfile_path(root, v))?;
        plan_text(&old_text, overlay_path, &lockfile, config)?.new_text
    } else {
        new_text
    };
    let new_pins = pins_of(&new_text, overlay_path)?;
    if target.is_none() {
        target =
            crate::status::match_release(&new_pins, &releases, config).map(|l| l.version.clone());
    }
    if let Some(t) = &target
        && let Some(h) = holds.get(t)
    {
        return Err(RollbackError::Held {
            version: t.clone(),
            reason: h.reason.clone(),
            env: req.env.clone(),
        }
        .into());
    }
    if new_text == old_text {
        return Err(RollbackError::Nothing {
            env: req.env.clone(),
            what: target
                .as_ref()
                .map(|t| format!("release {t}"))
                .unwrap_or_else(|| "those digests".into()),
        }
        .into());
    }

    let mut deltas: BTreeMap<String, PinDelta> = BTreeMap::new();
    for (image, d) in &old_pins {
        deltas.insert(
            image.clone(),
            PinDelta {
                image: image.clone(),
                before: Some(d.clone()),
                after: None,
            },
        );
    }
    for (image, d) in &new_pins {
        deltas
            .entry(image.clone())
            .or_insert_with(|| PinDelta {
                image: image.clone(),
                before: None,
                after: None,
            })
            .after = Some(d.clone());
    }

    let now = crate::record::now_rfc3339();
    let holds_text = match &current {
        Some(v) if Some(v) != target.as_ref() => {
            let mut h = holds.clone();
            h.add(Hold {
                version: v.to_string(),
                env: req.env.clone(),
                reason: format!(
                    "rolled back from {} to {}",
                    req.env,
                    target
                        .as_ref()
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "an earlier commit".into())
                ),
                since: now,
                actor: req.actor.clone(),
            });
            Some(h.to_yaml())
        }
        _ => None,
    };

    let mut t = Trailers::new();
    t.push(key::ACTION, Action::Rollback)
        .push(key::ENV, &req.env);
    if let Some(v) = &target {
        t.push(key::VERSION, v);
    }
    if let Some(v) = &current {
        t.push(key::ROLLED_BACK, v);
    }
    let (subject, body) = match &method {
        Method::Revert { commit, subject } => {
            t.push(key::REVERTS, commit);
            (
                format!("Revert \"{subject}\""),
                format!("This reverts commit {commit}."),
            )
        }
        Method::RestoreVersion => (
            format!(
                "rel: roll {} back to {}",
                req.env,
                target.as_ref().map(|v| v.to_string()).unwrap_or_default()
            ),
            format!("Pins the digests of the validated release into {overlay_rel}."),
        ),
        Method::RestoreCommit { commit } => {
            t.push(key::RESTORES, commit);
            (
                format!(
                    "rel: roll {} back to the overlay of {}",
                    req.env,
                    short(*commit)
                ),
                format!("Restores {overlay_rel} as it was at {commit}."),
            )
        }
    };
    t.push(key::ACTOR, &req.actor);
    let body = match &current {
        Some(v) if holds_text.is_some() => {
            format!("{body}\n\nRelease {v} is put on hold: `rel hold clear {v}` releases it.")
        }
        _ => body,
    };
    let message = t.message(&subject, &body);

    Ok(Plan {
        env: req.env.clone(),
        overlay_rel,
        base,
        old_text,
        new_text,
        deltas: deltas
            .into_values()
            .filter(|d| d.before != d.after)
            .collect(),
        current,
        target,
        method,
        holds_rel,
        holds_text,
        message,
    })
}

/// What the rollback changes, in words and digests.
pub(crate) fn describe(plan: &Plan, where_to: &str) -> String {
    let from = plan
        .current
        .as_ref()
        .map(|v| format!("release {v}"))
        .unwrap_or_else(|| "pins that match no release".into());
    let to = plan
        .target
        .as_ref()
        .map(|v| format!("release {v}"))
        .unwrap_or_else(|| "pins that match no release".into());
    let how = match &plan.method {
        Method::Revert { commit, subject } => format!("git revert of {} (\"{subject}\")", short(*commit)),
        Method::RestoreVersion => "a forward commit pinning the release's digests (the last overlay change was not a pure promotion)".into(),
        Method::RestoreCommit { commit } => format!("a forward commit restoring the overlay as it was at {}", short(*commit)),
    };
    let mut s = format!(
        "rollback {}: {from} -> {to}\n  how: {how}\n  where: {where_to}\n  overlay: {}\n",
        plan.env, plan.overlay_rel
    );
    let w = plan.deltas.iter().map(|d| d.image.len()).max().unwrap_or(0);
    for d in &plan.deltas {
        s.push_str(&format!(
            "    {:<w$}  {} -> {}\n",
            d.image,
            shown(d.before.as_ref()),
            shown(d.after.as_ref())
        ));
    }
    match (&plan.current, &plan.holds_text) {
        (Some(v), Some(_)) => s.push_str(&format!(
            "  hold: {v} goes on hold in {} (promote refuses it until `rel hold clear {v}`)\n",
            plan.holds_rel
        )),
        _ => s.push_str("  hold: none (the current pins match no release)\n"),
    }
    s
}

/// The steps to re-converge after the rollback, naming the environment's Argo CD Application
/// and Rollouts (rel.toml's `argocd-app`; the rendered overlay) with the exact commands. rel runs
/// none of them: it changed git, Argo CD applies it.
pub(crate) fn steps(
    plan: &Plan,
    oncall: Option<&crate::oncall::OnCall>,
    remote: &str,
    branch: &str,
    pushed: bool,
) -> String {
    let dir = plan
        .overlay_rel
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or(&plan.overlay_rel);
    let mut s = String::from("\nre-converge:\n");
    let mut n = 1;
    if !pushed {
        s.push_str(&format!("  {n}. push it: `git push {remote} HEAD:{branch}` (or merge the pull request); Argo CD only sees what is on {branch}\n"));
        n += 1;
    }
    match oncall {
        Some(o) => {
            let app = &o.app;
            s.push_str(&format!(
                "  {n}. Argo CD ({app}) reconciles {dir} on its next poll (auto-sync); to go now: `argocd app sync {app} --prune`\n"
            ));
            s.push_str(&format!("  {}. watch it converge: `argocd app wait {app} --sync --health --timeout 600`; pods roll one by one (maxUnavailable 0)\n", n + 1));
            n += 2;
            for r in &o.rollouts {
                let t = match &r.namespace {
                    Some(ns) => format!("{} -n {ns}", r.name),
                    None => r.name.clone(),
                };
                let what = match r.strategy {
                    crate::oncall::RolloutStrategy::BlueGreen => format!(
                        "Rollout {}: blue/green, the restored version comes up as the preview and waits for a human: when deploy-gate passed, `kubectl argo rollouts promote {t}`",
                        r.name
                    ),
                    crate::oncall::RolloutStrategy::Canary => format!(
                        "Rollout {}: canary steps with deploy-gate in the background; to skip a pause, `kubectl argo rollouts promote {t}`",
                        r.name
                    ),
                };
                s.push_str(&format!(
                    "  {n}. {what}; watch: `kubectl argo rollouts get rollout {t} --watch`\n"
                ));
                n += 1;
            }
        }
        None => {
            s.push_str(&format!(
                "  {n}. {dir} runs on the local stage: restart it on the restored pins with `rel down --env {0}` then `rel up --env {0} --detach`\n",
                plan.env
            ));
            n += 1;
        }
    }
    s.push_str(&format!(
        "  {n}. check every pod runs the restored digests: `rel gate drift --env {} --live` (or `kubectl get pods -o jsonpath='{{..imageID}}'`)\n",
        plan.env
    ));
    s.push_str("  watch: pods in CrashLoopBackOff or ImagePullBackOff, readiness, error rates; if Argo CD auto-sync is off, the sync is yours to run\n");
    if let (Some(v), Some(_)) = (&plan.current, &plan.holds_text) {
        s.push_str(&format!("  {v} is on hold: fix it and cut a new version, or `rel hold clear {v}` when it is safe again\n"));
    }
    s
}

/// A digest as people read it, or `(none)`.
fn shown(d: Option<&image_ref::Digest>) -> String {
    d.map_or_else(|| "(none)".to_owned(), ToString::to_string)
}
