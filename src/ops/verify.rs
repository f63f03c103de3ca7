//! `verify`: is a release what the team signed? For every component of the lockfile, the
//! registry holds a cosign signature by a trusted key over the locked digest, and (for components
//! rel builds) a signed SLSA provenance naming the lockfile's repository and source commit and a
//! CycloneDX SBOM, attached to that digest; the lockfile and its validation records carry valid
//! minisign signatures. The answer is a [`Report`] like every gate's.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use image_ref::{Digest, ImageRef};

use crate::Error;
use crate::attest::{
    PROVENANCE_MEDIA_TYPE, SBOM_ARTIFACT_TYPE, SLSA_PROVENANCE_V1, STATEMENT_TYPE,
};
use crate::lockfile::{LockedComponent, Lockfile};
use crate::ops::Workspace;
use crate::report::{Check, Report};
use crate::signing::{IN_TOTO_PAYLOAD_TYPE, PublicKey};
use crate::version::Version;

/// What keeps `rel verify` (and the signature checks of promote and drift) from running.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error("rel.toml has no [trust]: there are no trusted keys to verify against")]
    #[diagnostic(
        code(rel::verify::no_trust),
        help(
            "make a key with `rel keygen --signing -o FILE` and add its public key: `[trust] keys = [\"RW...\"]`"
        )
    )]
    NoTrust,

    #[error("[trust] gives no key for {scope}")]
    #[diagnostic(
        code(rel::verify::no_keys),
        help("list keys under [trust] keys or [trust.environments.<env>] keys")
    )]
    NoKeys { scope: String },

    #[error("there is no {path} to verify")]
    #[diagnostic(
        code(rel::verify::no_lockfile),
        help("lock the release first: `rel lock --version {version}`")
    )]
    NoLockfile { path: String, version: String },

    #[error("`{name}` is not an image name")]
    #[diagnostic(
        code(rel::verify::image_name),
        help("check the component's image in rel.toml")
    )]
    ImageName {
        name: String,
        #[source]
        source: image_ref::ImageRefError,
    },

    #[error("registry credentials for {host} are unusable")]
    #[diagnostic(
        code(rel::verify::credentials),
        help(
            "set both REL_REGISTRY_USERNAME and REL_REGISTRY_PASSWORD, or fix ~/.docker/config.json"
        )
    )]
    Credentials {
        host: String,
        #[source]
        source: oci::registry::CredentialError,
    },

    #[error("cannot talk to registry {host}")]
    #[diagnostic(
        code(rel::verify::registry),
        help("check the lockfile's image names and the registry's address")
    )]
    Registry {
        host: String,
        #[source]
        source: oci::RegistryError,
    },
}

/// What to verify.
#[derive(Debug, Clone)]
pub(crate) struct VerifyOptions {
    pub version: Version,
    /// Use the keys `[trust]` gives this environment (and name it in the report).
    pub env: Option<String>,
    /// Registry hosts spoken to over plain HTTP (loopback always is).
    pub insecure_registries: Vec<String>,
}

