//! Deterministic image layers: a sorted ustar archive of a few files at fixed paths, fixed owners,
//! modes and mtime, gzip-compressed with a fixed header and level, hashed in one streaming pass.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use image_ref::{Digest, Sha256Hasher};
use serde::{Deserialize, Serialize};

use crate::gzip::{self, ParallelGzip};
use crate::tar::{self, EntryHeader};

/// The gzip implementation and version, part of every layer cache key: another compressor (or
/// another version of this one) may produce other bytes for the same input, hence another digest.
/// Both crates are pinned with `=` in `Cargo.toml`; bump this string with them. Layers are
/// compressed in independent blocks ([`crate::gzip`]): the block and dictionary sizes are part of
/// the name, the thread count is not (it does not change the bytes).
pub const COMPRESSOR: &str = "flate2-1.1.11+zlib-rs-0.6.8+blocks-1MiB-dict-32KiB";

/// The gzip level rel uses. Level 1 is several times faster than 6 for a few percent more bytes.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// The version of the layer layout (tar format, directory modes, path rules). Bump it whenever a
/// change here alters layer bytes, so caches do not hand out old layers for new rules.
pub const LAYOUT_VERSION: u32 = 1;

/// OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One file to put in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    /// Where the bytes come from on the build host.
    pub source: PathBuf,
    /// Absolute path inside the image, e.g. `/app/identity`.
    pub dest: String,
    /// Permission bits (e.g. `0o555` for a binary, `0o444` for data).
    pub mode: u32,
}

/// What goes into one layer: files, their fixed mtime and the gzip level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub files: Vec<LayerFile>,
    /// Modification time of every entry, seconds since the epoch (`SOURCE_DATE_EPOCH` or the commit
    /// time). Never the host clock.
    pub mtime: u64,
    pub gzip_level: u32,
}

impl LayerSpec {
    /// The usual layer: one binary at `/app/<bin>`, mode 0555.
    pub fn binary(source: impl Into<PathBuf>, bin: &str, mtime: u64) -> Self {
        LayerSpec {
            files: vec![LayerFile {
                source: source.into(),
                dest: format!("/app/{bin}"),
                mode: 0o555,
            }],
            mtime,
            gzip_level: DEFAULT_GZIP_LEVEL,
        }
    }

    /// Add another file (configuration, static assets) to the layer.
    pub fn with_file(mut self, source: impl Into<PathBuf>, dest: &str, mode: u32) -> Self {
        self.files.push(LayerFile {
            source: source.into(),
            dest: dest.to_owned(),
            mode,
        });
        self
    }
}

/// A built layer: its blob on disk and the two digests an image needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// sha256 of the uncompressed tar (`rootfs.diff_ids` in the config).
    pub diff_id: Digest,
    /// sha256 of the gzip blob (the manifest's layer descriptor).
    pub digest: Digest,
    /// Size of the gzip blob in bytes.
    pub size: u64,
    pub media_type: String,
    /// Where the gzip blob is stored.
    pub path: PathBuf,
}

/// Why a layer could not be built.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayerError {
    #[error("cannot read `{path}`: {source}")]
    #[diagnostic(help("check that the file exists and that this user may read it"))]
    ReadSource { path: PathBuf, source: io::Error },
    #[error("layer path `{dest}` is invalid: {reason}")]
    #[diagnostic(help("layer paths are absolute-free, without `..`, e.g. `app/server`"))]
    BadDest { dest: String, reason: &'static str },
    #[error("two files go to the same layer path `{0}`")]
    #[diagnostic(help("give each file its own destination path in the layer"))]
    DuplicateDest(String),
    #[error("gzip level {0} is out of range 0..=9")]
    #[diagnostic(help("use a gzip level from 0 (store) to 9 (smallest)"))]
    BadLevel(u32),
    #[error("cannot write layer to `{path}`: {source}")]
    #[diagnostic(help("check free disk space and that this user may write the cache directory"))]
    Write { path: PathBuf, source: io::Error },
    #[error("layer cache entry `{path}` is unreadable: {source}")]
    #[diagnostic(help("delete the layer cache directory; it is rebuilt on the next build"))]
    CacheEntry { path: PathBuf, source: io::Error },
}

