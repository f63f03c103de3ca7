//! `build`: compile the components, assemble their images, write OCI layouts or push, and record
//! the result in `target/rel/build.json`.

use std::path::PathBuf;

use crate::build::{self, BuildPlan, Progress};
use crate::build_output::{self, BuildOutput};
use crate::config::Component;
use crate::ops::{RegistryOptions, Workspace};
use crate::{Error, env_vars};

/// Why `rel build` could not start, or a push was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildOpError {
    #[error("SOURCE_DATE_EPOCH: {reason}")]
    #[diagnostic(
        code(rel::build::source_date_epoch),
        help("unset it or give whole seconds, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)")
    )]
    SourceDateEpoch { reason: String },

    #[error("--registry/--tag: `{registry}` with tag `{tag}` is not an image reference")]
    #[diagnostic(
        code(rel::build::registry),
        help(
            "give a registry like `localhost:5000/platform` and a tag of letters, digits, `.`, `_`, `-`"
        )
    )]
    Registry {
        registry: String,
        tag: String,
        #[source]
        source: image_ref::ImageRefError,
    },

    #[error("registry credentials for {host}")]
    #[diagnostic(
        code(rel::build::credentials),
        help("set both {user_var} and {password_var}, or fix ~/.docker/config.json")
    )]
    Credentials {
        host: String,
        user_var: &'static str,
        password_var: &'static str,
        #[source]
        source: oci::registry::CredentialError,
    },

    #[error("registry {host}")]
    #[diagnostic(
        code(rel::build::client),
        help("check --registry (host[:port]/path) and --ca-file")
    )]
    Client {
        host: String,
        #[source]
        source: oci::RegistryError,
    },

    #[error("{component}: tag `{reference}` already points at {existing}; this build is {ours}")]
    #[diagnostic(
        code(rel::build::tag_exists),
        help("tags are immutable: push under a new --tag, or pass --allow-overwrite to move it")
    )]
    TagExists {
        component: String,
        reference: String,
        existing: image_ref::Digest,
        ours: image_ref::Digest,
    },

    #[error("--component {name}: rel.toml has no component `{name}`")]
    #[diagnostic(code(rel::build::unknown_component), help("built components: {built}"))]
    UnknownComponent { name: String, built: String },

    #[error("--component {name}: `{name}` is external; rel does not build it")]
    #[diagnostic(
        code(rel::build::external),
        help("pin it with `rel lock --digest {name}=sha256:...`")
    )]
    External { name: String },
}

impl BuildOpError {
    /// Moving an immutable tag is refused (exit 1); the rest is input or environment (exit 2).
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            BuildOpError::TagExists { .. } => crate::error::Exit::Failed,
            _ => crate::error::Exit::Error,
        }
    }
}

/// What to build and where it goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildOptions {
    /// Only these components [default: every built component of rel.toml].
    pub components: Vec<String>,
    pub registry: RegistryOptions,
    /// `SOURCE_DATE_EPOCH` as given [default: the commit time].
    pub source_date_epoch: Option<String>,
    /// Cargo's target directory for release builds [default: target/rel/cargo].
    pub cargo_target_dir: Option<PathBuf>,
    /// Let cargo draw its progress (on a terminal).
    pub show_cargo_progress: bool,
    /// The release version the binaries report at `/version` [default: a tag that is a semantic
    /// version, else the crates' own versions].
    pub release_version: Option<crate::version::Version>,
}

impl BuildOptions {
    /// Options from the process environment (`SOURCE_DATE_EPOCH`, `REL_CARGO_TARGET_DIR`).
    pub(crate) fn from_env(components: Vec<String>, registry: RegistryOptions) -> BuildOptions {
        BuildOptions {
            components,
            registry,
            source_date_epoch: std::env::var(env_vars::SOURCE_DATE_EPOCH).ok(),
            cargo_target_dir: std::env::var_os(env_vars::CARGO_TARGET_DIR).map(PathBuf::from),
            show_cargo_progress: false,
            release_version: None,
        }
    }
}

