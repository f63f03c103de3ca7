//! Add a named, non-allocated section to an ELF64 little-endian file (x86_64 or aarch64 Linux
//! binaries) without moving a byte the loader maps.
//!
//! [`add_section`] appends three things to a copy of the file: the section's data, a copy of the
//! section-name string table (`.shstrtab`) with the new name added, and a new section header
//! table (every old entry, the string table's entry pointing at its copy, and one `SHT_PROGBITS`
//! entry without flags for the new section: not loaded, like `.comment`). In the input's bytes only
//! the ELF header's `e_shoff` and `e_shnum` change: program headers and every loaded byte stay
//! where they were, so the file runs as before. The old table and string table stay in place as
//! bytes nothing points at.
//!
//! [`find_section`] reads a section's bytes back by name.
//!
//! Both are pure functions of their inputs (the same file and data give the same bytes), do no
//! I/O, and answer any input with a value or a typed error, never a panic.

use std::ops::Range;

const MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;

// ELF64 header fields.
const E_SHOFF: usize = 0x28;
const E_SHENTSIZE: usize = 0x3a;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;

// ELF64 section header fields.
const SH_NAME: usize = 0x00;
const SH_TYPE: usize = 0x04;
const SH_OFFSET: usize = 0x18;
const SH_SIZE: usize = 0x20;
const SH_ADDRALIGN: usize = 0x30;

const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
/// Section indices from here on are reserved; a count that reaches it needs extended numbering.
const SHN_LORESERVE: usize = 0xff00;
const SHN_XINDEX: u16 = 0xffff;

/// What [`add_section`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The file with the section added.
    New(Vec<u8>),
    /// The file already has a section of that name; it is left as it is.
    AlreadyPresent,
}

/// Why a file cannot be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ElfError {
    #[error("not an ELF file (no \\x7fELF magic)")]
    #[diagnostic(
        code(elf_section::not_elf),
        help("only ELF binaries (Linux) can carry the section; build for a Linux target")
    )]
    NotElf,

    #[error("{0} ELF files are not supported, only 64-bit little-endian ones")]
    #[diagnostic(
        code(elf_section::unsupported),
        help("build for a 64-bit little-endian Linux target such as x86_64-unknown-linux-gnu")
    )]
    Unsupported(&'static str),

    #[error("malformed ELF file: {0}")]
    #[diagnostic(
        code(elf_section::malformed),
        help(
            "the file is damaged or was not written by a linker; rebuild it (`cargo clean` for the crate, then build again)"
        )
    )]
    Malformed(&'static str),

    #[error("the ELF file has no section header table")]
    #[diagnostic(
        code(elf_section::no_section_headers),
        help(
            "the binary was stripped of its section headers (e.g. by `sstrip`); build it without that step"
        )
    )]
    NoSectionHeaders,

    #[error("the ELF file uses extended section numbering (65280 sections or more)")]
    #[diagnostic(
        code(elf_section::extended_numbering),
        help("files with that many sections are not supported; link with fewer sections")
    )]
    ExtendedNumbering,

    #[error("section name {0:?} is empty or holds a NUL byte")]
    #[diagnostic(
        code(elf_section::bad_name),
        help("a section name is a non-empty string without NUL bytes, e.g. `.dep-v0`")
    )]
    BadName(String),
}

/// The parts of a file [`add_section`] and [`find_section`] need.
struct Parsed<'a> {
    /// Every section header, as it is in the file.
    headers: Vec<[u8; SHDR_SIZE]>,
    /// Index of the section-name string table.
    shstrndx: usize,
    /// The section-name string table's bytes.
    names: &'a [u8],
}

impl Parsed<'_> {
    /// The index of the first section called `name`.
    fn position(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| name_at(self.names, u32_at(h, SH_NAME)) == Some(name.as_bytes()))
    }
}

