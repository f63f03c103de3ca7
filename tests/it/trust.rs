//! Signed releases against real parts: a tiny cargo workspace built and pushed by `rel build
//! --push` to Debian's docker-registry with a signing key; `rel lock`/`rel verify`; independent
//! verifiers (`minisign-verify` for the lockfile, skopeo's `sigstoreSigned` policy for the cosign
//! signature, the CycloneDX 1.5 JSON schema for the SBOM); and each way a release can be
//! untrustworthy, refused with its reason.

use std::path::Path;
use std::process::Command;

use crate::support::*;

use test_support::Registry;

/// A project with one built component (`hello`, crate `hello` with feature `loud`, one registry
/// dependency), committed, trusting a fresh signing key; built, pushed and locked as 1.0.0.
struct Signed {
    dir: tempfile::TempDir,
    keys: tempfile::TempDir,
    key_text: String,
    public: String,
    digest: String,
    registry: Registry,
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=rel-test",
            "-c",
            "user.email=rel-test@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn keygen(dir: &Path, name: &str) -> (String, String) {
    keygen_with(dir, name, &[])
}

fn keygen_with(dir: &Path, name: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["keygen", "--signing", "-o", name];
    args.extend_from_slice(extra);
    rel_in(dir, &args).expect(0);
    let key_text = std::fs::read_to_string(dir.join(name)).unwrap();
    let pub_file = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    let public = pub_file.lines().nth(1).unwrap().to_owned();
    (key_text, public)
}

fn signed_rel(s: &Signed, args: &[&str]) -> Run {
    let mut cmd = rel_command(s.dir.path());
    cmd.args(args).env("REL_SIGNING_KEY", &s.key_text);
    run_rel(cmd)
}

fn signed_release() -> Signed {
    signed_release_with(&[])
}

/// [`signed_release`] with a key made by `rel keygen --signing EXTRA...`. An ECDSA key cannot
/// sign the lockfile (minisign is Ed25519 only): then the lock is made without the key.
fn signed_release_with(keygen_extra: &[&str]) -> Signed {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("crates/hello/src")).unwrap();
    std::fs::write(
        p.join("Cargo.toml"),
        "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    std::fs::write(
        p.join("crates/hello/Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.3.0\"\nedition = \"2021\"\nlicense = \"Apache-2.0\"\n\n\
         [features]\nloud = []\n\n[dependencies]\nfastrand = { version = \"2\", default-features = false }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("crates/hello/src/main.rs"),
        "fn main() { println!(\"hello {}\", fastrand::Rng::with_seed(7).u8(..)); }\n",
    )
    .unwrap();
    std::fs::write(p.join(".gitignore"), "/target\n").unwrap();
    let out = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (key_text, public) = keygen_with(keys.path(), "release.key", keygen_extra);
    std::fs::write(
        p.join("rel.toml"),
        format!(
            "registry = \"{}/platform\"\nrepo = \"example-org/hello\"\n\n\
             [components.hello]\ncrate = \"hello\"\nfeatures = [\"loud\"]\n\n\
             [environments.staging]\noverlay = \"overlays/staging\"\npromotes-to = \"prod\"\n\n\
             [environments.prod]\noverlay = \"overlays/prod\"\n\n\
             [trust]\nkeys = [\"{public}\"]\n",
            registry.host()
        ),
    )
    .unwrap();
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "hello"]);
    let mut s = Signed {
        dir,
        keys,
        key_text,
        public,
        digest: String::new(),
        registry,
    };
    let build = signed_rel(&s, &["build", "--push", "--tag", "1.0.0"]);
    build.expect(0);
    assert!(
        build.stderr().contains("hello: signed"),
        "{}",
        build.stderr()
    );
    let ecdsa = keygen_extra.contains(&"ecdsa-p256");
    let lock = if ecdsa {
        rel_in(s.dir.path(), &["lock", "--version", "1.0.0"])
    } else {
        signed_rel(&s, &["lock", "--version", "1.0.0"])
    };
    lock.expect(0);
    // The secret key never reaches output.
    let seed = s.key_text.lines().nth(1).unwrap();
    for out in [build.stdout(), build.stderr(), lock.stdout(), lock.stderr()] {
        assert!(!out.contains(seed), "the signing key leaked: {out}");
    }
    // Every upload session opened ahead for the signing blobs was used: none is left open in
    // the registry (distribution keeps each under the repository's `_uploads`).
    let uploads = s
        .registry
        .dir
        .path()
        .join("data/docker/registry/v2/repositories/platform/hello/_uploads");
    assert!(uploads.with_file_name("_layers").is_dir(), "{uploads:?}");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "upload sessions left open: {left:?}");
    // The crate graph the SBOM came from is kept for the next build of the same manifests.
    let graphs = s.dir.path().join("target/rel/cache/crate-graph");
    assert_eq!(std::fs::read_dir(&graphs).unwrap().count(), 1, "{graphs:?}");
    let build_json = s.dir.path().join("target/rel/build.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build_json).unwrap()).unwrap();
    s.digest = json["components"][0]["digest"].as_str().unwrap().to_owned();
    s
}

