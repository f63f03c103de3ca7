//! `rel hold list` and `rel hold clear VERSION`.

use crate::cli::{HoldCommand, ListFormat};
use crate::commands::{Context, print_stdout};
use crate::git_repo::{FileChange, Repo, short};
use crate::hold::{HoldError, Holds};
use crate::trailers::{Action, Trailers, key};
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, cmd: HoldCommand) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let root = &config.root;
    match cmd {
        HoldCommand::List { format } => {
            let holds = Holds::load(root)?;
            match format {
                ListFormat::Json => print_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&holds.holds).unwrap_or_default()
                )),
                ListFormat::Table => {
                    let mut out = String::from("VERSION  ENV  SINCE  ACTOR  REASON\n");
                    for h in &holds.holds {
                        out.push_str(&format!(
                            "{}  {}  {}  {}  {}\n",
                            h.version, h.env, h.since, h.actor, h.reason
                        ));
                    }
                    print_stdout(&out);
                }
            }
            Ok(Exit::Ok)
        }
        HoldCommand::Clear { version, no_commit } => {
            let mut holds = Holds::load(root)?;
            if !holds.clear(&version) {
                return Err(HoldError::NotHeld { version }.into());
            }
            let path = crate::hold::path(root);
            let text = holds.to_yaml();
            let repo = if no_commit {
                None
            } else {
                Repo::discover(root)?
            };
            let Some(repo) = repo else {
                crate::atomic_write::write(&path, text.as_bytes())
                    .map_err(|e| Error::io("write the holds file", &path, e))?;
                print_stdout(&format!(
                    "released {version} from hold (not committed: commit {})\n",
                    ctx.display(&path)
                ));
                return Ok(Exit::Ok);
            };
            let rel = repo.rel_path(&path)?;
            if !repo.dirty_paths(std::slice::from_ref(&rel))?.is_empty() {
                return Err(HoldError::Dirty { path: rel }.into());
            }
            let head = repo.head_commit()?;
            let actor = repo.actor();
            let mut t = Trailers::new();
            t.push(key::ACTION, Action::HoldClear)
                .push(key::VERSION, &version)
                .push(key::ACTOR, &actor);
            let message = t.message(
                &format!("rel: release {version} from hold"),
                "It may be promoted again.",
            );
            let changes = vec![FileChange {
                path: rel,
                contents: Some(text.into_bytes()),
            }];
            let commit = repo.commit_on(head, &changes, &message)?;
            repo.advance_head(head, commit, &changes, "rel hold clear")?;
            print_stdout(&format!(
                "released {version} from hold: committed {} on {}\n",
                short(commit),
                repo.head_branch().unwrap_or_default()
            ));
            Ok(Exit::Ok)
        }
    }
}
