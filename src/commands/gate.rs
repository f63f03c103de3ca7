//! `rel gate ...`

use crate::cli::{CoherenceArgs, SmokeArgs};
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
            format!("add `[environments.{0}.smoke]` with `[[environments.{0}.smoke.checks]]` to rel.toml (schema: src/config.rs)", env.name),
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
            return Err(Error::usage(format!("--base-url `{u}` is not an http(s) URL"), "write it as `https://host[:port]`"));
        }
        other => other.map(|u| u.trim_end_matches('/').to_owned()),
    };
    let ca_pem = match &args.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| Error::io("read the CA file", path, e))?),
        None => None,
    };
    let input = smoke::Input {
        env: env.name.clone(),
        profile: args.profile,
        base_url,
        token: args.token.and_then(smoke::Token::new),
        ca_pem,
        version: args.version,
        smoke: declared,
    };
    let report = runtime()?.block_on(smoke::run(input)).map_err(|e| {
        let help = match e {
            smoke::SmokeError::Ca(_) => "pass a PEM file with at least one `-----BEGIN CERTIFICATE-----` block",
            smoke::SmokeError::Client(_) => "this is a bug or a broken TLS setup; run with RUST_LOG=rel=debug",
        };
        Error::invalid(e.to_string(), help)
    })?;
    emit_report(&report, &args.output)
}