fn verify(s: &Signed, version: &str) -> (i32, serde_json::Value) {
    let run = rel_in(
        s.dir.path(),
        &["verify", "--version", version, "--format", "json"],
    );
    let json = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}):\n{}\n{}",
            run.stdout(),
            run.stderr()
        )
    });
    (run.code(), json)
}

/// The check named `name` of a report: (status, detail).
fn check<'a>(report: &'a serde_json::Value, name: &str) -> (&'a str, &'a str) {
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"));
    (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap())
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn get_manifest(s: &Signed, reference: &str, accept: &str) -> serde_json::Value {
    let url = format!(
        "http://{}/v2/platform/hello/manifests/{reference}",
        s.registry.host()
    );
    let resp = http().get(url).header("Accept", accept).send().unwrap();
    assert!(
        resp.status().is_success(),
        "GET {reference}: {}",
        resp.status()
    );
    resp.json().unwrap()
}

fn put_manifest(s: &Signed, reference: &str, media_type: &str, body: &serde_json::Value) {
    let url = format!(
        "http://{}/v2/platform/hello/manifests/{reference}",
        s.registry.host()
    );
    let resp = http()
        .put(url)
        .header("Content-Type", media_type)
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "PUT {reference}: {}",
        resp.status()
    );
}

fn get_blob(s: &Signed, digest: &str) -> Vec<u8> {
    let url = format!(
        "http://{}/v2/platform/hello/blobs/{digest}",
        s.registry.host()
    );
    http().get(url).send().unwrap().bytes().unwrap().to_vec()
}

fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[test]
fn a_signed_release_verifies_with_rel_and_independent_verifiers() {
    let s = signed_release();
    let p = s.dir.path();

    // rel's own verdict: every check passes.
    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 0, "{report:#}");
    for name in [
        "lockfile signature",
        "hello: signature",
        "hello: provenance",
        "hello: sbom",
    ] {
        assert_eq!(check(&report, name).0, "pass", "{name}: {report:#}");
    }
    let commit = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(p)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        check(&report, "hello: provenance")
            .1
            .contains(&format!("example-org/hello@{}", &commit.trim()[..12])),
        "{report:#}"
    );

    // minisign-verify, on its own, accepts the lockfile signature with the public key as printed.
    let pk = minisign_verify::PublicKey::from_base64(&s.public).unwrap();
    let lock = std::fs::read(p.join("releases/1.0.0.yaml")).unwrap();
    let sig = minisign_verify::Signature::decode(
        &std::fs::read_to_string(p.join("releases/1.0.0.yaml.minisig")).unwrap(),
    )
    .unwrap();
    pk.verify(&lock, &sig, false).unwrap();
    assert_eq!(sig.trusted_comment(), "file:1.0.0.yaml");
    let mut changed = lock.clone();
    changed.extend_from_slice(b"# edited\n");
    assert!(pk.verify(&changed, &sig, false).is_err());

    // The cosign payload is cosign's simple signing format, for this repository and digest.
    let sig_manifest = get_manifest(&s, &sig_tag(&s.digest), MANIFEST);
    let layer = &sig_manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    let payload: serde_json::Value =
        serde_json::from_slice(&get_blob(&s, layer["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        s.digest.as_str()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{}/platform/hello", s.registry.host())
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );

    // OpenSSL, on its own, accepts the cosign signature over the payload bytes with the PEM
    // public key `rel keygen --signing` wrote (the form `cosign verify --key` takes), and refuses
    // it under another key. (Debian's skopeo 1.9.3 cannot check it: its `sigstoreSigned` policy
    // fails with "Debian-local change: sigstore disabled".)
    let payload_bytes = get_blob(&s, layer["digest"].as_str().unwrap());
    let signature = base64_decode(
        layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap(),
    );
    let pem = s.keys.path().join("release.key.pem");
    assert!(openssl_verifies(&pem, &payload_bytes, &signature));
    let other = tempfile::tempdir().unwrap();
    keygen(other.path(), "other.key");
    assert!(!openssl_verifies(
        &other.path().join("other.key.pem"),
        &payload_bytes,
        &signature
    ));

    // The referrers fallback tag lists both artifacts with their artifact types and subject.
    let index = get_manifest(&s, &s.digest.replacen(':', "-", 1), INDEX);
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.in-toto+json",
            "application/vnd.cyclonedx+json"
        ]
    );
    let sbom_manifest = get_manifest(
        &s,
        index["manifests"][1]["digest"].as_str().unwrap(),
        MANIFEST,
    );
    assert_eq!(sbom_manifest["subject"]["digest"], s.digest.as_str());
    assert_eq!(
        sbom_manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let sbom = get_blob(&s, sbom_manifest["layers"][0]["digest"].as_str().unwrap());
    let bom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    assert_eq!(bom["metadata"]["component"]["name"], "hello");
    let props = &bom["metadata"]["component"]["properties"];
    let prop = |name: &str| {
        props
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(prop("rel:features").as_deref(), Some("loud"));
    assert_eq!(prop("rel:resolved-features").as_deref(), Some("loud"));
    let fastrand = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "fastrand")
        .unwrap_or_else(|| panic!("fastrand is missing from the SBOM: {bom:#}"));
    assert_eq!(fastrand["hashes"][0]["alg"], "SHA-256");
    let lock_text = std::fs::read_to_string(p.join("Cargo.lock")).unwrap();
    assert!(lock_text.contains(fastrand["hashes"][0]["content"].as_str().unwrap()));
    // The CycloneDX 1.5 JSON schema (cyclonedx-python-lib's strict validator) accepts it.
    cyclonedx_schema_accepts(&sbom);

    // The image's binary carries its dependency list as cargo auditable does (`.dep-v0`), and
    // cargo auditable's own reader finds the same packages as the SBOM, at Cargo.lock's versions.
    let image = get_manifest(&s, &s.digest, MANIFEST);
    let layer = get_blob(&s, image["layers"][0]["digest"].as_str().unwrap());
    let rootfs = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg("-")
        .arg("-C")
        .arg(rootfs.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&layer)?;
            child.wait()
        })
        .unwrap();
    assert!(tar.success());
    let binary = rootfs.path().join("app/hello");
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(p.join("target/rel/bin/hello/hello")).unwrap(),
        "the layer holds rel's copy with the section"
    );
    let info = auditable_info::audit_info_from_file(&binary, Default::default()).unwrap();
    let info = serde_json::to_value(&info).unwrap();
    assert_eq!(info["format"], 1);
    let listed: std::collections::BTreeSet<(String, String)> = info["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap().to_owned();
            (field("name"), field("version"))
        })
        .collect();
    let mut in_sbom: std::collections::BTreeSet<(String, String)> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap().to_owned();
            (field("name"), field("version"))
        })
        .collect();
    in_sbom.insert(("hello".to_owned(), "0.3.0".to_owned()));
    assert_eq!(listed, in_sbom, "{info:#}");
    let package = |name: &str| {
        info["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from .dep-v0: {info:#}"))
            .clone()
    };
    let hello = package("hello");
    assert_eq!(hello["source"], "local");
    assert_eq!(hello["root"], true);
    let fastrand = package("fastrand");
    assert_eq!(fastrand["source"], "crates.io");
    assert!(
        lock_text.contains(&format!(
            "name = \"fastrand\"\nversion = {}",
            fastrand["version"]
        )),
        "{fastrand} not as in Cargo.lock"
    );
    assert_eq!(hello["dependencies"], serde_json::json!([0]), "{info:#}");
    // The binary with the section runs.
    let run = Command::new(&binary).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("hello "));

    // The provenance is a DSSE envelope whose signature OpenSSL accepts over the DSSE
    // pre-authentication encoding, holding an in-toto v1 statement about this digest.
    let prov_manifest = get_manifest(
        &s,
        index["manifests"][0]["digest"].as_str().unwrap(),
        MANIFEST,
    );
    let envelope: serde_json::Value = serde_json::from_slice(&get_blob(
        &s,
        prov_manifest["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let body = base64_decode(envelope["payload"].as_str().unwrap());
    let payload_type = envelope["payloadType"].as_str().unwrap();
    assert_eq!(payload_type, "application/vnd.in-toto+json");
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    pae.extend_from_slice(&body);
    let dsse_sig = base64_decode(envelope["signatures"][0]["sig"].as_str().unwrap());
    assert!(openssl_verifies(&pem, &pae, &dsse_sig));
    let statement: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        s.digest["sha256:".len()..]
    );
    let params = &statement["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(params["source"]["repository"], "example-org/hello");
    assert_eq!(params["source"]["commit"], commit.trim());
    assert_eq!(params["features"], serde_json::json!(["loud"]));
    // The toolchain cargo built with: the first line of `rustc -vV`, as `rustc -V` prints it.
    let rustc_v = Command::new("rustc").arg("-V").output().unwrap().stdout;
    assert_eq!(
        statement["predicate"]["buildDefinition"]["internalParameters"]["toolchain"],
        String::from_utf8_lossy(&rustc_v).trim()
    );

    // A second push with the same key converges: the same signature and attachments, no duplicates.
    signed_rel(&s, &["build", "--push", "--tag", "1.0.0"]).expect(0);
    assert_eq!(
        get_manifest(&s, &sig_tag(&s.digest), MANIFEST),
        sig_manifest
    );
    assert_eq!(
        get_manifest(&s, &s.digest.replacen(':', "-", 1), INDEX),
        index
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// `openssl pkeyutl -verify` of an Ed25519 signature over `message` with a PEM public key.
fn openssl_verifies(pem: &Path, message: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("msg"), message).unwrap();
    std::fs::write(dir.path().join("sig"), signature).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(pem)
        .arg("-in")
        .arg(dir.path().join("msg"))
        .arg("-sigfile")
        .arg(dir.path().join("sig"))
        .output()
        .expect("openssl is needed (Debian package `openssl`)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || text.contains("Signature Verification Failure"),
        "openssl could not run the check: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

pub(crate) fn cyclonedx_schema_accepts(sbom: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sbom.json");
    std::fs::write(&file, sbom).unwrap();
    let script = "import sys\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
from cyclonedx.schema import SchemaVersion\n\
err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
print(err if err else 'valid')\n\
sys.exit(1 if err else 0)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the CycloneDX 1.5 schema refuses the SBOM (needs `pip install 'cyclonedx-python-lib[json-validation]'`): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_refuses_a_release_signed_by_an_untrusted_key() {
    let s = signed_release();
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = keygen(other.path(), "other.key");
    let config = std::fs::read_to_string(s.dir.path().join("rel.toml")).unwrap();
    std::fs::write(
        s.dir.path().join("rel.toml"),
        config.replace(&s.public, &other_public),
    )
    .unwrap();
    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 1, "{report:#}");
    let (status, detail) = check(&report, "hello: signature");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("does not verify with any trusted key"),
        "{detail}"
    );
    let (status, detail) = check(&report, "lockfile signature");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("does not verify with any trusted key"),
        "{detail}"
    );
    let (status, detail) = check(&report, "hello: provenance");
    assert_eq!(status, "fail");
    assert!(detail.contains("not signed by a trusted key"), "{detail}");
}

#[test]
fn verify_refuses_a_tampered_signature_and_an_edited_lockfile() {
    let s = signed_release();
    // Flip one character of the signature in the registry.
    let tag = sig_tag(&s.digest);
    let mut manifest = get_manifest(&s, &tag, MANIFEST);
    let sig = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = match sig.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &sig[1..]),
    };
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = flipped.into();
    put_manifest(&s, &tag, MANIFEST, &manifest);
    // And edit the signed lockfile.
    let lock = s.dir.path().join("releases/1.0.0.yaml");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, format!("{text}# edited after signing\n")).unwrap();

    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 1, "{report:#}");
    let (status, detail) = check(&report, "hello: signature");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("does not verify with any trusted key (tampered"),
        "{detail}"
    );
    let (status, detail) = check(&report, "lockfile signature");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("the file changed after signing"),
        "{detail}"
    );
    // The attachments are untouched and still verify.
    assert_eq!(check(&report, "hello: provenance").0, "pass");
}

