//! identity's command line. Secrets never travel as flags: the signing seed and inline client
//! credentials are read from the environment only (or the clients from a file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use service_runtime::config::{DatabaseArgs, ServeArgs};
use service_runtime::env;
use service_runtime::token::{KeyError, Signer};
use zeroize::Zeroizing;

use crate::app::{AppState, router};
use crate::clients::{ClientRegistry, ClientsError};

const ENV_HELP: &str = "\
Secrets are read from the environment only, never from flags:
  IDENTITY_SIGNING_KEY_B64  32-byte Ed25519 seed, standard base64 (required for `serve`)
  IDENTITY_CLIENTS          client credentials `id:class:secret`, comma-separated,
                            class = service_account | node (or use --clients-file)
Logging: RUST_LOG (default info).";

#[derive(Debug, Parser)]
#[command(
    name = "identity",
    version,
    about = "Issues platform JWTs, serves the JWKS, owns the schema",
    after_help = ENV_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process arguments; with no subcommand, `serve` is meant (`identity` and
    /// `identity --listen-addr ...` serve). Only the chosen subcommand's flags and environment
    /// are read, so `identity migrate` does not trip over serve-only settings.
    pub fn parse_or_serve() -> Self {
        Self::parse_from(with_default_subcommand(std::env::args_os().collect()))
    }
}

fn with_default_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let explicit = args.get(1).and_then(|a| a.to_str()).is_some_and(|first| {
        matches!(
            first,
            "serve" | "migrate" | "help" | "-h" | "--help" | "-V" | "--version"
        )
    });
    if !explicit {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve /token, the JWKS and the probes (the default).
    #[command(after_help = ENV_HELP)]
    Serve(ServeCommand),
    /// Apply the database migrations once; idempotent, safe to run concurrently.
    Migrate(MigrateCommand),
}

#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// File of client credentials: one `id:class:secret` a line, `#` starts a comment.
    /// Used together with IDENTITY_CLIENTS if both are set.
    #[arg(long, env = "IDENTITY_CLIENTS_FILE")]
    pub clients_file: Option<PathBuf>,

    /// Lifetime of issued tokens, in seconds.
    #[arg(long, env = "IDENTITY_TOKEN_TTL_SECS", default_value_t = 900)]
    pub token_ttl_secs: u64,

    /// The `iss` claim of issued tokens (the gateway checks it).
    #[arg(long, env = "IDENTITY_ISSUER", default_value = "rel-identity")]
    pub issuer: String,
}

#[derive(Debug, clap::Args)]
pub struct MigrateCommand {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IdentityError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tls(#[from] service_runtime::tls::TlsError),
    #[error("IDENTITY_SIGNING_KEY_B64 is not set; give identity its 32-byte Ed25519 seed (base64)")]
    #[diagnostic(help(
        "make a seed once with `head -c 32 /dev/urandom | base64` and give it to every identity replica as IDENTITY_SIGNING_KEY_B64, from a Kubernetes Secret or the genesis envelope (REL_GENESIS_B64); it is never a flag"
    ))]
    MissingSigningKey,
    #[error(transparent)]
    #[diagnostic(transparent)]
    SigningKey(#[from] KeyError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Clients(#[from] ClientsError),
    #[error("no clients configured: set IDENTITY_CLIENTS or IDENTITY_CLIENTS_FILE")]
    #[diagnostic(help(
        "set IDENTITY_CLIENTS to `id:class:secret` entries separated by commas (class `service_account` or `node`), or IDENTITY_CLIENTS_FILE (--clients-file) to a file with one entry a line; both may be set, and a variable that is set but empty counts as no clients"
    ))]
    NoClients,
    #[error("token lifetime must be between 1 and 86400 seconds, got {0}")]
    #[diagnostic(help(
        "set IDENTITY_TOKEN_TTL_SECS (or --token-ttl-secs) to a whole number of seconds from 1 to 86400 (one day), or unset it for the default of 900"
    ))]
    TokenTtl(u64),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Schema(#[from] service_runtime::schema::SchemaError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serve(#[from] service_runtime::serve::ServeError),
}

