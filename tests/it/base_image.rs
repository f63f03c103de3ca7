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
