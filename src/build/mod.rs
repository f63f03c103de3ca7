//! `rel build`: compile each built component with cargo and assemble its OCI image.
//!
//! The image digest is a pure function of the source: the binary is built with fixed flags and
//! remapped paths ([`cargo`]), every timestamp is the commit time or `SOURCE_DATE_EPOCH`
//! ([`source`]), and the layer, config and manifest are deterministic (`crates/oci`). An unchanged
//! binary hits the layer cache and is neither re-tarred nor re-gzipped. The layer holds a copy of
//! cargo's binary with its dependency list added as cargo auditable's `.dep-v0` section
//! ([`auditable`]).

pub(crate) mod auditable;
pub(crate) mod base;
pub(crate) mod cargo;
pub(crate) mod source;

use std::path::{Path, PathBuf};

use image_ref::ImageRef;

use crate::build_output::BuiltImage;
use crate::config::{Component, ComponentSource, Config};

/// Where build products go, under the project root.
pub(crate) const OUT_DIR: &str = "target/rel";

/// What to build, and how.
#[derive(Debug, Clone)]
pub(crate) struct BuildPlan<'a> {
    pub config: &'a Config,
    /// The components to build, in order.
    pub components: Vec<&'a Component>,
    /// The image repository prefix (rel.toml's `registry` unless `--registry` overrides it).
    pub registry: String,
    /// The tag pushed with each image: a label, never the authority.
    pub tag: String,
    pub source: source::SourceInfo,
    pub show_cargo_progress: bool,
    /// Cargo's target directory for release builds [default: target/rel/cargo]. Sharing one between
    /// checkouts reuses compiled dependencies; the remapped paths keep the output identical.
    pub cargo_target_dir: Option<PathBuf>,
    /// The release version the binaries report (`REL_RELEASE_VERSION`); `None`: their crate version.
    pub release_version: Option<String>,
    /// Registry hosts spoken to over plain HTTP, for registry bases (loopback always is).
    pub insecure_registries: Vec<String>,
}

/// Progress events, so the command can show progress without the library printing.
#[derive(Debug, Clone)]
pub(crate) enum Progress<'a> {
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
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error("component `{component}`: {source}")]
    #[diagnostic(help(
        "run the cargo command by hand to see the whole output: cargo build --release --locked -p <crate> --bin <bin> --features <features>"
    ))]
    Compile {
        component: String,
        #[source]
        source: cargo::CompileError,
    },
    #[error("component `{component}`: could not add the dependency list (.dep-v0) to its binary")]
    #[diagnostic(forward(source))]
    DepList {
        component: String,
        #[source]
        source: auditable::AuditableError,
    },
    #[error("component `{component}`: could not build its image layer: {source}")]
    #[diagnostic(help("check that the binary exists and target/rel/cache is writable"))]
    Layer {
        component: String,
        #[source]
        source: oci::LayerError,
    },
    #[error("component `{component}`: base image `{base}`: {message}")]
    #[diagnostic(help(
        "a base image is a registry image pinned by digest (`registry/repository@sha256:...`) or an OCI image layout directory, written `oci:PATH` or `oci:PATH:TAG`"
    ))]
    Base {
        component: String,
        base: String,
        message: String,
    },
    #[error("component `{component}`: could not pull base image `{base}`")]
    #[diagnostic(help(
        "check the base reference in rel.toml (`registry/repository@sha256:...`), that the registry is reachable and the credentials allow pulling"
    ))]
    Pull {
        component: String,
        base: String,
        #[source]
        source: oci::PullError,
    },
    #[error("component `{component}`: could not assemble the image: {source}")]
    #[diagnostic(help(
        "check the component's base image (rel.toml `base`) and that target/rel is writable; `RUST_LOG=debug rel build` shows each step"
    ))]
    Assemble {
        component: String,
        #[source]
        source: oci::ImageError,
    },
    #[error("component `{component}`: could not write the OCI layout: {source}")]
    #[diagnostic(help("check that target/rel/oci is writable"))]
    Layout {
        component: String,
        #[source]
        source: oci::LayoutError,
    },
    #[error("component `{component}` is external: rel does not build it")]
    #[diagnostic(help("pin external components with `rel lock --digest NAME=sha256:...`"))]
    External { component: String },
    #[error("image name for `{component}` under `{registry}` is invalid: {source}")]
    #[diagnostic(help(
        "give a registry like `ghcr.io/org` or `localhost:5000/platform` (rel.toml `registry`, --registry or REL_REGISTRY), and component names of lowercase letters, digits and `-`"
    ))]
    Name {
        component: String,
        registry: String,
        #[source]
        source: image_ref::ImageRefError,
    },
}

