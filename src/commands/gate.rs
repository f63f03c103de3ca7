//! `rel gate ...`

use std::path::Path;

use crate::cli::{CoherenceArgs, DriftArgs, HeadroomArgs, KubeArgs, SmokeArgs};
use crate::commands::{Context, UsageError, emit_report};
use crate::config::{Config, Environment};
use crate::kube_source::{KubeClient, KubeError, KubeOptions};
use crate::manifests::{ManifestSource, Workload};
use crate::ops::gate::{DriftOptions, LivePods, SmokeOptions, runtime};
use crate::{Error, Exit, env_vars};

/// `rel gate coherence [LOCKFILE|--version V]`
pub(super) fn coherence(ctx: &Context, args: CoherenceArgs) -> Result<Exit, Error> {
    let (path, config) = match (&args.lockfile, &args.version) {
        (Some(path), _) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                ctx.cwd.join(path)
            };
            let config = ctx.project_of(&path)?;
            (path, config)
        }
        (None, Some(version)) => {
            let config = ctx.project()?;
            (
                crate::releases::lockfile_path(&config.root, version),
                Some(config),
            )
        }
        (None, None) => {
            return Err(UsageError::NoLockfile.into());
        }
    };
    let loaded = crate::lockfile::read_raw(&path)?;
    let mut loaded = loaded;
    loaded.path = ctx.display(&path).into();
    let report = crate::gate::coherence::check(&loaded, config.as_ref());
    emit_report(&report, &args.output)
}

/// `rel gate smoke --env E --profile baseline|deep`
pub(super) fn smoke(ctx: &Context, args: SmokeArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    // A private CA comes from the global --ca-file / REL_CA_FILE (src/trust.rs), as for every
    // HTTPS client rel has.
    let ca_pem = None;
    let token = match (&args.token_file, args.token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io("read the token file", path, e))?;
            Some(text.trim().to_owned())
        }
        (None, Some(flag)) => {
            tracing::warn!(
                "--token puts the token in argv, visible to every user of this machine; use --token-file or {}",
                env_vars::SMOKE_TOKEN
            );
            Some(flag)
        }
        (None, None) => std::env::var(env_vars::SMOKE_TOKEN).ok(),
    };
    let report = crate::ops::gate::smoke(
        &ws,
        &SmokeOptions {
            env: args.env,
            profile: args.profile,
            base_url: args.base_url,
            token,
            ca_pem,
            version: args.version,
            timeout: args.timeout,
        },
    )?;
    emit_report(&report, &args.output)
}

/// The workloads of an environment: from `--rendered FILE|-`, else by rendering its overlay.
fn load_workloads(
    ctx: &Context,
    config: &Config,
    env: &Environment,
    rendered: Option<&Path>,
) -> Result<Vec<Workload>, Error> {
    let source = match rendered {
        Some(p) if p == Path::new("-") => ManifestSource::Stdin,
        Some(p) => ManifestSource::File(if p.is_absolute() {
            p.to_path_buf()
        } else {
            ctx.cwd.join(p)
        }),
        None => ManifestSource::Overlay(config.overlay_dir(env)),
    };
    let objects = crate::manifests::load_manifests(&source)?;
    Ok(crate::manifests::workloads(&objects))
}

/// A Kubernetes API error, kept typed (its help, code and cause reach the user).
fn kube_error(e: KubeError) -> Error {
    Error::from(e)
}

fn kube_options(args: &KubeArgs) -> KubeOptions {
    KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        timeout: args.kube_timeout,
    }
}

fn kube_client(args: &KubeArgs) -> Result<KubeClient, Error> {
    KubeClient::from_kubeconfig(&kube_options(args)).map_err(kube_error)
}

/// `--rendered FILE|-` as a manifest source.
fn manifest_source(ctx: &Context, p: &Path) -> ManifestSource {
    if p == Path::new("-") {
        ManifestSource::Stdin
    } else {
        ManifestSource::File(if p.is_absolute() {
            p.to_path_buf()
        } else {
            ctx.cwd.join(p)
        })
    }
}

/// `rel gate drift --env E [--version V] [--live | --pods FILE]`
pub(super) fn drift(ctx: &Context, args: DriftArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    if args.rendered.as_deref() == Some(Path::new("-"))
        && args.pods.as_deref() == Some(Path::new("-"))
    {
        return Err(UsageError::StdinTwice {
            first: "--rendered",
            second: "--pods",
        }
        .into());
    }
    let live = match (&args.pods, args.live) {
        (Some(path), _) => LivePods::File {
            // Relative paths resolve against the working directory, as the user typed them.
            path: path.clone(),
            shown: if path == Path::new("-") {
                "-".to_owned()
            } else {
                ctx.display(path)
            },
        },
        (None, true) => match &ws.config.environment(&args.env)?.runtime {
            // A local stage is its own live source: the pods it runs, with their real digests.
            crate::config::Runtime::Stage => match crate::stage::status(&ws.config, &args.env)?
                .filter(|s| s.supervisor.as_ref().is_some_and(|p| p.is_alive()))
            {
                Some(state) => LivePods::Given {
                    pods: crate::stage::live_pods(&state),
                    source: format!("the local stage `{}`", args.env),
                },
                None => {
                    return Err(UsageError::StageNotRunning {
                        env: args.env.clone(),
                    }
                    .into());
                }
            },
            crate::config::Runtime::Cluster(_) => LivePods::Kube(kube_options(&args.kube)),
        },
        (None, false) => LivePods::None,
    };
    let report = crate::ops::gate::drift(
        &ws,
        &DriftOptions {
            env: args.env,
            version: args.version,
            manifests: args.rendered.as_deref().map(|p| manifest_source(ctx, p)),
            live,
            namespace: args.namespace,
            verify_signatures: args.verify_signatures,
            insecure_registries: args.insecure_registries,
        },
    )?;
    emit_report(&report, &args.output)
}

/// `rel gate headroom --env E --nodes FILE|--live [--fail]`
pub(super) fn headroom(ctx: &Context, args: HeadroomArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let env = config.environment(&args.env)?;
    if args.rendered.as_deref() == Some(Path::new("-"))
        && args.nodes.as_deref() == Some(Path::new("-"))
    {
        return Err(UsageError::StdinTwice {
            first: "--rendered",
            second: "--nodes",
        }
        .into());
    }
    let workloads = load_workloads(ctx, &config, env, args.rendered.as_deref())?;
    let (nodes, pods) = match &args.nodes {
        Some(path) => crate::kube_source::read_nodes_and_pods(path).map_err(kube_error)?,
        None => {
            let client = kube_client(&args.kube)?;
            runtime()?
                .block_on(async {
                    Ok::<_, KubeError>((
                        client.nodes().await?,
                        client.active_pods_everywhere().await?,
                    ))
                })
                .map_err(kube_error)?
        }
    };
    let input = crate::gate::headroom::Input {
        env: &env.name,
        workloads: &workloads,
        nodes: &nodes,
        pods: Some(&pods),
        node_labels: &env.headroom.node_labels,
        fail: args.fail || env.headroom.fail,
    };
    let report = crate::gate::headroom::check(&input)?;
    emit_report(&report, &args.output)
}
