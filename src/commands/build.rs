//! `rel build`: parse the flags, run [`ops::build`](crate::ops::build), show what happened.

use std::io::{IsTerminal, Write};

use crate::cli::BuildArgs;
use crate::commands::{Context, print_stdout};
use crate::ops::build::{BuildEvent, BuildOptions};
use crate::report::Format;
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: BuildArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    if let Some(version) = &args.verify_reproducible {
        let report = crate::ops::reproduce::verify_reproducible(&ws, version)?;
        let output = crate::cli::GateOutput {
            format: args.format,
            junit: None,
        };
        return crate::commands::emit_report(&report, &output);
    }
    let mut opts = BuildOptions::from_env(args.components, args.registry.options());
    opts.show_cargo_progress = std::io::stderr().is_terminal();
    let outcome = crate::ops::build::build(&ws, &opts, show_event)?;
    for a in &outcome.attested {
        let _ = writeln!(
            std::io::stderr(),
            "{}: signed {} (signature {}, provenance {}, SBOM {} with {} dependencies)",
            a.component,
            a.image,
            a.signature,
            a.provenance,
            a.sbom,
            a.dependencies
        );
    }
    match args.format {
        Format::Json => print_stdout(&outcome.output.to_json()),
        _ => {
            let mut text = String::new();
            for c in &outcome.output.components {
                text.push_str(&format!(
                    "{:<12} {}:{}@{}\n",
                    c.component,
                    c.image,
                    c.tag.as_deref().unwrap_or(""),
                    c.digest
                ));
            }
            text.push_str(&format!("wrote {}\n", ctx.display(&outcome.path)));
            print_stdout(&text);
        }
    }
    Ok(Exit::Ok)
}

/// One line on stderr per build event (talk, not data).
pub fn show_event(event: BuildEvent<'_>) {
    let line = match event {
        BuildEvent::Compiling { component } => format!("compiling {component}"),
        BuildEvent::Layer { component, cached } => format!(
            "{component}: layer {}",
            if cached {
                "unchanged (cache hit)"
            } else {
                "built"
            }
        ),
        BuildEvent::Assembled { component, digest } => format!("{component}: image {digest}"),
        BuildEvent::Pushed { component, report } => {
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
            format!(
                "{component}: pushed {} ({uploaded} blobs uploaded, {present} already present, {mounted} mounted, {} bytes; {tag_status})",
                report.reference, report.bytes_uploaded
            )
        }
        BuildEvent::Dirty { commit } => {
            tracing::warn!(
                "the working tree has uncommitted changes: these images are not reproducible from commit {}",
                commit.unwrap_or("?")
            );
            return;
        }
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}