/// A normalised tar path for an absolute image path, and its parent directories.
fn normalise_dest(dest: &str) -> Result<(String, Vec<String>), LayerError> {
    let bad = |reason| LayerError::BadDest {
        dest: dest.to_owned(),
        reason,
    };
    let rel = dest
        .strip_prefix('/')
        .ok_or_else(|| bad("must be absolute"))?;
    if rel.is_empty() || rel.ends_with('/') {
        return Err(bad("must name a file"));
    }
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad("has an empty, `.` or `..` component"));
    }
    let mut parents = Vec::new();
    for i in 1..parts.len() {
        parents.push(format!("{}/", parts[..i].join("/")));
    }
    Ok((rel.to_owned(), parents))
}

/// A `Write` that hashes and counts everything passing through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// [`Hashing`] when there is a hasher, a plain pass-through otherwise.
struct MaybeHashing<W> {
    inner: W,
    hasher: Option<Sha256Hasher>,
}

impl<W: Write> Write for MaybeHashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes to a file and to a second sink.
struct Tee<'a, W> {
    file: W,
    also: &'a mut dyn Write,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.also.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.also.flush()
    }
}

/// One entry of the archive, in order.
enum Entry<'a> {
    Dir(String),
    File { path: String, file: &'a LayerFile },
}

fn plan(spec: &LayerSpec) -> Result<Vec<Entry<'_>>, LayerError> {
    let mut entries: BTreeMap<String, Entry<'_>> = BTreeMap::new();
    for file in &spec.files {
        let (path, parents) = normalise_dest(&file.dest)?;
        for dir in parents {
            entries.entry(dir.clone()).or_insert(Entry::Dir(dir));
        }
        if entries.contains_key(&path) || entries.contains_key(&format!("{path}/")) {
            return Err(LayerError::DuplicateDest(file.dest.clone()));
        }
        entries.insert(path.clone(), Entry::File { path, file });
    }
    for key in entries.keys() {
        if !key.ends_with('/') && entries.contains_key(&format!("{key}/")) {
            return Err(LayerError::DuplicateDest(format!("/{key}")));
        }
    }
    Ok(entries.into_values().collect())
}

/// Stream the tar of `spec` into `out` (uncompressed).
fn write_tar<W: Write>(spec: &LayerSpec, out: &mut W) -> Result<(), LayerError> {
    let entries = plan(spec)?;
    let werr = |source| LayerError::Write {
        path: PathBuf::from("<layer stream>"),
        source,
    };
    for entry in entries {
        match entry {
            Entry::Dir(path) => {
                let h = EntryHeader {
                    path: &path,
                    mode: 0o755,
                    size: 0,
                    mtime: spec.mtime,
                    is_dir: true,
                };
                tar::write_entry(out, &h, None).map_err(werr)?;
            }
            Entry::File { path, file } => {
                let read_err = |source| LayerError::ReadSource {
                    path: file.source.clone(),
                    source,
                };
                let mut f = fs::File::open(&file.source).map_err(read_err)?;
                let meta = f.metadata().map_err(read_err)?;
                if !meta.is_file() {
                    return Err(read_err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not a regular file",
                    )));
                }
                let h = EntryHeader {
                    path: &path,
                    mode: file.mode,
                    size: meta.len(),
                    mtime: spec.mtime,
                    is_dir: false,
                };
                // Read errors surface as write errors from io::copy; name the source file for them.
                tar::write_entry(out, &h, Some(&mut f as &mut dyn Read)).map_err(read_err)?;
            }
        }
    }
    tar::finish(out).map_err(werr)
}

/// Build the layer for `spec` into `blob_dir/<digest hex>` in one pass: tar → sha256 (diff id) →
/// gzip → sha256 (digest) → file. Nothing is buffered whole.
pub fn build_layer(spec: &LayerSpec, blob_dir: &Path) -> Result<Layer, LayerError> {
    build_layer_inner(spec, blob_dir, &mut io::sink(), None)
}

/// sha256 of the uncompressed tar of `spec` (its diff id), without compressing it.
pub fn diff_id(spec: &LayerSpec) -> Result<Digest, LayerError> {
    let mut hasher = BufWriter::with_capacity(256 * 1024, Sha256Hasher::new());
    write_tar(spec, &mut hasher)?;
    let hasher = hasher.into_inner().map_err(|e| LayerError::Write {
        path: "<hasher>".into(),
        source: e.into_error(),
    })?;
    Ok(hasher.finish())
}

