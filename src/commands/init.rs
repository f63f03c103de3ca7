//! `rel init`: inspect the Cargo workspace, plan the project files, show or write them.

use std::path::Path;

use crate::cli::InitArgs;
use crate::commands::print_stdout;
use crate::commands::progress::say;
use crate::init::{Action, Plan};
use crate::{Error, Exit};

pub(super) fn run(cwd: &Path, project_dir: Option<&Path>, args: InitArgs) -> Result<Exit, Error> {
    let dir = match args.dir.as_deref().or(project_dir) {
        Some(d) if d.is_absolute() => d.to_path_buf(),
        Some(d) => cwd.join(d),
        None => cwd.to_path_buf(),
    };
    let ws = crate::init::inspect(&dir)?;
    let plan = crate::init::plan(ws)?;
    let root = plan.workspace.root.clone();
    let shown = |p: &Path| {
        let abs = root.join(p);
        abs.strip_prefix(cwd).unwrap_or(&abs).display().to_string()
    };
    if args.dry_run {
        let mut s = String::new();
        for f in &plan.files {
            s.push_str(&format!(
                "{:<9} {}\n",
                label(f.action, args.force),
                shown(&f.path)
            ));
        }
        for f in plan.files.iter().filter(|f| f.action != Action::Unchanged) {
            s.push_str(&format!(
                "\n--- {} ({})\n",
                shown(&f.path),
                label(f.action, args.force)
            ));
            s.push_str(&f.shown);
        }
        print_stdout(&s);
        say(&summary(&plan));
        say("dry run: nothing was written");
        let refused = !args.force && !plan.conflicts().is_empty();
        return Ok(if refused { Exit::Failed } else { Exit::Ok });
    }
    let written = crate::init::apply(&plan, args.force)?;
    say(&summary(&plan));
    let mut s = String::new();
    for f in &plan.files {
        let action = if written.contains(&f.path) {
            f.action.label()
        } else {
            "unchanged"
        };
        s.push_str(&format!("{action:<9} {}\n", shown(&f.path)));
    }
    print_stdout(&s);
    if !plan.workspace.has_lockfile {
        say(&format!(
            "note: {} has no Cargo.lock; rel builds with `--locked`: run `cargo generate-lockfile` and commit it",
            root.display()
        ));
    }
    say("next: review rel.toml and templates/base (probes, ports), commit, then `rel release`");
    Ok(Exit::Ok)
}

fn label(action: Action, force: bool) -> &'static str {
    match action {
        Action::Overwrite if !force => "conflict",
        a => a.label(),
    }
}

fn summary(plan: &Plan) -> String {
    let ws = &plan.workspace;
    let mut s = format!(
        "workspace {} ({}): {} component{}",
        ws.name,
        ws.root.display(),
        ws.components.len(),
        if ws.components.len() == 1 { "" } else { "s" }
    );
    for c in &ws.components {
        s.push_str(&format!(
            "\n  {:<16} crate {} bin {}",
            c.name, c.krate, c.bin
        ));
        if !c.features.is_empty() {
            s.push_str(&format!(" features {}", c.features.join(",")));
        }
    }
    for skipped in &ws.skipped {
        s.push_str(&format!("\n  skipped {skipped}"));
    }
    s
}