/// One assembled image, before it is published.
#[derive(Debug, Clone)]
pub(crate) struct Assembled {
    pub component: String,
    pub image_name: ImageRef,
    pub image: oci::Image,
    pub krate: String,
    pub bin: String,
    pub features: Vec<String>,
    /// The registry base, pinned by digest (`None`: FROM scratch or an OCI layout base).
    pub base: Option<ImageRef>,
    /// The base image's layers (registry or OCI layout base), first in `image`.
    pub base_layers: Vec<oci::LayerBlob>,
}

impl Assembled {
    /// The build result entry for this image, published at `published`.
    pub(crate) fn record(&self, tag: &str, commit: Option<&str>, published: String) -> BuiltImage {
        BuiltImage {
            component: self.component.clone(),
            image: self.image_name.clone(),
            tag: Some(tag.to_owned()),
            digest: self.image.manifest_digest.clone(),
            source_commit: commit.map(str::to_owned),
            krate: self.krate.clone(),
            bin: self.bin.clone(),
            features: self.features.clone(),
            published: Some(published),
            base: self.base.clone(),
        }
    }
}

/// One compiled component: everything its image is made of, before the layer is built.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub component: String,
    pub image_name: ImageRef,
    /// The layer: the binary at `/app/<bin>`, every time the commit time.
    pub layer: oci::LayerSpec,
    /// The base image's layers and settings (registry or OCI layout base).
    pub base_image: Option<oci::BaseImage>,
    pub spec: oci::ImageSpec,
    pub krate: String,
    pub bin: String,
    pub features: Vec<String>,
    /// The registry base, pinned by digest (`None`: FROM scratch or an OCI layout base).
    pub base: Option<ImageRef>,
}

impl Compiled {
    /// The assembled image of this component.
    pub(crate) fn into_assembled(self, image: oci::Image) -> Assembled {
        Assembled {
            component: self.component,
            image_name: self.image_name,
            image,
            krate: self.krate,
            bin: self.bin,
            features: self.features,
            base: self.base,
            base_layers: self.base_image.map(|b| b.layers).unwrap_or_default(),
        }
    }
}

/// The layer cache of the project.
pub(crate) fn layer_cache(root: &Path) -> oci::LayerCache {
    oci::LayerCache::new(root.join(OUT_DIR).join("cache"))
}

