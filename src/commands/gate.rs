//! `rel gate ...`

use std::path::Path;

use crate::cli::{CoherenceArgs, DriftArgs, HeadroomArgs, KubeArgs, SmokeArgs};
use crate::commands::{Context, emit_report};
use crate::config::{Config, Environment};
use crate::kube_source::{KubeClient, KubeError, KubeOptions};
use crate::manifests::{ManifestSource, Workload};
use crate::{Error, Exit, env_vars};

/// `rel gate coherence [LOCKFILE|--version V]`
pub fn coherence(ctx: &Context, args: CoherenceArgs) -> Result<Exit, Error> {
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
            return Err(Error::usage(
                "no lockfile given",
                "pass LOCKFILE or --version VERSION",
            ));
        }
    };
    let loaded = crate::lockfile::read_raw(&path)?;
    let mut loaded = loaded;
    loaded.path = ctx.display(&path).into();
    let report = crate::gate::coherence::check(&loaded, config.as_ref());
    emit_report(&report, &args.output)
}

/// A runtime for the gates that talk to the network. Two workers: the work is I/O-bound.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", ".", e))
}

/// `rel gate smoke --env E --profile baseline|deep`
pub fn smoke(ctx: &Context, args: SmokeArgs) -> Result<Exit, Error> {
    use crate::gate::smoke;
    let config = ctx.project()?;
    let env = config.environment(&args.env)?;
    let Some(mut declared) = env.smoke.clone() else {
        return Err(Error::usage(
            format!("environment `{}` declares no smoke checks", env.name),
            format!(
                "add `[environments.{0}.smoke]` with `[[environments.{0}.smoke.checks]]` to rel.toml (schema: src/config.rs)",
                env.name
            ),
        ));
    };
    if let Some(t) = args.timeout {
        declared.timeout = t;
        for c in &mut declared.checks {
            c.timeout = None;
        }
    }
    let base_url = match args.base_url.or_else(|| declared.base_url.clone()) {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err(Error::usage(
                format!("--base-url `{u}` is not an http(s) URL"),
                "write it as `https://host[:port]`",
            ));
        }
        other => other.map(|u| u.trim_end_matches('/').to_owned()),
    };
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| Error::io("read the CA file", path, e))?)
        }
        None => None,
    };
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
    let input = smoke::Input {
        env: env.name.clone(),
        profile: args.profile,
        base_url,
        token: token.and_then(smoke::Token::new),
        ca_pem,
        version: args.version.clone(),
        smoke: declared,
    };
    let report = runtime()?.block_on(smoke::run(input)).map_err(|e| {
        let help = match e {
            smoke::SmokeError::Ca(_) => {
                "pass a PEM file with at least one `-----BEGIN CERTIFICATE-----` block"
            }
            smoke::SmokeError::Client(_) => {
                "this is a bug or a broken TLS setup; run with RUST_LOG=rel=debug"
            }
        };
        Error::invalid(e.to_string(), help)
    })?;
    // Bind the report to the lockfile bytes of the version it validates: `rel record` refuses
    // evidence that ran against other bytes.
    let report = match &args.version {
        Some(v) => {
            let path = crate::releases::lockfile_path(&config.root, v);
            match std::fs::read(&path) {
                Ok(bytes) => report.with_context(
                    crate::record::LOCKFILE_SHA256,
                    crate::record::sha256_hex(&bytes),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => report,
                Err(e) => return Err(Error::io("read the lockfile", &path, e)),
            }
        }
        None => report,
    };
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

fn kube_error(e: KubeError) -> Error {
    use miette::Diagnostic as _;
    let help = e.help().map(|h| h.to_string()).unwrap_or_default();
    Error::invalid(e.to_string(), help)
}

fn kube_client(args: &KubeArgs) -> Result<KubeClient, Error> {
    KubeClient::from_kubeconfig(&KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        timeout: args.kube_timeout,
    })
    .map_err(kube_error)
}

/// The release lockfiles of `releases/` that load (a broken one is reported by `rel gate coherence`).
fn all_lockfiles(config: &Config) -> Vec<crate::lockfile::Lockfile> {
    crate::status::releases(&config.root)
}

/// `rel gate drift --env E [--version V] [--live | --pods FILE]`
pub fn drift(ctx: &Context, args: DriftArgs) -> Result<Exit, Error> {
    use crate::gate::drift;
    let config = ctx.project()?;
    let env = config.environment(&args.env)?;
    if args.rendered.as_deref() == Some(Path::new("-"))
        && args.pods.as_deref() == Some(Path::new("-"))
    {
        return Err(Error::usage(
            "--rendered and --pods cannot both read stdin",
            "give one of them as a file",
        ));
    }
    let workloads = load_workloads(ctx, &config, env, args.rendered.as_deref())?;
    let given;
    let all;
    let release = match &args.version {
        Some(v) => {
            given =
                crate::lockfile::Lockfile::load(&crate::releases::lockfile_path(&config.root, v))?;
            drift::Release::Given(&given)
        }
        None => {
            all = all_lockfiles(&config);
            drift::Release::AnyOf(&all)
        }
    };
    let (mut report, pins) = drift::check_static(&env.name, &workloads, &config, release);

    if let Some(path) = &args.pods {
        // Relative paths resolve against the working directory, as the user typed them.
        let pods = crate::kube_source::read_pods(path).map_err(kube_error)?;
        let source = if path == Path::new("-") {
            "pods from <stdin>".to_owned()
        } else {
            format!("pods from {}", ctx.display(path))
        };
        drift::check_live(
            &mut report,
            &workloads,
            &pins,
            &drift::LiveInput {
                pods: &pods,
                namespace: args.namespace.as_deref(),
                source,
            },
        );
    } else if args.live {
        let client = kube_client(&args.kube)?;
        let default_ns = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.namespace.clone());
        let namespaces = drift::namespaces(&workloads, &default_ns);
        let pods = runtime()?.block_on(async {
            let mut pods = Vec::new();
            for ns in &namespaces {
                pods.extend(client.pods(ns).await?);
            }
            Ok::<_, KubeError>(pods)
        });
        let pods = pods.map_err(kube_error)?;
        let source = format!("the API of {}", client.describe);
        drift::check_live(
            &mut report,
            &workloads,
            &pins,
            &drift::LiveInput {
                pods: &pods,
                namespace: Some(&default_ns),
                source,
            },
        );
    }
    emit_report(&report, &args.output)
}

/// `rel gate headroom --env E --nodes FILE|--live [--fail]`
pub fn headroom(ctx: &Context, args: HeadroomArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let env = config.environment(&args.env)?;
    if args.rendered.as_deref() == Some(Path::new("-"))
        && args.nodes.as_deref() == Some(Path::new("-"))
    {
        return Err(Error::usage(
            "--rendered and --nodes cannot both read stdin",
            "give one of them as a file",
        ));
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
    let report = crate::gate::headroom::check(&input);
    emit_report(&report, &args.output)
}
