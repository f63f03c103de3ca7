//! What a signed build publishes next to each image: a cosign signature of the manifest digest,
//! a SLSA provenance v1 in-toto statement in a DSSE envelope, and a CycloneDX 1.5 SBOM of the
//! binary's crate graph (`cargo metadata` for the component's crate, features and target;
//! versions and checksums from Cargo.lock). Both documents are attached to the image as OCI 1.1
//! artifacts (referrers API or the tag-schema fallback).
//!
//! Every document is a function of the build inputs (no clock, no random): a rebuild of the same
//! commit attaches the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use image_ref::Digest;
use serde::Deserialize;
use sha2::Digest as _;

use crate::build::{Assembled, cargo::TARGET, source::SourceInfo};
use crate::signing::{IN_TOTO_PAYLOAD_TYPE, SigningKey};
use crate::{Error, env_vars};

/// The artifact type (and layer media type) of the provenance attachment: a DSSE envelope of an
/// in-toto statement.
pub(crate) const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The artifact type (and layer media type) of the SBOM attachment.
pub(crate) const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";
/// in-toto statement and SLSA predicate types.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub(crate) const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// Who built it: rel's builder, versioned with rel.
pub(crate) const BUILDER_ID: &str = "urn:rel:builder:rel-build";
/// How it was built: `cargo build --release --locked` into a reproducible OCI image.
pub(crate) const BUILD_TYPE: &str = "urn:rel:build-type:cargo-oci:v1";

/// What the build of one image used: the inputs provenance and the SBOM describe.
#[derive(Debug, Clone)]
pub(crate) struct BuildInputs<'a> {
    pub workspace: &'a Path,
    /// The source repository (`org/name`, rel.toml's `repo`).
    pub repository: Option<&'a str>,
    pub source: &'a SourceInfo,
    /// `rustc -V`.
    pub toolchain: &'a str,
    /// SHA-256 of Cargo.lock.
    pub cargo_lock_sha256: &'a str,
}

/// What was published for one image.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Attested {
    pub component: String,
    pub image: String,
    pub signature: Digest,
    pub provenance: Digest,
    pub sbom: Digest,
    /// Resolved dependencies in the SBOM.
    pub dependencies: usize,
}

/// `rustc -V` of the toolchain cargo just built with: the first line of the `rustc -vV` answer
/// cargo keeps in `<target dir>/.rustc_info.json` (cargo checks it against the compiler on every
/// build), else `rustc -V` run here.
pub(crate) fn toolchain_version(workspace: &Path, cargo_target_dir: &Path) -> String {
    #[derive(Deserialize)]
    struct RustcInfo {
        outputs: BTreeMap<String, Output>,
    }
    #[derive(Deserialize)]
    struct Output {
        success: bool,
        stdout: String,
    }
    let cached = std::fs::read(cargo_target_dir.join(".rustc_info.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<RustcInfo>(&b).ok())
        .and_then(|info| {
            info.outputs.into_values().find_map(|o| {
                let first = o.stdout.lines().next()?.to_owned();
                (o.success && first.starts_with("rustc ") && o.stdout.contains("\nbinary: rustc"))
                    .then_some(first)
            })
        });
    if let Some(version) = cached {
        return version;
    }
    let rustc = std::env::var_os(env_vars::RUSTC).unwrap_or_else(|| "rustc".into());
    env_vars::scrub_secrets(&mut Command::new(rustc))
        .current_dir(workspace)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The in-toto statement (SLSA provenance v1) of one image, as canonical JSON bytes.
pub(crate) fn provenance(a: &Assembled, inputs: &BuildInputs<'_>) -> Vec<u8> {
    let digest = &a.image.manifest_digest;
    let mut command = vec![
        "cargo",
        "build",
        "--release",
        "--locked",
        "--target",
        TARGET,
        "--package",
        &a.krate,
        "--bin",
        &a.bin,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    if !a.features.is_empty() {
        command.push("--features".to_owned());
        command.push(a.features.join(","));
    }
    let commit = inputs.source.commit.as_deref().unwrap_or_default();
    let repository = inputs.repository.unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "_type": STATEMENT_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "bin": a.bin,
                    "command": command,
                    "component": a.component,
                    "crate": a.krate,
                    "features": a.features,
                    "source": {"commit": commit, "dirty": inputs.source.dirty, "repository": repository},
                    "sourceDateEpoch": inputs.source.epoch,
                    "target": TARGET,
                },
                "internalParameters": {
                    "rustflags": crate::build::cargo::rustflags(inputs.workspace),
                    "toolchain": inputs.toolchain,
                },
                "resolvedDependencies": [
                    {"digest": {"gitCommit": commit}, "name": "source", "uri": format!("git+{repository}@{commit}")},
                    {"digest": {"sha256": inputs.cargo_lock_sha256}, "name": "Cargo.lock"},
                ],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"rel": env!("CARGO_PKG_VERSION")}},
            },
        },
        "predicateType": SLSA_PROVENANCE_V1,
        "subject": [{"digest": {"sha256": digest.hex()}, "name": a.image_name.name()}],
    }))
    .expect("json")
}