/// Run every check; `Err` only when verification cannot run (no `[trust]`, no lockfile).
pub(crate) fn verify(ws: &Workspace, opts: &VerifyOptions) -> Result<Report, Error> {
    let config = &ws.config;
    let trust = config.trust.as_ref().ok_or(VerifyError::NoTrust)?;
    if let Some(env) = &opts.env {
        config.environment(env)?;
    }
    let keys = trust.keys_for(opts.env.as_deref());
    if keys.is_empty() {
        return Err(VerifyError::NoKeys {
            scope: opts.env.as_deref().unwrap_or("the project").to_owned(),
        }
        .into());
    }
    let lock_path = crate::releases::lockfile_path(&config.root, &opts.version);
    let lock_bytes = std::fs::read(&lock_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            VerifyError::NoLockfile {
                path: ws.display(&lock_path),
                version: opts.version.to_string(),
            }
            .into()
        } else {
            Error::io("read the lockfile", &lock_path, e)
        }
    })?;
    let lockfile = Lockfile::load(&lock_path)?;

    let mut report = Report::new(
        "verify",
        match &opts.env {
            Some(env) => format!("{} for {env}", opts.version),
            None => opts.version.to_string(),
        },
    );
    report.context.insert(
        "trusted_keys".into(),
        keys.iter()
            .map(PublicKey::id_hex)
            .collect::<Vec<_>>()
            .join(","),
    );

    report.push(detached_check(
        "lockfile signature",
        &ws.display(&lock_path),
        &lock_path,
        &lock_bytes,
        keys,
        &format!(
            "sign it: `REL_SIGNING_KEY=... rel lock --version {}`",
            opts.version
        ),
    ));
    for record in crate::releases::records_for(&config.root, &opts.version) {
        let shown = ws.display(&record);
        let bytes = std::fs::read(&record).map_err(|e| Error::io("read the record", &record, e))?;
        report.push(detached_check(
            &format!("record signature {}", file_name(&record)),
            &shown,
            &record,
            &bytes,
            keys,
            "records are signed by `rel record` when a signing key is given; re-record under a new version",
        ));
    }

    let runtime = crate::ops::build::runtime()?;
    let mut clients: BTreeMap<String, oci::Registry> = BTreeMap::new();
    // Each component's checks, in the lockfile's order: the registry's run all at once.
    let mut per_component = Vec::new();
    for (name, c) in &lockfile.components {
        let image = c
            .image
            .clone()
            .or_else(|| config.components.get(name).map(|comp| comp.image.clone()));
        let Some(image) = image else {
            per_component.push(Err(Check::fail(
                format!("{name}: signature"),
                "the lockfile names no image for this component, and rel.toml has none",
            )));
            continue;
        };
        let host = image.registry().to_owned();
        if !clients.contains_key(&host) {
            clients.insert(
                host.clone(),
                registry_client(&host, &opts.insecure_registries)?,
            );
        }
        per_component.push(Ok((name, image, c)));
    }
    let checks = runtime.block_on(futures_util::future::join_all(
        per_component.into_iter().map(|entry| {
            let clients = &clients;
            async move {
                match entry {
                    Ok((name, image, c)) => {
                        let registry = &clients[image.registry()];
                        component_checks(registry, name, &image, c, keys).await
                    }
                    Err(check) => vec![check],
                }
            }
        }),
    ));
    for check in checks.into_iter().flatten() {
        report.push(check);
    }
    Ok(report)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// A detached minisign signature of a file, by a trusted key, with the file's own name signed.
fn detached_check(
    name: &str,
    shown: &str,
    path: &Path,
    bytes: &[u8],
    keys: &[PublicKey],
    fix: &str,
) -> Check {
    let sig_path = crate::signing::signature_path(path);
    let Ok(sig) = std::fs::read_to_string(&sig_path) else {
        return Check::fail(
            name,
            format!("{shown} has no signature ({shown}.minisig is missing); {fix}"),
        );
    };
    let expected = crate::signing::trusted_comment(path);
    let mut last = String::new();
    for key in keys {
        match key.verify_minisign(bytes, &sig) {
            Ok(comment) if comment == expected => {
                return Check::pass(
                    name,
                    format!("{shown}.minisig: valid, key {}", key.id_hex()),
                );
            }
            Ok(comment) => {
                return Check::fail(
                    name,
                    format!(
                        "{shown}.minisig was made for another file (trusted comment `{comment}`, expected `{expected}`)"
                    ),
                );
            }
            Err(e) => last = e,
        }
    }
    Check::fail(
        name,
        format!(
            "{shown}.minisig does not verify with any trusted key ({last}): the file changed after signing, or it was signed by a key rel.toml does not trust"
        ),
    )
}

