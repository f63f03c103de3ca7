//! The dependency list in every built binary, the way `cargo auditable` embeds it: an ELF
//! section `.dep-v0` holding zlib-compressed JSON (auditable-serde's `VersionInfo`, format 1),
//! which `cargo audit bin`, `rust-audit-info`, syft and trivy read.
//!
//! The list is made from the crate graph rel already reads for the SBOM
//! ([`crate::attest::crate_graph`]: `cargo metadata --locked --filter-platform` for the
//! component's crate and features, cached by Cargo.lock and the manifests), with cargo
//! auditable's rules (`cargo-auditable/src/auditable_from_metadata.rs`):
//!
//! - every package reachable from the component's crate through normal and build dependencies;
//!   dev-dependencies and their edges are left out;
//! - `kind` is `runtime`, or `build` for build dependencies, proc macros and whatever is reached
//!   only through them (the strongest kind over all paths, each path as weak as its weakest edge);
//! - packages sorted by name, then cargo's package id; `dependencies` are indices into that list,
//!   ascending; the component's crate is `root`;
//! - `source`: `crates.io`, `local` for path packages, otherwise the scheme of cargo's source id
//!   (`git`, `registry`, `sparse`);
//! - compact JSON in auditable-serde's field order, defaults left out (`kind: runtime`, empty
//!   `dependencies`, `root: false`), compressed at zlib level 7 (cargo auditable's) by the
//!   workspace's pinned deflate backend.
//!
//! The same graph gives the same bytes. Cargo's output is never edited in place: the binary with
//! the section is a copy at `target/rel/bin/<component>/<bin>`, rewritten only when its bytes
//! change, and the image layer is made from that copy. A binary that has the section already
//! (built with `cargo auditable`) is used as it is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attest::{Metadata, NodeDep};

/// The section name cargo auditable's readers look for.
pub(crate) const SECTION: &str = ".dep-v0";
/// auditable-serde's format revision: `cargo metadata` as the source, proc macros as build
/// dependencies.
const FORMAT: u32 = 1;
/// cargo auditable's zlib level.
const ZLIB_LEVEL: u32 = 7;
/// cargo's source id of crates.io (also when it is reached through the sparse protocol).
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// What stops rel from adding the dependency list to a binary.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuditableError {
    #[error("could not read the crate graph")]
    #[diagnostic(forward(source))]
    Graph {
        #[source]
        source: Box<crate::Error>,
    },

    #[error("cargo metadata does not list the crate `{krate}` as a package of this workspace")]
    #[diagnostic(
        code(rel::auditable::no_crate),
        help("check the component's `crate` in rel.toml: it names a package of this workspace")
    )]
    NoCrate { krate: String },

    #[error("{} is not a binary rel can add `.dep-v0` to", path.display())]
    #[diagnostic(forward(source))]
    Elf {
        path: PathBuf,
        #[source]
        source: elf_section::ElfError,
    },

    #[error("could not {action} {}", path.display())]
    #[diagnostic(
        code(rel::auditable::io),
        help("check that cargo's output is readable and target/rel/bin is writable")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not write the dependency list as JSON")]
    #[diagnostic(
        code(rel::auditable::json),
        help("a bug in rel: names, versions and indices always serialise; please report it")
    )]
    Json(#[source] serde_json::Error),

    #[error("could not compress the dependency list")]
    #[diagnostic(
        code(rel::auditable::compress),
        help("a bug in rel: compressing into memory does not fail; please report it")
    )]
    Compress(#[source] std::io::Error),
}

/// One binary to add the list to: the component, its crate and features, cargo's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embed<'a> {
    pub root: &'a Path,
    pub component: &'a str,
    pub krate: &'a str,
    pub features: &'a [String],
    pub bin: &'a str,
    pub binary: &'a Path,
    /// How old cargo's binary must be before a stamp vouches for it ([`oci::cache::RACY`]).
    pub racy: std::time::Duration,
}

