//! The top-level error type and the exit codes it maps to.
//!
//! Domain modules return their own typed errors; this enum wraps them so `main` has one reporter
//! (miette) and one mapping to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::source_error::SourceError;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed.
    Ok = 0,
    /// A gate or check failed, or rel refused an unsafe move.
    Failed = 1,
    /// Usage, input or environment error: rel could not do its job.
    Error = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Source(Box<SourceError>),

    #[error("could not {action}: {}", path.display())]
    #[diagnostic(help("check that the path exists and is readable/writable by this user"))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no {} found in {} or any parent directory", crate::config::FILE_NAME, start.display())]
    #[diagnostic(help(
        "run rel inside a rel project, or point at one with `-C DIR` (env REL_PROJECT_DIR)"
    ))]
    NoProject { start: PathBuf },

    #[error("unknown environment `{name}`")]
    #[diagnostic(help("environments defined in rel.toml: {known}"))]
    UnknownEnvironment { name: String, known: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Build(#[from] crate::build::BuildError),

    #[error("{component}: could not write the OCI image layout {dir}")]
    #[diagnostic(help(
        "check that the directory is writable and the disk has room; `rel build` rewrites it from the layer cache"
    ))]
    Layout {
        component: String,
        dir: String,
        #[source]
        source: oci::LayoutError,
    },

    #[error("{component}: push to {target} failed")]
    #[diagnostic(help(
        "check that the registry is reachable and the credentials allow pushing; a re-run resumes where this stopped"
    ))]
    Push {
        component: String,
        target: String,
        #[source]
        source: oci::RegistryError,
    },

    #[error("could not start the async runtime")]
    #[diagnostic(help(
        "the process could not create its event loop: check the limits on threads and open files (`ulimit -u`, `ulimit -n`) and free memory"
    ))]
    Runtime(#[source] std::io::Error),

    #[error("cannot render {dir}")]
    #[diagnostic(forward(source))]
    Render {
        dir: String,
        #[source]
        source: kustomize::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Diff(#[from] manifest_diff::DiffError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] crate::kube_source::KubeError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Smoke(#[from] crate::gate::smoke::SmokeError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Headroom(#[from] crate::gate::headroom::BadQuantities),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Stage(#[from] stage::StageError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Git(#[from] crate::git_repo::GitError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    LocalStage(#[from] crate::stage::LocalStageError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Forge(#[from] crate::forge::ForgeError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lockfile(#[from] crate::lockfile::LockfileError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Pin(#[from] crate::overlay_pin::PinFileError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Rollback(#[from] crate::rollback::RollbackError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Evidence(#[from] crate::record::EvidenceError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Promote(#[from] crate::promote::PromoteError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] crate::ops::lock::LockError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    BuildOp(#[from] crate::ops::build::BuildOpError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    DiffInput(#[from] crate::diff::DiffInputError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Init(#[from] crate::init::InitError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Local(#[from] crate::ops::local::LocalError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    RecordOp(#[from] crate::ops::record::RecordError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Deploy(#[from] crate::ops::deploy::DeployError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifests(#[from] crate::manifests::ManifestError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    CommandLine(#[from] crate::commands::UsageError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Gate(#[from] crate::ops::gate::GateError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Hold(#[from] crate::hold::HoldError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Clock(#[from] crate::clock::ClockError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Soak(#[from] crate::soak::SoakError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Freeze(#[from] crate::freeze::FreezeError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Validated(#[from] crate::releases::ValidatedError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Audit(#[from] crate::audit::AuditError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    CaFile(#[from] crate::trust::CaFileError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Reproduce(#[from] crate::ops::reproduce::ReproduceError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    NoEnvironment(#[from] crate::ops::release::NoEnvironmentError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Attest(#[from] crate::attest::AttestError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Verify(#[from] crate::ops::verify::VerifyError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Signing(#[from] crate::signing::SigningError),
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        Error::Source(Box::new(e))
    }
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The exit code this error maps to.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Git(e) => e.exit(),
            Error::LocalStage(e) => e.exit(),
            Error::Rollback(e) => e.exit(),
            Error::Evidence(e) => e.exit(),
            Error::Promote(e) => e.exit(),
            Error::Lock(e) => e.exit(),
            Error::BuildOp(e) => e.exit(),
            Error::Secrets(e) => e.exit(),
            Error::Local(e) => e.exit(),
            Error::RecordOp(e) => e.exit(),
            Error::Deploy(e) => e.exit(),
            Error::Gate(e) => e.exit(),
            Error::Hold(e) => e.exit(),
            Error::Clock(e) => e.exit(),
            Error::Soak(e) => e.exit(),
            Error::Freeze(e) => e.exit(),
            Error::Signing(e) => e.exit(),
            // A validated lockfile is a refusal: rel checked and said no.
            Error::Validated(_) => Exit::Failed,
            Error::Init(crate::init::InitError::Exists { .. }) => Exit::Failed,
            _ => Exit::Error,
        }
    }
}

/// An error and its sources on one line, `: `-joined (a source whose text the line already holds
/// is left out): for one-line reports, where miette's multi-line rendering does not fit, and for
/// clients whose top-level message alone hides the cause (reqwest).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
