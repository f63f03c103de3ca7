//! `base = "registry/repository@sha256:..."`: a base image pulled by digest from a real registry
//! (Debian's docker-registry), made and pushed by umoci and skopeo; the image rel builds on it
//! carries the base's layers first; the base is recorded in build.json and the lockfile; a wrong
//! or unpinned base is refused.

use std::path::Path;

use test_support::Registry;

use crate::init::{commit, run};
use crate::support::*;

/// A base made by umoci (CA bundle and tzdata files, `TZ=UTC`), pushed by skopeo to
/// `<host>/base/static:v1`; its manifest digest.
fn push_base(host: &str, work: &Path) -> String {
    let layout = work.join("base-layout");
    let image = format!("{}:v1", layout.display());
    run(
        work,
        "umoci",
        &["init", "--layout", layout.to_str().unwrap()],
    );
    run(work, "umoci", &["new", "--image", &image]);
    let bundle = work.join("base-bundle");
    run(
        work,
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc/ssl/certs")).unwrap();
    std::fs::write(
        rootfs.join("etc/ssl/certs/ca-certificates.crt"),
        "-----BEGIN CERTIFICATE-----\nbase\n",
    )
    .unwrap();
    std::fs::create_dir_all(rootfs.join("usr/share/zoneinfo")).unwrap();
    std::fs::write(rootfs.join("usr/share/zoneinfo/UTC"), "TZif2").unwrap();
    run(
        work,
        "umoci",
        &["repack", "--image", &image, bundle.to_str().unwrap()],
    );
    run(
        work,
        "umoci",
        &["config", "--image", &image, "--config.env", "TZ=UTC"],
    );
    let target = format!("docker://{host}/base/static:v1");
    run(
        work,
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &target,
        ],
    );
    run(
        work,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &target,
        ],
    )
    .trim()
    .to_owned()
}

fn layer_digests(work: &Path, reference: &str) -> Vec<String> {
    let raw: serde_json::Value = serde_json::from_str(&run(
        work,
        "skopeo",
        &["inspect", "--tls-verify=false", "--raw", reference],
    ))
    .unwrap();
    raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn project(registry: &str, base: &str) -> Project {
    let p = Project::empty();
    p.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"hello\"]\nresolver = \"2\"\n",
    );
    p.write(
        "hello/Cargo.toml",
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    p.write("hello/src/main.rs", "fn main() { println!(\"hello\"); }\n");
    p.write(".gitignore", "/target\n");
    p.write(
        "rel.toml",
        &format!(
            "registry = \"{registry}/app\"\n\n[components.hello]\ncrate = \"hello\"\nbase = \"{base}\"\n\n[environments.staging]\noverlay = \"overlays/staging\"\n"
        ),
    );
    run(p.path(), "cargo", &["generate-lockfile", "--offline"]);
    run(p.path(), "git", &["init", "-q", "-b", "main"]);
    commit(p.path(), "hello");
    p
}

#[test]
fn a_registry_base_is_pulled_by_digest_verified_cached_and_recorded() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let base_digest = push_base(&host, work.path());
    let base = format!("{host}/base/static@{base_digest}");
    let base_layers = layer_digests(work.path(), &format!("docker://{base}"));
    assert_eq!(base_layers.len(), 1);

    let p = project(&host, &base);
    let pushed = p.rel(&["build", "--push", "--tag", "1.0.0"]);
    pushed.expect(0);
    let build: serde_json::Value = serde_json::from_str(&p.read("target/rel/build.json")).unwrap();
    let c = &build["components"][0];
    assert_eq!(c["base"], base.as_str(), "{build}");
    let digest = c["digest"].as_str().unwrap().to_owned();

    // The image starts with the base's layer, then rel's; its root filesystem has both.
    let ours = format!("docker://{host}/app/hello@{digest}");
    let layers = layer_digests(work.path(), &ours);
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(layers[0], base_layers[0]);
    let layout = work.path().join("ours");
    run(
        work.path(),
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &ours,
            &format!("oci:{}:run", layout.display()),
        ],
    );
    let bundle = work.path().join("ours-bundle");
    run(
        work.path(),
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:run", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    for file in [
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/zoneinfo/UTC",
        "app/hello",
    ] {
        assert!(bundle.join("rootfs").join(file).is_file(), "{file} missing");
    }
    let config: serde_json::Value = serde_json::from_str(&run(
        work.path(),
        "skopeo",
        &["inspect", "--tls-verify=false", "--config", &ours],
    ))
    .unwrap();
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("TZ=UTC"), "the base's env is kept: {env}");

    // The lockfile records the base; the coherence gate checks it is pinned.
    p.rel(&[
        "lock",
        "--version",
        "1.0.0",
        "--from",
        "target/rel/build.json",
    ])
    .expect(0);
    let lockfile = p.read("releases/1.0.0.yaml");
    assert!(
        lockfile.contains(&format!("    base: \"{base}\"\n")),
        "{lockfile}"
    );
    p.rel(&["gate", "coherence", "--version", "1.0.0"])
        .expect(0);

    // Cached and reproducible: with the registry gone, the base comes from the verified store
    // and the image has the same digest.
    let store = p.path().join("target/rel/cache/base/blobs/sha256");
    assert!(
        store
            .join(base_digest.trim_start_matches("sha256:"))
            .is_file()
    );
    drop(registry);
    p.rel(&["build", "--tag", "1.0.0"]).expect(0);
    let again: serde_json::Value = serde_json::from_str(&p.read("target/rel/build.json")).unwrap();
    assert_eq!(again["components"][0]["digest"], digest.as_str());
}

