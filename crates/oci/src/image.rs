//! Image assembly: base layers first, then ours; a config and a manifest as canonical JSON; the
//! manifest digest is a pure function of the inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use image_ref::Digest;

use crate::layer::Layer;
use crate::spec::{
    self, ContainerConfig, Descriptor, Empty, History, ImageConfig, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST, Manifest, RootFs,
};
use crate::timestamp::rfc3339;

/// The non-root user images run as (distroless `nonroot`).
pub const DEFAULT_USER: &str = "65532";

/// What the image's configuration says, besides its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// `amd64` unless told otherwise.
    pub architecture: String,
    /// `linux` unless told otherwise.
    pub os: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` pairs; they override a base image's variables of the same name.
    pub env: Vec<String>,
    /// `8080/tcp`, `9090/udp`, ...
    pub exposed_ports: Vec<String>,
    pub user: String,
    pub working_dir: Option<String>,
    /// Extra labels; the `org.opencontainers.image.*` ones come from the fields below.
    pub labels: BTreeMap<String, String>,
    /// `org.opencontainers.image.source`, e.g. the repository URL.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`: the source commit.
    pub revision: Option<String>,
    /// `org.opencontainers.image.version`.
    pub version: Option<String>,
    /// Seconds since the epoch for `created`, the `.created` label and history: the same fixed time
    /// as the layer mtime (`SOURCE_DATE_EPOCH` or the commit time).
    pub created: u64,
}

impl ImageSpec {
    /// An amd64/linux image running `entrypoint` as user 65532, created at `created`.
    pub fn new(entrypoint: Vec<String>, created: u64) -> Self {
        ImageSpec {
            architecture: "amd64".into(),
            os: "linux".into(),
            entrypoint,
            cmd: Vec::new(),
            env: Vec::new(),
            exposed_ports: Vec::new(),
            user: DEFAULT_USER.into(),
            working_dir: None,
            labels: BTreeMap::new(),
            source: None,
            revision: None,
            version: None,
            created,
        }
    }
}

/// A layer blob of an image: its descriptor and where its bytes are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub path: PathBuf,
}

impl From<&Layer> for LayerBlob {
    fn from(l: &Layer) -> Self {
        LayerBlob {
            descriptor: Descriptor::new(&l.media_type, l.digest.clone(), l.size),
            diff_id: l.diff_id.clone(),
            path: l.path.clone(),
        }
    }
}

/// The parts a base image contributes: its layers (first), their diff ids, env and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub layers: Vec<LayerBlob>,
    pub env: Vec<String>,
    pub history: Vec<History>,
    pub architecture: String,
    pub os: String,
    /// Where it came from, for error messages.
    pub origin: String,
}

impl BaseImage {
    /// A base from its parsed config and its layers (one per `rootfs.diff_ids` entry, checked by
    /// the reader), wherever it was read from.
    pub(crate) fn from_config(
        config: crate::spec::ImageConfig,
        layers: Vec<LayerBlob>,
        origin: String,
    ) -> BaseImage {
        BaseImage {
            layers,
            env: config.config.env.unwrap_or_default(),
            history: config.history,
            architecture: config.architecture,
            os: config.os,
            origin,
        }
    }
}

/// An assembled image: exact config and manifest bytes, and the layer blobs they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub layers: Vec<LayerBlob>,
}

impl Image {
    /// The manifest descriptor (what an index or a tag points at).
    pub fn manifest_descriptor(&self) -> Descriptor {
        Descriptor::new(
            MEDIA_TYPE_MANIFEST,
            self.manifest_digest.clone(),
            self.manifest.len() as u64,
        )
    }
}

/// Why an image could not be assembled.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error("base image {origin} is {os}/{architecture}, but the image is {want_os}/{want_arch}")]
    #[diagnostic(help("use a base image built for the same OS and architecture as the binary"))]
    PlatformMismatch {
        origin: String,
        os: String,
        architecture: String,
        want_os: String,
        want_arch: String,
    },
    #[error("exposed port `{0}` is not `<number>/tcp` or `<number>/udp`")]
    #[diagnostic(help("write exposed ports as `8080/tcp` or `53/udp`"))]
    BadPort(String),
    #[error("environment entry `{0}` is not `KEY=value`")]
    #[diagnostic(help("write environment entries as `KEY=value`"))]
    BadEnv(String),
    #[error("the image has no layers")]
    #[diagnostic(help("give at least one layer, or a base image with layers"))]
    NoLayers,
}

