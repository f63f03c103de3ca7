//! `rel build`: compile, assemble, publish; write target/rel/build.json.

use std::io::{IsTerminal, Write};

use crate::build::{self, BuildPlan, Progress};
use crate::build_output::{self, BuildOutput};
use crate::cli::BuildArgs;
use crate::commands::{Context, print_stdout};
use crate::config::Component;
use crate::report::Format;
use crate::{Error, Exit, env_vars};

pub fn run(ctx: &Context, args: BuildArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let (output, path) = execute(ctx, &config, &args)?;
    match args.format {
        Format::Json => print_stdout(&output.to_json()),
        _ => {
            let mut text = String::new();
            for c in &output.components {
                text.push_str(&format!(
                    "{:<12} {}:{}@{}\n",
                    c.component,
                    c.image,
                    c.tag.as_deref().unwrap_or(""),
                    c.digest
                ));
            }
            text.push_str(&format!("wrote {}\n", ctx.display(&path)));
            print_stdout(&text);
        }
    }
    Ok(Exit::Ok)
}

/// Build, publish and record; returns the build result and where it was written.
pub fn execute(
    ctx: &Context,
    config: &crate::config::Config,
    args: &BuildArgs,
) -> Result<(BuildOutput, std::path::PathBuf), Error> {
    let components = select(config, &args.components)?;
    let sde = std::env::var(env_vars::SOURCE_DATE_EPOCH).ok();
    let source = build::source::inspect(&config.root, sde.as_deref()).map_err(|e| {
        Error::usage(
            e,
            "unset it or give whole seconds, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
        )
    })?;
    if source.dirty {
        tracing::warn!(
            "the working tree has uncommitted changes: these images are not reproducible from commit {}",
            source.commit.as_deref().unwrap_or("?")
        );
    }
    let registry = args
        .registry
        .clone()
        .unwrap_or_else(|| config.registry.clone());
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| build::default_tag(&source));
    image_ref::ImageRef::new(&registry, "probe")
        .and_then(|r| r.with_tag(&tag))
        .map_err(|e| Error::usage(format!("--registry/--tag: {e}"), "give a registry like `localhost:5000/platform` and a tag of letters, digits, `.`, `_`, `-`"))?;
    let tty = std::io::stderr().is_terminal();
    let plan = BuildPlan {
        config,
        components,
        registry,
        tag: tag.clone(),
        source: source.clone(),
        show_cargo_progress: tty,
        cargo_target_dir: std::env::var_os(env_vars::CARGO_TARGET_DIR)
            .map(std::path::PathBuf::from),
    };

    let mut stderr = std::io::stderr();
    let assembled = build::assemble_all(&plan, |p| {
        let line = match p {
            Progress::Compiling { component } => format!("compiling {component}"),
            Progress::Compiled { .. } => return,
            Progress::Layer { component, cached } => {
                format!(
                    "{component}: layer {}",
                    if cached {
                        "unchanged (cache hit)"
                    } else {
                        "built"
                    }
                )
            }
            Progress::Assembled { component, digest } => format!("{component}: image {digest}"),
        };
        let _ = writeln!(stderr, "{line}");
    })
    .map_err(|e| {
        Error::invalid(
            e.to_string(),
            "see the message above; `RUST_LOG=debug rel build` shows more",
        )
    })?;

    let mut output = BuildOutput {
        schema: build_output::SCHEMA,
        components: Vec::new(),
    };
    if args.push {
        for (a, report) in assembled.iter().zip(push_all(&assembled, &tag, args)?) {
            let uploaded = report.count(|o| matches!(o, oci::BlobOutcome::Uploaded));
            let present = report.count(|o| matches!(o, oci::BlobOutcome::AlreadyPresent));
            let mounted = report.count(|o| matches!(o, oci::BlobOutcome::Mounted { .. }));
            let tag_status = match &report.tag_status {
                oci::TagStatus::Created => "tag created".to_owned(),
                oci::TagStatus::Unchanged => "tag unchanged".to_owned(),
                oci::TagStatus::Overwritten { previous } => {
                    format!("tag moved from {previous} (--allow-overwrite)")
                }
            };
            let _ = writeln!(
                stderr,
                "{}: pushed {} ({} blobs uploaded, {} already present, {} mounted, {} bytes; {tag_status})",
                a.component, report.reference, uploaded, present, mounted, report.bytes_uploaded
            );
            output
                .components
                .push(a.record(&tag, source.commit.as_deref(), "registry".to_owned()));
        }
    }
    for a in assembled.iter().filter(|_| !args.push) {
        let dir = build::layout_dir(&config.root, &a.component);
        oci::write_layout(&dir, &a.image, &tag).map_err(|e| {
            Error::io(
                "write the OCI image layout",
                &dir,
                std::io::Error::other(e.to_string()),
            )
        })?;
        let shown = ctx.display(&dir);
        output.components.push(a.record(
            &tag,
            source.commit.as_deref(),
            format!("oci-layout:{shown}"),
        ));
    }

    let path = config.root.join(build_output::DEFAULT_PATH);
    crate::atomic_write::write(&path, output.to_json().as_bytes())
        .map_err(|e| Error::io("write the build result", &path, e))?;
    Ok((output, path))
}