#[test]
fn verify_refuses_provenance_of_another_commit_and_a_missing_sbom() {
    let s = signed_release();
    let p = s.dir.path();
    // A lockfile (properly signed) claiming the image was built from another commit.
    let build_json = p.join("target/rel/build.json");
    let text = std::fs::read_to_string(&build_json).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let commit = json["components"][0]["sourceCommit"]
        .as_str()
        .or(json["components"][0]["source_commit"].as_str())
        .unwrap_or_else(|| panic!("no commit in {json:#}"))
        .to_owned();
    let other = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(&build_json, text.replace(&commit, other)).unwrap();
    signed_rel(&s, &["lock", "--version", "1.0.1"]).expect(0);

    // Drop the SBOM from the referrers list.
    let tag = s.digest.replacen(':', "-", 1);
    let mut index = get_manifest(&s, &tag, INDEX);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["artifactType"] != "application/vnd.cyclonedx+json");
    put_manifest(&s, &tag, INDEX, &index);

    let (code, report) = verify(&s, "1.0.1");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(check(&report, "lockfile signature").0, "pass", "{report:#}");
    assert_eq!(check(&report, "hello: signature").0, "pass", "{report:#}");
    let (status, detail) = check(&report, "hello: provenance");
    assert_eq!(status, "fail");
    assert!(
        detail.contains(&format!(
            "the provenance names commit {commit}, the lockfile's source commit is {other}"
        )),
        "{detail}"
    );
    let (status, detail) = check(&report, "hello: sbom");
    assert_eq!(status, "fail");
    assert!(detail.contains("no SBOM is attached"), "{detail}");
}

