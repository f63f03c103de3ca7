//! Image unpacking: an image of an OCI layout, found by its manifest digest, applied layer by layer
//! into a directory tree (a root filesystem), following the image-spec `layer.md` rules.
//!
//! - Layers apply in manifest order; each is a tar (gzip-compressed or plain) checked against its
//!   digest while it is read.
//! - `.wh.<name>` deletes `<name>` from the layers below; `.wh..wh..opq` hides every lower child
//!   of its directory, wherever it sits in the archive (entries of the same layer stay). Whiteout
//!   files themselves are never materialised.
//! - Regular files, directories, symlinks and hard links are created; device nodes and FIFOs are
//!   skipped (an unprivileged process cannot create them). Owners are not applied (the tree
//!   belongs to the user who unpacks it); modes are, with owner write kept on directories so the
//!   cache can be removed.
//! - Nothing is written outside the root: `..` and absolute paths are refused, and no entry is
//!   written through a symlink of the tree.
//!
//! The cache is content-addressed by manifest digest (which covers the config and every layer):
//! `<cache>/<hex>/rootfs` and `<cache>/<hex>/config.json`. An image is unpacked once, into a
//! temporary directory renamed into place, so a reader never sees a half-unpacked tree and two
//! processes unpacking the same image at once both end with one complete copy.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image_ref::{Digest, Sha256Hasher};