/// What [`embed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Embedded {
    /// The stamp said nothing changed: nothing was read or written.
    Stamped,
    /// The copy was made, or found equal to what it would be.
    Copied,
    /// The binary carries the section already and is used as it is.
    AsIs,
}

/// Add `.dep-v0` to a copy of `e.binary` and return the copy's path (cargo's own path when the
/// binary has the section already). The copy is written atomically, and only when its bytes
/// differ from the last build's.
pub(crate) fn embed(e: &Embed<'_>) -> Result<(PathBuf, Embedded), AuditableError> {
    let started = std::time::Instant::now();
    let path = copy_path(e.root, e.component, e.bin);
    // The stamp of the last build: while cargo's binary, the crate graph's inputs and the copy
    // are all as they were, the copy is what this build would write, and nothing is read.
    let graph_key =
        crate::attest::crate_graph_key(e.root, e.krate, e.features).map_err(|source| {
            AuditableError::Graph {
                source: Box::new(source),
            }
        })?;
    let source_before = oci::FileStat::of(e.binary);
    let stamp_path = stamp_path(&path);
    let stamp_now = |copy: Option<oci::FileStat>| {
        Some(EmbedStamp {
            format: FORMAT,
            graph: graph_key.clone(),
            source: source_before.clone()?,
            copy: copy?,
        })
    };
    if let Some(now) = stamp_now(oci::FileStat::of(&path)) {
        let last = std::fs::read(&stamp_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<EmbedStamp>(&b).ok());
        if last.as_ref() == Some(&now) {
            tracing::debug!(component = e.component, elapsed = ?started.elapsed(), "{SECTION}: unchanged (stamp)");
            return Ok((path, Embedded::Stamped));
        }
    }
    let graph =
        crate::attest::crate_graph(e.root, e.component, e.krate, e.features).map_err(|source| {
            AuditableError::Graph {
                source: Box::new(source),
            }
        })?;
    let section = compress(&version_info(graph.metadata(), e.krate)?)?;
    let elf = std::fs::read(e.binary).map_err(|source| AuditableError::Io {
        action: "read",
        path: e.binary.to_owned(),
        source,
    })?;
    let out = match elf_section::add_section(&elf, SECTION, &section) {
        Ok(elf_section::Added::New(out)) => out,
        Ok(elf_section::Added::AlreadyPresent) => {
            tracing::debug!(component = e.component, "the binary has {SECTION} already");
            return Ok((e.binary.to_owned(), Embedded::AsIs));
        }
        Err(source) => {
            return Err(AuditableError::Elf {
                path: e.binary.to_owned(),
                source,
            });
        }
    };
    let unchanged = std::fs::read(&path).ok().as_deref() == Some(out.as_slice());
    if !unchanged {
        crate::atomic_write::write_with_mode(&path, &out, Some(0o755)).map_err(|source| {
            AuditableError::Io {
                action: "write",
                path: path.clone(),
                source,
            }
        })?;
    }
    // A stamp only for a binary that did not move while it was read, and old enough that a
    // rewrite within the same clock tick would show (git's racy rule).
    if source_before.as_ref() == oci::FileStat::of(e.binary).as_ref()
        && source_before.as_ref().is_some_and(|s| s.settled(e.racy))
    {
        let written = stamp_now(oci::FileStat::of(&path))
            .map(|stamp| serde_json::to_vec(&stamp).map_err(std::io::Error::from))
            .map(|bytes| bytes.and_then(|b| crate::atomic_write::write(&stamp_path, &b)));
        if let Some(Err(e)) = written {
            tracing::debug!(path = %stamp_path.display(), error = %e, "{SECTION} stamp not written");
        }
    } else {
        // An old stamp must not vouch for this copy.
        let _ = std::fs::remove_file(&stamp_path);
    }
    tracing::debug!(
        component = e.component,
        section_bytes = section.len(),
        unchanged,
        elapsed = ?started.elapsed(),
        "{SECTION} added"
    );
    Ok((path, Embedded::Copied))
}

/// What the copy was made from, and the copy as it was written.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct EmbedStamp {
    format: u32,
    /// The key of the crate graph's cache: Cargo.lock, every manifest, crate, features, target.
    graph: String,
    source: oci::FileStat,
    copy: oci::FileStat,
}

