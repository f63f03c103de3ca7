use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry a reference without a host refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image reference: `[registry[:port]/]repository[:tag][@digest]`.
///
/// The registry is normalised (`docker.io` when absent; `index.docker.io` folds into it) and
/// single-component Docker Hub repositories get the `library/` prefix, as Docker does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ImageRefError {
    #[error("image reference is empty")]
    #[diagnostic(help("give an image reference like `registry.example.com/team/app:1.0`"))]
    Empty,
    #[error("image reference `{input}` is {len} characters long: the name may be at most 255")]
    #[diagnostic(help("shorten the registry or repository name"))]
    TooLong { input: String, len: usize },
    #[error("image reference `{input}`: repository `{repository}` must be lowercase")]
    #[diagnostic(help("repository names are lowercase: write it in lowercase"))]
    Uppercase { input: String, repository: String },
    #[error(
        "image reference `{input}`: path component `{component}` is invalid (lowercase letters, digits and single `.`, `_`, `__` or `-` separators)"
    )]
    #[diagnostic(help(
        "use lowercase letters and digits, separated by single `.`, `_`, `__` or `-`, e.g. `team/my-app`"
    ))]
    BadComponent { input: String, component: String },
    #[error("image reference `{input}`: registry host `{host}` is invalid")]
    #[diagnostic(help(
        "write the registry as a host name or IP with an optional port, e.g. `registry.example.com:5000`"
    ))]
    BadRegistry { input: String, host: String },
    #[error(
        "image reference `{input}`: tag `{tag}` is invalid (1-128 of letters, digits, `_`, `.`, `-`; not starting with `.` or `-`)"
    )]
    #[diagnostic(help("use a tag such as `1.2.3` or `main-abc123`"))]
    BadTag { input: String, tag: String },
    #[error("image reference `{input}`: {source}")]
    #[diagnostic(help("write the digest as `@sha256:` and 64 lowercase hex characters"))]
    BadDigest { input: String, source: DigestError },
}

impl ImageRef {
    /// The image name `prefix/repository` (no tag, no digest); `prefix` is a registry host with
    /// an optional path, e.g. `registry.example.com/platform`.
    pub fn new(prefix: &str, repository: &str) -> Result<Self, ImageRefError> {
        let input = format!("{prefix}/{repository}");
        let r: ImageRef = input.parse()?;
        if let Some(tag) = r.tag() {
            return Err(ImageRefError::BadTag {
                input,
                tag: tag.to_owned(),
            });
        }
        if r.digest().is_some() {
            return Err(ImageRefError::BadComponent {
                input,
                component: "@".to_owned(),
            });
        }
        Ok(r)
    }