/// Build the layer; when the diff id is already known (the cache key is made from it), the tar
/// is not hashed a second time.
pub(crate) fn build_layer_inner(
    spec: &LayerSpec,
    blob_dir: &Path,
    also: &mut dyn Write,
    known_diff_id: Option<Digest>,
) -> Result<Layer, LayerError> {
    if spec.gzip_level > 9 {
        return Err(LayerError::BadLevel(spec.gzip_level));
    }
    let werr = |path: &Path| {
        let path = path.to_owned();
        move |source| LayerError::Write { path, source }
    };
    let tmp = atomic_file::temp_path(&blob_dir.join("layer")).map_err(werr(blob_dir))?;
    let result = (|| {
        let file = fs::File::create(&tmp).map_err(werr(&tmp))?;
        let tee = Tee {
            file: BufWriter::with_capacity(256 * 1024, file),
            also: &mut *also,
        };
        let compressed = Hashing {
            inner: tee,
            hasher: Sha256Hasher::new(),
        };
        let gz = ParallelGzip::new(compressed, spec.gzip_level, gzip::default_threads());
        let mut tar_stream = MaybeHashing {
            inner: BufWriter::with_capacity(256 * 1024, gz),
            hasher: known_diff_id.is_none().then(Sha256Hasher::new),
        };
        write_tar(spec, &mut tar_stream)?;
        tar_stream.flush().map_err(werr(&tmp))?;
        let MaybeHashing {
            inner,
            hasher: tar_hasher,
        } = tar_stream;
        let gz = inner.into_inner().map_err(|e| werr(&tmp)(e.into_error()))?;
        let mut compressed = gz.finish().map_err(werr(&tmp))?;
        compressed.flush().map_err(werr(&tmp))?;
        let size = compressed.hasher.len();
        let digest = compressed.hasher.finish();
        let target = blob_dir.join(digest.hex());
        fs::rename(&tmp, &target).map_err(werr(&target))?;
        Ok(Layer {
            diff_id: match (known_diff_id, tar_hasher) {
                (Some(d), _) => d,
                (None, Some(h)) => h.finish(),
                (None, None) => unreachable!("a hasher runs when the diff id is unknown"),
            },
            digest,
            size,
            media_type: MEDIA_TYPE_LAYER_GZIP.to_owned(),
            path: target,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The gzip header rel writes: no mtime, no file name, no comment, OS byte 255 ("unknown").
fn gzip_builder() -> GzBuilder {
    GzBuilder::new().mtime(0).operating_system(255)
}

/// gzip `data` as one stream on one core (flate2, same header and level as layers), and sha256
/// the result: the one-core floor of `cargo xtask bench build`. Returns (digest, compressed
/// size).
pub fn gzip_and_hash(data: &[u8], level: u32) -> io::Result<(Digest, u64)> {
    let mut out = Hashing {
        inner: io::sink(),
        hasher: Sha256Hasher::new(),
    };
    let mut gz = gzip_builder().write(&mut out, Compression::new(level));
    gz.write_all(data)?;
    gz.finish()?;
    let size = out.hasher.len();
    Ok((out.hasher.finish(), size))
}

/// gzip `data` exactly as layers are compressed (block-parallel on `threads` threads), and
/// sha256 the result while it is produced: the floor of a layer build on that many cores.
/// Returns (digest, compressed size).
pub fn gzip_and_hash_parallel(
    data: &[u8],
    level: u32,
    threads: usize,
) -> io::Result<(Digest, u64)> {
    let out = Hashing {
        inner: io::sink(),
        hasher: Sha256Hasher::new(),
    };
    let mut gz = ParallelGzip::new(out, level, threads);
    gz.write_all(data)?;
    let out = gz.finish()?;
    let size = out.hasher.len();
    Ok((out.hasher.finish(), size))
}

/// The uncompressed tar of `spec`, for inspection and tests.
pub fn layer_tar(spec: &LayerSpec) -> Result<Vec<u8>, LayerError> {
    let mut out = Vec::new();
    write_tar(spec, &mut out)?;
    Ok(out)
}