#[test]
fn keygen_signing_keeps_the_secret_out_of_output_and_never_replaces_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = rel_in(dir.path(), &["keygen", "--signing", "-o", "k"]);
    run.expect(0);
    let secret = std::fs::read_to_string(dir.path().join("k")).unwrap();
    let seed = secret.lines().nth(1).unwrap();
    assert!(!run.stdout().contains(seed) && !run.stderr().contains(seed));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("k"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        run.stdout().contains("[trust]\nkeys = [\"RW"),
        "{}",
        run.stdout()
    );
    let again = rel_in(dir.path(), &["keygen", "--signing", "-o", "k"]);
    again.expect(1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("k")).unwrap(),
        secret
    );
    // A bad key in the environment is a clear error that does not echo it.
    let p = Project::with_config("registry = \"localhost:5000/x\"\n");
    let mut cmd = rel_command(p.path());
    cmd.args(["lock", "--version", "1.0.0"])
        .env("REL_SIGNING_KEY", "not-a-key-at-all");
    let run = run_rel(cmd);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("the signing key from $REL_SIGNING_KEY is unusable")
    );
    assert!(!run.stderr().contains("not-a-key-at-all"));
}

#[test]
fn promote_refuses_an_unsigned_release_when_trust_is_configured() {
    use crate::promote_support::GitProject;
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keygen(keys.path(), "release.key");
    let p = GitProject::new();
    let config = std::fs::read_to_string(p.path().join("rel.toml")).unwrap();
    std::fs::write(
        p.path().join("rel.toml"),
        config.replace(
            "registry = \"registry.example.com/platform\"",
            &format!("registry = \"{}/platform\"", registry.host()),
        ) + &format!("\n[trust]\nkeys = [\"{public}\"]\n"),
    )
    .unwrap();
    p.git(&["commit", "--quiet", "-am", "trust the release key"]);
    let p = p.with_releases();
    let head = p.git(&["rev-parse", "HEAD"]);

    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    let err = run.stderr();
    assert!(
        err.contains("release 0.4.0 is not trusted for prod ([trust] in rel.toml)"),
        "{err}"
    );
    assert!(
        err.contains("lockfile signature: releases/0.4.0.yaml has no signature"),
        "{err}"
    );
    assert!(
        err.contains("record signature 0.4.0.staging.validation.yaml"),
        "{err}"
    );
    assert!(err.contains("identity: signature:"), "{err}");
    assert!(err.contains("is not signed (no sha256-"), "{err}");
    assert!(
        err.contains("rel verify --version 0.4.0 --env prod"),
        "{err}"
    );
    // Nothing was committed or branched.
    assert_eq!(p.git(&["rev-parse", "HEAD"]), head);
    assert!(p.git(&["branch", "--list", "rel/promote/*"]).is_empty());
}

