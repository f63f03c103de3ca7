//! The commands: thin functions over the library that render results and pick exit codes.
//! The only module of rel that prints (the workspace lints deny printing everywhere else).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Cli, Command, GateCommand, GateOutput};
use crate::config::Config;
use crate::report::Report;
use crate::{Error, Exit, env_vars};

mod audit;
mod build;
mod completions;
mod deploy;
mod diff;
mod freeze;
mod gate;
mod hold;
mod init;
mod lock;
mod pin;
pub mod progress;
mod promote;
mod record;
mod release;
mod render;
mod rollback;
mod secrets;
mod signing;
mod stage;
mod status;
mod verify;

/// A command line rel cannot act on: flags missing, or in a combination that cannot work.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UsageError {
    #[error("{} has no {}", dir.display(), crate::config::FILE_NAME)]
    #[diagnostic(
        code(rel::usage::no_project_file),
        help("point -C / REL_PROJECT_DIR at the directory that holds rel.toml")
    )]
    NoProjectFile { dir: PathBuf },

    #[error("no lockfile given")]
    #[diagnostic(
        code(rel::usage::no_lockfile),
        help("pass LOCKFILE or --version VERSION")
    )]
    NoLockfile,

    #[error("no overlay given")]
    #[diagnostic(code(rel::usage::no_overlay), help("pass --env ENV or --overlay DIR"))]
    NoOverlay,

    #[error("no release given")]
    #[diagnostic(
        code(rel::usage::no_release),
        help("pass --version VERSION or --lockfile FILE")
    )]
    NoRelease,

    #[error("nothing to render")]
    #[diagnostic(
        code(rel::usage::nothing_to_render),
        help("pass a kustomization directory or --env ENV")
    )]
    NothingToRender,

    #[error("{first} and {second} cannot both read stdin")]
    #[diagnostic(code(rel::usage::stdin_twice), help("give one of them as a file"))]
    StdinTwice {
        first: &'static str,
        second: &'static str,
    },

    #[error("--live: the local stage `{env}` is not running")]
    #[diagnostic(
        code(rel::usage::stage_not_running),
        help("start it with `rel up --env {env} --detach` (or `rel deploy --env {env}`)")
    )]
    StageNotRunning { env: String },

    #[error("cannot write the diff as JSON")]
    #[diagnostic(
        code(rel::usage::diff_json),
        help("this is a bug in rel; use --format text meanwhile")
    )]
    DiffJson(#[source] serde_json::Error),
}

/// Run a parsed command line and return the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    progress::set_verbosity(if cli.quiet {
        progress::Verbosity::Quiet
    } else if cli.verbose {
        progress::Verbosity::Verbose
    } else {
        progress::Verbosity::Normal
    });
    init_tracing();
    init_error_reporter();
    if let Some(result) = run_without_project(&cli) {
        return match result {
            Ok(exit) => exit.into(),
            Err(e) => report_error(e),
        };
    }
    let mut ctx = match Context::new(cli.project_dir) {
        Ok(ctx) => ctx,
        Err(e) => return report_error(e),
    };
    ctx.signing_key_file = cli.signing_key_file.map(|f| {
        if f == Path::new("-") || f.is_absolute() {
            f
        } else {
            ctx.cwd.join(f)
        }
    });
    if let Some(ca) = &cli.ca_file
        && let Err(e) = crate::trust::load_ca_file(&ctx.cwd.join(ca))
    {
        return report_error(e);
    }
    let result = match cli.command {
        Command::Release(args) => release::run(&ctx, args),
        Command::Deploy(args) => deploy::run(&ctx, args),
        Command::Build(args) => build::run(&ctx, args),
        Command::Lock(args) => lock::run(&ctx, args),
        Command::Render(args) => render::run(&ctx, args),
        Command::Pin(args) => pin::run(&ctx, args),
        Command::Gate(GateCommand::Coherence(args)) => gate::coherence(&ctx, args),
        Command::Record(args) => record::run(&ctx, args),
        Command::Hold(cmd) => hold::run(&ctx, cmd),
        Command::Audit(args) => audit::run(&ctx, args),
        Command::Promote(args) => promote::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::Keygen(args) if args.signing => signing::keygen(&ctx, args),
        Command::Keygen(args) => secrets::keygen(&ctx, args),
        Command::Seal(args) => secrets::seal(&ctx, args),
        Command::Unseal(args) => secrets::unseal(&ctx, args),
        Command::Reseal(args) => secrets::reseal(&ctx, args),
        Command::Secrets(command) => secrets::secrets(&ctx, command),
        Command::Gate(GateCommand::Smoke(args)) => gate::smoke(&ctx, args),
        Command::Gate(GateCommand::Drift(args)) => gate::drift(&ctx, args),
        Command::Gate(GateCommand::Headroom(args)) => gate::headroom(&ctx, args),
        Command::Rollback(args) => rollback::run(&ctx, args),
        Command::Diff(args) => diff::run(&ctx, args),
        Command::Up(args) => stage::up(&ctx, args),
        Command::Down(args) => stage::down(&ctx, args),
        Command::Freeze(args) => freeze::freeze_run(&ctx, args),
        Command::Unfreeze(args) => freeze::unfreeze_run(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Init(_) | Command::Completions(_) | Command::Man => {
            unreachable!("run without a project")
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => report_error(e),
    }
}

/// The commands that need no rel project (`init` makes one); `None` for every other command.
fn run_without_project(cli: &Cli) -> Option<Result<Exit, Error>> {
    let cwd =
        || std::env::current_dir().map_err(|e| Error::io("read the current directory", ".", e));
    Some(match &cli.command {
        Command::Init(args) => {
            cwd().and_then(|cwd| init::run(&cwd, cli.project_dir.as_deref(), args.clone()))
        }
        Command::Completions(args) => completions::completions(args.clone()),
        Command::Man => completions::man(),
        _ => return None,
    })
}

fn report_error(e: Error) -> ExitCode {
    let exit = e.exit();
    let _ = writeln!(std::io::stderr(), "{:?}", miette::Report::new(e));
    exit.into()
}

/// miette's reporter without line wrapping (CI logs and grep want whole lines), and without
/// colour when `NO_COLOR` is set or stderr is not a terminal.
fn init_error_reporter() {
    let color = std::io::stderr().is_terminal() && !env_vars::no_color();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(false)
                .color(color)
                .unicode(color)
                .build(),
        )
    }));
}

