//! The gates as ops: smoke and drift with typed options, returning their reports. `rel gate ...`
//! and `rel deploy` both call these.

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use crate::error::Exit;
use crate::kube_source::{KubeClient, KubeError, KubeOptions, Pod};
use crate::manifests::ManifestSource;
use crate::ops::Workspace;
use crate::report::Report;
use crate::version::Version;

/// Gate options that cannot work with the environment's rel.toml.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GateError {
    #[error("environment `{env}` declares no smoke checks")]
    #[diagnostic(
        code(rel::gate::no_smoke_checks),
        help(
            "add `[environments.{env}.smoke]` with `[[environments.{env}.smoke.checks]]` to rel.toml (schema: src/config.rs)"
        )
    )]
    NoSmokeChecks { env: String },

    #[error("--base-url `{url}` is not an http(s) URL")]
    #[diagnostic(code(rel::gate::base_url), help("write it as `https://host[:port]`"))]
    BaseUrl {
        /// Redacted: credentials in the URL never reach output.
        url: String,
    },

    #[error("--verify-signatures: rel.toml has no [trust], so no key is trusted")]
    #[diagnostic(
        code(rel::gate::verify_no_trust),
        help(
            "add `[trust] keys = [\"RW...\"]` with the public key `rel keygen --signing` printed"
        )
    )]
    VerifyNoTrust,

    #[error("--verify-signatures checks the images live pods run, and no live pods were asked for")]
    #[diagnostic(
        code(rel::gate::verify_no_pods),
        help("add --live (the cluster or the local stage) or --pods FILE")
    )]
    VerifyNoPods,
}

impl GateError {
    /// All are input errors: rel could not run the gate.
    pub fn exit(&self) -> Exit {
        Exit::Error
    }
}

/// A runtime for the gates that talk to the network. Two workers: the work is I/O-bound.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// `smoke` options.
#[derive(Debug, Clone)]
pub(crate) struct SmokeOptions {
    pub env: String,
    pub profile: crate::gate::smoke::Profile,
    /// [default: the environment's `base-url`]
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub ca_pem: Option<Vec<u8>>,
    /// The release validated: `version` checks must report it; the report is bound to its lockfile.
    pub version: Option<Version>,
    /// Overrides every check's timeout.
    pub timeout: Option<Duration>,
}

/// Run the environment's smoke checks.
pub(crate) fn smoke(ws: &Workspace, opts: &SmokeOptions) -> Result<Report, Error> {
    use crate::gate::smoke;
    let config = &ws.config;
    let env = config.environment(&opts.env)?;
    let Some(mut declared) = env.smoke.clone() else {
        return Err(GateError::NoSmokeChecks {
            env: env.name.clone(),
        }
        .into());
    };
    if let Some(t) = opts.timeout {
        declared.timeout = t;
        for c in &mut declared.checks {
            c.timeout = None;
        }
    }
    let base_url = match opts.base_url.clone().or_else(|| declared.base_url.clone()) {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err(GateError::BaseUrl {
                url: crate::redact::urls(&u),
            }
            .into());
        }
        other => other.map(|u| u.trim_end_matches('/').to_owned()),
    };
    let input = smoke::Input {
        env: env.name.clone(),
        profile: opts.profile,
        base_url,
        token: opts.token.clone().and_then(smoke::Token::new),
        ca_pem: opts.ca_pem.clone(),
        version: opts.version.clone(),
        smoke: declared,
    };
    let report = runtime()?.block_on(smoke::run(input))?;
    // Bind the report to the lockfile bytes of the version it validates: `rel record` refuses
    // evidence that ran against other bytes.
    Ok(match &opts.version {
        Some(v) => {
            let path = crate::releases::lockfile_path(&config.root, v);
            match std::fs::read(&path) {
                Ok(bytes) => report.with_context(
                    crate::record::LOCKFILE_SHA256,
                    crate::record::sha256_hex(&bytes),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => report,
                Err(e) => return Err(Error::io("read the lockfile", &path, e)),
            }
        }
        None => report,
    })
}