#[test]
fn record_signs_the_record_commits_the_signatures_and_verify_checks_them() {
    let s = signed_release();
    let p = s.dir.path();
    // The signed build leaves build.json; the release commit comes first.
    git(p, &["add", "releases"]);
    git(p, &["commit", "-q", "-m", "release 1.0.0"]);
    let evidence = s.keys.path().join("evidence.json");
    std::fs::write(
        &evidence,
        crate::promote_support::deep_report(p, "1.0.0", "staging", true),
    )
    .unwrap();
    signed_rel(
        &s,
        &[
            "record",
            "--version",
            "1.0.0",
            "--env",
            "staging",
            "--evidence",
            evidence.to_str().unwrap(),
        ],
    )
    .expect(0);
    let committed = Command::new("git")
        .args(["show", "--name-only", "--format=", "HEAD"])
        .current_dir(p)
        .output()
        .unwrap();
    let committed = String::from_utf8(committed.stdout).unwrap();
    assert!(
        committed.contains("releases/1.0.0.staging.validation.yaml.minisig"),
        "{committed}"
    );
    // minisign-verify accepts the record's signature.
    let pk = minisign_verify::PublicKey::from_base64(&s.public).unwrap();
    let record = std::fs::read(p.join("releases/1.0.0.staging.validation.yaml")).unwrap();
    let sig = minisign_verify::Signature::decode(
        &std::fs::read_to_string(p.join("releases/1.0.0.staging.validation.yaml.minisig")).unwrap(),
    )
    .unwrap();
    pk.verify(&record, &sig, false).unwrap();

    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        check(&report, "record signature 1.0.0.staging.validation.yaml").0,
        "pass"
    );
    // The signature of another file (the lockfile) put in place of the record's is refused.
    std::fs::copy(
        p.join("releases/1.0.0.yaml.minisig"),
        p.join("releases/1.0.0.staging.validation.yaml.minisig"),
    )
    .unwrap();
    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 1, "{report:#}");
    let (status, detail) = check(&report, "record signature 1.0.0.staging.validation.yaml");
    assert_eq!(status, "fail");
    assert!(detail.contains("does not verify"), "{detail}");
}

