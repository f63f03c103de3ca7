//! A container's environment, resolved as the kubelet does: the image's `Env`, then `envFrom`
//! sources in order, then `env` entries in order (later wins), where `env` values expand
//! `$(VAR)` against what is defined so far (`$$(VAR)` is a literal `$(VAR)`; an undefined
//! `$(VAR)` stays as written).

use std::collections::BTreeMap;

use crate::error::StageError;
use crate::objects::{Container, EnvVar};

/// ConfigMaps and Secrets by (namespace, name): key → value.
pub type DataObjects = BTreeMap<(String, String), BTreeMap<String, String>>;

/// One variable's value and whether it came from a Secret (then it is never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    pub value: String,
    pub secret: bool,
}

/// What a pod's fieldRefs and the lookups need.
pub struct EnvContext<'a> {
    /// `Deployment/gateway`, for errors.
    pub workload: &'a str,
    pub namespace: &'a str,
    pub pod_name: &'a str,
    pub pod_ip: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub config_maps: &'a DataObjects,
    pub secrets: &'a DataObjects,
}

/// The resolved environment, in definition order (a name appears once, at its first position).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: Vec<(String, EnvValue)>,
}

impl Env {
    pub fn set(&mut self, name: &str, value: EnvValue) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name.to_owned(), value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&EnvValue> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &EnvValue)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut EnvValue)> {
        self.vars.iter_mut().map(|(n, v)| (n.as_str(), v))
    }
}

/// Kubernetes' `$(VAR)` expansion.
pub fn expand(input: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            // `$$` is an escaped `$`.
            out.push('$');
            rest = after;
        } else if let Some(body) = tail.strip_prefix("$(")
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Resolve `container`'s environment over the image's `image_env` (`KEY=value` lines).
pub fn resolve(
    container: &Container,
    image_env: &[String],
    ctx: &EnvContext<'_>,
) -> Result<Env, StageError> {
    let mut env = Env::default();
    for line in image_env {
        let (k, v) = line.split_once('=').unwrap_or((line.as_str(), ""));
        env.set(
            k,
            EnvValue {
                value: v.to_owned(),
                secret: false,
            },
        );
    }
    // What `$(VAR)` may refer to: envFrom and earlier env entries, not the image's Env.
    let mut defined = Env::default();
    for source in &container.env_from {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let (kind, reference, objects, secret) = match (&source.config_map_ref, &source.secret_ref)
        {
            (Some(r), _) => ("ConfigMap", r, ctx.config_maps, false),
            (None, Some(r)) => ("Secret", r, ctx.secrets, true),
            (None, None) => continue,
        };
        match objects.get(&(ctx.namespace.to_owned(), reference.name.clone())) {
            Some(data) => {
                for (k, v) in data {
                    let name = format!("{prefix}{k}");
                    let value = EnvValue {
                        value: v.clone(),
                        secret,
                    };
                    env.set(&name, value.clone());
                    defined.set(&name, value);
                }
            }
            None if reference.optional == Some(true) => {}
            None => {
                return Err(StageError::MissingReference {
                    workload: ctx.workload.to_owned(),
                    kind,
                    name: reference.name.clone(),
                    key: None,
                });
            }
        }
    }
    for var in &container.env {
        if let Some(value) = resolve_var(var, &defined, ctx)? {
            env.set(&var.name, value.clone());
            defined.set(&var.name, value);
        }
    }
    Ok(env)
}

