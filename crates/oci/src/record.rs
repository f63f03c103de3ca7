//! `target/rel/build.json`: what `rel build` made, read by `rel lock --from`.
//!
//! `pushed` is true only once the manifest PUT succeeded and the registry confirmed our digest; a
//! push that failed part-way leaves `pushed: false`, and a re-run finishes it without
//! re-uploading the blobs that arrived (they answer the HEAD).

use std::path::{Path, PathBuf};

use image_ref::Digest;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::registry::{BlobOutcome, PushReport};

/// The version of the `build.json` shape.
pub const BUILD_RECORD_SCHEMA: u32 = 1;

/// All components of one `rel build` run, sorted by component name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildRecord {
    pub schema: u32,
    pub components: Vec<ComponentBuild>,
}

/// One built component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentBuild {
    /// Component name in `rel.toml`.
    pub component: String,
    /// `registry/repository`, without tag or digest.
    pub image: String,
    pub tag: Option<String>,
    pub digest: Digest,
    /// `registry/repository@sha256:…`, the digest-pinned reference.
    pub reference: String,
    pub source_commit: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub bin: String,
    pub features: Vec<String>,
    /// True only after the manifest PUT succeeded and the registry's digest equalled ours.
    pub pushed: bool,
    /// The OCI layout directory the image was written to, when not pushed.
    pub layout: Option<PathBuf>,
    /// Blob counts of the push; absent when not pushed.
    pub blobs: Option<BlobStats>,
}

/// Per-push blob counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobStats {
    pub total: usize,
    pub uploaded: usize,
    pub already_present: usize,
    pub mounted: usize,
    pub bytes_uploaded: u64,
}

impl From<&PushReport> for BlobStats {
    fn from(r: &PushReport) -> Self {
        BlobStats {
            total: r.blobs.len(),
            uploaded: r.count(|o| *o == BlobOutcome::Uploaded),
            already_present: r.count(|o| *o == BlobOutcome::AlreadyPresent),
            mounted: r.count(|o| matches!(o, BlobOutcome::Mounted { .. })),
            bytes_uploaded: r.bytes_uploaded,
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a build record: {source}")]
    #[diagnostic(help("run `rel build` again to regenerate it"))]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "`{path}` has build record schema {found}; this rel reads schema {BUILD_RECORD_SCHEMA}"
    )]
    #[diagnostic(help("run `rel build` again with this rel"))]
    Schema { path: PathBuf, found: u32 },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Default for BuildRecord {
    fn default() -> Self {
        BuildRecord {
            schema: BUILD_RECORD_SCHEMA,
            components: Vec::new(),
        }
    }
}

impl BuildRecord {
    /// Read a record; a missing file is an empty record.
    pub fn read(path: &Path) -> Result<Self, RecordError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(RecordError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let record: BuildRecord =
            serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse {
                path: path.to_owned(),
                source,
            })?;
        if record.schema != BUILD_RECORD_SCHEMA {
            return Err(RecordError::Schema {
                path: path.to_owned(),
                found: record.schema,
            });
        }
        Ok(record)
    }

    /// Replace the entry of the same component, or add it; keeps components sorted by name.
    pub fn upsert(&mut self, build: ComponentBuild) {
        self.components.retain(|c| c.component != build.component);
        self.components.push(build);
        self.components
            .sort_by(|a, b| a.component.cmp(&b.component));
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a build record serialises");
        s.push('\n');
        s
    }

    /// Write atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        atomic::write(path, self.to_json().as_bytes()).map_err(|source| RecordError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips() {
        let digest: Digest =
            "sha256:3d3eae79e9f97b2bc334410b07f340b6e279bb13b750401e5f11da8469313003"
                .parse()
                .unwrap();
        let mut record = BuildRecord::default();
        record.upsert(ComponentBuild {
            component: "node".into(),
            image: "127.0.0.1:5000/platform/node".into(),
            tag: Some("0.4.0".into()),
            digest: digest.clone(),
            reference: format!("127.0.0.1:5000/platform/node@{digest}"),
            source_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            crate_name: "node".into(),
            bin: "node".into(),
            features: vec!["role-worker".into()],
            pushed: true,
            layout: None,
            blobs: Some(BlobStats {
                total: 2,
                uploaded: 1,
                already_present: 0,
                mounted: 1,
                bytes_uploaded: 4096,
            }),
        });
        let json = record.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema"], 1);
        let c = &v["components"][0];
        for key in [
            "component",
            "image",
            "tag",
            "digest",
            "reference",
            "sourceCommit",
            "crate",
            "bin",
            "features",
            "pushed",
            "layout",
            "blobs",
        ] {
            assert!(c.get(key).is_some(), "missing {key} in {json}");
        }
        assert_eq!(c["blobs"]["alreadyPresent"], 0);
        assert_eq!(c["blobs"]["bytesUploaded"], 4096);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target/rel/build.json");
        record.write(&path).unwrap();
        assert_eq!(BuildRecord::read(&path).unwrap(), record);
        assert_eq!(
            BuildRecord::read(&dir.path().join("none.json")).unwrap(),
            BuildRecord::default()
        );
    }
}