/// What happens, as it happens.
#[derive(Debug)]
pub(crate) enum BuildEvent<'a> {
    Compiling {
        component: &'a str,
    },
    Layer {
        component: &'a str,
        cached: bool,
    },
    Assembled {
        component: &'a str,
        digest: &'a image_ref::Digest,
    },
    /// The push of one image starts.
    Pushing {
        component: &'a str,
    },
    /// Layer bytes sent so far by the push of one image (while it runs).
    Sending {
        component: &'a str,
        bytes: u64,
    },
    Pushed {
        component: &'a str,
        report: &'a oci::PushReport,
    },
    /// The working tree has uncommitted changes: the images are not reproducible from a commit.
    Dirty {
        commit: Option<&'a str>,
    },
}

/// The build result and where it was recorded.
#[derive(Debug)]
pub(crate) struct BuildOutcome {
    pub output: BuildOutput,
    pub path: PathBuf,
    /// Signatures, provenance and SBOMs attached to the pushed images (a push with a signing key).
    pub attested: Vec<crate::attest::Attested>,
}

/// Build, publish and record.
pub(crate) fn build(
    ws: &Workspace,
    opts: &BuildOptions,
    mut events: impl FnMut(BuildEvent<'_>),
) -> Result<BuildOutcome, Error> {
    let config = &ws.config;
    let components = select(config, &opts.components)?;
    let source = build::source::inspect(&config.root, opts.source_date_epoch.as_deref())
        .map_err(|reason| BuildOpError::SourceDateEpoch { reason })?;
    if source.dirty {
        events(BuildEvent::Dirty {
            commit: source.commit.as_deref(),
        });
    }
    let registry = opts
        .registry
        .registry
        .clone()
        .unwrap_or_else(|| config.registry.clone());
    let tag = opts
        .registry
        .tag
        .clone()
        .unwrap_or_else(|| build::default_tag(&source));
    image_ref::ImageRef::new(&registry, "probe")
        .and_then(|r| r.with_tag(&tag))
        .map_err(|source| BuildOpError::Registry {
            registry: registry.clone(),
            tag: tag.clone(),
            source,
        })?;
    let plan = BuildPlan {
        config,
        components,
        registry,
        tag: tag.clone(),
        source: source.clone(),
        show_cargo_progress: opts.show_cargo_progress,
        cargo_target_dir: opts.cargo_target_dir.clone(),
        release_version: opts
            .release_version
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| {
                tag.parse::<crate::version::Version>()
                    .ok()
                    .map(|v| v.to_string())
            }),
        insecure_registries: opts.registry.insecure_registries.clone(),
    };
    // What signing needs besides the images (Cargo.lock's hash, the crate graph per component)
    // is read on threads of its own while the images are compiled.
    let preparing = (opts.registry.push && ws.signer.is_some()).then(|| {
        let root = config.root.clone();
        let list: Vec<crate::attest::ToPrepare> = plan
            .components
            .iter()
            .filter_map(|c| match &c.source {
                crate::config::ComponentSource::Built {
                    krate, features, ..
                } => Some(crate::attest::ToPrepare {
                    component: c.name.clone(),
                    krate: krate.clone(),
                    features: features.clone(),
                }),
                crate::config::ComponentSource::External { .. } => None,
            })
            .collect();
        std::thread::spawn(move || crate::attest::prepare(&root, &list))
    });
    let mut progress = |p: Progress<'_>| match p {
        Progress::Compiling { component } => events(BuildEvent::Compiling { component }),
        Progress::Layer { component, cached } => events(BuildEvent::Layer { component, cached }),
        Progress::Assembled { component, digest } => {
            events(BuildEvent::Assembled { component, digest })
        }
    };
    // Signing's small uploads are prepared meanwhile, on the registry the images go to.
    let ahead = (opts.registry.push && ws.signer.is_some())
        .then(|| {
            let names: Vec<image_ref::ImageRef> = plan
                .components
                .iter()
                .filter(|c| matches!(c.source, crate::config::ComponentSource::Built { .. }))
                .filter_map(|c| image_ref::ImageRef::new(&plan.registry, &c.name).ok())
                .collect();
            let host = names.first()?.registry().to_owned();
            let repositories = names
                .iter()
                .filter(|n| n.registry() == host)
                .map(|n| n.repository().to_owned())
                .collect();
            Some(Ahead::start(
                host,
                repositories,
                opts.registry.insecure_registries.clone(),
            ))
        })
        .flatten();
    let compiled = build::compile_all(&plan, &mut progress)?;
    let cache = build::layer_cache(&config.root);

    let mut output = BuildOutput {
        schema: build_output::SCHEMA,
        components: Vec::new(),
    };
    let mut attested = Vec::new();
    if opts.registry.push {
        let signing = match (&ws.signer, preparing) {
            (Some(key), Some(preparing)) => {
                let prepared = preparing
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                tracing::debug!("signing inputs prepared");
                let target_dir = opts
                    .cargo_target_dir
                    .clone()
                    .unwrap_or_else(|| config.root.join(build::OUT_DIR).join("cargo"));
                let toolchain = crate::attest::toolchain_version(&config.root, &target_dir);
                Some((key, prepared, toolchain))
            }
            _ => None,
        };
        let signing = signing.as_ref().map(|(key, prepared, toolchain)| Signing {
            key,
            prepared,
            inputs: crate::attest::BuildInputs {
                workspace: &config.root,
                repository: config.repo.as_deref(),
                source: &source,
                toolchain,
                cargo_lock_sha256: &prepared.cargo_lock_sha256,
            },
        });
        let (assembled, signed) = push_all(
            compiled,
            &cache,
            &tag,
            &opts.registry,
            signing.as_ref(),
            ahead,
            &mut events,
        )?;
        attested = signed;
        for a in &assembled {
            output
                .components
                .push(a.record(&tag, source.commit.as_deref(), "registry".to_owned()));
        }
    } else {
        for c in compiled {
            let a = build::assemble(&cache, c, &mut progress)?;
            let dir = build::layout_dir(&config.root, &a.component);
            oci::write_layout(&dir, &a.image, &tag).map_err(|source| Error::Layout {
                component: a.component.clone(),
                dir: ws.display(&dir),
                source,
            })?;
            output.components.push(a.record(
                &tag,
                source.commit.as_deref(),
                format!("oci-layout:{}", ws.display(&dir)),
            ));
        }
    }

    let path = config.root.join(build_output::DEFAULT_PATH);
    crate::atomic_write::write(&path, output.to_json().as_bytes())
        .map_err(|e| Error::io("write the build result", &path, e))?;
    Ok(BuildOutcome {
        output,
        path,
        attested,
    })
}

