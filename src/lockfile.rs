//! Release lockfiles, `releases/<version>.yaml`: every component pinned by digest.
//!
//! Reading takes the seed's format unchanged (`version`, `engineVersion`,
//! `components.<name>.repo`, `.digest`, `.builtAgainstEngine`) plus our optional fields (`image`,
//! `tag`, `sourceCommit`, `crate`, `base`). A file is first parsed into [`RawLockfile`], which keeps
//! positions and tolerates wrong values so the coherence gate can report each one; [`Lockfile`] is
//! the validated form the rest of rel uses. Writing is canonical (fixed key order) and atomic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image_ref::{Digest, ImageRef};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::source_error::SourceError;
use crate::version::{Version, VersionError};

/// A release lockfile that is missing or does not hold a coherent release.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockfileError {
    #[error("there is no release lockfile {}", path.display())]
    #[diagnostic(
        code(rel::lockfile::missing),
        help(
            "lock the release first (`rel build`, then `rel lock --version {version}`), or name a release that exists (`ls releases/`)"
        )
    )]
    Missing { path: PathBuf, version: String },

    #[error("{} is not a valid release lockfile:\n{problems}", path.display())]
    #[diagnostic(
        code(rel::lockfile::incoherent),
        help("run `rel gate coherence {}` for the full report", path.display())
    )]
    Incoherent { path: PathBuf, problems: String },

    #[error("{}: `{field}` is not a valid version", path.display())]
    #[diagnostic(
        code(rel::lockfile::version),
        help("write a semantic version such as 0.4.0 (the version is also the file name)")
    )]
    Version {
        path: PathBuf,
        field: String,
        #[source]
        source: VersionError,
    },

    #[error("{}: component `{component}` has an invalid digest", path.display())]
    #[diagnostic(
        code(rel::lockfile::digest),
        help("a digest is `sha256:` and 64 lowercase hex digits, as `rel lock` writes it")
    )]
    Digest {
        path: PathBuf,
        component: String,
        #[source]
        source: image_ref::DigestError,
    },

    #[error("{}: component `{component}` has an invalid image", path.display())]
    #[diagnostic(
        code(rel::lockfile::image),
        help(
            "write the image as `registry/repository` (without tag or digest: the digest is its own field)"
        )
    )]
    Image {
        path: PathBuf,
        component: String,
        #[source]
        source: image_ref::ImageRefError,
    },

    #[error("{}: component `{component}` has an invalid base image", path.display())]
    #[diagnostic(
        code(rel::lockfile::base),
        help(
            "the base is the registry image the component was built on, pinned by digest (`registry/repository@sha256:...`), as `rel lock` writes it"
        )
    )]
    Base {
        path: PathBuf,
        component: String,
        #[source]
        source: image_ref::ImageRefError,
    },
}

/// A lockfile as written, with positions, before validation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawLockfile {
    pub version: Option<Spanned<String>>,
    pub engine_version: Option<Spanned<String>>,
    pub components: Option<Spanned<BTreeMap<String, Spanned<RawComponent>>>>,
}

/// One component entry as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawComponent {
    pub repo: Option<String>,
    pub digest: Option<Spanned<String>>,
    pub built_against_engine: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub tag: Option<String>,
    pub source_commit: Option<String>,
    #[serde(rename = "crate")]
    pub krate: Option<String>,
    /// The registry base image, pinned by digest.
    pub base: Option<Spanned<String>>,
}

/// A raw lockfile with the text and path it came from.
#[derive(Debug)]
pub struct LoadedRaw {
    pub path: PathBuf,
    pub text: String,
    pub raw: RawLockfile,
}

impl LoadedRaw {
    /// `path:line:col` of a spanned value.
    pub fn at<T>(&self, s: &Spanned<T>) -> String {
        format!(
            "{}:{}:{}",
            self.path.display(),
            s.referenced.line(),
            s.referenced.column()
        )
    }
}

/// Parse lockfile text. A YAML error is a [`SourceError`] at its line and column.
pub fn parse_raw(path: &Path, text: &str) -> Result<LoadedRaw, SourceError> {
    let raw: RawLockfile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        let message = e.to_string();
        // serde-saphyr appends its own position; keep the message, we print ours in front.
        let message = strip_position(message.lines().next().unwrap_or("invalid YAML"));
        SourceError::at_line_col(path, text, line, column, format!("invalid release lockfile: {message}"))
            .with_help("a lockfile is YAML: `version`, `engineVersion` and `components.<name>.digest: sha256:<64 hex>`; see releases/ for an example")
    })?;
    Ok(LoadedRaw {
        path: path.to_path_buf(),
        text: text.to_owned(),
        raw,
    })
}