#[test]
fn a_wrong_or_unpinned_base_is_refused() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let base_digest = push_base(&host, work.path());

    // A digest the registry does not have (one hex digit changed).
    let last = base_digest.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &base_digest[..base_digest.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let p = project(&host, &format!("{host}/base/static@{wrong}"));
    let r = p.rel(&["build"]);
    r.expect(2);
    assert!(
        r.stderr().contains("could not pull base image"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains(&wrong), "{}", r.stderr());
    assert!(!p.path().join("target/rel/build.json").exists());

    // A tag is not a pin.
    let p = project(&host, &format!("{host}/base/static:v1"));
    let r = p.rel(&["build"]);
    r.expect(2);
    assert!(r.stderr().contains("pinned by digest"), "{}", r.stderr());

    // A lockfile naming an unpinned base fails the coherence gate.
    p.write(
        "releases/1.0.0.yaml",
        &format!(
            "version: \"1.0.0\"\nengineVersion: \"1.0.0\"\ncomponents:\n  hello:\n    digest: {D1}\n    base: \"{host}/base/static:v1\"\n"
        ),
    );
    let r = p.rel(&["gate", "coherence", "--version", "1.0.0"]);
    r.expect(1);
    assert!(
        r.stdout().contains("component/hello/base"),
        "{}",
        r.stdout()
    );
}

#[test]
fn a_signed_build_on_a_registry_base_lists_the_base_and_its_layers_in_the_sbom() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let base_digest = push_base(&host, work.path());
    let base = format!("{host}/base/static@{base_digest}");
    let base_layers = layer_digests(work.path(), &format!("docker://{base}"));
    let p = project(&host, &base);
    rel_in(work.path(), &["keygen", "--signing", "-o", "release.key"]).expect(0);
    let key = std::fs::read_to_string(work.path().join("release.key")).unwrap();
    let mut cmd = rel_command(p.path());
    cmd.args(["build", "--push", "--tag", "1.0.0"])
        .env("REL_SIGNING_KEY", &key);
    run_rel(cmd).expect(0);
    let build: serde_json::Value = serde_json::from_str(&p.read("target/rel/build.json")).unwrap();
    let digest = build["components"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // The SBOM attached to the image (the registry has no referrers API: the fallback tag).
    let get = |path: &str, accept: &str| {
        let resp = reqwest::blocking::Client::new()
            .get(format!("http://{host}/v2/app/hello/{path}"))
            .header("Accept", accept)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.bytes().unwrap().to_vec()
    };
    let index: serde_json::Value = serde_json::from_slice(&get(
        &format!("manifests/{}", digest.replacen(':', "-", 1)),
        "application/vnd.oci.image.index.v1+json",
    ))
    .unwrap();
    let sbom_manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.cyclonedx+json")
        .unwrap_or_else(|| panic!("no SBOM in {index:#}"));
    let manifest: serde_json::Value = serde_json::from_slice(&get(
        &format!("manifests/{}", sbom_manifest["digest"].as_str().unwrap()),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    let sbom = get(
        &format!(
            "blobs/{}",
            manifest["layers"][0]["digest"].as_str().unwrap()
        ),
        "*/*",
    );
    crate::trust::cyclonedx_schema_accepts(&sbom);
    let bom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let container = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "container")
        .unwrap_or_else(|| panic!("no container component in {bom:#}"));
    assert_eq!(container["name"], format!("{host}/base/static"));
    assert_eq!(container["version"], base_digest.as_str());
    assert_eq!(
        container["hashes"][0]["content"],
        base_digest.strip_prefix("sha256:").unwrap()
    );
    assert!(
        container["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:oci/static@sha256%3A"),
        "{container:#}"
    );
    let layers: Vec<String> = container["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("sha256:{}", l["hashes"][0]["content"].as_str().unwrap()))
        .collect();
    assert_eq!(layers, base_layers);
}
