//! `rel build`: parse the flags, run [`ops::build`](crate::ops::build), show what happened.

use std::io::IsTerminal;

use crate::cli::BuildArgs;
use crate::commands::progress::{self, Progress, Verbosity};
use crate::commands::{Context, print_stdout};
use crate::ops::build::{BuildEvent, BuildOptions};
use crate::report::Format;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: BuildArgs) -> Result<Exit, Error> {
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
    opts.show_cargo_progress = show_cargo();
    let mut show = ShowBuild::new();
    let outcome = crate::ops::build::build(&ws, &opts, |e| show.event(e))?;
    drop(show);
    for a in &outcome.attested {
        progress::say(&format!(
            "{}: signed {} (signature {}, provenance {}, SBOM {} with {} dependencies)",
            a.component, a.image, a.signature, a.provenance, a.sbom, a.dependencies
        ));
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

/// cargo draws its own progress only with `--verbose` on a terminal (else its output is kept and
/// shown when it fails): one display at a time.
pub(super) fn show_cargo() -> bool {
    progress::verbosity() == Verbosity::Verbose && std::io::stderr().is_terminal()
}

/// Build events shown as they happen: a spinner per component on a terminal, one plain line per
/// event elsewhere, nothing with `--quiet` (see [`progress`](crate::commands::progress)).
#[derive(Default)]
pub(super) struct ShowBuild {
    progress: Progress,
}

impl ShowBuild {
    pub(super) fn new() -> ShowBuild {
        ShowBuild::default()
    }

    pub(super) fn event(&mut self, event: BuildEvent<'_>) {
        let p = &mut self.progress;
        match event {
            BuildEvent::Compiling { component } => p.update(component, "compiling"),
            BuildEvent::Layer { component, cached } => p.update(
                component,
                if cached {
                    "layer unchanged (cache hit)"
                } else {
                    "layer built"
                },
            ),
            BuildEvent::Assembled { component, digest } => {
                p.finish(component, &format!("image {digest}"))
            }
            BuildEvent::Pushing { component } => p.update(component, "pushing"),
            BuildEvent::Sending { component, bytes } => p.tick(
                component,
                &format!("pushing: {} sent", progress::bytes(bytes)),
            ),
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
                p.finish(
                    component,
                    &format!(
                        "pushed {} ({uploaded} blobs uploaded, {present} already present, {mounted} mounted, {}; {tag_status})",
                        report.reference,
                        progress::bytes(report.bytes_uploaded)
                    ),
                );
            }
            BuildEvent::Dirty { commit } => {
                tracing::warn!(
                    "the working tree has uncommitted changes: these images are not reproducible from commit {}",
                    commit.unwrap_or("?")
                );
            }
        }
    }

    /// A line above the spinners (a release or deploy step).
    pub(super) fn line(&self, text: &str) {
        self.progress.line(text);
    }
}
