//! Image references and digests that cannot hold a wrong value.
//!
//! [`Digest`] is a `sha256:` digest with 64 lowercase hex characters. [`ImageRef`] follows the
//! Docker/OCI reference grammar (`distribution/reference`): an optional registry host (with an
//! optional port, or `localhost`), a lowercase repository path, an optional tag and an optional
//! digest. Both parse at the edge (`FromStr`, serde) and are only ever handled in parsed form.
//!
//! [`redact_url`] makes a URL fit for an error or a log line (user info and query tokens
//! redacted); the registry client, the secret store and the CLI share it.
//!
//! This crate does no I/O.

mod digest;
mod redact;
mod reference;

pub use digest::{Digest, DigestError, Sha256Hasher};
pub use redact::{REDACTED, redact_url};
pub use reference::{DEFAULT_REGISTRY, ImageRef, ImageRefError};

/// Every `#[error]` variant in this crate's sources has a `#[diagnostic(help(...))]` that says
/// how to fix it, or is `#[error(transparent)] #[diagnostic(transparent)]`.
#[cfg(test)]
mod every_error_has_help {
    fn sources(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }

    /// The variants (file:line) whose attributes lack a help.
    fn missing_help(text: &str) -> Vec<usize> {
        let lines: Vec<&str> = text.lines().collect();
        let mut missing = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("#[error(") {
                continue;
            }
            let transparent = line.contains("#[error(transparent)]");
            // The attributes run until the variant's own line.
            let attrs: String = lines[i..]
                .iter()
                .take_while(|l| {
                    let t = l.trim_start();
                    !t.starts_with(|c: char| c.is_ascii_uppercase())
                })
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let ok = if transparent {
                attrs.contains("#[diagnostic(transparent)]")
            } else {
                attrs.contains("help(")
            };
            if !ok {
                missing.push(i + 1);
            }
        }
        missing
    }

    #[test]
    fn every_error_variant_has_a_help() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let missing: Vec<String> = files
            .iter()
            .flat_map(|(path, text)| {
                missing_help(text)
                    .into_iter()
                    .map(move |line| format!("{}:{line}", path.display()))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "error variants without a #[diagnostic(help(...))]:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn the_check_sees_a_variant_without_help() {
        let text = "enum E {\n    #[error(\"x\")]\n    A,\n    #[error(\"y\")]\n    #[diagnostic(help(\"fix\"))]\n    B,\n    #[error(transparent)]\n    C(X),\n}\n";
        assert_eq!(missing_help(text), vec![2, 7]);
    }
}