/// A current-thread async runtime for the registry client.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// What signing an image needs: the key, and the inputs read while the images compiled.
struct Signing<'a> {
    key: &'a crate::signing::SigningKey,
    prepared: &'a crate::attest::Prepared,
    inputs: crate::attest::BuildInputs<'a>,
}

impl Signing<'_> {
    /// Sign `a` and put its signature, provenance and SBOM ([`crate::attest::stage_one`]).
    async fn stage(
        &self,
        registry: &oci::Registry,
        a: &build::Assembled,
    ) -> Result<crate::attest::Staged, Error> {
        let d = crate::attest::documents(self.key, a, &self.inputs, self.prepared)?;
        crate::attest::stage_one(registry, a, &d).await
    }
}

/// A client for the registry at `host`, with the credentials of the environment (or docker's).
fn registry_client(host: &str, insecure: &[String]) -> Result<oci::Registry, Error> {
    let (credentials, options) =
        super::registry_setup(host, insecure).map_err(|source| BuildOpError::Credentials {
            host: host.to_owned(),
            user_var: env_vars::REGISTRY_USERNAME,
            password_var: env_vars::REGISTRY_PASSWORD,
            source,
        })?;
    oci::Registry::new(host, credentials, options).map_err(|source| {
        BuildOpError::Client {
            host: host.to_owned(),
            source,
        }
        .into()
    })
}

/// Signing's small uploads, prepared on a thread of its own while the images compile (the
/// registry has nothing to do then): in each repository, the upload sessions signing will use
/// are opened and the empty config its attachments share is put. What could not be prepared is
/// done later the usual way; what is left unused is cancelled, also when the build stops before
/// pushing (dropped unadopted).
struct Ahead {
    host: String,
    insecure: Vec<String>,
    /// Taken by [`Ahead::adopt_into`].
    thread: Option<std::thread::JoinHandle<oci::registry::UploadsAhead>>,
}

