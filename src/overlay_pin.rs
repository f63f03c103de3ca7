//! The glue between a release lockfile and an overlay's `images:` pins, shared by `rel pin`,
//! `rel promote` and `rel rollback`.
//!
//! The byte-exact editing itself is `kustomize::pin` (only the pin values change; missing entries
//! are appended in the file's style; the edit is verified by re-parsing). This module decides
//! *which* pins a release asks for, reports per component what changes, and checks the result
//! against the lockfile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image_ref::{Digest, DigestError};

use crate::Error;
use crate::config::Config;

/// An overlay whose pins rel cannot read, edit or confirm.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PinFileError {
    #[error("{} has no kustomization.yaml", dir.display())]
    #[diagnostic(
        code(rel::pin::no_kustomization),
        help(
            "check the environment's `overlay` in rel.toml; the overlay directory must hold a kustomization.yaml with an `images:` list"
        )
    )]
    NoKustomization { dir: PathBuf },

    #[error(
        "component `{component}` of release {version} has no image name (neither in the lockfile nor in rel.toml)"
    )]
    #[diagnostic(
        code(rel::pin::no_image),
        help("add it to rel.toml's components, or lock the release again with `rel lock`")
    )]
    NoImageName { component: String, version: String },

    #[error("cannot read the overlay's pins")]
    #[diagnostic(forward(source))]
    Read {
        #[source]
        source: kustomize::Error,
    },

    #[error("{}: the entry for {image} pins `{digest}`, which is not a digest", file.display())]
    #[diagnostic(
        code(rel::pin::bad_digest),
        help(
            "an overlay pins images by `digest: sha256:<64 lowercase hex>`; fix the entry by hand, or pin a release over it with `rel pin`"
        )
    )]
    BadDigest {
        file: PathBuf,
        image: String,
        digest: String,
        #[source]
        source: DigestError,
    },

    #[error("{}: {source}", file.display())]
    #[diagnostic(forward(source))]
    Edit {
        file: PathBuf,
        source: kustomize::PinError,
    },

    #[error("{} does not pin release {version}:\n  {wrong}", file.display())]
    #[diagnostic(
        code(rel::pin::not_pinned),
        help("this is a bug in the pin editor or a hand edit raced rel; nothing was committed")
    )]
    NotPinned {
        file: PathBuf,
        version: String,
        wrong: String,
    },
}
use crate::lockfile::Lockfile;

/// The kustomization file names kustomize accepts, in its order of preference.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One component's pin, before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PinChange {
    pub component: String,
    /// The image name the overlay entry matches (`images[].name`).
    pub image: String,
    /// The digest the overlay pinned before (`None`: no entry, or an entry without a digest).
    pub old_digest: Option<Digest>,
    pub new_digest: Digest,
}

impl PinChange {
    pub fn changed(&self) -> bool {
        self.old_digest.as_ref() != Some(&self.new_digest)
    }

    /// The old digest as people read it: the digest, or `(none)`.
    pub fn old_shown(&self) -> String {
        self.old_digest
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), Digest::to_string)
    }
}

/// What pinning a release into an overlay would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPlan {
    /// The kustomization file.
    pub file: PathBuf,
    pub old_text: String,
    pub new_text: String,
    /// Every component of the release, changed or not, by component name.
    pub changes: Vec<PinChange>,
    /// Images entries appended because the overlay had none for them.
    pub appended: Vec<String>,
    /// Overlay entries that match no component of the release (kept as they are).
    pub unmatched: Vec<String>,
}

impl PinPlan {
    pub fn is_noop(&self) -> bool {
        self.old_text == self.new_text
    }
}

/// The kustomization file in `dir`.
pub fn kustomization_file(dir: &Path) -> Result<PathBuf, Error> {
    FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            PinFileError::NoKustomization {
                dir: dir.to_owned(),
            }
            .into()
        })
}

