//! What on-call runs against an environment in a cluster: the exact `argocd app ...` and
//! `kubectl argo rollouts ...` command lines for the environment's Argo CD Application (rel.toml's
//! `argocd-app`, `argocd-namespace`) and the Rollouts its overlay renders. rel prints these; it
//! never runs them: promote, abort, undo and sync stay human decisions, and git stays the
//! authority (`rel rollback` changes git, Argo CD applies it).

use serde_json::Value;

use crate::config::{Config, Environment, Runtime};

/// The Argo objects of one cluster environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OnCall {
    /// The Application as the `argocd` CLI names it: `name`, or `namespace/name` when it lives
    /// outside the `argocd` namespace (Argo CD's applications in any namespace).
    pub app: String,
    /// The Rollouts of the rendered overlay, in rendered order.
    pub rollouts: Vec<RolloutRef>,
}

/// One Argo Rollout of an overlay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutRef {
    pub name: String,
    pub namespace: Option<String>,
    pub strategy: RolloutStrategy,
}

/// How a Rollout rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum RolloutStrategy {
    BlueGreen,
    Canary,
}

/// One command on-call may run, and what for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Command {
    pub purpose: &'static str,
    pub line: String,
}

/// The Argo objects of `env`: `None` for a local stage (no Argo CD). `objects` are the
/// environment's rendered manifests (the Rollouts come from them; none when `None`).
pub(crate) fn for_env(env: &Environment, objects: Option<&[Value]>) -> Option<OnCall> {
    let Runtime::Cluster(app) = &env.runtime else {
        return None;
    };
    let app = if app.namespace == "argocd" {
        app.name.clone()
    } else {
        format!("{}/{}", app.namespace, app.name)
    };
    Some(OnCall {
        app,
        rollouts: objects.map(rollouts).unwrap_or_default(),
    })
}

/// [`for_env`] with the environment's overlay rendered; a render error leaves the Rollouts out
/// (and is logged): the Application's commands are still right.
pub(crate) fn for_env_rendered(config: &Config, env: &Environment) -> Option<OnCall> {
    if env.runtime == Runtime::Stage {
        return None;
    }
    let objects = crate::manifests::load_manifests(&crate::manifests::ManifestSource::Overlay(
        config.overlay_dir(env),
    ));
    match objects {
        Ok(objects) => for_env(env, Some(&objects)),
        Err(e) => {
            tracing::warn!(env = %env.name, "cannot render the overlay to list its Rollouts: {e}");
            for_env(env, None)
        }
    }
}

/// The Rollouts among `objects`.
pub(crate) fn rollouts(objects: &[Value]) -> Vec<RolloutRef> {
    objects
        .iter()
        .filter(|o| {
            o.get("kind").and_then(Value::as_str) == Some("Rollout")
                && o.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("argoproj.io/"))
        })
        .filter_map(|o| {
            let name = o.pointer("/metadata/name")?.as_str()?.to_owned();
            let namespace = o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let strategy = if o.pointer("/spec/strategy/blueGreen").is_some() {
                RolloutStrategy::BlueGreen
            } else {
                RolloutStrategy::Canary
            };
            Some(RolloutRef {
                name,
                namespace,
                strategy,
            })
        })
        .collect()
}

impl RolloutRef {
    /// `NAME -n NAMESPACE` (or `NAME` when the overlay sets no namespace).
    fn target(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} -n {ns}", self.name),
            None => self.name.clone(),
        }
    }
}

impl OnCall {
    /// Looking at and re-converging the Application.
    pub(crate) fn app_commands(&self) -> Vec<Command> {
        let app = &self.app;
        vec![
            Command {
                purpose: "state (sync, health, resources)",
                line: format!("argocd app get {app}"),
            },
            Command {
                purpose: "what differs from git",
                line: format!("argocd app diff {app}"),
            },
            Command {
                purpose: "apply git now instead of on the next poll",
                line: format!("argocd app sync {app} --prune"),
            },
            Command {
                purpose: "wait until it converged",
                line: format!("argocd app wait {app} --sync --health --timeout 600"),
            },
        ]
    }