#[test]
fn verify_reproducible_rebuilds_from_the_source_commit_and_compares_digests() {
    let s = signed_release();
    let p = s.dir.path();
    let run = rel_in(
        p,
        &[
            "build",
            "--verify-reproducible",
            "1.0.0",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout(), run.stderr()));
    assert_eq!(run.code(), 0, "{report:#}\n{}", run.stderr());
    let (status, detail) = check(&report, "hello");
    assert_eq!(status, "pass");
    assert!(detail.contains(&s.digest), "{detail}");
    // The worktree is gone again.
    assert!(
        !p.join("target/rel/reproduce")
            .read_dir()
            .unwrap()
            .any(|_| true)
    );

    // A lockfile naming another digest for the same commit is refused.
    let lock = p.join("releases/1.0.0.yaml");
    let other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, text.replace(&s.digest, other)).unwrap();
    let run = rel_in(
        p,
        &[
            "build",
            "--verify-reproducible",
            "1.0.0",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(run.code(), 1, "{report:#}");
    let (status, detail) = check(&report, "hello");
    assert_eq!(status, "fail");
    assert!(
        detail.contains(&format!("to {}, the lockfile pins {other}", s.digest)),
        "{detail}"
    );
}

/// `rel gate drift --pods FILE --verify-signatures` over a Deployment `hello` whose one pod runs
/// `image` (the workload pinned to the same image).
fn drift_with_signatures(s: &Signed, image: &str) -> (i32, serde_json::Value) {
    let p = s.dir.path();
    std::fs::write(
        p.join("rendered.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  selector:\n    matchLabels:\n      app: hello\n  template:\n    metadata:\n      labels:\n        app: hello\n    spec:\n      containers:\n      - name: hello\n        image: {image}\n"
        ),
    )
    .unwrap();
    let pods = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "hello-5d9c7b8f4-x2x7k",
                "labels": {"app": "hello", "pod-template-hash": "5d9c7b8f4"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "hello-5d9c7b8f4", "controller": true, "uid": "0"}],
            },
            "spec": {"containers": [{"name": "hello", "image": image}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "hello", "image": image, "imageID": format!("docker-pullable://{image}"), "ready": true}],
            },
        }],
    });
    std::fs::write(p.join("pods.json"), pods.to_string()).unwrap();
    let run = rel_in(
        p,
        &[
            "gate",
            "drift",
            "--env",
            "staging",
            "--rendered",
            "rendered.yaml",
            "--pods",
            "pods.json",
            "--verify-signatures",
            "--format",
            "json",
        ],
    );
    let json = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "drift printed no JSON ({e}):\n{}\n{}",
            run.stdout(),
            run.stderr()
        )
    });
    (run.code(), json)
}

