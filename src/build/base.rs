//! Base images from a registry: `base = "registry/repository@sha256:..."` in rel.toml, pulled by
//! digest into `target/rel/cache/base` (content-addressed, every blob verified) through
//! `oci::Registry::pull_base`. A base named by tag is refused: the base's digest is part of the
//! image's inputs, and a tag could move under a rebuild.

use std::path::Path;

use image_ref::ImageRef;

use super::BuildError;
use crate::env_vars;

/// Where pulled base blobs live, under the project root.
pub(crate) const STORE: &str = "target/rel/cache/base";

/// The pinned base reference of `base` (a registry reference with a digest).
pub(crate) fn parse(component: &str, base: &str) -> Result<ImageRef, BuildError> {
    let err = |message: String| BuildError::Base {
        component: component.to_owned(),
        base: base.to_owned(),
        message,
    };
    let reference: ImageRef = base
        .parse()
        .map_err(|e: image_ref::ImageRefError| err(e.to_string()))?;
    if reference.digest().is_none() {
        return Err(err(format!(
            "a registry base is pinned by digest: write `{}@sha256:<digest>` (`skopeo inspect docker://{} --format '{{{{.Digest}}}}'` prints it)",
            reference.without_version(),
            reference
        )));
    }
    Ok(reference)
}

/// Pull `reference` (pinned) as a base. Credentials: the docker config's for the base's host;
/// `REL_REGISTRY_USERNAME`/`_PASSWORD` only when the base lives on the registry rel pushes to.
pub(crate) fn pull(
    root: &Path,
    component: &str,
    reference: &ImageRef,
    push_registry: &str,
    insecure: &[String],
) -> Result<oci::BaseImage, BuildError> {
    let err = |message: String| BuildError::Base {
        component: component.to_owned(),
        base: reference.to_string(),
        message,
    };
    let digest = reference.digest().expect("parse() refuses unpinned bases");
    let host = reference.registry().to_owned();
    let mut sources = oci::CredentialSources::docker(|k| std::env::var_os(k));
    if push_registry.split('/').next() == Some(host.as_str()) {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        sources.username = non_empty(env_vars::REGISTRY_USERNAME);
        sources.password = non_empty(env_vars::REGISTRY_PASSWORD).map(oci::registry::Secret::new);
    }
    let credentials = oci::resolve_credentials(&host, &sources)
        .map_err(|e| err(format!("credentials for {host}: {e}")))?;
    let mut options = oci::ClientOptions {
        insecure: insecure.to_vec(),
        ..Default::default()
    };
    if let Some(pem) = crate::trust::extra_ca_pem() {
        options = options.with_ca_pem(pem.to_vec());
    }
    let registry =
        oci::Registry::new(&host, credentials, options).map_err(|e| err(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(format!("could not start the async runtime: {e}")))?;
    runtime
        .block_on(registry.pull_base(reference.repository(), digest, &root.join(STORE)))
        .map_err(|source| BuildError::Pull {
            component: component.to_owned(),
            base: reference.to_string(),
            source,
        })
}