use crate::layout::blob_path;
use crate::spec::{
    ContainerConfig, ImageConfig, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_MANIFEST, Manifest,
};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Why an image could not be found or unpacked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UnpackError {
    #[error("no OCI layout under {searched} holds image {digest}")]
    #[diagnostic(help(
        "build the image into the layout, or pin the overlay to a digest the layout has"
    ))]
    NotFound { digest: Digest, searched: String },
    #[error("cannot access `{path}`: {source}")]
    #[diagnostic(help("check that the path exists and is readable and writable by this user"))]
    Io { path: PathBuf, source: io::Error },
    #[error("`{path}` is not a valid OCI {what}: {source}")]
    #[diagnostic(help("the layout is damaged: rebuild the image into it"))]
    Json {
        path: PathBuf,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("blob {digest} in `{dir}` does not match its digest")]
    #[diagnostic(help("the layout is damaged: rebuild the image into it"))]
    Corrupt { dir: PathBuf, digest: Digest },
    #[error("image {digest}: unsupported media type `{media_type}` for {what}")]
    #[diagnostic(help(
        "only OCI/Docker image manifests with plain or gzip tar layers can be unpacked"
    ))]
    MediaType {
        digest: Digest,
        media_type: String,
        what: &'static str,
    },
    #[error("layer {layer}: {message}")]
    #[diagnostic(help(
        "the layer is not a valid tar archive, or it tries to write outside its root"
    ))]
    BadLayer { layer: Digest, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An image unpacked into the cache.
#[derive(Debug, Clone)]
pub struct UnpackedImage {
    pub manifest_digest: Digest,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The image config's `config` object: Entrypoint, Cmd, Env, WorkingDir, User...
    pub config: ContainerConfig,
    /// Whether this call unpacked it (false: it was in the cache already).
    pub unpacked: bool,
}

/// The layout directory, among `roots` and their direct subdirectories (`target/rel/oci` holds one
/// layout per component), whose blobs hold the manifest `digest`.
pub fn find_layout(roots: &[PathBuf], digest: &Digest) -> Result<PathBuf, UnpackError> {
    for root in roots {
        let mut candidates = vec![root.clone()];
        if let Ok(entries) = fs::read_dir(root) {
            let mut subs: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir() && p.join("oci-layout").is_file())
                .collect();
            subs.sort();
            candidates.extend(subs);
        }
        for dir in candidates {
            if dir.join("oci-layout").is_file() && blob_path(&dir, digest).is_file() {
                return Ok(dir);
            }
        }
    }
    Err(UnpackError::NotFound {
        digest: digest.clone(),
        searched: roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The image config of manifest `digest` in the layout `dir`, without unpacking anything.
pub fn read_config(dir: &Path, digest: &Digest) -> Result<(Manifest, ImageConfig), UnpackError> {
    let manifest: Manifest = read_blob_json(dir, digest, "image manifest")?;
    if let Some(mt) = &manifest.media_type
        && mt != MEDIA_TYPE_MANIFEST
        && mt != MEDIA_TYPE_DOCKER_MANIFEST
    {
        return Err(UnpackError::MediaType {
            digest: digest.clone(),
            media_type: mt.clone(),
            what: "a manifest",
        });
    }
    let config: ImageConfig = read_blob_json(dir, &manifest.config.digest, "image config")?;
    Ok((manifest, config))
}

fn read_blob_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    digest: &Digest,
    what: &'static str,
) -> Result<T, UnpackError> {
    let path = blob_path(dir, digest);
    let bytes = fs::read(&path).map_err(io_err(&path))?;
    if &Digest::of(&bytes) != digest {
        return Err(UnpackError::Corrupt {
            dir: dir.to_owned(),
            digest: digest.clone(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| UnpackError::Json { path, what, source })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Unpack image `digest` of the layout `dir` into `cache` (see the module docs), or return the
/// cached tree.
pub fn unpack_image(
    dir: &Path,
    digest: &Digest,
    cache: &Path,
) -> Result<UnpackedImage, UnpackError> {
    let entry = cache.join(digest.hex());
    let config_path = entry.join("config.json");
    if let Ok(bytes) = fs::read(&config_path)
        && let Ok(config) = serde_json::from_slice::<ContainerConfig>(&bytes)
    {
        return Ok(UnpackedImage {
            manifest_digest: digest.clone(),
            rootfs: entry.join("rootfs"),
            config,
            unpacked: false,
        });
    }
    let (manifest, image_config) = read_config(dir, digest)?;
    fs::create_dir_all(cache).map_err(io_err(cache))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = cache.join(format!(".tmp-{}-{}-{n}", digest.hex(), std::process::id()));
    let result = (|| {
        let rootfs = tmp.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(io_err(&rootfs))?;
        for layer in &manifest.layers {
            let gzip = match layer.media_type.as_str() {
                "application/vnd.oci.image.layer.v1.tar+gzip"
                | "application/vnd.docker.image.rootfs.diff.tar.gzip" => true,
                "application/vnd.oci.image.layer.v1.tar" => false,
                other => {
                    return Err(UnpackError::MediaType {
                        digest: digest.clone(),
                        media_type: other.to_owned(),
                        what: "a layer",
                    });
                }
            };
            let path = blob_path(dir, &layer.digest);
            let file = fs::File::open(&path).map_err(io_err(&path))?;
            let mut hashing = HashingReader {
                inner: file,
                hasher: Sha256Hasher::new(),
            };
            {
                let reader: Box<dyn Read + '_> = if gzip {
                    Box::new(flate2::read::GzDecoder::new(&mut hashing))
                } else {
                    Box::new(&mut hashing)
                };
                apply_layer(reader, &rootfs).map_err(|e| layer_error(&layer.digest, e))?;
            }
            // Drain what the decoder left (padding) so the digest covers the whole blob.
            io::copy(&mut hashing, &mut io::sink()).map_err(io_err(&path))?;
            if hashing.hasher.finish() != layer.digest {
                return Err(UnpackError::Corrupt {
                    dir: dir.to_owned(),
                    digest: layer.digest.clone(),
                });
            }
        }
        let cfg = tmp.join("config.json");
        let bytes = serde_json::to_vec(&image_config.config).expect("config serialises");
        fs::write(&cfg, bytes).map_err(io_err(&cfg))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let unpacked = match fs::rename(&tmp, &entry) {
        Ok(()) => true,
        // Another process finished first: keep its copy.
        Err(_) if config_path.is_file() => {
            let _ = fs::remove_dir_all(&tmp);
            false
        }
        Err(source) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(UnpackError::Io {
                path: entry,
                source,
            });
        }
    };
    Ok(UnpackedImage {
        manifest_digest: digest.clone(),
        rootfs: entry.join("rootfs"),
        config: image_config.config,
        unpacked,
    })
}

fn layer_error(layer: &Digest, e: LayerApplyError) -> UnpackError {
    match e {
        LayerApplyError::Io(path, source) => UnpackError::Io { path, source },
        LayerApplyError::Bad(message) => UnpackError::BadLayer {
            layer: layer.clone(),
            message,
        },
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Why one layer could not be applied.
#[derive(Debug)]
pub enum LayerApplyError {
    Io(PathBuf, io::Error),
    Bad(String),
}

impl std::fmt::Display for LayerApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerApplyError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            LayerApplyError::Bad(m) => f.write_str(m),
        }
    }
}

fn bad(message: impl Into<String>) -> LayerApplyError {
    LayerApplyError::Bad(message.into())
}

fn ioe(path: &Path) -> impl FnOnce(io::Error) -> LayerApplyError + '_ {
    move |e| LayerApplyError::Io(path.to_owned(), e)
}

/// One tar entry's header, after GNU long names and PAX records are folded in.
struct Entry {
    path: String,
    link: String,
    kind: u8,
    mode: u32,
    size: u64,
}

/// Apply one uncompressed layer tar stream onto `root` (see the module docs for the rules).
pub fn apply_layer(mut tar: impl Read, root: &Path) -> Result<(), LayerApplyError> {
    let mut written: HashSet<PathBuf> = HashSet::new();
    let mut opaque: Vec<PathBuf> = Vec::new();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_link: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    let mut block = [0u8; 512];
    loop {
        if !read_block(&mut tar, &mut block)? {
            break;
        }
        if block.iter().all(|&b| b == 0) {
            break;
        }
        check_sum(&block)?;
        let kind = block[156];
        let mut size = parse_number(&block[124..136])?;
        if let Some(s) = pax_size.take()
            && !matches!(kind, b'x' | b'g' | b'L' | b'K')
        {
            size = s;
        }
        match kind {
            b'L' | b'K' | b'x' | b'g' => {
                let data = read_data(&mut tar, size)?;
                match kind {
                    b'L' => long_name = Some(c_string(&data)),
                    b'K' => long_link = Some(c_string(&data)),
                    b'x' => {
                        for (k, v) in pax_records(&data)? {
                            match k.as_str() {
                                "path" => pax_path = Some(v),
                                "linkpath" => pax_link = Some(v),
                                "size" => {
                                    pax_size = Some(v.parse().map_err(|_| bad("bad PAX size"))?)
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        let header_name = {
            let name = c_string(&block[0..100]);
            let prefix = if &block[257..262] == b"ustar" {
                c_string(&block[345..500])
            } else {
                String::new()
            };
            if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            }
        };
        let entry = Entry {
            path: pax_path.take().or(long_name.take()).unwrap_or(header_name),
            link: pax_link
                .take()
                .or(long_link.take())
                .unwrap_or_else(|| c_string(&block[157..257])),
            kind,
            mode: u32::try_from(parse_number(&block[100..108])? & 0o7777).unwrap_or(0o644),
            size,
        };
        apply_entry(&mut tar, root, entry, &mut written, &mut opaque)?;
    }
    // Opaque directories: hide every lower child, keep what this layer wrote.
    for dir in opaque {
        let full = root.join(&dir);
        let Ok(children) = fs::read_dir(&full) else {
            continue;
        };
        for child in children.filter_map(Result::ok) {
            let rel = dir.join(child.file_name());
            if !written.contains(&rel) {
                remove_any(&child.path())?;
            }
        }
    }
    Ok(())
}

fn apply_entry(
    tar: &mut impl Read,
    root: &Path,
    entry: Entry,
    written: &mut HashSet<PathBuf>,
    opaque: &mut Vec<PathBuf>,
) -> Result<(), LayerApplyError> {
    let rel = clean_path(&entry.path)?;
    let data_blocks = |t: &mut dyn Read| skip_data(t, entry.size);
    let Some(file_name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        // The root itself (`./`): nothing to create.
        return data_blocks(tar);
    };
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    if file_name == OPAQUE {
        ensure_dirs(root, &parent, written)?;
        opaque.push(parent);
        return data_blocks(tar);
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
        check_no_symlink(root, &parent)?;
        let target = root.join(&parent).join(hidden);
        remove_any(&target)?;
        return data_blocks(tar);
    }
    ensure_dirs(root, &parent, written)?;
    let target = root.join(&rel);
    match entry.kind {
        b'5' => {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&target)?;
                    fs::create_dir(&target).map_err(ioe(&target))?;
                }
                Err(_) => fs::create_dir(&target).map_err(ioe(&target))?,
            }
            set_mode(&target, entry.mode | 0o700)?;
            written.insert(rel);
            data_blocks(tar)
        }
        b'0' | b'\0' | b'7' => {
            remove_any(&target)?;
            let mut out = fs::File::create(&target).map_err(ioe(&target))?;
            let mut limited = (&mut *tar).take(entry.size);
            let copied = io::copy(&mut limited, &mut out).map_err(ioe(&target))?;
            if copied != entry.size {
                return Err(bad(format!("`{}` is truncated", entry.path)));
            }
            skip_padding(tar, entry.size)?;
            drop(out);
            set_mode(&target, entry.mode)?;
            written.insert(rel);
            Ok(())
        }
        b'2' => {
            remove_any(&target)?;
            std::os::unix::fs::symlink(&entry.link, &target).map_err(ioe(&target))?;
            written.insert(rel);
            data_blocks(tar)
        }
        b'1' => {
            let source_rel = clean_path(&entry.link)?;
            if let Some(p) = source_rel.parent() {
                check_no_symlink(root, p)?;
            }
            let source = root.join(&source_rel);
            remove_any(&target)?;
            fs::hard_link(&source, &target).map_err(ioe(&target))?;
            written.insert(rel);
            data_blocks(tar)
        }
        // Character and block devices, FIFOs: not creatable unprivileged; skipped.
        b'3' | b'4' | b'6' => data_blocks(tar),
        other => Err(bad(format!(
            "`{}` has an unsupported tar entry type `{}`",
            entry.path, other as char
        ))),
    }
}

/// A relative path with no `..`, no absolute root; `./` prefixes dropped.
fn clean_path(path: &str) -> Result<PathBuf, LayerApplyError> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad(format!("`{path}` leaves the layer's root")));
            }
        }
    }
    Ok(out)
}

/// Refuse when any existing component of `rel` under `root` is a symlink (a write through it
/// could land outside the root).
fn check_no_symlink(root: &Path, rel: &Path) -> Result<(), LayerApplyError> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(bad(format!(
                    "`{}` would be written through the symlink `{}`",
                    rel.display(),
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Create the missing directories of `rel` (parents a layer may leave implicit).
fn ensure_dirs(
    root: &Path,
    rel: &Path,
    written: &mut HashSet<PathBuf>,
) -> Result<(), LayerApplyError> {
    check_no_symlink(root, rel)?;
    let mut at = PathBuf::new();
    for c in rel.components() {
        at.push(c);
        let full = root.join(&at);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(bad(format!(
                    "`{}` is not a directory but the layer writes below it",
                    at.display()
                )));
            }
            Err(_) => {
                fs::create_dir(&full).map_err(ioe(&full))?;
                written.insert(at.clone());
            }
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), LayerApplyError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(ioe(path)),
        Ok(_) => fs::remove_file(path).map_err(ioe(path)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LayerApplyError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ioe(path))
}

fn read_block(r: &mut impl Read, block: &mut [u8; 512]) -> Result<bool, LayerApplyError> {
    let mut filled = 0;
    while filled < 512 {
        let n = r
            .read(&mut block[filled..])
            .map_err(|e| bad(format!("read: {e}")))?;
        if n == 0 {
            return if filled == 0 {
                Ok(false)
            } else {
                Err(bad("truncated tar header"))
            };
        }
        filled += n;
    }
    Ok(true)
}

fn read_data(r: &mut impl Read, size: u64) -> Result<Vec<u8>, LayerApplyError> {
    if size > 1 << 20 {
        return Err(bad("a tar extension header is larger than 1 MiB"));
    }
    let mut data = vec![0u8; size as usize];
    r.read_exact(&mut data)
        .map_err(|e| bad(format!("read: {e}")))?;
    skip_padding(r, size)?;
    Ok(data)
}

fn skip_data(r: &mut dyn Read, size: u64) -> Result<(), LayerApplyError> {
    let padded = size.div_ceil(512) * 512;
    let copied =
        io::copy(&mut r.take(padded), &mut io::sink()).map_err(|e| bad(format!("read: {e}")))?;
    if copied != padded {
        return Err(bad("truncated tar entry"));
    }
    Ok(())
}

fn skip_padding(r: &mut impl Read, size: u64) -> Result<(), LayerApplyError> {
    let pad = (512 - size % 512) % 512;
    let mut buf = [0u8; 512];
    r.read_exact(&mut buf[..pad as usize])
        .map_err(|e| bad(format!("read: {e}")))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// An octal (NUL/space padded) or base-256 numeric field.
fn parse_number(field: &[u8]) -> Result<u64, LayerApplyError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(|| bad("numeric field overflows"))?;
        }
        return Ok(n);
    }
    let text = c_string(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| bad(format!("bad octal field `{text}`")))
}

fn check_sum(block: &[u8; 512]) -> Result<(), LayerApplyError> {
    let want = parse_number(&block[148..156])?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != want {
        return Err(bad("tar header checksum mismatch"));
    }
    Ok(())
}

/// PAX records: `<len> <key>=<value>\n`.
fn pax_records(data: &[u8]) -> Result<Vec<(String, String)>, LayerApplyError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("bad PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > space && l <= rest.len())
            .ok_or_else(|| bad("bad PAX record length"))?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{EntryHeader, header};

    /// A tar of (path, contents) files; a path ending in `/` is a directory.
    fn tar(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, body) in entries {
            let is_dir = path.ends_with('/');
            let h = header(&EntryHeader {
                path,
                mode: if is_dir { 0o755 } else { 0o644 },
                size: if is_dir { 0 } else { body.len() as u64 },
                mtime: 0,
                is_dir,
            })
            .unwrap();
            out.extend_from_slice(&h);
            if !is_dir {
                out.extend_from_slice(body.as_bytes());
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                if e.file_type().unwrap().is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &e.path(), out);
                } else {
                    out.push(format!("{rel}={}", fs::read_to_string(e.path()).unwrap()));
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn later_layers_overwrite_and_whiteouts_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        apply_layer(
            &tar(&[("etc/", ""), ("etc/a", "1"), ("etc/b", "2"), ("bin/x", "x")])[..],
            root,
        )
        .unwrap();
        apply_layer(
            &tar(&[("etc/a", "one"), ("etc/.wh.b", ""), (".wh.bin", "")])[..],
            root,
        )
        .unwrap();
        assert_eq!(tree(root), ["etc/", "etc/a=one"]);
    }

    #[test]
    fn opaque_directory_hides_lower_children_but_keeps_its_own_layer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        apply_layer(
            &tar(&[
                ("data/", ""),
                ("data/old", "o"),
                ("data/sub/deep", "d"),
                ("keep", "k"),
            ])[..],
            root,
        )
        .unwrap();
        // The marker comes after an entry of its own layer: that entry stays.
        apply_layer(
            &tar(&[
                ("data/new", "n"),
                ("data/.wh..wh..opq", ""),
                ("data/later", "l"),
            ])[..],
            root,
        )
        .unwrap();
        assert_eq!(
            tree(root),
            ["data/", "data/later=l", "data/new=n", "keep=k"]
        );
    }

    #[test]
    fn whiteout_files_are_never_materialised_and_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        apply_layer(
            &tar(&[("a/.wh.nothing", ""), ("a/.wh..wh..opq", "")])[..],
            root,
        )
        .unwrap();
        assert_eq!(tree(root), ["a/"]);
        let e = apply_layer(&tar(&[("../evil", "x")])[..], root).unwrap_err();
        assert!(e.to_string().contains("leaves the layer's root"), "{e}");
        std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
        let e = apply_layer(&tar(&[("link/evil", "x")])[..], root).unwrap_err();
        assert!(e.to_string().contains("through the symlink"), "{e}");
    }
}