/// The stamp beside the copy: `target/rel/bin/<component>/.<bin>.stamp`.
fn stamp_path(copy: &Path) -> PathBuf {
    let name = copy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    copy.with_file_name(format!(".{name}.stamp"))
}

/// Where the binary with the section goes: `target/rel/bin/<component>/<bin>`.
pub(crate) fn copy_path(root: &Path, component: &str, bin: &str) -> PathBuf {
    root.join(super::OUT_DIR)
        .join("bin")
        .join(component)
        .join(bin)
}

/// How a package is needed, weakest first (cargo auditable's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dev,
    Build,
    Runtime,
}

/// The strongest kind of one edge (an edge with no kinds listed is a normal one).
fn edge_kind(dep: &NodeDep) -> Kind {
    dep.dep_kinds
        .iter()
        .map(|k| match k.kind.as_deref() {
            Some("dev") => Kind::Dev,
            Some("build") => Kind::Build,
            _ => Kind::Runtime,
        })
        .max()
        .unwrap_or(Kind::Runtime)
}

#[derive(Serialize)]
struct VersionInfo<'a> {
    packages: Vec<Package<'a>>,
    format: u32,
}

#[derive(Serialize)]
struct Package<'a> {
    name: &'a str,
    version: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    root: bool,
}

/// auditable-serde's `source` for cargo's source id.
fn source(id: Option<&str>) -> &str {
    match id {
        None => "local",
        Some(CRATES_IO) => "crates.io",
        Some(other) => other.split('+').next().unwrap_or(other),
    }
}

/// The `VersionInfo` JSON (compact, deterministic) of `krate`'s graph in `meta`.
pub(crate) fn version_info(meta: &Metadata, krate: &str) -> Result<Vec<u8>, AuditableError> {
    let root = meta
        .packages
        .iter()
        .find(|p| p.name == krate && p.source.is_none())
        .ok_or_else(|| AuditableError::NoCrate {
            krate: krate.to_owned(),
        })?;
    let nodes: BTreeMap<&str, &[NodeDep]> = meta
        .resolve
        .iter()
        .flat_map(|r| &r.nodes)
        .map(|n| (n.id.as_str(), n.deps.as_slice()))
        .collect();
    let proc_macros: BTreeSet<&str> = meta
        .packages
        .iter()
        .filter(|p| matches!(p.targets.as_slice(), [t] if t.kind == ["proc-macro"]))
        .map(|p| p.id.as_str())
        .collect();

    // The strongest kind over every path from the root; a path is as weak as its weakest edge,
    // and a proc macro is at most a build dependency. Each raise requeues the package, so this
    // reaches the one fixed point whatever the order.
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::from([(root.id.as_str(), Kind::Runtime)]);
    let mut queue = VecDeque::from([root.id.as_str()]);
    while let Some(id) = queue.pop_front() {
        let parent = kinds.get(id).copied().unwrap_or(Kind::Dev);
        for dep in nodes.get(id).copied().unwrap_or_default() {
            let mut kind = edge_kind(dep).min(parent);
            if proc_macros.contains(dep.pkg.as_str()) {
                kind = kind.min(Kind::Build);
            }
            if kinds.get(dep.pkg.as_str()).is_none_or(|k| kind > *k) {
                kinds.insert(&dep.pkg, kind);
                queue.push_back(&dep.pkg);
            }
        }
    }

    let mut included: Vec<_> = meta
        .packages
        .iter()
        .filter(|p| kinds.get(p.id.as_str()).is_some_and(|k| *k != Kind::Dev))
        .collect();
    included.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let index: BTreeMap<&str, usize> = included
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let packages = included
        .iter()
        .map(|p| {
            let mut dependencies: Vec<usize> = nodes
                .get(p.id.as_str())
                .copied()
                .unwrap_or_default()
                .iter()
                .filter(|d| edge_kind(d) != Kind::Dev)
                .filter_map(|d| index.get(d.pkg.as_str()).copied())
                .collect();
            dependencies.sort_unstable();
            Package {
                name: &p.name,
                version: &p.version,
                source: source(p.source.as_deref()),
                kind: (kinds.get(p.id.as_str()) == Some(&Kind::Build)).then_some("build"),
                dependencies,
                root: p.id == root.id,
            }
        })
        .collect();
    let info = VersionInfo {
        packages,
        format: FORMAT,
    };
    serde_json::to_vec(&info).map_err(AuditableError::Json)
}