impl IdentityError {
    /// 2 for configuration errors, 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            IdentityError::MissingSigningKey
            | IdentityError::SigningKey(_)
            | IdentityError::Clients(_)
            | IdentityError::NoClients
            | IdentityError::TokenTtl(_)
            | IdentityError::Tls(_) => 2,
            _ => 1,
        }
    }
}

/// Runs the parsed command. Call after `service_runtime::startup::bootstrap_process`.
pub fn run(cli: Cli) -> Result<(), IdentityError> {
    match cli.command {
        Command::Migrate(cmd) => migrate(&cmd),
        Command::Serve(cmd) => serve(cmd),
    }
}

/// The process entry point shared by `main` and nothing else.
pub fn main_exit_code(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "identity failed");
            ExitCode::from(error.exit_code())
        }
    }
}

fn migrate(cmd: &MigrateCommand) -> Result<(), IdentityError> {
    let db = &cmd.database.database_url;
    tracing::info!(database = %db, "migrating");
    let report = service_runtime::schema::migrate(db)?;
    if report.applied.is_empty() {
        tracing::info!(
            version = report.version,
            "schema already current; nothing applied"
        );
    } else {
        tracing::info!(applied = ?report.applied, version = report.version, "migrations applied");
    }
    Ok(())
}

fn serve(cmd: ServeCommand) -> Result<(), IdentityError> {
    let seed = Zeroizing::new(
        std::env::var(env::IDENTITY_SIGNING_KEY_B64)
            .map_err(|_| IdentityError::MissingSigningKey)?,
    );
    let signer = Signer::from_seed_b64(&seed)?;
    drop(seed);

    let mut clients = ClientRegistry::default();
    if let Ok(inline) = std::env::var(env::IDENTITY_CLIENTS) {
        let inline = Zeroizing::new(inline);
        clients.extend(ClientRegistry::parse(&inline, env::IDENTITY_CLIENTS)?);
    }
    if let Some(path) = &cmd.clients_file {
        clients.extend(ClientRegistry::from_file(path)?);
    }
    if clients.is_empty() {
        return Err(IdentityError::NoClients);
    }
    if !(1..=86_400).contains(&cmd.token_ttl_secs) {
        return Err(IdentityError::TokenTtl(cmd.token_ttl_secs));
    }

    let build = service_runtime::build_info!("identity", "identity");
    let db = cmd.serve.database.database_url.clone();
    let health = service_runtime::Health::new(build, db.clone(), crate::SCHEMA);
    tracing::info!(
        kid = signer.kid(),
        clients = ?clients.ids(),
        database = %db,
        listen = %cmd.serve.listen_addr,
        "identity starting"
    );
    let state = AppState {
        signer: Arc::new(signer),
        clients: Arc::new(clients),
        token_ttl_secs: cmd.token_ttl_secs as i64,
        issuer: Arc::from(cmd.issuer.as_str()),
        db,
    };
    let app = router(state).merge(health.routes());
    let tls = cmd.serve.tls.load()?;
    service_runtime::serve::run(cmd.serve.listen_addr, app, health, cmd.serve.drain, tls)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(with_default_subcommand(
            args.iter().map(Into::into).collect(),
        ))
        .unwrap()
    }

    #[test]
    fn no_subcommand_means_serve_and_migrate_ignores_serve_flags() {
        assert!(matches!(parse(&["identity"]).command, Command::Serve(_)));
        match parse(&["identity", "--listen-addr", "127.0.0.1:9"]).command {
            Command::Serve(cmd) => assert_eq!(cmd.serve.listen_addr.port(), 9),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["identity", "migrate"]).command,
            Command::Migrate(_)
        ));
    }
}