#[test]
fn drift_live_verify_signatures_checks_what_the_pods_run() {
    let s = signed_release();
    let image = format!("{}/platform/hello@{}", s.registry.host(), s.digest);
    let name = format!("signature/hello@{}", s.digest);
    let (code, report) = drift_with_signatures(&s, &image);
    assert_eq!(code, 0, "{report:#}");
    let (status, detail) = check(&report, &name);
    assert_eq!(status, "pass", "{detail}");
    assert!(detail.contains("cosign signature"), "{detail}");
    assert_eq!(
        check(&report, "live/Deployment/hello").0,
        "pass",
        "{report:#}"
    );

    // The same digest with a tampered signature: the pods run what the release pins, but it is
    // not signed by a trusted key any more.
    let tag = sig_tag(&s.digest);
    let mut manifest = get_manifest(&s, &tag, MANIFEST);
    let sig = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = match sig.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &sig[1..]),
    };
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = flipped.into();
    put_manifest(&s, &tag, MANIFEST, &manifest);
    let (code, report) = drift_with_signatures(&s, &image);
    assert_eq!(code, 1, "{report:#}");
    let (status, detail) = check(&report, &name);
    assert_eq!(status, "fail");
    assert!(
        detail.contains("does not verify with any trusted key"),
        "{detail}"
    );
    assert_eq!(check(&report, "live/Deployment/hello").0, "pass");

    // Without live pods there is nothing to check the signatures of.
    let run = rel_in(
        s.dir.path(),
        &[
            "gate",
            "drift",
            "--env",
            "staging",
            "--rendered",
            "rendered.yaml",
            "--verify-signatures",
        ],
    );
    run.expect(2);
    assert!(run.stderr().contains("add --live"), "{}", run.stderr());
}

/// `openssl dgst -sha256 -verify` of a DER ECDSA signature over `message` with a PEM public key.
fn openssl_verifies_ecdsa(pem: &Path, message: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("msg"), message).unwrap();
    std::fs::write(dir.path().join("sig"), signature).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(pem)
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("msg"))
        .output()
        .expect("openssl is needed (Debian package `openssl`)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Verified OK") || text.contains("Verification failure"),
        "openssl could not run the check: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success() && text.contains("Verified OK")
}

#[test]
fn an_ecdsa_p256_key_signs_images_openssl_verifies_and_lockfiles_stay_ed25519() {
    let s = signed_release_with(&["--algorithm", "ecdsa-p256"]);
    assert!(s.public.starts_with("MFkw"), "{}", s.public);
    assert!(s.key_text.contains("\necdsa-p256:"));
    let pem = s.keys.path().join("release.key.pem");

    // The cosign signature: ECDSA P-256 over SHA-256 of the payload, DER, checked by OpenSSL.
    let manifest = get_manifest(&s, &sig_tag(&s.digest), MANIFEST);
    let layer = &manifest["layers"][0];
    let payload = get_blob(&s, layer["digest"].as_str().unwrap());
    let sig = base64_decode(
        layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap(),
    );
    assert!(openssl_verifies_ecdsa(&pem, &payload, &sig));
    let mut tampered = payload.clone();
    tampered.push(b' ');
    assert!(!openssl_verifies_ecdsa(&pem, &tampered, &sig));

    // rel verify: the image's signature and provenance pass; the lockfile, locked without the
    // key, has no minisign signature (an ECDSA key cannot make one).
    let (code, report) = verify(&s, "1.0.0");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(check(&report, "hello: signature").0, "pass", "{report:#}");
    assert_eq!(check(&report, "hello: provenance").0, "pass", "{report:#}");
    assert_eq!(check(&report, "hello: sbom").0, "pass", "{report:#}");
    assert_eq!(check(&report, "lockfile signature").0, "fail");

    // Signing a lockfile with it is refused, with the reason and the way out.
    let lock = signed_rel(&s, &["lock", "--version", "1.0.1"]);
    lock.expect(2);
    let err = lock.stderr();
    assert!(
        err.contains("minisign, which has only Ed25519 keys"),
        "{err}"
    );
    assert!(err.contains("rel keygen --signing"), "{err}");
    assert!(
        !s.dir.path().join("releases/1.0.1.yaml").exists(),
        "a refused lock leaves no lockfile"
    );
}