/// Read and parse a lockfile from disk.
pub fn read_raw(path: &Path) -> Result<LoadedRaw, crate::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // The one place every command learns a release is missing: say which, and how to
            // make it (the file name is the version).
            let version = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            LockfileError::Missing {
                path: path.to_owned(),
                version,
            }
            .into()
        } else {
            crate::Error::io("read the release lockfile", path, e)
        }
    })?;
    Ok(parse_raw(path, &text)?)
}

/// A validated release lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub version: Version,
    pub engine_version: Version,
    pub components: BTreeMap<String, LockedComponent>,
}

/// One component pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedComponent {
    /// Source repository (`org/name`).
    pub repo: Option<String>,
    /// Image repository, without tag or digest.
    pub image: Option<ImageRef>,
    /// The tag pushed with the image: a label, never the authority.
    pub tag: Option<String>,
    pub digest: Digest,
    pub built_against_engine: Option<Version>,
    pub source_commit: Option<String>,
    pub krate: Option<String>,
    /// The registry base image its layers start with, pinned by digest.
    pub base: Option<ImageRef>,
}

impl LockedComponent {
    /// The pinned reference `image@digest`, when the image name is known.
    pub fn pinned_ref(&self) -> Option<ImageRef> {
        self.image
            .as_ref()
            .map(|i| i.without_version().with_digest(self.digest.clone()))
    }
}

impl Lockfile {
    /// Read, parse and validate a lockfile. Any failed intrinsic coherence check is an error
    /// naming each problem.
    pub fn load(path: &Path) -> Result<Lockfile, crate::Error> {
        let loaded = read_raw(path)?;
        Lockfile::from_raw(&loaded)
    }

    /// Validate a parsed lockfile (the intrinsic checks of the coherence gate).
    pub fn from_raw(loaded: &LoadedRaw) -> Result<Lockfile, crate::Error> {
        let report = crate::gate::coherence::check(loaded, None);
        if !report.passed() {
            let problems: Vec<String> = report
                .checks
                .iter()
                .filter(|c| c.status == crate::report::Status::Fail)
                .map(|c| format!("  - {}: {}", c.name, c.detail))
                .collect();
            return Err(LockfileError::Incoherent {
                path: loaded.path.clone(),
                problems: problems.join("\n"),
            }
            .into());
        }
        // The checks above passed, so every value below parses.
        let raw = &loaded.raw;
        let path = &loaded.path;
        let parse_version = |s: &Option<Spanned<String>>, field: &str| {
            let text = s.as_ref().map(|s| s.value.as_str()).unwrap_or_default();
            text.parse()
                .map_err(|source: VersionError| LockfileError::Version {
                    path: path.clone(),
                    field: field.to_owned(),
                    source,
                })
        };
        let version = parse_version(&raw.version, "version")?;
        let engine_version = parse_version(&raw.engine_version, "engineVersion")?;
        let mut components = BTreeMap::new();
        if let Some(map) = &raw.components {
            for (name, c) in &map.value {
                let c = &c.value;
                let digest_text = c
                    .digest
                    .as_ref()
                    .map(|d| d.value.as_str())
                    .unwrap_or_default();
                let digest: Digest =
                    digest_text
                        .parse()
                        .map_err(|source| LockfileError::Digest {
                            path: path.clone(),
                            component: name.clone(),
                            source,
                        })?;
                let image = match &c.image {
                    Some(i) => Some(
                        i.value
                            .parse::<ImageRef>()
                            .map_err(|source| LockfileError::Image {
                                path: path.clone(),
                                component: name.clone(),
                                source,
                            })?
                            .without_version(),
                    ),
                    None => None,
                };
                let built_against_engine = match &c.built_against_engine {
                    Some(b) => Some(b.value.parse::<Version>().map_err(|source| {
                        LockfileError::Version {
                            path: path.clone(),
                            field: format!("components.{name}.builtAgainstEngine"),
                            source,
                        }
                    })?),
                    None => None,
                };
                components.insert(
                    name.clone(),
                    LockedComponent {
                        repo: c.repo.clone(),
                        image,
                        tag: c.tag.clone(),
                        digest,
                        built_against_engine,
                        source_commit: c.source_commit.clone(),
                        krate: c.krate.clone(),
                        base: match &c.base {
                            Some(b) => Some(b.value.parse::<ImageRef>().map_err(|source| {
                                LockfileError::Base {
                                    path: path.clone(),
                                    component: name.clone(),
                                    source,
                                }
                            })?),
                            None => None,
                        },
                    },
                );
            }
        }
        Ok(Lockfile {
            version,
            engine_version,
            components,
        })
    }

