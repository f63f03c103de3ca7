//! `Registry::pull_base` against a registry that lies: every document and blob is checked against
//! the digest that named it, and nothing unverified reaches the store. (The happy path against
//! Debian's docker-registry, with umoci and skopeo making the base, is in rel's `base_image` test.)

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use image_ref::Digest;
use oci::{ClientOptions, PullError, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP server on port 0 answering `GET path` with fixed bytes (404 otherwise).
async fn serve(files: HashMap<String, (String, Vec<u8>)>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let files = Arc::new(files);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let files = files.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if conn.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let path = text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let (status, kind, body) = match files.get(&path) {
                    Some((kind, body)) => ("200 OK", kind.clone(), body.clone()),
                    None => ("404 Not Found", "text/plain".to_owned(), Vec::new()),
                };
                let mut resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                resp.extend_from_slice(&body);
                let _ = conn.write_all(&resp).await;
            });
        }
    });
    (host, task)
}

struct Base {
    files: HashMap<String, (String, Vec<u8>)>,
    manifest: Digest,
    index: Digest,
    layer: Digest,
}

/// A one-layer linux/amd64 image and an index naming it, as a registry would serve them.
fn base(layer_served: Option<&[u8]>) -> Base {
    let layer_bytes = b"not really gzip, but blobs are opaque to a pull".to_vec();
    let layer = Digest::of(&layer_bytes);
    let diff_id = Digest::of(b"uncompressed");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["TZ=UTC"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    )
    .into_bytes();
    let config_digest = Digest::of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        layer_bytes.len()
    )
    .into_bytes();
    let manifest_digest = Digest::of(&manifest);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        "a".repeat(64),
        manifest.len()
    )
    .into_bytes();
    let index_digest = Digest::of(&index);
    let served_layer = layer_served.map(<[u8]>::to_vec).unwrap_or(layer_bytes);
    let mut files = HashMap::new();
    let m = "application/vnd.oci.image.manifest.v1+json".to_owned();
    let i = "application/vnd.oci.image.index.v1+json".to_owned();
    let b = "application/octet-stream".to_owned();
    files.insert(
        format!("/v2/base/manifests/{manifest_digest}"),
        (m, manifest),
    );
    files.insert(format!("/v2/base/manifests/{index_digest}"), (i, index));
    files.insert(
        format!("/v2/base/blobs/{config_digest}"),
        (b.clone(), config),
    );
    files.insert(format!("/v2/base/blobs/{layer}"), (b, served_layer));
    Base {
        files,
        manifest: manifest_digest,
        index: index_digest,
        layer,
    }
}

fn stored(store: &Path) -> Vec<String> {
    let dir = store.join("blobs/sha256");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn an_index_resolves_to_linux_amd64_and_every_blob_lands_verified() {
    let b = base(None);
    let (host, _server) = serve(b.files).await;
    let registry = Registry::new(&host, None, ClientOptions::default()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let image = registry
        .pull_base("base", &b.index, store.path())
        .await
        .unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.layers[0].descriptor.digest, b.layer);
    assert_eq!(image.env, vec!["TZ=UTC".to_owned()]);
    let bytes = std::fs::read(&image.layers[0].path).unwrap();
    assert_eq!(Digest::of(&bytes), b.layer);
    assert_eq!(
        stored(store.path()).len(),
        4,
        "index, manifest, config, layer"
    );
    assert!(image.origin.ends_with(&format!("/base@{}", b.index)));
}

#[tokio::test]
async fn a_manifest_that_does_not_hash_to_its_digest_is_refused() {
    let b = base(None);
    // Ask for a digest whose path serves other bytes.
    let mut files = b.files;
    let wrong = Digest::of(b"something else");
    let served = files[&format!("/v2/base/manifests/{}", b.manifest)].clone();
    files.insert(format!("/v2/base/manifests/{wrong}"), served);
    let (host, _server) = serve(files).await;
    let registry = Registry::new(&host, None, ClientOptions::default()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let e = registry
        .pull_base("base", &wrong, store.path())
        .await
        .unwrap_err();
    match &e {
        PullError::DigestMismatch {
            what,
            expected,
            actual,
            ..
        } => {
            assert_eq!(*what, "manifest");
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &b.manifest);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        stored(store.path()).is_empty(),
        "{:?}",
        stored(store.path())
    );
}

#[tokio::test]
async fn a_layer_that_does_not_hash_to_its_digest_is_refused_and_not_kept() {
    let b = base(Some(
        b"tampered bytes of the same length as the real layer..",
    ));
    let (host, _server) = serve(b.files).await;
    let registry = Registry::new(&host, None, ClientOptions::default()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let e = registry
        .pull_base("base", &b.manifest, store.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PullError::DigestMismatch { what: "layer", expected, .. } if *expected == b.layer),
        "{e:?}"
    );
    let names = stored(store.path());
    assert!(!names.contains(&b.layer.hex().to_owned()), "{names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "temporary files left: {names:?}"
    );
}

#[tokio::test]
async fn a_digest_the_registry_does_not_have_is_named() {
    let b = base(None);
    let (host, _server) = serve(b.files).await;
    let registry = Registry::new(&host, None, ClientOptions::default()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let missing = Digest::of(b"missing");
    let e = registry
        .pull_base("base", &missing, store.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PullError::NotFound { digest, .. } if *digest == missing),
        "{e:?}"
    );
    assert!(e.to_string().contains(&missing.to_string()));
}