/// `elf` with a section called `name` holding `data` (see the crate docs for where it goes), or
/// [`Added::AlreadyPresent`] when `elf` has a section of that name already.
pub fn add_section(elf: &[u8], name: &str, data: &[u8]) -> Result<Added, ElfError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ElfError::BadName(name.to_owned()));
    }
    let parsed = parse(elf)?;
    if parsed.position(name).is_some() {
        return Ok(Added::AlreadyPresent);
    }
    let count = parsed.headers.len();
    if count + 1 >= SHN_LORESERVE {
        return Err(ElfError::ExtendedNumbering);
    }
    let names = parsed.names;
    if names.last() != Some(&0) {
        return Err(ElfError::Malformed(
            "the section-name string table does not end with a NUL byte",
        ));
    }
    // A name past the end of the old table would read the new name once it is appended.
    if parsed
        .headers
        .iter()
        .any(|h| usize::try_from(u32_at(h, SH_NAME)).map_or(true, |at| at >= names.len()))
    {
        return Err(ElfError::Malformed(
            "a section name lies outside the section-name string table",
        ));
    }
    let name_offset = u32::try_from(names.len())
        .map_err(|_| ElfError::Malformed("the section-name string table is over 4 GiB"))?;
    let names_len = names.len() + name.len() + 1;

    let mut out =
        Vec::with_capacity(elf.len() + data.len() + names_len + 8 + (count + 1) * SHDR_SIZE);
    out.extend_from_slice(elf);
    let data_offset = out.len();
    out.extend_from_slice(data);
    let names_offset = out.len();
    out.extend_from_slice(names);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    // Section headers hold 8-byte fields: start the table 8-aligned.
    out.resize(out.len().next_multiple_of(8), 0);
    let table_offset = out.len();
    for (i, header) in parsed.headers.iter().enumerate() {
        let mut header = *header;
        if i == parsed.shstrndx {
            put_u64(&mut header, SH_OFFSET, names_offset as u64);
            put_u64(&mut header, SH_SIZE, names_len as u64);
        }
        out.extend_from_slice(&header);
    }
    let mut new = [0u8; SHDR_SIZE];
    put_u32(&mut new, SH_NAME, name_offset);
    put_u32(&mut new, SH_TYPE, SHT_PROGBITS);
    put_u64(&mut new, SH_OFFSET, data_offset as u64);
    put_u64(&mut new, SH_SIZE, data.len() as u64);
    put_u64(&mut new, SH_ADDRALIGN, 1);
    // sh_flags, sh_addr, sh_link, sh_info and sh_entsize stay 0: not loaded, not linked.
    out.extend_from_slice(&new);

    // `parse` checked that `elf` holds a whole ELF64 header.
    out[E_SHOFF..E_SHOFF + 8].copy_from_slice(&(table_offset as u64).to_le_bytes());
    out[E_SHNUM..E_SHNUM + 2].copy_from_slice(&((count + 1) as u16).to_le_bytes());
    Ok(Added::New(out))
}

/// The bytes of the first section called `name` (empty for a `SHT_NOBITS` section), or `None`.
pub fn find_section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, ElfError> {
    let parsed = parse(elf)?;
    let Some(i) = parsed.position(name) else {
        return Ok(None);
    };
    let header = &parsed.headers[i];
    if u32_at(header, SH_TYPE) == SHT_NOBITS {
        return Ok(Some(&[]));
    }
    let range = file_range(
        u64_at(header, SH_OFFSET),
        u64_at(header, SH_SIZE),
        elf.len(),
    )
    .ok_or(ElfError::Malformed("the section lies outside the file"))?;
    Ok(elf.get(range))
}