/// What rel reads of `cargo metadata --format-version 1` (the SBOM here, the `.dep-v0` list in
/// `build::auditable`).
#[derive(Deserialize)]
pub(crate) struct Metadata {
    pub(crate) packages: Vec<Package>,
    pub(crate) resolve: Option<Resolve>,
}

#[derive(Deserialize)]
pub(crate) struct Package {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) source: Option<String>,
    license: Option<String>,
    #[serde(default)]
    pub(crate) targets: Vec<Target>,
}

#[derive(Deserialize)]
pub(crate) struct Target {
    #[serde(default)]
    pub(crate) kind: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct Resolve {
    pub(crate) nodes: Vec<Node>,
}

#[derive(Deserialize)]
pub(crate) struct Node {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) deps: Vec<NodeDep>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct NodeDep {
    pub(crate) pkg: String,
    #[serde(default)]
    pub(crate) dep_kinds: Vec<DepKind>,
}

/// `null` (normal), `"build"` or `"dev"`.
#[derive(Deserialize)]
pub(crate) struct DepKind {
    pub(crate) kind: Option<String>,
}

#[derive(Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    checksum: Option<String>,
}

/// What `cargo metadata` and Cargo.lock say about one component's crate graph: read while the
/// image is compiled and pushed (it needs no digest), turned into the SBOM afterwards.
pub(crate) struct CrateGraph {
    meta: Metadata,
    checksums: BTreeMap<(String, String), String>,
}

impl CrateGraph {
    /// What `cargo metadata` said.
    pub(crate) fn metadata(&self) -> &Metadata {
        &self.meta
    }
}

/// What stops rel from describing or attaching what it built (SBOM, provenance, signature).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AttestError {
    #[error("Cargo.lock is not readable as TOML")]
    #[diagnostic(
        code(rel::attest::cargo_lock),
        help("regenerate it with `cargo generate-lockfile`")
    )]
    CargoLock(#[source] toml::de::Error),

    #[error("cargo metadata printed something rel cannot read")]
    #[diagnostic(
        code(rel::attest::metadata_json),
        help("report this with your cargo version (`cargo -V`)")
    )]
    MetadataJson(#[source] serde_json::Error),

    #[error("cargo metadata for the SBOM of {component} failed: {stderr}")]
    #[diagnostic(
        code(rel::attest::metadata_failed),
        help(
            "the SBOM is read from `cargo metadata --locked`: make Cargo.lock current and the dependencies fetched (`cargo fetch`)"
        )
    )]
    MetadataFailed { component: String, stderr: String },

    #[error("cargo metadata does not list the crate `{krate}`")]
    #[diagnostic(
        code(rel::attest::no_crate),
        help("check the component's `crate` in rel.toml: it names a package of this workspace")
    )]
    NoCrate { krate: String },

    #[error("no crate graph was read for {component}")]
    #[diagnostic(
        code(rel::attest::no_crate_graph),
        help("a bug in rel: the build prepared other components than it pushed; please report it")
    )]
    NoCrateGraph { component: String },

    #[error("the registry client returned {got} attachments for 2 artifacts")]
    #[diagnostic(
        code(rel::attest::attachments),
        help("a bug in rel's registry client; please report it")
    )]
    AttachmentCount { got: usize },
}