/// Push every image, manifest last and verified; tags are immutable unless `--allow-overwrite`.
fn push_all(
    assembled: &[build::Assembled],
    tag: &str,
    args: &BuildArgs,
) -> Result<Vec<oci::PushReport>, Error> {
    let Some(first) = assembled.first() else {
        return Ok(Vec::new());
    };
    let host = first.image_name.registry().to_owned();
    let credentials = oci::resolve_credentials(&host, &oci::CredentialSources::from_env())
        .map_err(|e| Error::usage(format!("registry credentials for {host}: {e}"), "set both REL_REGISTRY_USERNAME and REL_REGISTRY_PASSWORD, or fix ~/.docker/config.json"))?;
    let options = oci::ClientOptions {
        insecure: args.insecure_registries.clone(),
        ..Default::default()
    };
    let registry = oci::Registry::new(&host, credentials, options)
        .map_err(|e| Error::usage(format!("registry {host}: {e}"), "check --registry"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", ".", e))?;
    let mut reports = Vec::new();
    for a in assembled {
        let target = a.image_name.with_tag(tag).map_err(|e| {
            Error::usage(e.to_string(), "use a tag of letters, digits, `.`, `_`, `-`")
        })?;
        // Layers already pushed for another component can be mounted instead of uploaded.
        let mount_from = assembled
            .iter()
            .filter(|o| o.component != a.component && o.image_name.registry() == host)
            .map(|o| o.image_name.repository().to_owned())
            .collect();
        let options = oci::PushOptions {
            allow_overwrite: args.allow_overwrite,
            mount_from,
        };
        let report = runtime.block_on(registry.push(&target, &a.image, &options)).map_err(|e| match e {
            oci::RegistryError::TagExists { reference, existing, ours } => Error::refused(
                format!("{}: tag `{reference}` already points at {existing}; this build is {ours}", a.component),
                "tags are immutable: push under a new --tag, or pass --allow-overwrite to move it",
            ),
            other => Error::invalid(
                format!("{}: push to {target} failed: {other}", a.component),
                "check that the registry is reachable and the credentials allow pushing; a re-run resumes where this stopped",
            ),
        })?;
        reports.push(report);
    }
    Ok(reports)
}

/// The components to build: the named ones, or every built component.
fn select<'a>(
    config: &'a crate::config::Config,
    names: &[String],
) -> Result<Vec<&'a Component>, Error> {
    if names.is_empty() {
        return Ok(config
            .components
            .values()
            .filter(|c| c.is_built())
            .collect());
    }
    names
        .iter()
        .map(|n| {
            let c = config.components.get(n).ok_or_else(|| {
                Error::usage(
                    format!("--component {n}: rel.toml has no component `{n}`"),
                    format!(
                        "built components: {}",
                        config
                            .components
                            .values()
                            .filter(|c| c.is_built())
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if !c.is_built() {
                return Err(Error::usage(
                    format!("--component {n}: `{n}` is external; rel does not build it"),
                    "pin it with `rel lock --digest`",
                ));
            }
            Ok(c)
        })
        .collect()
}