fn parse(elf: &[u8]) -> Result<Parsed<'_>, ElfError> {
    if elf.get(..4) != Some(MAGIC.as_slice()) {
        return Err(ElfError::NotElf);
    }
    let Some(header) = elf.get(..EHDR_SIZE) else {
        return Err(ElfError::Malformed("the ELF header is cut short"));
    };
    match header[4] {
        ELFCLASS64 => {}
        ELFCLASS32 => return Err(ElfError::Unsupported("32-bit")),
        _ => return Err(ElfError::Unsupported("unknown-class")),
    }
    match header[5] {
        ELFDATA2LSB => {}
        ELFDATA2MSB => return Err(ElfError::Unsupported("big-endian")),
        _ => return Err(ElfError::Unsupported("unknown-byte-order")),
    }
    let shoff = u64_at(header, E_SHOFF);
    let shentsize = u16_at(header, E_SHENTSIZE);
    let shnum = u16_at(header, E_SHNUM);
    let shstrndx = u16_at(header, E_SHSTRNDX);
    if shoff == 0 {
        return Err(ElfError::NoSectionHeaders);
    }
    if shnum == 0 || shstrndx == SHN_XINDEX {
        return Err(ElfError::ExtendedNumbering);
    }
    if usize::from(shentsize) != SHDR_SIZE {
        return Err(ElfError::Malformed(
            "section headers are not 64 bytes (e_shentsize)",
        ));
    }
    if shstrndx == 0 || shstrndx >= shnum {
        return Err(ElfError::Malformed(
            "no section-name string table (e_shstrndx)",
        ));
    }
    let table = file_range(shoff, u64::from(shnum) * SHDR_SIZE as u64, elf.len()).ok_or(
        ElfError::Malformed("the section header table lies outside the file"),
    )?;
    let headers: Vec<[u8; SHDR_SIZE]> = elf[table]
        .chunks_exact(SHDR_SIZE)
        .map(|c| {
            let mut h = [0u8; SHDR_SIZE];
            h.copy_from_slice(c);
            h
        })
        .collect();
    let shstrndx = usize::from(shstrndx);
    let strtab = &headers[shstrndx];
    if u32_at(strtab, SH_TYPE) != SHT_STRTAB {
        return Err(ElfError::Malformed(
            "the section-name string table is not a string table",
        ));
    }
    let names = file_range(
        u64_at(strtab, SH_OFFSET),
        u64_at(strtab, SH_SIZE),
        elf.len(),
    )
    .ok_or(ElfError::Malformed(
        "the section-name string table lies outside the file",
    ))?;
    Ok(Parsed {
        headers,
        shstrndx,
        names: &elf[names],
    })
}

/// `offset..offset + len` when it lies inside a file of `file_len` bytes.
fn file_range(offset: u64, len: u64, file_len: usize) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= file_len).then_some(start..end)
}

/// The NUL-terminated name at `offset` of a string table (`None` past its end or unterminated).
fn name_at(names: &[u8], offset: u32) -> Option<&[u8]> {
    let rest = names.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some(&rest[..end])
}