/// Build (or take from the cache) the layer of `c` and assemble its image.
pub(crate) fn assemble(
    cache: &oci::LayerCache,
    c: Compiled,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<Assembled, BuildError> {
    let name = c.component.clone();
    let (layer, outcome) = cache.layer(&c.layer).map_err(|source| BuildError::Layer {
        component: name.clone(),
        source,
    })?;
    progress(Progress::Layer {
        component: &name,
        cached: matches!(outcome, oci::CacheOutcome::Hit),
    });
    let image = oci::assemble(c.base_image.as_ref(), &[layer], &c.spec).map_err(|source| {
        BuildError::Assemble {
            component: name.clone(),
            source,
        }
    })?;
    progress(Progress::Assembled {
        component: &name,
        digest: &image.manifest_digest,
    });
    Ok(c.into_assembled(image))
}

/// Compile every component of the plan and resolve its base: what [`assemble`] (or a streamed
/// push) needs.
pub(crate) fn compile_all(
    plan: &BuildPlan<'_>,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<Vec<Compiled>, BuildError> {
    let root = &plan.config.root;
    let target_dir = plan
        .cargo_target_dir
        .clone()
        .unwrap_or_else(|| root.join(OUT_DIR).join("cargo"));
    let mut results = Vec::new();
    for component in &plan.components {
        let name = component.name.as_str();
        let ComponentSource::Built {
            krate,
            bin,
            features,
            base,
        } = &component.source
        else {
            return Err(BuildError::External {
                component: name.to_owned(),
            });
        };
        progress(Progress::Compiling { component: name });
        let binary = cargo::compile(&cargo::CompileRequest {
            workspace: root,
            krate,
            bin,
            features,
            target_dir: &target_dir,
            show_progress: plan.show_cargo_progress,
            git_commit: plan.source.commit.as_deref(),
            release_version: plan.release_version.as_deref(),
        })
        .map_err(|source| BuildError::Compile {
            component: name.to_owned(),
            source,
        })?;
        // The layer is made from a copy that carries the dependency list (`.dep-v0`).
        let binary = auditable::embed(&auditable::Embed {
            root,
            component: name,
            krate,
            features,
            bin,
            binary: &binary,
            racy: oci::cache::RACY,
        })
        .map_err(|source| BuildError::DepList {
            component: name.to_owned(),
            source,
        })?
        .0;

        let epoch = u64::try_from(plan.source.epoch).unwrap_or(0);
        let (base_image, base_ref) = match base {
            Some(b) if b.starts_with("oci:") => (Some(read_base(root, name, b)?), None),
            Some(b) => {
                let reference = base::parse(name, b)?;
                let image = base::pull(
                    root,
                    name,
                    &reference,
                    &plan.registry,
                    &plan.insecure_registries,
                )?;
                (Some(image), Some(reference))
            }
            None => (None, None),
        };
        let mut spec = oci::ImageSpec::new(vec![format!("/app/{bin}")], epoch);
        spec.source = plan.config.repo.as_ref().map(|r| {
            if r.contains("://") {
                r.clone()
            } else {
                format!("https://github.com/{r}")
            }
        });
        spec.revision = plan.source.commit.clone();
        spec.version = Some(plan.tag.clone());
        spec.labels
            .insert("dev.rel.component".to_owned(), name.to_owned());
        let image_name =
            ImageRef::new(&plan.registry, name).map_err(|source| BuildError::Name {
                component: name.to_owned(),
                registry: plan.registry.clone(),
                source,
            })?;
        results.push(Compiled {
            component: name.to_owned(),
            image_name,
            layer: oci::LayerSpec::binary(&binary, bin, epoch),
            base_image,
            spec,
            krate: krate.clone(),
            bin: bin.clone(),
            features: features.clone(),
            base: base_ref,
        });
    }
    Ok(results)
}

/// `oci:PATH[:TAG]` → the base image's layers and settings.
fn read_base(root: &Path, component: &str, base: &str) -> Result<oci::BaseImage, BuildError> {
    let err = |message: String| BuildError::Base {
        component: component.to_owned(),
        base: base.to_owned(),
        message,
    };
    let Some(rest) = base.strip_prefix("oci:") else {
        return Err(err(
            "only OCI layout bases are supported; copy the registry image into a layout first"
                .to_owned(),
        ));
    };
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (rest, None),
    };
    let dir = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        root.join(path)
    };
    oci::read_base(&dir, tag).map_err(|e| err(e.to_string()))
}

/// The OCI layout directory a component's image is written to (the embedded default registry).
pub(crate) fn layout_dir(root: &Path, component: &str) -> PathBuf {
    root.join(OUT_DIR).join("oci").join(component)
}

/// The default tag: `git-<12 hex of the commit>` (`-dirty` with uncommitted changes), or `dev`.
pub(crate) fn default_tag(source: &source::SourceInfo) -> String {
    match &source.commit {
        Some(c) => format!(
            "git-{}{}",
            &c[..12.min(c.len())],
            if source.dirty { "-dirty" } else { "" }
        ),
        None => "dev".to_owned(),
    }
}