    /// The canonical YAML text: fixed key order, components sorted by name.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# Release lockfile written by `rel lock`: every component pinned by digest.\n",
        );
        let _ = writeln!(out, "version: {}", quote(&self.version.to_string()));
        let _ = writeln!(
            out,
            "engineVersion: {}",
            quote(&self.engine_version.to_string())
        );
        out.push_str("components:\n");
        for (name, c) in &self.components {
            let _ = writeln!(out, "  {}:", scalar(name));
            if let Some(repo) = &c.repo {
                let _ = writeln!(out, "    repo: {}", scalar(repo));
            }
            if let Some(image) = &c.image {
                let _ = writeln!(out, "    image: {}", scalar(&image.to_string()));
            }
            if let Some(tag) = &c.tag {
                let _ = writeln!(out, "    tag: {}", quote(tag));
            }
            let _ = writeln!(out, "    digest: {}", c.digest);
            if let Some(b) = &c.built_against_engine {
                let _ = writeln!(out, "    builtAgainstEngine: {}", quote(&b.to_string()));
            }
            if let Some(commit) = &c.source_commit {
                let _ = writeln!(out, "    sourceCommit: {}", quote(commit));
            }
            if let Some(k) = &c.krate {
                let _ = writeln!(out, "    crate: {}", scalar(k));
            }
            if let Some(base) = &c.base {
                let _ = writeln!(out, "    base: {}", scalar(&base.to_string()));
            }
        }
        out
    }
}

/// serde-saphyr's message without its own `error: line N column M: ` prefix.
fn strip_position(message: &str) -> String {
    let m = message.strip_prefix("error: ").unwrap_or(message);
    match m
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, tail)) => tail.to_owned(),
        None => m.to_owned(),
    }
}

/// A double-quoted YAML string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A plain scalar when it is unambiguous, else quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':' | '@'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && !s.contains(": ");
    if plain { s.to_owned() } else { quote(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_A: &str = "3d3eae79e9f97b2bc334410b07f340b6e279bb13b750401e5f11da8469313003";

    #[test]
    fn canonical_round_trip() {
        let lock = Lockfile {
            version: "0.4.0".parse().unwrap(),
            engine_version: "0.4.0".parse().unwrap(),
            components: BTreeMap::from([(
                "gateway".to_owned(),
                LockedComponent {
                    repo: Some("example-org/platform".into()),
                    image: Some("registry.example.com/platform/gateway".parse().unwrap()),
                    tag: Some("0.4.0".into()),
                    digest: format!("sha256:{HEX_A}").parse().unwrap(),
                    built_against_engine: None,
                    source_commit: Some("0123abc".into()),
                    krate: Some("node".into()),
                    base: None,
                },
            )]),
        };
        let text = lock.to_yaml();
        assert!(text.contains("version: \"0.4.0\"\nengineVersion: \"0.4.0\"\ncomponents:\n  gateway:\n    repo: example-org/platform\n"));
        let back = Lockfile::from_raw(&parse_raw(Path::new("releases/0.4.0.yaml"), &text).unwrap())
            .unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_yaml(), text);
        assert_eq!(
            back.components["gateway"].pinned_ref().unwrap().to_string(),
            format!("registry.example.com/platform/gateway@sha256:{HEX_A}")
        );
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let text = "version: \"0.4.0\"\ncomponents:\n  a:\n    digest: [unclosed\n";
        let e = parse_raw(Path::new("releases/0.4.0.yaml"), text).unwrap_err();
        assert!(e.to_string().starts_with("releases/0.4.0.yaml:"), "{e}");
        assert!(e.line >= 4, "{e}");
        assert!(
            !e.message.contains("line 4"),
            "position is ours, not repeated: {e}"
        );
    }

    #[test]
    fn scalars_quote_when_ambiguous() {
        assert_eq!(scalar("example-org/x"), "example-org/x");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1abc"), "\"1abc\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