fn init_tracing() {
    let default = match progress::verbosity() {
        progress::Verbosity::Verbose => "debug",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !env_vars::no_color())
        .with_target(false)
        .try_init();
}

/// Where the command runs: the working directory and, when given, the project directory.
pub struct Context {
    pub cwd: PathBuf,
    pub project_dir: Option<PathBuf>,
    /// `--signing-key-file` (absolute, or `-`).
    pub signing_key_file: Option<PathBuf>,
}

impl Context {
    fn new(project_dir: Option<PathBuf>) -> Result<Context, Error> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("read the current directory", ".", e))?;
        let project_dir = project_dir.map(|d| if d.is_absolute() { d } else { cwd.join(d) });
        if let Some(d) = &project_dir
            && !d.join(crate::config::FILE_NAME).is_file()
        {
            return Err(UsageError::NoProjectFile { dir: d.clone() }.into());
        }
        Ok(Context {
            cwd,
            project_dir,
            signing_key_file: None,
        })
    }

    /// The project configuration; an error when there is none.
    pub fn project(&self) -> Result<Config, Error> {
        crate::project::load(self.project_dir.as_deref().unwrap_or(&self.cwd))
    }

    /// The project as the ops layer takes it.
    pub fn workspace(&self) -> Result<crate::ops::Workspace, Error> {
        let mut ws = crate::ops::Workspace::new(self.project()?, self.cwd.clone());
        if let Some(source) =
            crate::signing::SigningKeySource::pick(self.signing_key_file.as_deref())
        {
            ws.signer = Some(std::sync::Arc::new(crate::signing::load(&source)?));
        }
        Ok(ws)
    }

    /// The project whose directory holds `path`, or the `-C` project.
    pub fn project_of(&self, path: &Path) -> Result<Option<Config>, Error> {
        if let Some(d) = &self.project_dir {
            return Config::load(&d.join(crate::config::FILE_NAME)).map(Some);
        }
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        };
        let start = abs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.cwd.clone());
        crate::project::load_optional(&start)
    }

    /// A path as the user should see it: relative to the working directory when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Write to stdout; a closed pipe (`rel ... | head`) is not an error.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Print a gate's report in the requested format, write JUnit and annotations, and pick the exit.
pub fn emit_report(report: &Report, output: &GateOutput) -> Result<Exit, Error> {
    let tty = std::io::stdout().is_terminal();
    print_stdout(&report.render(output.format, tty, tty && !env_vars::no_color()));
    if let Some(path) = &output.junit {
        crate::atomic_write::write(path, report.to_junit().as_bytes())
            .map_err(|e| Error::io("write the JUnit report", path, e))?;
    }
    if env_vars::github_actions() {
        let _ = std::io::stderr().write_all(report.to_github_annotations().as_bytes());
    }
    Ok(if report.passed() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