impl Ahead {
    fn start(host: String, repositories: Vec<String>, insecure: Vec<String>) -> Ahead {
        let (h, i) = (host.clone(), insecure.clone());
        let thread = std::thread::spawn(move || {
            let prepare = || -> Result<oci::registry::UploadsAhead, Error> {
                let registry = registry_client(&h, &i)?;
                let runtime = runtime()?;
                runtime.block_on(futures_util::future::join_all(repositories.iter().map(
                    |repository| {
                        let registry = &registry;
                        async move {
                            // The config's put looks for a spare session at once, before any
                            // is open: it opens its own, and the spares are left for signing.
                            let (sessions, empty) = futures_util::future::join(
                                registry
                                    .open_spare_uploads(repository, crate::attest::BLOBS_PER_IMAGE),
                                registry.put_blob(repository, oci::registry::EMPTY_CONFIG),
                            )
                            .await;
                            for e in [sessions.err(), empty.err()].into_iter().flatten() {
                                tracing::debug!(error = %e, "preparing the signing uploads");
                            }
                        }
                    },
                )));
                Ok(registry.take_ahead())
            };
            prepare().unwrap_or_else(|e| {
                tracing::debug!(error = %e, "preparing the signing uploads");
                oci::registry::UploadsAhead::default()
            })
        });
        Ahead {
            host,
            insecure,
            thread: Some(thread),
        }
    }

