//! `rel gate ...`

use crate::cli::CoherenceArgs;
use crate::commands::{Context, emit_report};
use crate::{Error, Exit};

/// `rel gate coherence [LOCKFILE|--version V]`
pub fn coherence(ctx: &Context, args: CoherenceArgs) -> Result<Exit, Error> {
    let (path, config) = match (&args.lockfile, &args.version) {
        (Some(path), _) => {
            let path = if path.is_absolute() { path.clone() } else { ctx.cwd.join(path) };
            let config = ctx.project_of(&path)?;
            (path, config)
        }
        (None, Some(version)) => {
            let config = ctx.project()?;
            (crate::releases::lockfile_path(&config.root, version), Some(config))
        }
        (None, None) => return Err(Error::usage("no lockfile given", "pass LOCKFILE or --version VERSION")),
    };
    let loaded = crate::lockfile::read_raw(&path)?;
    let mut loaded = loaded;
    loaded.path = ctx.display(&path).into();
    let report = crate::gate::coherence::check(&loaded, config.as_ref());
    emit_report(&report, &args.output)
}