/// The image name each component is pinned under: the lockfile's `image`, else rel.toml's.
pub fn component_images(
    lockfile: &Lockfile,
    config: &Config,
) -> Result<BTreeMap<String, String>, Error> {
    lockfile
        .components
        .iter()
        .map(|(name, c)| {
            let image = c
                .image
                .as_ref()
                .map(|i| i.without_version().to_string())
                .or_else(|| config.components.get(name).map(|k| k.image.to_string()))
                .ok_or_else(|| PinFileError::NoImageName {
                    component: name.clone(),
                    version: lockfile.version.to_string(),
                })?;
            Ok((name.clone(), image))
        })
        .collect()
}

/// The overlay's `images:` entries.
fn entries_of(text: &str, file: &Path) -> Result<Vec<kustomize::kustomization::ImageSpec>, Error> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let k = kustomize::kustomization::parse(text, file, dir)
        .map_err(|source| PinFileError::Read { source })?;
    Ok(k.images.into_iter().map(|(i, _)| i).collect())
}

/// The image an entry makes workloads run: its `newName` when set, else its `name`.
fn effective(entry: &kustomize::kustomization::ImageSpec) -> &str {
    if entry.new_name.is_empty() {
        &entry.name
    } else {
        &entry.new_name
    }
}

/// The digests an overlay pins, by the image the entry points at (`newName`, else `name`);
/// entries without a digest are left out; a digest that is not one is an error.
pub fn pins_of(text: &str, file: &Path) -> Result<BTreeMap<String, Digest>, Error> {
    entries_of(text, file)?
        .into_iter()
        .filter(|i| !i.digest.is_empty())
        .map(|i| {
            let image = effective(&i).to_owned();
            match i.digest.parse::<Digest>() {
                Ok(d) => Ok((image, d)),
                Err(source) => Err(PinFileError::BadDigest {
                    file: file.to_owned(),
                    image,
                    digest: i.digest,
                    source,
                }
                .into()),
            }
        })
        .collect()
}

/// The pin edit for one component: the entry that already points at the release's image; else
/// the entry rel.toml names for the component (existing or appended), re-pointed with `newName`
/// (a release built under another registry); else a new entry for the release's image.
fn pin_for(
    entries: &[kustomize::kustomization::ImageSpec],
    image: &str,
    configured: Option<&str>,
    digest: &Digest,
) -> kustomize::Pin {
    // The renderer's pin is text: the digest leaves its type here, at the crate's edge.
    let digest = digest.to_string();
    if let Some(e) = entries.iter().find(|e| effective(e) == image) {
        return kustomize::Pin {
            name: e.name.clone(),
            new_name: None,
            digest,
        };
    }
    match configured.filter(|c| *c != image) {
        // Workloads name the configured image: point that entry (existing or new) at the release's.
        Some(configured) => kustomize::Pin {
            name: configured.to_owned(),
            new_name: Some(image.to_owned()),
            digest,
        },
        None => kustomize::Pin {
            name: image.to_owned(),
            new_name: None,
            digest,
        },
    }
}

/// Plan pinning `lockfile` into the overlay text `old_text` of `file` (pure: no I/O).
pub fn plan_text(
    old_text: &str,
    file: &Path,
    lockfile: &Lockfile,
    config: &Config,
) -> Result<PinPlan, Error> {
    let images = component_images(lockfile, config)?;
    let before = pins_of(old_text, file)?;
    let entries = entries_of(old_text, file)?;
    let pins: Vec<kustomize::Pin> = lockfile
        .components
        .iter()
        .map(|(name, c)| {
            let configured = config.components.get(name).map(|k| k.image.to_string());
            pin_for(&entries, &images[name], configured.as_deref(), &c.digest)
        })
        .collect();
    let outcome = kustomize::pin(old_text, &pins).map_err(|source| PinFileError::Edit {
        file: file.to_owned(),
        source,
    })?;
    let changes = lockfile
        .components
        .iter()
        .map(|(name, c)| PinChange {
            component: name.clone(),
            image: images[name].clone(),
            old_digest: before.get(&images[name]).cloned(),
            new_digest: c.digest.clone(),
        })
        .collect();
    let plan = PinPlan {
        file: file.to_path_buf(),
        old_text: old_text.to_owned(),
        new_text: outcome.text,
        changes,
        appended: outcome.appended,
        unmatched: outcome.unmatched,
    };
    verify(&plan.new_text, file, lockfile, config)?;
    Ok(plan)
}