/// The signature, provenance and SBOM checks of one component.
async fn component_checks(
    registry: &oci::Registry,
    name: &str,
    image: &ImageRef,
    c: &LockedComponent,
    keys: &[PublicKey],
) -> Vec<Check> {
    let repository = image.repository();
    let digest = &c.digest;
    let at = format!("{}@{digest}", image.name());
    let signature = signature_check(registry, format!("{name}: signature"), image, digest, keys);
    if c.krate.is_none() {
        return vec![
            signature.await,
            Check::skip(
                format!("{name}: provenance"),
                "external component: rel did not build it",
            ),
        ];
    }
    // The signature and the attachments are read at once.
    let (signature, referrers) =
        futures_util::future::join(signature, registry.referrers(repository, digest)).await;
    let mut checks = vec![signature];
    let referrers = match referrers {
        Ok((r, _)) => r,
        Err(e) => {
            let detail = format!("cannot list what is attached to {at}: {e}");
            checks.push(Check::fail(format!("{name}: provenance"), detail.clone()));
            checks.push(Check::fail(format!("{name}: sbom"), detail));
            return checks;
        }
    };
    let of_type = |t: &str| {
        referrers
            .iter()
            .filter(|r| r.artifact_type.as_deref() == Some(t))
            .map(|r| r.digest.clone())
            .collect::<Vec<_>>()
    };

    // Provenance: signed by a trusted key, about this digest, from this repository and commit.
    let provenances = of_type(PROVENANCE_MEDIA_TYPE);
    let provenance = async {
        if provenances.is_empty() {
            Check::fail(
                format!("{name}: provenance"),
                format!(
                    "no provenance is attached to {at}; build and push it with a signing key (`rel build --push`)"
                ),
            )
        } else {
            let mut reasons = Vec::new();
            let mut ok = None;
            for d in &provenances {
                match registry.artifact_content(repository, d).await {
                    Ok((_, envelope)) => match provenance_matches(&envelope, digest, c, keys) {
                        Ok(detail) => {
                            ok = Some(detail);
                            break;
                        }
                        Err(reason) => reasons.push(reason),
                    },
                    Err(e) => reasons.push(crate::error::chain(&e)),
                }
            }
            match ok {
                Some(detail) => Check::pass(format!("{name}: provenance"), detail),
                None => Check::fail(format!("{name}: provenance"), reasons.join("; ")),
            }
        }
    };

    // SBOM: a CycloneDX document is attached to this digest.
    let sboms = of_type(SBOM_ARTIFACT_TYPE);
    let sbom = async {
        match sboms.first() {
            None => Check::fail(
                format!("{name}: sbom"),
                format!(
                    "no SBOM is attached to {at}; build and push it with a signing key (`rel build --push`)"
                ),
            ),
            Some(d) => match registry.artifact_content(repository, d).await {
                Ok((_, bytes)) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(bom) if bom["bomFormat"] == "CycloneDX" => Check::pass(
                        format!("{name}: sbom"),
                        format!(
                            "CycloneDX {} with {} components",
                            bom["specVersion"].as_str().unwrap_or("?"),
                            bom["components"].as_array().map_or(0, Vec::len)
                        ),
                    ),
                    _ => Check::fail(
                        format!("{name}: sbom"),
                        format!("the SBOM attached to {at} is not CycloneDX JSON"),
                    ),
                },
                Err(e) => Check::fail(format!("{name}: sbom"), crate::error::chain(&e)),
            },
        }
    };
    // Both are read at once.
    let (provenance, sbom) = futures_util::future::join(provenance, sbom).await;
    checks.extend([provenance, sbom]);
    checks
}

async fn signature_check(
    registry: &oci::Registry,
    check: String,
    image: &ImageRef,
    digest: &Digest,
    keys: &[PublicKey],
) -> Check {
    let tag = oci::registry::cosign_signature_tag(digest);
    let sigs = match registry.cosign_signatures(image.repository(), digest).await {
        Ok(s) => s,
        Err(e) => return Check::fail(check, format!("cannot read {tag}: {e}")),
    };
    if sigs.is_empty() {
        return Check::fail(
            check,
            format!(
                "{}@{digest} is not signed (no {tag}); push it with a signing key: `REL_SIGNING_KEY=... rel build --push`",
                image.name()
            ),
        );
    }
    let mut reasons = Vec::new();
    for (payload, sig_b64) in &sigs {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig_b64) else {
            reasons.push("a signature is not base64".to_owned());
            continue;
        };
        let Some(key) = keys.iter().find(|k| k.verify_raw(payload, &sig)) else {
            reasons.push(
                "a signature does not verify with any trusted key (tampered, or signed by an untrusted key)"
                    .to_owned(),
            );
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let signed_digest = v["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap_or_default();
        let signed_ref = v["critical"]["identity"]["docker-reference"]
            .as_str()
            .unwrap_or_default();
        if signed_digest != digest.to_string() {
            reasons.push(format!(
                "a trusted signature covers {signed_digest}, not the locked digest"
            ));
            continue;
        }
        if signed_ref != image.name() {
            reasons.push(format!(
                "a trusted signature names {signed_ref}, not {}",
                image.name()
            ));
            continue;
        }
        return Check::pass(
            check,
            format!("cosign signature ({tag}) by key {}", key.id_hex()),
        );
    }
    Check::fail(check, format!("{tag}: {}", reasons.join("; ")))
}

/// A provenance envelope: signed by a trusted key, its statement about `digest`, built from the
/// lockfile's repository and source commit.
fn provenance_matches(
    envelope: &[u8],
    digest: &Digest,
    c: &LockedComponent,
    keys: &[PublicKey],
) -> Result<String, String> {
    let mut last = String::from("no trusted key");
    let mut verified = None;
    for key in keys {
        match key.verify_dsse(envelope) {
            Ok(v) => {
                verified = Some((key, v));
                break;
            }
            Err(e) => last = e,
        }
    }
    let Some((key, (payload_type, payload))) = verified else {
        return Err(format!(
            "the provenance envelope is not signed by a trusted key ({last})"
        ));
    };
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "the envelope holds `{payload_type}`, not an in-toto statement"
        ));
    }
    let st: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| format!("the statement is not JSON: {e}"))?;
    if st["_type"] != STATEMENT_TYPE || st["predicateType"] != SLSA_PROVENANCE_V1 {
        return Err("the statement is not an in-toto v1 SLSA provenance v1".to_owned());
    }
    let about = st["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"] == digest.hex()));
    if !about {
        return Err(format!(
            "the provenance is about another image, not {digest}"
        ));
    }
    let source = &st["predicate"]["buildDefinition"]["externalParameters"]["source"];
    let (repo, commit) = (
        source["repository"].as_str().unwrap_or_default(),
        source["commit"].as_str().unwrap_or_default(),
    );
    if let Some(want) = &c.repo
        && repo != want
    {
        return Err(format!(
            "the provenance names repository `{repo}`, the lockfile `{want}`"
        ));
    }
    match &c.source_commit {
        Some(want) if commit != want => Err(format!(
            "the provenance names commit {commit}, the lockfile's source commit is {want}: the image was not built from the locked source"
        )),
        None => Err("the lockfile has no sourceCommit to compare the provenance with".to_owned()),
        Some(_) => {
            if source["dirty"] == true {
                return Err(format!(
                    "the provenance says the image was built from a dirty tree at {commit}"
                ));
            }
            Ok(format!(
                "SLSA v1, {repo}@{}, signed by key {}",
                &commit[..commit.len().min(12)],
                key.id_hex()
            ))
        }
    }
}