/// Where the drift gate's live pods come from.
#[derive(Debug, Clone)]
pub(crate) enum LivePods {
    /// Static checks only.
    None,
    /// A `kubectl get pods -o json` file (`-`: stdin), as the user named it.
    File { path: PathBuf, shown: String },
    /// The Kubernetes API.
    Kube(KubeOptions),
    /// Pods the caller already has (the local stage), and what to call their source.
    Given { pods: Vec<Pod>, source: String },
}

/// `drift` options.
#[derive(Debug, Clone)]
pub(crate) struct DriftOptions {
    pub env: String,
    /// The release the overlay must pin [default: the release whose lockfile the pins match].
    pub version: Option<Version>,
    /// [default: the environment's overlay, rendered]
    pub manifests: Option<ManifestSource>,
    pub live: LivePods,
    /// The namespace of workloads that name none [default: the kubeconfig's].
    pub namespace: Option<String>,
    /// With live pods: every image of a component they run carries a cosign signature by a key
    /// `[trust]` trusts for the environment.
    pub verify_signatures: bool,
    /// Registry hosts spoken to over plain HTTP for the signature check (loopback always is).
    pub insecure_registries: Vec<String>,
}

/// Static drift (every workload image pinned, owned, equal to the release) and, when asked, live
/// drift (pods on the pinned digests).
pub(crate) fn drift(ws: &Workspace, opts: &DriftOptions) -> Result<Report, Error> {
    use crate::gate::drift;
    let config = &ws.config;
    let env = config.environment(&opts.env)?;
    let source = opts
        .manifests
        .clone()
        .unwrap_or_else(|| ManifestSource::Overlay(config.overlay_dir(env)));
    let objects = crate::manifests::load_manifests(&source)?;
    let workloads = crate::manifests::workloads(&objects);
    let given;
    let all;
    let release = match &opts.version {
        Some(v) => {
            given =
                crate::lockfile::Lockfile::load(&crate::releases::lockfile_path(&config.root, v))?;
            drift::Release::Given(&given)
        }
        None => {
            all = crate::status::releases(&config.root);
            drift::Release::AnyOf(&all)
        }
    };
    let trusted = match (opts.verify_signatures, &config.trust) {
        (false, _) => None,
        (true, Some(trust)) => Some(trust.keys_for(Some(&env.name))),
        (true, None) => {
            return Err(GateError::VerifyNoTrust.into());
        }
    };
    if trusted.is_some() && matches!(opts.live, LivePods::None) {
        return Err(GateError::VerifyNoPods.into());
    }
    let (mut report, pins) = drift::check_static(&env.name, &workloads, config, release);
    let (pods, namespace, source) = match &opts.live {
        LivePods::None => return Ok(report),
        LivePods::File { path, shown } => {
            let pods = crate::kube_source::read_pods(path)?;
            let source = if shown == "-" {
                "pods from <stdin>".to_owned()
            } else {
                format!("pods from {shown}")
            };
            (pods, opts.namespace.clone(), source)
        }
        LivePods::Given { pods, source } => (pods.clone(), opts.namespace.clone(), source.clone()),
        LivePods::Kube(kube) => {
            let client = KubeClient::from_kubeconfig(kube)?;
            let default_ns = opts
                .namespace
                .clone()
                .unwrap_or_else(|| client.namespace().to_owned());
            let namespaces = drift::namespaces(&workloads, &default_ns);
            let pods = runtime()?.block_on(async {
                let mut pods = Vec::new();
                for ns in &namespaces {
                    pods.extend(client.pods(ns).await?);
                }
                Ok::<_, KubeError>(pods)
            })?;
            (
                pods,
                Some(default_ns),
                format!("the API of {}", client.describe),
            )
        }
    };
    drift::check_live(
        &mut report,
        &workloads,
        &pins,
        &drift::LiveInput {
            pods: &pods,
            namespace: namespace.as_deref(),
            source,
        },
    );
    if let Some(keys) = trusted {
        for check in crate::ops::verify::live_signature_checks(
            config,
            &pods,
            keys,
            &opts.insecure_registries,
        )? {
            report.push(check);
        }
    }
    Ok(report)
}