/// Plan pinning `lockfile` into the overlay in `overlay_dir` (reads the file).
pub fn plan(overlay_dir: &Path, lockfile: &Lockfile, config: &Config) -> Result<PinPlan, Error> {
    let file = kustomization_file(overlay_dir)?;
    let text =
        std::fs::read_to_string(&file).map_err(|e| Error::io("read the overlay", &file, e))?;
    plan_text(&text, &file, lockfile, config)
}

/// Check that the overlay text pins every component of `lockfile` at its digest.
pub fn verify(text: &str, file: &Path, lockfile: &Lockfile, config: &Config) -> Result<(), Error> {
    let images = component_images(lockfile, config)?;
    let pins = pins_of(text, file)?;
    let wrong: Vec<String> = lockfile
        .components
        .iter()
        .filter_map(|(name, c)| match pins.get(&images[name]) {
            Some(d) if *d == c.digest => None,
            Some(d) => Some(format!(
                "{name}: overlay pins {d}, release {} has {}",
                lockfile.version, c.digest
            )),
            None => Some(format!(
                "{name}: overlay has no digest for {}",
                images[name]
            )),
        })
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(PinFileError::NotPinned {
            file: file.to_owned(),
            version: lockfile.version.to_string(),
            wrong: wrong.join("\n  "),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "registry = \"r.example.com/p\"\n[components.api]\ncrate = \"api\"\n[components.web]\ncrate = \"web\"\n[environments.prod]\n";
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn lock(api: &str, web: &str) -> Lockfile {
        let text = format!(
            "version: \"1.0.0\"\nengineVersion: \"1.0.0\"\ncomponents:\n  api:\n    image: r.example.com/p/api\n    digest: {api}\n  web:\n    digest: {web}\n"
        );
        Lockfile::from_raw(
            &crate::lockfile::parse_raw(Path::new("releases/1.0.0.yaml"), &text).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn plans_changes_per_component_and_keeps_the_rest_byte_exact() {
        let config = Config::parse(Path::new("rel.toml"), CONFIG, PathBuf::from("/p")).unwrap();
        let old = format!(
            "# prod\nimages:\n  - name: r.example.com/p/api   # the api\n    digest: {A}\n  - name: other/thing\n    newTag: \"1\"\n"
        );
        let plan = plan_text(&old, Path::new("k.yaml"), &lock(B, B), &config).unwrap();
        assert_eq!(
            plan.changes,
            vec![
                PinChange {
                    component: "api".into(),
                    image: "r.example.com/p/api".into(),
                    old_digest: Some(A.parse().unwrap()),
                    new_digest: B.parse().unwrap()
                },
                PinChange {
                    component: "web".into(),
                    image: "r.example.com/p/web".into(),
                    old_digest: None,
                    new_digest: B.parse().unwrap()
                },
            ]
        );
        assert!(plan.new_text.starts_with(&format!("# prod\nimages:\n  - name: r.example.com/p/api   # the api\n    digest: {B}\n  - name: other/thing\n    newTag: \"1\"\n")), "{}", plan.new_text);
        assert_eq!(plan.appended, vec!["r.example.com/p/web".to_owned()]);
        assert_eq!(plan.unmatched, vec!["other/thing".to_owned()]);
        assert_eq!(
            pins_of(&plan.new_text, Path::new("k.yaml")).unwrap()["r.example.com/p/web"]
                .to_string(),
            B
        );
        // Pinning the same release again changes nothing.
        let again = plan_text(&plan.new_text, Path::new("k.yaml"), &lock(B, B), &config).unwrap();
        assert!(again.is_noop());
        assert!(again.changes.iter().all(|c| !c.changed()));
        let e = verify(&old, Path::new("k.yaml"), &lock(B, B), &config).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("api: overlay pins {A}, release 1.0.0 has {B}")),
            "{e}"
        );
    }

    #[test]
    fn an_overlay_digest_that_is_not_one_is_refused_with_the_entry() {
        let text = "images:\n  - name: r.example.com/p/api\n    digest: sha256:abc\n";
        let e = pins_of(text, Path::new("k.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .contains("r.example.com/p/api pins `sha256:abc`"),
            "{e}"
        );
    }
}