/// `rel gate drift --live --verify-signatures`: one check per image of a rel.toml component that
/// a live pod runs (each `image@digest` once, named `signature/<component>@<digest>`): the
/// registry holds a cosign signature over that digest by one of `keys`, as `rel verify` checks
/// a locked digest. Containers of other images are not rel's to judge and are left out.
pub(crate) fn live_signature_checks(
    config: &crate::config::Config,
    pods: &[crate::kube_source::Pod],
    keys: &[PublicKey],
    insecure: &[String],
) -> Result<Vec<Check>, Error> {
    let components: BTreeMap<String, &str> = config
        .components
        .values()
        .map(|c| (c.image.name(), c.name.as_str()))
        .collect();
    let mut running: std::collections::BTreeSet<(&str, String, Digest)> = Default::default();
    for pod in pods.iter().filter(|p| !p.is_terminated()) {
        let specs = pod.spec.containers.iter().chain(&pod.spec.init_containers);
        let statuses = pod
            .status
            .container_statuses
            .iter()
            .chain(&pod.status.init_container_statuses);
        for status in statuses {
            let Some(digest) = status.digest().and_then(|d| d.parse::<Digest>().ok()) else {
                continue;
            };
            let spec_image = specs
                .clone()
                .find(|c| c.name == status.name)
                .map_or(status.image.as_str(), |c| c.image.as_str());
            let Ok(image) = spec_image.parse::<ImageRef>() else {
                continue;
            };
            if let Some(component) = components.get(&image.name()) {
                running.insert((component, image.name(), digest));
            }
        }
    }
    let runtime = crate::ops::build::runtime()?;
    let mut clients: BTreeMap<String, oci::Registry> = BTreeMap::new();
    let mut wanted = Vec::new();
    for (component, name, digest) in running {
        let image: ImageRef = name.parse().map_err(|source| VerifyError::ImageName {
            name: name.clone(),
            source,
        })?;
        let host = image.registry().to_owned();
        if !clients.contains_key(&host) {
            clients.insert(host.clone(), registry_client(&host, insecure)?);
        }
        wanted.push((format!("signature/{component}@{digest}"), image, digest));
    }
    // Every running digest is checked at once, in the order above.
    Ok(
        runtime.block_on(futures_util::future::join_all(wanted.iter().map(
            |(check, image, digest)| {
                signature_check(
                    &clients[image.registry()],
                    check.clone(),
                    image,
                    digest,
                    keys,
                )
            },
        ))),
    )
}

/// A registry client for reading (credentials as for pushing: `REL_REGISTRY_USERNAME`/`_PASSWORD`
/// or the Docker config).
pub(crate) fn registry_client(host: &str, insecure: &[String]) -> Result<oci::Registry, Error> {
    let (credentials, options) =
        super::registry_setup(host, insecure).map_err(|source| VerifyError::Credentials {
            host: host.to_owned(),
            source,
        })?;
    oci::Registry::new(host, credentials, options).map_err(|source| {
        VerifyError::Registry {
            host: host.to_owned(),
            source,
        }
        .into()
    })
}