    /// The registry host, with port when given (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/nginx`, `platform/identity`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same name pinned to `digest` (the tag, if any, is kept as a label).
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name with `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageRefError> {
        validate_tag(tag, &self.to_string())?;
        Ok(ImageRef {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The name with neither tag nor digest.
    pub fn without_version(&self) -> Self {
        ImageRef {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// Whether the reference is pinned by digest.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// The name as a user would write it: no `docker.io/` and no `library/` for Docker Hub.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        }
    }
}

fn is_component_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty()
        || !is_component_char(b[0] as char)
        || !is_component_char(b[b.len() - 1] as char)
    {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if is_component_char(c) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < b.len() && !is_component_char(b[i] as char) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

/// A domain: dot-separated labels of `[a-zA-Z0-9-]` (no leading/trailing `-`), optional `:port`,
/// or a bracketed IPv6 address.
fn valid_registry(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, tail)) => {
                if addr.is_empty()
                    || !addr
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
                {
                    return false;
                }
                (
                    None,
                    tail.strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if tail.is_empty() { None } else { Some("x") }),
                )
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    match name {
        None => true,
        Some(name) => {
            !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }
    }
}

fn validate_tag(tag: &str, input: &str) -> Result<(), ImageRefError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ImageRefError::BadTag {
            input: input.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|source| ImageRefError::BadDigest {
                        input: input.to_owned(),
                        source,
                    })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // The tag is after the last `:` that follows the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag, input)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if name.len() > 255 {
            return Err(ImageRefError::TooLong {
                input: input.to_owned(),
                len: name.len(),
            });
        }
        // The first component is a registry host when it looks like one: it has a `.` or `:`,
        // is `localhost`, or has uppercase letters (which a repository path may not).
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_registry(first) {
                    return Err(ImageRefError::BadRegistry {
                        input: input.to_owned(),
                        host: first.to_owned(),
                    });
                }
                let registry = if first == "index.docker.io" {
                    DEFAULT_REGISTRY
                } else {
                    first
                };
                (registry.to_owned(), remainder.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase {
                input: input.to_owned(),
                repository,
            });
        }
        for component in repository.split('/') {
            if !valid_component(component) {
                return Err(ImageRefError::BadComponent {
                    input: input.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        // The limit holds for the name as it is written back (`docker.io/library/...`), so that
        // every reference that parses also prints as one that parses.
        let full = registry.len() + 1 + repository.len();
        if full > 255 {
            return Err(ImageRefError::TooLong {
                input: input.to_owned(),
                len: full,
            });
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    /// The fully qualified form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3d3eae79e9f97b2bc334410b07f340b6e279bb13b750401e5f11da8469313003";

    /// (input, registry, repository, tag, digest hex)
    #[test]
    fn table_of_valid_references() {
        let d = format!("sha256:{HEX}");
        let cases: Vec<(String, &str, &str, Option<&str>, bool)> = vec![
            ("nginx".into(), "docker.io", "library/nginx", None, false),
            (
                "nginx:1.27".into(),
                "docker.io",
                "library/nginx",
                Some("1.27"),
                false,
            ),
            (
                "bitnami/redis".into(),
                "docker.io",
                "bitnami/redis",
                None,
                false,
            ),
            (
                "docker.io/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                false,
            ),
            (
                "index.docker.io/library/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                false,
            ),
            ("localhost/app".into(), "localhost", "app", None, false),
            (
                "localhost:5000/app".into(),
                "localhost:5000",
                "app",
                None,
                false,
            ),
            (
                "localhost:5000/team/app:v1".into(),
                "localhost:5000",
                "team/app",
                Some("v1"),
                false,
            ),
            (
                "127.0.0.1:5000/app".into(),
                "127.0.0.1:5000",
                "app",
                None,
                false,
            ),
            (
                "registry.example.com/platform/identity".into(),
                "registry.example.com",
                "platform/identity",
                None,
                false,
            ),
            (
                format!("registry.example.com/platform/identity@{d}"),
                "registry.example.com",
                "platform/identity",
                None,
                true,
            ),
            (
                format!("ghcr.io/o/r:0.4.0@{d}"),
                "ghcr.io",
                "o/r",
                Some("0.4.0"),
                true,
            ),
            (
                "Registry.Example.com:443/a/b".into(),
                "Registry.Example.com:443",
                "a/b",
                None,
                false,
            ),
            ("UPPERHOST/repo".into(), "UPPERHOST", "repo", None, false),
            (
                "a/b__c/d-e--f/g.h_i".into(),
                "docker.io",
                "a/b__c/d-e--f/g.h_i",
                None,
                false,
            ),
            (
                "[::1]:5000/app:tag".into(),
                "[::1]:5000",
                "app",
                Some("tag"),
                false,
            ),
            (
                "app:latest_1.0-RC".into(),
                "docker.io",
                "library/app",
                Some("latest_1.0-RC"),
                false,
            ),
        ];
        for (input, registry, repository, tag, pinned) in cases {
            let r: ImageRef = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.is_pinned(), pinned, "{input}");
            // Display is canonical and re-parses to the same value.
            let again: ImageRef = r.to_string().parse().unwrap();
            assert_eq!(again, r, "{input}");
        }
    }

    #[test]
    fn table_of_invalid_references() {
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("Nginx".into(), "must be lowercase"),
            (
                "registry.example.com/Platform/app".into(),
                "must be lowercase",
            ),
            ("app:".into(), "tag `` is invalid"),
            ("app:-x".into(), "tag `-x` is invalid"),
            (format!("app:{}", "x".repeat(129)), "is invalid"),
            ("app@sha256:abc".into(), "has 3 hex characters"),
            (format!("app@sha512:{HEX}"), "only `sha256`"),
            ("a//b".into(), "path component `` is invalid"),
            ("a/-b".into(), "path component `-b`"),
            ("a/b..c".into(), "path component `b..c`"),
            ("a/b___c".into(), "path component `b___c`"),
            ("bad_host.com:x/app".into(), "registry host"),
            ("host:99999999/app".into(), "registry host"),
            (format!("{}/x", "a".repeat(300)), "at most 255"),
        ];
        for (input, want) in cases {
            let err = input
                .parse::<ImageRef>()
                .map(|r| r.to_string())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want),
                "{input:?}: `{err}` does not contain `{want}`"
            );
        }
    }

    #[test]
    fn a_port_but_no_tag_is_not_a_tag() {
        let r: ImageRef = "myregistry:5000/app".parse().unwrap();
        assert_eq!(r.registry(), "myregistry:5000");
        assert_eq!(r.tag(), None);
        let r: ImageRef = "app:5000".parse().unwrap();
        assert_eq!(r.tag(), Some("5000"));
        assert_eq!(r.registry(), "docker.io");
    }

    #[test]
    fn helpers() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let r: ImageRef = "nginx:1".parse().unwrap();
        assert_eq!(r.familiar_name(), "nginx");
        assert_eq!(r.name(), "docker.io/library/nginx");
        let p = r.with_digest(d.clone());
        assert_eq!(
            p.to_string(),
            format!("docker.io/library/nginx:1@sha256:{HEX}")
        );
        assert_eq!(p.without_version().to_string(), "docker.io/library/nginx");
        let r = ImageRef::new("localhost:5000", "platform/identity").unwrap();
        assert_eq!(r.familiar_name(), "localhost:5000/platform/identity");
        assert!(r.with_tag("bad tag").is_err());
    }

    #[test]
    fn a_name_that_normalises_past_the_limit_is_refused_not_printed_unparseable() {
        // Found by `cargo xtask fuzz` (image_ref): 240 characters parse, but print with
        // `docker.io/library/` as 259.
        let name = "a".repeat(240);
        let e = name.parse::<ImageRef>().unwrap_err();
        assert!(
            matches!(e, ImageRefError::TooLong { len: 258, .. }),
            "{e:?}"
        );
        let ok = "a".repeat(200);
        let r: ImageRef = ok.parse().unwrap();
        assert_eq!(r.to_string().parse::<ImageRef>().unwrap(), r);
    }
}