    /// Watching and deciding the Rollouts (promote and abort are human decisions).
    pub(crate) fn rollout_commands(&self) -> Vec<Command> {
        let mut out = Vec::new();
        for r in &self.rollouts {
            let t = r.target();
            out.push(Command {
                purpose: "watch the rollout and its analysis",
                line: format!("kubectl argo rollouts get rollout {t} --watch"),
            });
            out.push(Command {
                purpose: match r.strategy {
                    RolloutStrategy::BlueGreen => {
                        "switch traffic to the preview once deploy-gate passed"
                    }
                    RolloutStrategy::Canary => "skip the current pause",
                },
                line: format!("kubectl argo rollouts promote {t}"),
            });
            out.push(Command {
                purpose: "stop the update; the stable pods keep serving",
                line: format!("kubectl argo rollouts abort {t}"),
            });
        }
        out
    }

    /// Break-glass: stop Argo CD from self-healing, and hand control back to git afterwards.
    pub(crate) fn break_glass_commands(&self) -> Vec<Command> {
        let app = &self.app;
        vec![
            Command {
                purpose: "break-glass: suspend auto-sync",
                line: format!("argocd app set {app} --sync-policy none"),
            },
            Command {
                purpose: "after git matches the cluster again: re-enable",
                line: format!(
                    "argocd app set {app} --sync-policy automated --auto-prune --self-heal"
                ),
            },
        ]
    }

    /// Every command, in the order on-call needs them.
    pub(crate) fn all_commands(&self) -> Vec<Command> {
        let mut all = self.app_commands();
        all.extend(self.rollout_commands());
        all.extend(self.break_glass_commands());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ArgoApp;
    use std::path::PathBuf;

    fn env(runtime: Runtime) -> Environment {
        let config = crate::config::Config::parse(
            std::path::Path::new("rel.toml"),
            "registry = \"r.example.com/p\"\n[environments.staging]\n",
            PathBuf::from("/x"),
        )
        .unwrap();
        let mut e = config.environments["staging"].clone();
        e.runtime = runtime;
        e
    }

    #[test]
    fn names_the_application_and_every_rollout() {
        let objects: Vec<Value> = vec![
            serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "gateway", "namespace": "platform-staging"},
                "spec": {"strategy": {"blueGreen": {"activeService": "gateway"}}}}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "gateway"}}),
            serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "worker"}, "spec": {"strategy": {"canary": {}}}}),
        ];
        let e = env(Runtime::Cluster(ArgoApp {
            name: "platform-staging".into(),
            namespace: "argocd".into(),
        }));
        let oncall = for_env(&e, Some(&objects)).unwrap();
        let lines: Vec<String> = oncall.all_commands().into_iter().map(|c| c.line).collect();
        assert_eq!(
            lines,
            [
                "argocd app get platform-staging",
                "argocd app diff platform-staging",
                "argocd app sync platform-staging --prune",
                "argocd app wait platform-staging --sync --health --timeout 600",
                "kubectl argo rollouts get rollout gateway -n platform-staging --watch",
                "kubectl argo rollouts promote gateway -n platform-staging",
                "kubectl argo rollouts abort gateway -n platform-staging",
                "kubectl argo rollouts get rollout worker --watch",
                "kubectl argo rollouts promote worker",
                "kubectl argo rollouts abort worker",
                "argocd app set platform-staging --sync-policy none",
                "argocd app set platform-staging --sync-policy automated --auto-prune --self-heal",
            ]
        );
        // No `undo` and no `argocd app rollback`: git is the authority.
        assert!(
            lines
                .iter()
                .all(|l| !l.contains(" undo ") && !l.contains("app rollback"))
        );
    }

    #[test]
    fn an_application_outside_argocd_is_namespace_qualified_and_a_stage_has_none() {
        let e = env(Runtime::Cluster(ArgoApp {
            name: "web".into(),
            namespace: "team-a".into(),
        }));
        assert_eq!(for_env(&e, None).unwrap().app, "team-a/web");
        assert_eq!(for_env(&env(Runtime::Stage), None), None);
    }
}