/// Assemble an image from an optional base and our layers (in order).
pub fn assemble(
    base: Option<&BaseImage>,
    layers: &[Layer],
    spec: &ImageSpec,
) -> Result<Image, ImageError> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config_bytes = config(base, &diff_ids, spec)?;
    let config_digest = Digest::of(&config_bytes);
    let mut blobs: Vec<LayerBlob> = base.map(|b| b.layers.clone()).unwrap_or_default();
    blobs.extend(layers.iter().map(LayerBlob::from));
    let manifest = Manifest {
        annotations: BTreeMap::new(),
        config: Descriptor::new(
            MEDIA_TYPE_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers: blobs.iter().map(|b| b.descriptor.clone()).collect(),
        media_type: Some(MEDIA_TYPE_MANIFEST.into()),
        schema_version: 2,
    };
    let manifest_bytes = spec::canonical_json(&manifest);
    Ok(Image {
        manifest_digest: Digest::of(&manifest_bytes),
        manifest: manifest_bytes,
        config: config_bytes,
        config_digest,
        layers: blobs,
    })
}

/// The image config bytes for a base and our layers' diff ids: known before the layers are
/// compressed, since it names only uncompressed digests.
pub fn config(
    base: Option<&BaseImage>,
    diff_ids: &[Digest],
    spec: &ImageSpec,
) -> Result<Vec<u8>, ImageError> {
    let mut blobs: Vec<Digest> = Vec::new();
    let mut history: Vec<History> = Vec::new();
    let mut env: Vec<String> = Vec::new();
    let created = rfc3339(spec.created);
    if let Some(base) = base {
        if base.os != spec.os || base.architecture != spec.architecture {
            return Err(ImageError::PlatformMismatch {
                origin: base.origin.clone(),
                os: base.os.clone(),
                architecture: base.architecture.clone(),
                want_os: spec.os.clone(),
                want_arch: spec.architecture.clone(),
            });
        }
        blobs.extend(base.layers.iter().map(|l| l.diff_id.clone()));
        history.extend(base.history.iter().cloned());
        env.extend(base.env.iter().cloned());
    }
    for e in &spec.env {
        let Some((key, _)) = e.split_once('=') else {
            return Err(ImageError::BadEnv(e.clone()));
        };
        if key.is_empty() {
            return Err(ImageError::BadEnv(e.clone()));
        }
        env.retain(|old| old.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(e.clone());
    }
    for diff_id in diff_ids {
        blobs.push(diff_id.clone());
        history.push(History {
            comment: None,
            created: Some(created.clone()),
            created_by: Some("rel build".into()),
            empty_layer: None,
        });
    }
    if blobs.is_empty() {
        return Err(ImageError::NoLayers);
    }
    let mut ports = BTreeMap::new();
    for p in &spec.exposed_ports {
        let ok = p
            .split_once('/')
            .is_some_and(|(n, proto)| n.parse::<u16>().is_ok() && matches!(proto, "tcp" | "udp"));
        if !ok {
            return Err(ImageError::BadPort(p.clone()));
        }
        ports.insert(p.clone(), Empty {});
    }
    let mut labels = spec.labels.clone();
    labels.insert("org.opencontainers.image.created".into(), created.clone());
    for (key, value) in [
        ("source", &spec.source),
        ("revision", &spec.revision),
        ("version", &spec.version),
    ] {
        if let Some(v) = value {
            labels.insert(format!("org.opencontainers.image.{key}"), v.clone());
        }
    }
    let config = ImageConfig {
        architecture: spec.architecture.clone(),
        config: ContainerConfig {
            cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
            entrypoint: (!spec.entrypoint.is_empty()).then(|| spec.entrypoint.clone()),
            env: (!env.is_empty()).then_some(env),
            exposed_ports: (!ports.is_empty()).then_some(ports),
            labels: Some(labels),
            user: Some(spec.user.clone()),
            working_dir: spec.working_dir.clone(),
        },
        created: Some(created),
        history,
        os: spec.os.clone(),
        rootfs: RootFs {
            diff_ids: blobs,
            kind: "layers".into(),
        },
    };
    Ok(spec::canonical_json(&config))
}
