//! A minimal, deterministic ustar writer: regular files and directories only, every header field
//! fixed by the caller (no uid/gid/user names from the host, no xattrs, no PAX records with times).

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// One entry's metadata. Paths are relative (`app/`, `app/identity`), directories end in `/`.
pub(crate) struct EntryHeader<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
    pub is_dir: bool,
}

/// Why an entry cannot be written as a plain ustar header.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum HeaderError {
    #[error("path `{0}` does not fit a ustar header (name 100 bytes, prefix 155 bytes)")]
    #[diagnostic(help("shorten the path in the layer (at most 255 bytes, split at a `/`)"))]
    PathTooLong(String),
    #[error("`{path}` is {size} bytes: ustar entries are limited to 8 GiB")]
    #[diagnostic(help("files in a layer are limited to 8 GiB by the ustar format"))]
    TooLarge { path: String, size: u64 },
}

/// The 512-byte ustar header for `entry`.
pub(crate) fn header(entry: &EntryHeader<'_>) -> Result<[u8; BLOCK], HeaderError> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) =
        split_path(entry.path).ok_or_else(|| HeaderError::PathTooLong(entry.path.to_owned()))?;
    if entry.size >= 1 << 33 {
        return Err(HeaderError::TooLarge {
            path: entry.path.to_owned(),
            size: entry.size,
        });
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(entry.mode & 0o7777));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], entry.size);
    octal(&mut h[136..148], entry.mtime);
    h[156] = if entry.is_dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // uname/gname stay empty (jib does the same); devmajor/devminor zero.
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    // Six octal digits, NUL, space: what GNU tar and Go's archive/tar write.
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(digits.as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// Zero-padded octal with a trailing NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

/// Split a path into ustar (prefix, name): name ≤ 100 bytes, prefix ≤ 155 bytes, split at a `/`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    // A directory's trailing slash belongs to the name part.
    let search = path.strip_suffix('/').unwrap_or(path);
    for (i, _) in search.match_indices('/') {
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if prefix.len() <= 155 && name.len() <= 100 && !name.is_empty() {
            return Some((prefix, name));
        }
    }
    None
}

/// Write a header, then exactly `size` bytes of `content`, then the block padding.
pub(crate) fn write_entry<W: Write>(
    out: &mut W,
    entry: &EntryHeader<'_>,
    content: Option<&mut dyn Read>,
) -> io::Result<()> {
    let h = header(entry).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    out.write_all(&h)?;
    if let Some(content) = content {
        let copied = io::copy(&mut content.take(entry.size), out)?;
        if copied != entry.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "`{}` shrank while it was being read: expected {} bytes, got {copied}",
                    entry.path, entry.size
                ),
            ));
        }
        let pad = (BLOCK - (entry.size as usize % BLOCK)) % BLOCK;
        out.write_all(&[0u8; BLOCK][..pad])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn finish<W: Write>(out: &mut W) -> io::Result<()> {
    out.write_all(&[0u8; BLOCK * 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_fixed_and_checksummed() {
        let h = header(&EntryHeader {
            path: "app/x",
            mode: 0o555,
            size: 3,
            mtime: 1_700_000_000,
            is_dir: false,
        })
        .unwrap();
        assert_eq!(&h[..5], b"app/x");
        assert_eq!(&h[100..108], b"0000555\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(
            &h[136..148],
            format!("{:011o}\0", 1_700_000_000u64).as_bytes()
        );
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        let sum: u64 = copy.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(&h[148..154], format!("{sum:06o}").as_bytes());
    }

    #[test]
    fn long_paths_use_the_prefix_field() {
        let dir = "d".repeat(120);
        let path = format!("{dir}/file");
        let h = header(&EntryHeader {
            path: &path,
            mode: 0o644,
            size: 0,
            mtime: 0,
            is_dir: false,
        })
        .unwrap();
        assert_eq!(&h[..4], b"file");
        assert_eq!(&h[345..465], dir.as_bytes());
        let too_long = format!("{}/{}", "a".repeat(200), "b".repeat(101));
        assert!(
            header(&EntryHeader {
                path: &too_long,
                mode: 0,
                size: 0,
                mtime: 0,
                is_dir: false
            })
            .is_err()
        );
    }

    #[test]
    fn system_tar_reads_what_we_write() {
        let mut out = Vec::new();
        write_entry(
            &mut out,
            &EntryHeader {
                path: "app/",
                mode: 0o755,
                size: 0,
                mtime: 0,
                is_dir: true,
            },
            None,
        )
        .unwrap();
        let body = b"hello tar\n";
        write_entry(
            &mut out,
            &EntryHeader {
                path: "app/hello",
                mode: 0o555,
                size: body.len() as u64,
                mtime: 86400,
                is_dir: false,
            },
            Some(&mut &body[..]),
        )
        .unwrap();
        finish(&mut out).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, &out).unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&archive)
            .output()
            .expect("tar (Debian package `tar`)");
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        let text = String::from_utf8(listing.stdout).unwrap();
        assert!(
            text.contains("dr-xr-xr-x") || text.contains("drwxr-xr-x"),
            "{text}"
        );
        assert!(
            text.contains("-r-xr-xr-x 0/0              10 1970-01-02 00:00 app/hello"),
            "{text}"
        );
    }
}