    /// What was prepared, for `registry` to use.
    fn adopt_into(mut self, registry: &oci::Registry) {
        if let Some(thread) = self.thread.take() {
            registry.adopt(
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
    }
}

impl Drop for Ahead {
    /// The build stopped before pushing: cancel the sessions (a few requests, on error paths).
    fn drop(&mut self) {
        let Some(Ok(ahead)) = self.thread.take().map(std::thread::JoinHandle::join) else {
            return;
        };
        if ahead.is_empty() {
            return;
        }
        if let (Ok(registry), Ok(runtime)) =
            (registry_client(&self.host, &self.insecure), runtime())
        {
            registry.adopt(ahead);
            runtime.block_on(registry.abort_spare_uploads());
        }
    }
}

/// How often a push's bytes are reported while it runs.
const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Build and push every image at once, each layer streamed into the registry while it is
/// compressed (a cache hit sends nothing that is there), manifest last and verified; tags are
/// immutable unless `allow_overwrite`. With `signing`, each image is signed as soon as its
/// digest is known and its signature, provenance and SBOM go up while the push finishes.
fn push_all(
    compiled: Vec<build::Compiled>,
    cache: &oci::LayerCache,
    tag: &str,
    opts: &RegistryOptions,
    signing: Option<&Signing<'_>>,
    ahead: Option<Ahead>,
    events: &mut impl FnMut(BuildEvent<'_>),
) -> Result<(Vec<build::Assembled>, Vec<crate::attest::Attested>), Error> {
    let Some(first) = compiled.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let host = first.image_name.registry().to_owned();
    let registry = registry_client(&host, &opts.insecure_registries)?;
    let repositories: Vec<String> = compiled
        .iter()
        .filter(|c| c.image_name.registry() == host)
        .map(|c| c.image_name.repository().to_owned())
        .collect();
    let runtime = runtime()?;
    if let Some(ahead) = ahead {
        ahead.adopt_into(&registry);
    }
    // Events come from every push at once, on this one thread.
    let events = std::cell::RefCell::new(events);
    let emit = |e: BuildEvent<'_>| (events.borrow_mut())(e);
    let counters: Vec<(String, std::sync::Arc<std::sync::atomic::AtomicU64>)> = compiled
        .iter()
        .map(|c| (c.component.clone(), Default::default()))
        .collect();
    let pushes = compiled.into_iter().zip(&counters).map(|(c, (_, sent))| {
        let (registry, emit, repositories) = (&registry, &emit, &repositories);
        async move {
            let target = c
                .image_name
                .with_tag(tag)
                .map_err(|source| BuildOpError::Registry {
                    registry: c.image_name.to_string(),
                    tag: tag.to_owned(),
                    source,
                })?;
            // A blob another component of the release already has is mounted, not uploaded.
            let mount_from = repositories
                .iter()
                .filter(|r| r.as_str() != c.image_name.repository())
                .cloned()
                .collect();
            let options = oci::PushOptions {
                allow_overwrite: opts.allow_overwrite,
                mount_from,
            };
            let (tell, told) = tokio::sync::oneshot::channel();
            let watch = oci::Watch {
                image: Some(tell),
                sent: sent.clone(),
            };
            emit(BuildEvent::Pushing {
                component: &c.component,
            });
            let push = oci::build_and_push(
                cache,
                &c.layer,
                c.base_image.as_ref(),
                &c.spec,
                registry,
                &target,
                &options,
                watch,
            );
            // The signature, provenance and SBOM go up while the image does.
            let sign = async {
                let Some(s) = signing else {
                    return Ok(None);
                };
                // No image: the push failed, and says why.
                let Ok(image) = told.await else {
                    return Ok(None);
                };
                let a = c.clone().into_assembled(image);
                s.stage(registry, &a).await.map(Some)
            };
            let (published, signed) = futures_util::future::join(push, sign).await;
            let published = published.map_err(|e| push_error(&c, &target, e))?;
            let signed = signed?;
            emit(BuildEvent::Layer {
                component: &c.component,
                cached: matches!(published.cache, oci::CacheOutcome::Hit),
            });
            emit(BuildEvent::Pushed {
                component: &c.component,
                report: &published.push,
            });
            Ok::<_, Error>((c.into_assembled(published.image), signed))
        }
    });
    let all = futures_util::future::try_join_all(pushes);
    let ticks = async {
        let mut tick = tokio::time::interval(PROGRESS_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last = vec![0u64; counters.len()];
        loop {
            tick.tick().await;
            for ((component, sent), last) in counters.iter().zip(&mut last) {
                let now = sent.load(std::sync::atomic::Ordering::Relaxed);
                if now != *last {
                    *last = now;
                    emit(BuildEvent::Sending {
                        component,
                        bytes: now,
                    });
                }
            }
        }
    };
    let done = runtime.block_on(async {
        let done = tokio::select! {
            done = all => done,
            never = ticks => never,
        };
        // Sessions opened ahead that no blob took (a failed push, a signature already there).
        registry.abort_spare_uploads().await;
        let mut assembled = Vec::new();
        let mut staged = Vec::new();
        for (a, signed) in done? {
            assembled.push(a);
            staged.extend(signed);
        }
        // Every image is up: the signatures and attachments go into the tags verifiers read.
        // Each is a read-merge-write of a shared manifest whose wait for other writers is as long
        // as its read and write took, so it runs once the layers no longer load the registry.
        let attested =
            futures_util::future::try_join_all(staged.into_iter().map(|s| s.finish(&registry)))
                .await?;
        Ok::<_, Error>((assembled, attested))
    })?;
    Ok(done)
}

/// A failed push as the command reports it: a moved tag is refused, the rest names the image.
fn push_error(c: &build::Compiled, target: &image_ref::ImageRef, e: oci::PublishError) -> Error {
    match e {
        oci::PublishError::Registry(oci::RegistryError::TagExists {
            reference,
            existing,
            ours,
        }) => BuildOpError::TagExists {
            component: c.component.clone(),
            reference,
            existing,
            ours,
        }
        .into(),
        oci::PublishError::Registry(source) => Error::Push {
            component: c.component.clone(),
            target: crate::redact::urls(&target.to_string()),
            source,
        },
        oci::PublishError::Layer(source) => build::BuildError::Layer {
            component: c.component.clone(),
            source,
        }
        .into(),
        oci::PublishError::Image(source) => build::BuildError::Assemble {
            component: c.component.clone(),
            source,
        }
        .into(),
    }
}

/// The components to build: the named ones, or every built component.
fn select<'a>(
    config: &'a crate::config::Config,
    names: &[String],
) -> Result<Vec<&'a Component>, Error> {
    if names.is_empty() {
        return Ok(config
            .components
            .values()
            .filter(|c| c.is_built())
            .collect());
    }
    names
        .iter()
        .map(|n| {
            let c = config.components.get(n).ok_or_else(|| {
                Error::from(BuildOpError::UnknownComponent {
                    name: n.clone(),
                    built: config
                        .components
                        .values()
                        .filter(|c| c.is_built())
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            })?;
            if !c.is_built() {
                return Err(BuildOpError::External { name: n.clone() }.into());
            }
            Ok(c)
        })
        .collect()
}
