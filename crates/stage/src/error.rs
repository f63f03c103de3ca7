//! Everything that can go wrong on a stage, each with what to do about it.

use std::path::PathBuf;

/// Why a stage could not be planned, started, converged or stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StageError {
    #[error("{object}: {message}")]
    #[diagnostic(help(
        "fix the manifest (render the overlay to see the object as the stage reads it)"
    ))]
    Manifest { object: String, message: String },

    #[error("{workload}: {what} cannot run on the local stage")]
    #[diagnostic(help(
        "the local stage runs pods as host processes; patch this out in the local overlay (overlays/local) or use a real cluster"
    ))]
    Unsupported { workload: String, what: String },

    #[error("{workload}: {kind} `{name}`{} is not in the rendered manifests", key.as_ref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    #[diagnostic(help(
        "add the {kind} to the overlay, mark the reference `optional: true`, or (for Secrets the cluster provides, such as the genesis envelope) pass it to the stage"
    ))]
    MissingReference {
        workload: String,
        kind: &'static str,
        name: String,
        key: Option<String>,
    },

    #[error("{workload}: container `{container}` image `{image}` is not pinned by digest")]
    #[diagnostic(help(
        "the stage runs images by digest only: pin the overlay's `images:` to digests"
    ))]
    NotPinned {
        workload: String,
        container: String,
        image: String,
    },

    #[error("{workload}: container `{container}`: its image cannot be used")]
    #[diagnostic(help(
        "build the image into the OCI layout first, or pin the overlay to an image the layout holds"
    ))]
    Image {
        workload: String,
        container: String,
        #[source]
        source: oci::unpack::UnpackError,
    },

    #[error(
        "{workload}: container `{container}` has nothing to run: no command in the manifest and no Entrypoint or Cmd in the image"
    )]
    #[diagnostic(help("set `command:` on the container or an entrypoint on the image"))]
    NoCommand { workload: String, container: String },

    #[error(
        "{workload}: container `{container}`: executable `{program}` not found in the image (looked at {looked})"
    )]
    #[diagnostic(help(
        "check the container's command or the image's Entrypoint; the stage runs it from the unpacked image"
    ))]
    NoExecutable {
        workload: String,
        container: String,
        program: String,
        looked: String,
    },

    #[error("no free loopback address block for the stage (tried {tried} blocks of 127.0.0.0/8)")]
    #[diagnostic(help("stop stages you no longer need; each stage claims one /24 of 127.0.0.0/8"))]
    NoAddressBlock { tried: usize },

    #[error("the stage needs more than {limit} loopback addresses (one per pod and per Service)")]
    #[diagnostic(help("lower the replicas in the local overlay"))]
    TooManyAddresses { limit: usize },

    #[error("cannot access `{path}`: {source}")]
    #[diagnostic(help("check that the stage directory is writable"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("pod {pod}: cannot start `{program}`: {source}")]
    #[diagnostic(help("check the image's executable and its working directory"))]
    Spawn {
        pod: String,
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("Service {service}: cannot listen on {address}: {source}")]
    #[diagnostic(help(
        "another process holds this loopback address; stop it, or stop the other stage"
    ))]
    Listen {
        service: String,
        address: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{job} failed ({status}); nothing else was started. Last log lines:\n{log_tail}")]
    #[diagnostic(help(
        "fix what the log shows (the whole log is at {}), then run the stage again", log.display()
    ))]
    JobFailed {
        job: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error(
        "{workload} was not ready within {seconds} s ({ready}/{want} pods ready). Last log lines of {pod}:\n{log_tail}"
    )]
    #[diagnostic(help(
        "check the pod's readiness endpoint and its log (at {}); the stage's status shows each pod", log.display()
    ))]
    NotReady {
        workload: String,
        seconds: u64,
        ready: usize,
        want: usize,
        pod: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("the stage state file `{path}` is unreadable: {message}")]
    #[diagnostic(help(
        "the file is written by the stage's supervisor; if no stage runs, delete the stage directory"
    ))]
    State { path: PathBuf, message: String },

    #[error("the stage was stopped before it was ready")]
    #[diagnostic(help("start it again"))]
    Stopped,

    #[error("processes of the stage survived SIGKILL: {pids}")]
    #[diagnostic(help(
        "look at them with `ps -o pid,stat,cmd -p {pids}`; processes in uninterruptible sleep go when their I/O ends"
    ))]
    Survivors { pids: String },
}

impl StageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StageError {
        let path = path.into();
        move |source| StageError::Io { path, source }
    }
}