/// The crate graph of `krate` with `features` for the image's target: `cargo metadata --locked
/// --filter-platform` of the crate's manifest (features resolve for that package) and the
/// checksums of Cargo.lock.
pub(crate) fn crate_graph(
    workspace: &Path,
    component: &str,
    krate: &str,
    features: &[String],
) -> Result<CrateGraph, Error> {
    let lock_text = std::fs::read_to_string(workspace.join("Cargo.lock"))
        .map_err(|e| Error::io("read Cargo.lock", workspace.join("Cargo.lock"), e))?;
    let lock: CargoLock = toml::from_str(&lock_text).map_err(AttestError::CargoLock)?;
    let checksums = lock
        .package
        .into_iter()
        .filter_map(|p| Some(((p.name, p.version), p.checksum?)))
        .collect();
    let cache = workspace
        .join(crate::build::OUT_DIR)
        .join("cache/crate-graph")
        .join(format!(
            "{}.json",
            graph_key(workspace, krate, features, &lock_text)
        ));
    if let Some(meta) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Metadata>(&b).ok())
    {
        return Ok(CrateGraph { meta, checksums });
    }
    let stdout = once_per_process(&cache, || {
        cargo_metadata(workspace, component, krate, features)
    })?;
    let meta: Metadata = serde_json::from_slice(&stdout).map_err(AttestError::MetadataJson)?;
    // A cache that cannot be written only costs the next build a `cargo metadata`.
    if let Err(e) = cache
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::atomic_write::write(&cache, &stdout))
    {
        tracing::debug!(path = %cache.display(), error = %e, "crate graph not cached");
    }
    Ok(CrateGraph { meta, checksums })
}