// Fixed-size fields of a header whose length the caller checked.
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A small ELF64 executable image: header, a `.text` section of 5 bytes, `.shstrtab`, and the
    /// section header table (null, `.text`, `.shstrtab`) at the end, as a linker lays it out.
    fn tiny_elf() -> Vec<u8> {
        let names = b"\0.text\0.shstrtab\0";
        let mut elf = vec![0u8; EHDR_SIZE];
        elf[..4].copy_from_slice(MAGIC);
        elf[4] = ELFCLASS64;
        elf[5] = ELFDATA2LSB;
        elf[6] = 1; // EI_VERSION
        elf[0x10] = 2; // ET_EXEC
        elf[0x12] = 0x3e; // EM_X86_64
        elf[0x14] = 1; // e_version
        elf[0x34] = EHDR_SIZE as u8; // e_ehsize
        elf[E_SHENTSIZE] = SHDR_SIZE as u8;
        let text = elf.len();
        elf.extend_from_slice(b"text!");
        let strtab = elf.len();
        elf.extend_from_slice(names);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let table = elf.len();
        let section = |name: u32, kind: u32, flags: u64, offset: usize, size: usize| {
            let mut h = [0u8; SHDR_SIZE];
            put_u32(&mut h, SH_NAME, name);
            put_u32(&mut h, SH_TYPE, kind);
            put_u64(&mut h, 0x08, flags);
            put_u64(&mut h, SH_OFFSET, offset as u64);
            put_u64(&mut h, SH_SIZE, size as u64);
            put_u64(&mut h, SH_ADDRALIGN, 1);
            h
        };
        let headers = [
            [0u8; SHDR_SIZE],
            section(1, SHT_PROGBITS, 0x6, text, 5),
            section(7, SHT_STRTAB, 0, strtab, names.len()),
        ];
        for h in headers {
            elf.extend_from_slice(&h);
        }
        put_u64(&mut elf, E_SHOFF, table as u64);
        elf[E_SHNUM] = 3;
        elf[E_SHSTRNDX] = 2;
        elf
    }

    fn added(elf: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
        match add_section(elf, name, data).unwrap() {
            Added::New(out) => out,
            Added::AlreadyPresent => panic!("{name} already present"),
        }
    }

    #[test]
    fn the_section_is_added_readable_and_only_the_table_fields_of_the_header_change() {
        let elf = tiny_elf();
        assert_eq!(find_section(&elf, ".dep-v0").unwrap(), None);
        assert_eq!(find_section(&elf, ".text").unwrap(), Some(&b"text!"[..]));
        let out = added(&elf, ".dep-v0", b"payload");
        assert_eq!(
            find_section(&out, ".dep-v0").unwrap(),
            Some(&b"payload"[..])
        );
        assert_eq!(find_section(&out, ".text").unwrap(), Some(&b"text!"[..]));
        assert_eq!(
            find_section(&out, ".shstrtab").unwrap(),
            Some(&b"\0.text\0.shstrtab\0.dep-v0\0"[..])
        );
        // The input is a prefix of the output but for e_shoff and e_shnum.
        assert!(out.len() > elf.len());
        for (i, (a, b)) in elf.iter().zip(&out).enumerate() {
            if !(E_SHOFF..E_SHOFF + 8).contains(&i) && !(E_SHNUM..E_SHNUM + 2).contains(&i) {
                assert_eq!(a, b, "byte {i:#x} changed");
            }
        }
        assert_eq!(u16_at(&out, E_SHNUM), 4);
        assert_eq!(u64_at(&out, E_SHOFF) % 8, 0);
        // A second time: the file is left alone.
        assert_eq!(
            add_section(&out, ".dep-v0", b"other").unwrap(),
            Added::AlreadyPresent
        );
        // Another section goes on top of the first.
        let two = added(&out, ".note.more", b"");
        assert_eq!(
            find_section(&two, ".dep-v0").unwrap(),
            Some(&b"payload"[..])
        );
        assert_eq!(find_section(&two, ".note.more").unwrap(), Some(&b""[..]));
    }

    #[test]
    fn the_same_file_and_data_give_the_same_bytes() {
        let elf = tiny_elf();
        assert_eq!(added(&elf, ".dep-v0", b"x"), added(&elf, ".dep-v0", b"x"));
        assert_ne!(added(&elf, ".dep-v0", b"x"), added(&elf, ".dep-v0", b"y"));
    }

    #[test]
    fn what_is_not_a_64_bit_little_endian_elf_with_sections_is_refused_with_its_reason() {
        let good = tiny_elf();
        let with = |at: usize, bytes: &[u8]| {
            let mut e = good.clone();
            e[at..at + bytes.len()].copy_from_slice(bytes);
            add_section(&e, ".dep-v0", b"x").unwrap_err()
        };
        assert_eq!(
            add_section(b"", ".dep-v0", b"x").unwrap_err(),
            ElfError::NotElf
        );
        assert_eq!(
            add_section(b"MZ\x90\0", ".dep-v0", b"x").unwrap_err(),
            ElfError::NotElf
        );
        assert!(matches!(
            add_section(&good[..40], ".dep-v0", b"x").unwrap_err(),
            ElfError::Malformed(_)
        ));
        assert_eq!(with(4, &[ELFCLASS32]), ElfError::Unsupported("32-bit"));
        assert_eq!(with(5, &[ELFDATA2MSB]), ElfError::Unsupported("big-endian"));
        assert_eq!(with(E_SHOFF, &[0; 8]), ElfError::NoSectionHeaders);
        assert_eq!(with(E_SHNUM, &[0, 0]), ElfError::ExtendedNumbering);
        assert_eq!(with(E_SHSTRNDX, &[0xff, 0xff]), ElfError::ExtendedNumbering);
        assert!(matches!(
            with(E_SHENTSIZE, &[40, 0]),
            ElfError::Malformed(_)
        ));
        assert!(matches!(with(E_SHSTRNDX, &[0, 0]), ElfError::Malformed(_)));
        assert!(matches!(with(E_SHSTRNDX, &[1, 0]), ElfError::Malformed(_)));
        assert!(matches!(with(E_SHNUM, &[9, 0]), ElfError::Malformed(_)));
        assert!(matches!(
            add_section(&good[..good.len() - 1], ".dep-v0", b"x").unwrap_err(),
            ElfError::Malformed(_)
        ));
        for name in ["", "a\0b"] {
            assert_eq!(
                add_section(&good, name, b"x").unwrap_err(),
                ElfError::BadName(name.to_owned())
            );
        }
    }

    /// Every cut and every single-byte change of a valid file gets an answer, never a panic; what
    /// is added can be read back.
    #[test]
    fn no_cut_or_changed_byte_makes_it_panic() {
        let good = tiny_elf();
        let check = |e: &[u8]| {
            let _ = find_section(e, ".text");
            if let Ok(Added::New(out)) = add_section(e, ".dep-v0", b"data") {
                assert_eq!(find_section(&out, ".dep-v0").unwrap(), Some(&b"data"[..]));
            }
        };
        for len in 0..good.len() {
            check(&good[..len]);
        }
        for at in 0..good.len() {
            for v in [0u8, 1, 2, 3, 7, 8, 0x3f, 0x40, 0x80, 0xfe, 0xff] {
                let mut e = good.clone();
                e[at] = v;
                check(&e);
            }
        }
    }

    fn tool(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
            panic!(
                "{name} is needed (Debian package `binutils`; `cargo xtask test` installs it): {e}"
            )
        });
        assert!(
            out.status.success(),
            "{name} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A real linker's output (this test binary): binutils list the section and dump our bytes, the
    /// program headers read the same, and the edited binary still runs.
    #[test]
    fn a_real_binary_keeps_running_and_binutils_read_the_section() {
        let me = std::env::current_exe().unwrap();
        let elf = std::fs::read(&me).unwrap();
        assert_eq!(find_section(&elf, ".dep-v0").unwrap(), None);
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let out = added(&elf, ".dep-v0", &data);
        let dir = tempfile::tempdir().unwrap();
        // `cp` writes the file to run: a file this process had open for writing could be inherited
        // by a child another test thread forks, and exec would fail with ETXTBSY.
        let (staged, edited) = (dir.path().join("staged"), dir.path().join("edited"));
        std::fs::write(&staged, &out).unwrap();
        tool("cp", &[staged.as_os_str(), edited.as_os_str()]);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&edited, std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        let sections = tool(
            "readelf",
            &["-S".as_ref(), "-W".as_ref(), edited.as_os_str()],
        );
        assert!(
            sections.stderr.is_empty(),
            "readelf warns: {}",
            String::from_utf8_lossy(&sections.stderr)
        );
        let sections = String::from_utf8(sections.stdout).unwrap();
        let line = sections
            .lines()
            .find(|l| l.contains(" .dep-v0 "))
            .unwrap_or_else(|| panic!("readelf does not list .dep-v0:\n{sections}"));
        assert!(line.contains("PROGBITS"), "{line}");
        assert!(
            line.contains(&format!("{:06x}", data.len())),
            "size {} in {line}",
            data.len()
        );

        let dumped = dir.path().join("dumped");
        let mut arg = std::ffi::OsString::from(".dep-v0=");
        arg.push(&dumped);
        tool(
            "objcopy",
            &[
                "--dump-section".as_ref(),
                arg.as_os_str(),
                edited.as_os_str(),
                dir.path().join("objcopy-out").as_os_str(),
            ],
        );
        assert_eq!(std::fs::read(&dumped).unwrap(), data);

        let segments = |p: &std::path::Path| {
            String::from_utf8(
                tool("readelf", &["-l".as_ref(), "-W".as_ref(), p.as_os_str()]).stdout,
            )
            .unwrap()
        };
        assert_eq!(segments(&me), segments(&edited));

        // The edited test binary lists its tests, this one among them.
        let run = Command::new(&edited).arg("--list").output().unwrap();
        assert!(run.status.success(), "{run:?}");
        let listed = String::from_utf8(run.stdout).unwrap();
        assert!(
            listed.contains("a_real_binary_keeps_running_and_binutils_read_the_section"),
            "{listed}"
        );
    }
}