/// zlib at cargo auditable's level: the same JSON, the same bytes (the backend is pinned).
pub(crate) fn compress(json: &[u8]) -> Result<Vec<u8>, AuditableError> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(ZLIB_LEVEL));
    z.write_all(json).map_err(AuditableError::Compress)?;
    z.finish().map_err(AuditableError::Compress)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRATES: &str = "registry+https://github.com/rust-lang/crates.io-index";

    /// `cargo metadata` of `app` (a path package) with: a normal dependency `a 1.0.0` (which
    /// needs `s`), a build dependency `b` (which needs `a 0.9.0`), a proc macro `m` (which needs
    /// `s` and `q`), a git and a sparse-registry dependency, a dev-dependency `d` that depends
    /// back on `app`, and a workspace member `w` that `app` does not use.
    fn metadata() -> serde_json::Value {
        let normal = serde_json::json!([{"kind": null, "target": null}]);
        let build = serde_json::json!([{"kind": "build", "target": null}]);
        let dev = serde_json::json!([{"kind": "dev", "target": null}]);
        let id = |name: &str, v: &str| format!("{CRATES}#{name}@{v}");
        let pkg = |id: &str, name: &str, v: &str, source: Option<&str>, kind: &str| {
            serde_json::json!({"id": id, "name": name, "version": v, "source": source,
                "license": null, "targets": [{"kind": [kind], "name": name}]})
        };
        let git = "git+https://example.com/g.git?rev=abc#g@0.2.0";
        let sparse = "sparse+https://reg.example.com/index/#z@1.0.0";
        let node = |id: &str, deps: Vec<(String, &serde_json::Value)>| {
            let deps: Vec<_> = deps
                .into_iter()
                .map(|(pkg, kinds)| serde_json::json!({"pkg": pkg, "dep_kinds": kinds}))
                .collect();
            serde_json::json!({"id": id, "deps": deps, "features": []})
        };
        let app = "path+file:///ws/app#0.1.0";
        serde_json::json!({
            "packages": [
                pkg(app, "app", "0.1.0", None, "bin"),
                pkg("path+file:///ws/w#0.1.0", "w", "0.1.0", None, "lib"),
                pkg(&id("a", "1.0.0"), "a", "1.0.0", Some(CRATES), "lib"),
                pkg(&id("a", "0.9.0"), "a", "0.9.0", Some(CRATES), "lib"),
                pkg(&id("b", "2.0.0"), "b", "2.0.0", Some(CRATES), "lib"),
                pkg(&id("m", "0.5.0"), "m", "0.5.0", Some(CRATES), "proc-macro"),
                pkg(&id("s", "1.2.3"), "s", "1.2.3", Some(CRATES), "lib"),
                pkg(&id("q", "0.1.0"), "q", "0.1.0", Some(CRATES), "lib"),
                pkg(&id("d", "0.9.0"), "d", "0.9.0", Some(CRATES), "lib"),
                pkg(git, "g", "0.2.0", Some("git+https://example.com/g.git?rev=abc#abc123"), "lib"),
                pkg(sparse, "z", "1.0.0", Some("sparse+https://reg.example.com/index/"), "lib"),
            ],
            "resolve": {"root": app, "nodes": [
                node(app, vec![
                    (id("a", "1.0.0"), &normal), (id("b", "2.0.0"), &build),
                    (id("m", "0.5.0"), &normal), (id("d", "0.9.0"), &dev),
                    (git.to_owned(), &normal), (sparse.to_owned(), &normal),
                ]),
                node("path+file:///ws/w#0.1.0", vec![(id("s", "1.2.3"), &normal)]),
                node(&id("a", "1.0.0"), vec![(id("s", "1.2.3"), &normal)]),
                node(&id("a", "0.9.0"), vec![]),
                node(&id("b", "2.0.0"), vec![(id("a", "0.9.0"), &normal)]),
                node(&id("m", "0.5.0"), vec![(id("s", "1.2.3"), &normal), (id("q", "0.1.0"), &normal)]),
                node(&id("s", "1.2.3"), vec![]),
                node(&id("q", "0.1.0"), vec![]),
                node(&id("d", "0.9.0"), vec![(app.to_owned(), &normal)]),
                node(git, vec![]),
                node(sparse, vec![]),
            ]}
        })
    }

    /// What cargo auditable writes for [`metadata`], by its rules.
    const EXPECTED: &str = concat!(
        r#"{"packages":["#,
        r#"{"name":"a","version":"0.9.0","source":"crates.io","kind":"build"},"#,
        r#"{"name":"a","version":"1.0.0","source":"crates.io","dependencies":[7]},"#,
        r#"{"name":"app","version":"0.1.0","source":"local","dependencies":[1,3,4,5,8],"root":true},"#,
        r#"{"name":"b","version":"2.0.0","source":"crates.io","kind":"build","dependencies":[0]},"#,
        r#"{"name":"g","version":"0.2.0","source":"git"},"#,
        r#"{"name":"m","version":"0.5.0","source":"crates.io","kind":"build","dependencies":[6,7]},"#,
        r#"{"name":"q","version":"0.1.0","source":"crates.io","kind":"build"},"#,
        r#"{"name":"s","version":"1.2.3","source":"crates.io"},"#,
        r#"{"name":"z","version":"1.0.0","source":"sparse"}"#,
        r#"],"format":1}"#
    );

    fn parse(v: &serde_json::Value) -> Metadata {
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn the_list_follows_cargo_auditables_rules_and_order() {
        let json = version_info(&parse(&metadata()), "app").unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), EXPECTED);
    }

    #[test]
    fn the_order_cargo_metadata_lists_things_in_does_not_matter() {
        let mut v = metadata();
        v["packages"].as_array_mut().unwrap().reverse();
        v["resolve"]["nodes"].as_array_mut().unwrap().reverse();
        for n in v["resolve"]["nodes"].as_array_mut().unwrap() {
            n["deps"].as_array_mut().unwrap().reverse();
        }
        let json = version_info(&parse(&v), "app").unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), EXPECTED);
        assert_eq!(
            compress(EXPECTED.as_bytes()).unwrap(),
            compress(EXPECTED.as_bytes()).unwrap()
        );
    }

    #[test]
    fn a_crate_that_is_not_a_package_of_the_workspace_is_refused() {
        let err = version_info(&parse(&metadata()), "a").unwrap_err();
        assert!(matches!(err, AuditableError::NoCrate { krate } if krate == "a"));
    }

    /// `bytes` as an executable file. `cp` writes it: a file this process had open for writing
    /// could be inherited by a child another test thread forks, and exec would fail with ETXTBSY.
    fn executable(dir: &Path, bytes: &[u8]) -> PathBuf {
        let (staged, path) = (dir.join("staged"), dir.join("edited"));
        std::fs::write(&staged, bytes).unwrap();
        let cp = std::process::Command::new("cp")
            .arg(&staged)
            .arg(&path)
            .status()
            .unwrap();
        assert!(cp.success());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn copy_of_true(dir: &Path) -> PathBuf {
        let path = dir.join("true");
        std::fs::copy("/bin/true", &path).unwrap();
        path
    }

    /// cargo auditable's own reader (auditable-extract + auditable-serde) finds the section in
    /// a real binary, decompresses it, validates it (one root, no cycle) and serialises it back
    /// to the very bytes rel wrote; the binary still runs.
    #[test]
    fn cargo_auditables_reader_reads_back_exactly_what_rel_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let elf = std::fs::read(copy_of_true(dir.path())).unwrap();
        let section = compress(EXPECTED.as_bytes()).unwrap();
        let elf_section::Added::New(out) =
            elf_section::add_section(&elf, SECTION, &section).unwrap()
        else {
            panic!("/bin/true has {SECTION} already");
        };
        let info = auditable_info::audit_info_from_slice(&out, 1 << 20).unwrap();
        assert_eq!(serde_json::to_string(&info).unwrap(), EXPECTED);
        let edited = executable(dir.path(), &out);
        let run = std::process::Command::new(&edited).output().unwrap();
        assert!(run.status.success(), "{run:?}");
    }

    /// A one-crate workspace: `embed` reads its graph with cargo, writes the copy once, leaves
    /// a binary that has the section alone and refuses what is not an ELF file.
    #[test]
    fn embed_writes_the_copy_once_and_leaves_an_auditable_binary_alone() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir_all(root.join("crates/solo/src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("crates/solo/Cargo.toml"),
            "[package]\nname = \"solo\"\nversion = \"1.2.3\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(root.join("crates/solo/src/main.rs"), "fn main() {}\n").unwrap();
        let lock = std::process::Command::new("cargo")
            .args(["generate-lockfile", "--offline"])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(lock.status.success(), "{lock:?}");
        let binary = copy_of_true(root);
        let e = Embed {
            root,
            component: "solo-svc",
            krate: "solo",
            features: &[],
            bin: "solo",
            binary: &binary,
            racy: oci::cache::RACY,
        };
        let (copy, how) = embed(&e).unwrap();
        assert_eq!(how, Embedded::Copied);
        assert_eq!(copy, root.join("target/rel/bin/solo-svc/solo"));
        let info = auditable_info::audit_info_from_file(&copy, Default::default()).unwrap();
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"packages":[{"name":"solo","version":"1.2.3","source":"local","root":true}],"format":1}"#
        );
        assert_eq!(
            std::fs::read(&binary).unwrap(),
            std::fs::read("/bin/true").unwrap()
        );

        // Unchanged input: the copy is not rewritten (the same inode, not a new file renamed over it).
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&copy).unwrap().ino();
        assert_eq!(
            embed(&e).unwrap(),
            (copy.clone(), Embedded::Copied),
            "cargo's binary is too fresh for a stamp: read and compared"
        );
        assert_eq!(std::fs::metadata(&copy).unwrap().ino(), ino);

        // Old enough (no racy window): the next build trusts the stamp and reads nothing ...
        let settled = Embed {
            racy: std::time::Duration::ZERO,
            ..e
        };
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Copied));
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Stamped));
        // ... until an input moves: the workspace's manifests (the crate graph's key) ...
        let manifest = root.join("crates/solo/Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, format!("{text}\n")).unwrap();
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Copied));
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Stamped));
        // ... cargo's binary (rewritten: the copy follows) ...
        let mut bytes = std::fs::read(&binary).unwrap();
        bytes.extend_from_slice(b"more");
        std::fs::write(&binary, &bytes).unwrap();
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Copied));
        let with_more = std::fs::read(&copy).unwrap();
        assert!(with_more.windows(4).any(|w| w == b"more"));
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Stamped));
        // ... or the copy itself.
        std::fs::write(&copy, b"tampered").unwrap();
        assert_eq!(embed(&settled).unwrap(), (copy.clone(), Embedded::Copied));
        assert_eq!(std::fs::read(&copy).unwrap(), with_more);

        // A binary with the section already (cargo auditable's) is used as it is.
        let auditable = Embed { binary: &copy, ..e };
        assert_eq!(embed(&auditable).unwrap(), (copy.clone(), Embedded::AsIs));

        // Not an ELF file: a typed error naming the file.
        let text = root.join("not-elf");
        std::fs::write(&text, "#!/bin/sh\n").unwrap();
        let err = embed(&Embed { binary: &text, ..e }).unwrap_err();
        assert!(
            matches!(&err, AuditableError::Elf { path, source: elf_section::ElfError::NotElf } if *path == text),
            "{err:?}"
        );
    }
}