/// `run`'s answer for `key`, computed once in this process: a signed build's preparing thread
/// and its `.dep-v0` step ask for the same crate graph at once on a cold cache, and one
/// `cargo metadata` answers both (the other waits for it). A failure is not kept: each caller
/// that finds none runs `run` itself, for its own error.
fn once_per_process(
    key: &Path,
    run: impl Fn() -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    type Cell = std::sync::Arc<std::sync::OnceLock<Option<Vec<u8>>>>;
    static RUNS: std::sync::Mutex<BTreeMap<std::path::PathBuf, Cell>> =
        std::sync::Mutex::new(BTreeMap::new());
    let cell = RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_default()
        .clone();
    let mut failed = None;
    let answer = cell.get_or_init(|| match run() {
        Ok(out) => Some(out),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    match (answer, failed) {
        (Some(out), _) => Ok(out.clone()),
        (None, Some(e)) => Err(e),
        (None, None) => run(),
    }
}

/// The key [`crate_graph`] caches the graph of `krate` with `features` under: it moves with
/// Cargo.lock, any manifest or cargo config of the workspace, the crate, features and target.
pub(crate) fn crate_graph_key(
    workspace: &Path,
    krate: &str,
    features: &[String],
) -> Result<String, Error> {
    let lock_text = std::fs::read_to_string(workspace.join("Cargo.lock"))
        .map_err(|e| Error::io("read Cargo.lock", workspace.join("Cargo.lock"), e))?;
    Ok(graph_key(workspace, krate, features, &lock_text))
}

/// What `cargo metadata --locked` for the SBOM depends on: the crate, its features, the target,
/// Cargo.lock and every `Cargo.toml` and `.cargo/config.toml` of the workspace (a new or edited
/// manifest, tracked or not, is another key).
fn graph_key(workspace: &Path, krate: &str, features: &[String], lock: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(
        format!(
            "rel crate graph v1\0{TARGET}\0{krate}\0{}\0",
            features.join(",")
        )
        .as_bytes(),
    );
    h.update(lock.as_bytes());
    let mut manifests = Vec::new();
    let mut dirs = vec![workspace.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            match entry.file_type() {
                Ok(t)
                    if t.is_dir()
                        && (name == ".cargo" || !(name.starts_with('.') || name == "target")) =>
                {
                    dirs.push(path);
                }
                Ok(t) if t.is_file() => {
                    let in_cargo_dir = dir.file_name().is_some_and(|d| d == ".cargo");
                    if name == "Cargo.toml" || (in_cargo_dir && name.starts_with("config")) {
                        manifests.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    manifests.sort();
    for m in manifests {
        h.update(
            m.strip_prefix(workspace)
                .unwrap_or(&m)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(b"\0");
        h.update(std::fs::read(&m).unwrap_or_default());
        h.update(b"\0");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON `cargo metadata --locked --filter-platform` prints for `krate` with `features`.
fn cargo_metadata(
    workspace: &Path,
    component: &str,
    krate: &str,
    features: &[String],
) -> Result<Vec<u8>, Error> {
    let cargo = std::env::var_os(env_vars::CARGO).unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // `cargo metadata` resolves features for the package of --manifest-path.
    env_vars::scrub_secrets(&mut cmd)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", TARGET, "--manifest-path"])
        .arg(crate_manifest(workspace, krate));
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    let out = cmd
        .output()
        .map_err(|e| Error::io("run cargo metadata", workspace, e))?;
    if !out.status.success() {
        return Err(AttestError::MetadataFailed {
            component: component.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }
        .into());
    }
    Ok(out.stdout)
}

/// The packages linked into the binary of `root` (ids, `root` included) and the edges between
/// them (by purl).
fn linked<'m>(
    packages: &BTreeMap<&'m str, &'m Package>,
    nodes: &BTreeMap<&'m str, &'m Node>,
    root: &'m str,
) -> (BTreeSet<&'m str>, BTreeMap<String, BTreeSet<String>>) {
    // Normal dependencies only: build scripts and proc macros run at build time, they are not
    // in the binary. A proc-macro crate is a normal dependency in cargo's graph, but it runs in
    // the compiler: neither it nor what only it uses is linked.
    let proc_macro = |id: &str| {
        packages.get(id).is_some_and(|p| {
            !p.targets.is_empty() && p.targets.iter().all(|t| t.kind == ["proc-macro"])
        })
    };
    let normal =
        |d: &&NodeDep| d.dep_kinds.iter().any(|k| k.kind.is_none()) && !proc_macro(d.pkg.as_str());
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        let from = purl(packages[id]);
        let entry = edges.entry(from).or_default();
        for dep in node.deps.iter().filter(normal) {
            if let Some(p) = packages.get(dep.pkg.as_str()) {
                entry.insert(purl(p));
                stack.push(dep.pkg.as_str());
            }
        }
    }
    (seen, edges)
}

/// The CycloneDX 1.5 SBOM (JSON bytes) of one image's binary: the crate with its features and
/// every package linked into it (normal dependencies, transitively, for the image's target).
pub(crate) fn sbom(
    a: &Assembled,
    inputs: &BuildInputs<'_>,
    graph: &CrateGraph,
) -> Result<(Vec<u8>, usize), Error> {
    let (meta, checksums) = (&graph.meta, &graph.checksums);
    let packages: BTreeMap<&str, &Package> =
        meta.packages.iter().map(|p| (p.id.as_str(), p)).collect();
    let nodes: BTreeMap<&str, &Node> = meta
        .resolve
        .as_ref()
        .map(|r| r.nodes.iter().map(|n| (n.id.as_str(), n)).collect())
        .unwrap_or_default();
    let root = meta
        .packages
        .iter()
        .find(|p| p.name == a.krate && p.source.is_none())
        .ok_or_else(|| AttestError::NoCrate {
            krate: a.krate.to_owned(),
        })?;
    let (seen, edges) = linked(&packages, &nodes, root.id.as_str());
    let component = |p: &Package| {
        let mut c = serde_json::json!({
            "bom-ref": purl(p),
            "name": p.name,
            "purl": purl(p),
            "type": "library",
            "version": p.version,
        });
        if let Some(sum) = checksums.get(&(p.name.clone(), p.version.clone())) {
            c["hashes"] = serde_json::json!([{"alg": "SHA-256", "content": sum}]);
        }
        if let Some(l) = &p.license {
            c["licenses"] = serde_json::json!([{"expression": l}]);
        }
        c
    };
    let components: Vec<_> = seen
        .iter()
        .filter(|id| **id != root.id)
        .map(|id| component(packages[id]))
        .collect();
    // Crates counted; the base image (and its layers) listed too.
    let count = components.len();
    let mut components = components;
    if let Some(base) = &a.base {
        components.push(base_component(base, &a.base_layers));
    }
    let mut main = component(root);
    main["type"] = "application".into();
    main["properties"] = serde_json::json!([
        {"name": "rel:bin", "value": a.bin},
        {"name": "rel:component", "value": a.component},
        {"name": "rel:features", "value": a.features.join(",")},
        {"name": "rel:target", "value": TARGET},
        {"name": "rel:image", "value": format!("{}@{}", a.image_name.name(), a.image.manifest_digest)},
    ]);
    let root_features = nodes.get(root.id.as_str()).map(|n| n.features.join(","));
    if let Some(f) = root_features {
        main["properties"]
            .as_array_mut()
            .expect("array")
            .push(serde_json::json!({"name": "rel:resolved-features", "value": f}));
    }
    let dependencies: Vec<_> = edges
        .into_iter()
        .map(|(r, deps)| serde_json::json!({"dependsOn": deps, "ref": r}))
        .collect();
    let timestamp = time::OffsetDateTime::from_unix_timestamp(inputs.source.epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let bom = serde_json::json!({
        "bomFormat": "CycloneDX",
        "components": components,
        "dependencies": dependencies,
        "metadata": {
            "component": main,
            "timestamp": timestamp,
            "tools": {"components": [{"name": "rel", "type": "application", "version": env!("CARGO_PKG_VERSION")}]},
        },
        "serialNumber": serial_number(&a.image.manifest_digest),
        "specVersion": "1.5",
        "version": 1,
    });
    Ok((serde_json::to_vec(&bom).expect("json"), count))
}

/// The registry base image as a CycloneDX `container` component (its manifest digest as version
/// and hash, an OCI purl), with one `file` component per layer (digest, diff id, media type, size).
fn base_component(base: &image_ref::ImageRef, layers: &[oci::LayerBlob]) -> serde_json::Value {
    let name = base.name();
    let digest = base.digest().map(ToString::to_string).unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let last = base
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bom_ref = format!("{name}@{digest}");
    let layers: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::json!({
                "bom-ref": format!("{bom_ref}#layer-{i}"),
                "hashes": [{"alg": "SHA-256", "content": l.descriptor.digest.hex()}],
                "name": format!("layer {i}"),
                "properties": [
                    {"name": "rel:diff-id", "value": l.diff_id.to_string()},
                    {"name": "rel:digest", "value": l.descriptor.digest.to_string()},
                    {"name": "rel:media-type", "value": l.descriptor.media_type},
                    {"name": "rel:size", "value": l.descriptor.size.to_string()},
                ],
                "type": "file",
            })
        })
        .collect();
    serde_json::json!({
        "bom-ref": bom_ref,
        "components": layers,
        "hashes": [{"alg": "SHA-256", "content": hex}],
        "name": name,
        "properties": [{"name": "rel:role", "value": "base image"}],
        "purl": format!("pkg:oci/{last}@sha256%3A{hex}?repository_url={name}"),
        "type": "container",
        "version": digest,
    })
}

fn crate_manifest(workspace: &Path, krate: &str) -> std::path::PathBuf {
    for dir in ["crates", "services"] {
        let p = workspace.join(dir).join(krate).join("Cargo.toml");
        if p.is_file() {
            return p;
        }
    }
    workspace.join("Cargo.toml")
}

fn purl(p: &Package) -> String {
    format!("pkg:cargo/{}@{}", p.name, p.version)
}

/// A UUID (version 5 layout) derived from the image digest: the same image, the same BOM serial.
fn serial_number(digest: &Digest) -> String {
    let h = sha2::Sha256::digest(digest.to_string().as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// What signing needs besides the images, none of it depending on them: the hash of Cargo.lock
/// and each component's crate graph. [`prepare`] makes it on threads of its own, so that it runs
/// while the images are compiled.
pub(crate) struct Prepared {
    pub cargo_lock_sha256: String,
    /// Per component.
    graphs: BTreeMap<String, CrateGraph>,
}

/// One component to prepare: its name, crate and features.
#[derive(Debug, Clone)]
pub(crate) struct ToPrepare {
    pub component: String,
    pub krate: String,
    pub features: Vec<String>,
}

/// Hash Cargo.lock and read each component's crate graph (cached under
/// `target/rel/cache/crate-graph`, else `cargo metadata`, one thread each: a child process that
/// mostly waits).
pub(crate) fn prepare(workspace: &Path, components: &[ToPrepare]) -> Result<Prepared, Error> {
    std::thread::scope(|s| {
        let graphs: Vec<_> = components
            .iter()
            .map(|c| {
                s.spawn(|| {
                    crate_graph(workspace, &c.component, &c.krate, &c.features)
                        .map(|g| (c.component.clone(), g))
                })
            })
            .collect();
        let cargo_lock_sha256 = cargo_lock_sha256(workspace)?;
        let graphs = graphs
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        Ok(Prepared {
            cargo_lock_sha256,
            graphs,
        })
    })
}

/// Sign what is published for one image: the cosign payload and its signature, the provenance
/// envelope and the SBOM. No I/O: `prepared` read it all.
pub(crate) fn documents(
    key: &SigningKey,
    a: &Assembled,
    inputs: &BuildInputs<'_>,
    prepared: &Prepared,
) -> Result<Documents, Error> {
    let graph = prepared
        .graphs
        .get(&a.component)
        .ok_or_else(|| AttestError::NoCrateGraph {
            component: a.component.clone(),
        })?;
    let payload =
        oci::registry::simple_signing_payload(&a.image_name.name(), &a.image.manifest_digest);
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign_raw(&payload));
    let envelope = key.dsse_envelope(IN_TOTO_PAYLOAD_TYPE, &provenance(a, inputs));
    let (bom, dependencies) = sbom(a, inputs, graph)?;
    Ok(Documents {
        payload,
        signature,
        envelope,
        bom,
        dependencies,
    })
}

/// What is signed and attached for one image ([`documents`]).
pub(crate) struct Documents {
    payload: Vec<u8>,
    signature: String,
    envelope: String,
    bom: Vec<u8>,
    dependencies: usize,
}

/// The blobs [`stage_one`] puts per image besides the empty config: the signature's payload
/// and config, the provenance envelope and the SBOM.
pub(crate) const BLOBS_PER_IMAGE: usize = 4;

/// Put one image's signature payload, provenance and SBOM (blobs and artifact manifests, by
/// digest). They name the image by digest, so they may go up while the image itself does
/// (`rel build --push` runs them side by side); [`Staged::finish`] then lists them in the tags
/// verifiers read, once the image is up.
pub(crate) async fn stage_one(
    registry: &oci::Registry,
    a: &Assembled,
    d: &Documents,
) -> Result<Staged, Error> {
    let repository = a.image_name.repository();
    let digest = &a.image.manifest_digest;
    let subject = oci::spec::Descriptor::new(
        oci::spec::MEDIA_TYPE_MANIFEST,
        digest.clone(),
        a.image.manifest.len() as u64,
    );
    let artifacts = [
        oci::registry::Artifact {
            artifact_type: PROVENANCE_MEDIA_TYPE,
            media_type: PROVENANCE_MEDIA_TYPE,
            content: d.envelope.as_bytes(),
            annotations: BTreeMap::from([(
                "dev.rel.predicate-type".to_owned(),
                SLSA_PROVENANCE_V1.to_owned(),
            )]),
        },
        oci::registry::Artifact {
            artifact_type: SBOM_ARTIFACT_TYPE,
            media_type: SBOM_ARTIFACT_TYPE,
            content: &d.bom,
            annotations: BTreeMap::new(),
        },
    ];
    let (signature, attachments) = futures_util::future::try_join(
        registry.stage_cosign_signature(repository, digest, &d.payload, &d.signature),
        registry.stage_attachments(repository, &subject, &artifacts),
    )
    .await
    .map_err(|source| push_error(&a.component, &a.image_name.name(), digest, source))?;
    let [provenance, sbom]: [Digest; 2] = attachments
        .digests
        .clone()
        .try_into()
        .map_err(|got: Vec<Digest>| AttestError::AttachmentCount { got: got.len() })?;
    Ok(Staged {
        component: a.component.clone(),
        image: a.image_name.name(),
        digest: digest.clone(),
        signature,
        attachments,
        provenance,
        sbom,
        dependencies: d.dependencies,
    })
}

/// A registry failure while signing `image@digest` of `component`.
fn push_error(component: &str, image: &str, digest: &Digest, source: oci::RegistryError) -> Error {
    Error::Push {
        component: component.to_owned(),
        target: crate::redact::urls(&format!("{image}@{digest}")),
        source,
    }
}

/// One image's signature, provenance and SBOM in the registry, not yet in the tags verifiers read.
pub(crate) struct Staged {
    component: String,
    /// The image's name, without tag or digest.
    image: String,
    digest: Digest,
    signature: oci::registry::StagedSignature,
    attachments: oci::registry::StagedAttachments,
    provenance: Digest,
    sbom: Digest,
    dependencies: usize,
}

impl Staged {
    /// Add the signature to the image's `sha256-<hex>.sig` manifest and the provenance and SBOM
    /// to its fallback index (read, merge, write, read back: see
    /// [`oci::Registry::list_attachments`]).
    pub(crate) async fn finish(self, registry: &oci::Registry) -> Result<Attested, Error> {
        let (signature, ()) = futures_util::future::try_join(
            registry.add_cosign_signature(&self.signature),
            registry.list_attachments(&self.attachments),
        )
        .await
        .map_err(|source| push_error(&self.component, &self.image, &self.digest, source))?;
        Ok(Attested {
            component: self.component,
            image: format!("{}@{}", self.image, self.digest),
            signature,
            provenance: self.provenance,
            sbom: self.sbom,
            dependencies: self.dependencies,
        })
    }
}

/// SHA-256 (hex) of the workspace's Cargo.lock.
pub(crate) fn cargo_lock_sha256(workspace: &Path) -> Result<String, Error> {
    let path = workspace.join("Cargo.lock");
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read Cargo.lock", &path, e))?;
    Ok(crate::record::sha256_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_asking_for_one_graph_run_cargo_once() {
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let key = std::path::Path::new("/nonexistent/two-threads-one-graph.json");
        let run = || {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(b"{}".to_vec())
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| once_per_process(key, run));
            let b = s.spawn(|| once_per_process(key, run));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a.unwrap(), b"{}");
        assert_eq!(b.unwrap(), b"{}");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A failure is not kept: the next caller runs again.
        let other = std::path::Path::new("/nonexistent/failing-graph.json");
        let failing = || {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(Error::from(AttestError::AttachmentCount { got: 0 }))
        };
        assert!(once_per_process(other, failing).is_err());
        assert!(once_per_process(other, failing).is_err());
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn a_proc_macro_and_what_only_it_uses_are_not_linked() {
        let pkg = |name: &str, kind: &str| {
            serde_json::json!({
                "id": format!("registry+https://github.com/rust-lang/crates.io-index#{name}@1.0.0"),
                "name": name, "version": "1.0.0",
                "source": "registry+https://github.com/rust-lang/crates.io-index",
                "targets": [{"kind": [kind]}],
            })
        };
        let id = |name: &str| {
            format!("registry+https://github.com/rust-lang/crates.io-index#{name}@1.0.0")
        };
        let dep = |name: &str, kind: Option<&str>| serde_json::json!({"pkg": id(name), "dep_kinds": [{"kind": kind}]});
        let meta: Metadata = serde_json::from_value(serde_json::json!({
            "packages": [
                {"id": "path+file:///w/app#0.1.0", "name": "app", "version": "0.1.0",
                 "source": null, "targets": [{"kind": ["bin"]}]},
                pkg("serde", "lib"), pkg("serde_derive", "proc-macro"), pkg("syn", "lib"),
                pkg("shared", "lib"), pkg("cc", "lib"),
            ],
            "resolve": {"nodes": [
                {"id": "path+file:///w/app#0.1.0",
                 "deps": [dep("serde", None), dep("serde_derive", None), dep("cc", Some("build"))]},
                {"id": id("serde"), "deps": [dep("serde_derive", None), dep("shared", None)]},
                {"id": id("serde_derive"), "deps": [dep("syn", None), dep("shared", None)]},
                {"id": id("syn"), "deps": []},
                {"id": id("shared"), "deps": []},
                {"id": id("cc"), "deps": []},
            ]},
        }))
        .unwrap();
        let packages: BTreeMap<&str, &Package> =
            meta.packages.iter().map(|p| (p.id.as_str(), p)).collect();
        let nodes: BTreeMap<&str, &Node> = meta
            .resolve
            .as_ref()
            .unwrap()
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n))
            .collect();
        let (seen, _) = linked(&packages, &nodes, "path+file:///w/app#0.1.0");
        let names: Vec<&str> = seen.iter().map(|id| packages[id].name.as_str()).collect();
        // serde and what it links (shared); not the proc macro, not syn (only the macro uses
        // it), not the build dependency.
        assert_eq!(names, ["app", "serde", "shared"]);
    }

    #[test]
    fn the_crate_graph_key_changes_with_any_manifest_the_lock_or_the_features() {
        let ws = tempfile::tempdir().unwrap();
        let p = ws.path();
        std::fs::create_dir_all(p.join("crates/a")).unwrap();
        std::fs::create_dir_all(p.join("target/rel")).unwrap();
        std::fs::write(
            p.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .unwrap();
        std::fs::write(p.join("crates/a/Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
        let key = |features: &[String], lock: &str| graph_key(p, "a", features, lock);
        let first = key(&[], "lock");
        assert_eq!(first, key(&[], "lock"), "a function of the files");
        assert_ne!(first, key(&["loud".to_owned()], "lock"));
        assert_ne!(first, key(&[], "lock 2"));
        // Build output and hidden directories are not the workspace's manifests.
        std::fs::write(p.join("target/rel/Cargo.toml"), "x").unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::write(p.join(".git/Cargo.toml"), "x").unwrap();
        assert_eq!(first, key(&[], "lock"));
        // A new member (tracked or not), an edited manifest, cargo's config: another key.
        std::fs::create_dir_all(p.join("crates/b")).unwrap();
        std::fs::write(p.join("crates/b/Cargo.toml"), "[package]\nname = \"b\"\n").unwrap();
        let with_b = key(&[], "lock");
        assert_ne!(first, with_b);
        std::fs::write(
            p.join("crates/a/Cargo.toml"),
            "[package]\nname = \"a\"\n# x\n",
        )
        .unwrap();
        assert_ne!(with_b, key(&[], "lock"));
        let edited = key(&[], "lock");
        std::fs::create_dir_all(p.join(".cargo")).unwrap();
        std::fs::write(p.join(".cargo/config.toml"), "[net]\noffline = true\n").unwrap();
        assert_ne!(edited, key(&[], "lock"));
    }
}