fn resolve_var(
    var: &EnvVar,
    defined: &Env,
    ctx: &EnvContext<'_>,
) -> Result<Option<EnvValue>, StageError> {
    let Some(from) = &var.value_from else {
        let raw = var.value.as_deref().unwrap_or("");
        let mut secret = false;
        let value = expand(raw, |name| {
            defined.get(name).map(|v| {
                secret |= v.secret;
                v.value.clone()
            })
        });
        return Ok(Some(EnvValue { value, secret }));
    };
    let keyed = |r: &crate::objects::KeyRef,
                 kind: &'static str,
                 objects: &DataObjects,
                 secret: bool|
     -> Result<Option<EnvValue>, StageError> {
        let found = objects
            .get(&(ctx.namespace.to_owned(), r.name.clone()))
            .map(|data| data.get(&r.key));
        match found {
            Some(Some(v)) => Ok(Some(EnvValue {
                value: v.clone(),
                secret,
            })),
            _ if r.optional == Some(true) => Ok(None),
            Some(None) => Err(StageError::MissingReference {
                workload: ctx.workload.to_owned(),
                kind,
                name: r.name.clone(),
                key: Some(r.key.clone()),
            }),
            None => Err(StageError::MissingReference {
                workload: ctx.workload.to_owned(),
                kind,
                name: r.name.clone(),
                key: None,
            }),
        }
    };
    if let Some(r) = &from.config_map_key_ref {
        return keyed(r, "ConfigMap", ctx.config_maps, false);
    }
    if let Some(r) = &from.secret_key_ref {
        return keyed(r, "Secret", ctx.secrets, true);
    }
    if let Some(f) = &from.field_ref {
        let path = f.field_path.as_str();
        let value = match path {
            "metadata.name" => ctx.pod_name.to_owned(),
            "metadata.namespace" => ctx.namespace.to_owned(),
            "status.podIP" => ctx.pod_ip.to_owned(),
            "status.podIPs" => ctx.pod_ip.to_owned(),
            "status.hostIP" | "status.hostIPs" => "127.0.0.1".to_owned(),
            "spec.nodeName" => "localhost".to_owned(),
            "spec.serviceAccountName" => "default".to_owned(),
            _ => {
                let label = |prefix: &str, map: &BTreeMap<String, String>| {
                    path.strip_prefix(prefix)
                        .and_then(|k| k.strip_prefix("['"))
                        .and_then(|k| k.strip_suffix("']"))
                        .map(|k| map.get(k).cloned().unwrap_or_default())
                };
                match label("metadata.labels", ctx.labels)
                    .or_else(|| label("metadata.annotations", ctx.annotations))
                {
                    Some(v) => v,
                    None => {
                        return Err(StageError::Unsupported {
                            workload: ctx.workload.to_owned(),
                            what: format!("env `{}` fieldRef `{path}`", var.name),
                        });
                    }
                }
            }
        };
        return Ok(Some(EnvValue {
            value,
            secret: false,
        }));
    }
    Err(StageError::Unsupported {
        workload: ctx.workload.to_owned(),
        what: format!(
            "env `{}` valueFrom (only configMapKeyRef, secretKeyRef and fieldRef are supported)",
            var.name
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{EnvFromSource, EnvVarSource, FieldRef, KeyRef, NameRef};

    fn lookup<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = [("A", "x"), ("B", "$(A)")];
        assert_eq!(expand("$(A)-$(B)", lookup(&vars)), "x-$(A)");
        assert_eq!(
            expand("$$(A) $(MISSING) $", lookup(&vars)),
            "$(A) $(MISSING) $"
        );
        assert_eq!(expand("$(A", lookup(&vars)), "$(A");
        assert_eq!(expand("a$$b", lookup(&vars)), "a$b");
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    #[test]
    fn env_from_then_env_with_value_from_and_expansion() {
        let ns = "platform";
        let mut config_maps = DataObjects::new();
        config_maps.insert(
            (ns.into(), "cfg".into()),
            BTreeMap::from([
                ("URL".to_owned(), "http://identity".to_owned()),
                ("LEVEL".to_owned(), "info".to_owned()),
            ]),
        );
        let mut secrets = DataObjects::new();
        secrets.insert(
            (ns.into(), "sec".into()),
            BTreeMap::from([("TOKEN".to_owned(), "s3cret".to_owned())]),
        );
        let labels = BTreeMap::from([("app".to_owned(), "worker".to_owned())]);
        let container = Container {
            env_from: vec![
                EnvFromSource {
                    config_map_ref: Some(NameRef {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                EnvFromSource {
                    prefix: Some("S_".into()),
                    secret_ref: Some(NameRef {
                        name: "sec".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                EnvFromSource {
                    secret_ref: Some(NameRef {
                        name: "absent".into(),
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            ],
            env: vec![
                var("LEVEL", "debug"),
                EnvVar {
                    name: "POD".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(FieldRef {
                            field_path: "metadata.name".into(),
                        }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "APP".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(FieldRef {
                            field_path: "metadata.labels['app']".into(),
                        }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "K".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(KeyRef {
                            name: "cfg".into(),
                            key: "URL".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                },
                var("ID", "$(POD)@$(S_TOKEN) $(PATH)"),
            ],
            ..Default::default()
        };
        let ctx = EnvContext {
            workload: "Deployment/worker",
            namespace: ns,
            pod_name: "worker-abc-12345",
            pod_ip: "127.64.0.5",
            labels: &labels,
            annotations: &BTreeMap::new(),
            config_maps: &config_maps,
            secrets: &secrets,
        };
        let env = resolve(
            &container,
            &["PATH=/usr/bin".into(), "LEVEL=x".into()],
            &ctx,
        )
        .unwrap();
        let shown: Vec<(String, String, bool)> = env
            .iter()
            .map(|(k, v)| (k.to_owned(), v.value.clone(), v.secret))
            .collect();
        let want = [
            ("PATH", "/usr/bin", false),
            ("LEVEL", "debug", false),
            ("URL", "http://identity", false),
            ("S_TOKEN", "s3cret", true),
            ("POD", "worker-abc-12345", false),
            ("APP", "worker", false),
            ("K", "http://identity", false),
            // The image's PATH is not visible to $(VAR); a secret in the value makes it secret.
            ("ID", "worker-abc-12345@s3cret $(PATH)", true),
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(k, v, s)| ((*k).to_owned(), (*v).to_owned(), *s))
            .collect();
        assert_eq!(shown, want);

        let mut missing = container.clone();
        missing.env_from[2].secret_ref.as_mut().unwrap().optional = None;
        let e = resolve(&missing, &[], &ctx).unwrap_err().to_string();
        assert!(
            e.contains("Secret `absent` is not in the rendered manifests"),
            "{e}"
        );
    }
}
