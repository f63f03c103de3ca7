//! `target/rel/build.json`: what `rel build` produced, and what `rel lock --from` reads.

use std::path::Path;

use image_ref::{Digest, ImageRef};
use serde::{Deserialize, Serialize};

/// The default location under the project root.
pub(crate) const DEFAULT_PATH: &str = "target/rel/build.json";

/// The result of one `rel build` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BuildOutput {
    /// Format version of this file.
    pub schema: u32,
    pub components: Vec<BuiltImage>,
}

/// One built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BuiltImage {
    pub component: String,
    /// Image repository, without tag or digest.
    pub image: ImageRef,
    pub tag: Option<String>,
    pub digest: Digest,
    pub source_commit: Option<String>,
    #[serde(rename = "crate")]
    pub krate: String,
    pub bin: String,
    #[serde(default)]
    pub features: Vec<String>,
    /// Where the image went: `registry` (pushed and verified) or `oci-layout:<dir>`.
    pub published: Option<String>,
    /// The registry base image its layers start with, pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ImageRef>,
}

pub(crate) const SCHEMA: u32 = 1;

impl BuildOutput {
    pub(crate) fn read(path: &Path) -> Result<BuildOutput, crate::Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::io("read the build result", path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            crate::source_error::SourceError::at_line_col(
                path,
                &text,
                e.line(),
                e.column(),
                format!("invalid build result: {e}"),
            )
            .with_help("this file is written by `rel build`; rebuild instead of editing it")
            .into()
        })
    }

    pub(crate) fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
