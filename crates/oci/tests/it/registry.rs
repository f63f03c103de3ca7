//! Pushing to Debian's `docker-registry`, checked with skopeo and umoci.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use oci::registry::{
    Backoff, BlobOutcome, ClientOptions, CredentialSources, PushOptions, Registry, Secret,
    TagStatus,
};
use oci::{
    Image, ImageRef, ImageSpec, LayerCache, LayerSpec, RegistryError, assemble, resolve_credentials,
};

use crate::proxy::{BearerAuth, Fault, FaultKind, Proxy};
use crate::support::{self, run, static_binary, tool};

const MTIME: u64 = 1_700_000_000;

fn options() -> ClientOptions {
    ClientOptions {
        retry: Backoff::exponential(4, Duration::from_millis(10))
            .with_max_delay(Duration::from_millis(50)),
        timeout: Duration::from_secs(20),
        ..ClientOptions::default()
    }
}

fn image(cache: &Path, entrypoint: &[&str]) -> Image {
    let (layer, _) = LayerCache::new(cache)
        .layer(&LayerSpec::binary(static_binary(), "hello", MTIME))
        .unwrap();
    let mut spec = ImageSpec::new(entrypoint.iter().map(|s| s.to_string()).collect(), MTIME);
    spec.exposed_ports = vec!["8080/tcp".into()];
    spec.revision = Some("c0ffee".into());
    spec.version = Some("0.1.0".into());
    assemble(None, &[layer], &spec).unwrap()
}

fn target(host: &str, repo_tag: &str) -> ImageRef {
    format!("{host}/{repo_tag}").parse().unwrap()
}

fn uploaded(r: &oci::PushReport) -> usize {
    r.count(|o| *o == BlobOutcome::Uploaded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_image_is_seen_by_skopeo_and_umoci_and_serves_http() {
    let reg = support::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let img = image(
        &dir.path().join("cache"),
        &["/app/hello", "serve", "127.0.0.1:0"],
    );
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    let report = client
        .push(
            &target(&reg.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.digest, img.manifest_digest);
    assert_eq!(report.tag_status, TagStatus::Created);
    assert_eq!(uploaded(&report), 2);
    assert_eq!(
        report.bytes_uploaded,
        img.layers[0].descriptor.size + img.config.len() as u64
    );
    assert_eq!(
        report.reference,
        format!("{}/team/hello@{}", reg.host(), img.manifest_digest)
    );

    let skopeo = tool("skopeo", "skopeo");
    let docker_ref = format!("docker://{}/team/hello:v1", reg.host());
    let inspect = run(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false"])
        .arg(&docker_ref));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], img.manifest_digest.to_string(), "{inspect}");
    assert_eq!(v["Labels"]["org.opencontainers.image.revision"], "c0ffee");
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    let config = run(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false", "--raw", "--config"])
        .arg(&docker_ref));
    assert_eq!(config.as_bytes(), img.config.as_slice());
    let raw = run(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(&docker_ref));
    assert_eq!(
        raw.as_bytes(),
        img.manifest.as_slice(),
        "the registry stores our manifest bytes"
    );

    let layout = dir.path().join("copied");
    run(Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false"])
        .arg(&docker_ref)
        .arg(format!("oci:{}:v1", layout.display())));
    let bundle = dir.path().join("bundle");
    run(Command::new(tool("umoci", "umoci"))
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle));
    // The entrypoint's own arguments: it binds port 0 and prints where it listens.
    let mut server = Command::new(bundle.join("rootfs/app/hello"))
        .args(img_entrypoint_args())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answer = {
        use std::io::{BufRead, Read, Write};
        let mut first = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the server says where it listens: {first:?}"))
            .to_owned();
        let mut s = std::net::TcpStream::connect(addr.as_str()).unwrap();
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok\n"),
        "{answer:?}"
    );
}

fn img_entrypoint_args() -> [&'static str; 2] {
    ["serve", "127.0.0.1:0"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_push_twice_uploads_no_blob() {
    let reg = support::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    let t = target(&reg.host(), "team/hello:v1");
    client
        .push(&t, &img, &PushOptions::default())
        .await
        .unwrap();
    let again = client
        .push(&t, &img, &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(again.tag_status, TagStatus::Unchanged);
    assert_eq!((uploaded(&again), again.bytes_uploaded), (0, 0));
    // A new client (a new `rel build` run) and a new tag: blobs answer the HEAD, nothing is sent.
    let fresh = Registry::new(&reg.host(), None, options()).unwrap();
    let other_tag = fresh
        .push(
            &target(&reg.host(), "team/hello:v2"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(other_tag.tag_status, TagStatus::Created);
    assert_eq!(other_tag.count(|o| *o == BlobOutcome::AlreadyPresent), 2);
    assert_eq!(other_tag.bytes_uploaded, 0);
    assert_eq!(
        fresh.manifest_digest("team/hello", "v2").await.unwrap(),
        Some(img.manifest_digest.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_with_another_digest_is_refused_naming_both() {
    let reg = support::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let first = image(&dir.path().join("cache"), &["/app/hello"]);
    let second = image(&dir.path().join("cache"), &["/app/hello", "--other"]);
    assert_ne!(first.manifest_digest, second.manifest_digest);
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    let t = target(&reg.host(), "team/hello:0.4.0");
    client
        .push(&t, &first, &PushOptions::default())
        .await
        .unwrap();
    let err = client
        .push(&t, &second, &PushOptions::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::TagExists { .. }), "{msg}");
    assert!(
        msg.contains(&first.manifest_digest.to_string())
            && msg.contains(&second.manifest_digest.to_string()),
        "{msg}"
    );
    assert_eq!(
        client.manifest_digest("team/hello", "0.4.0").await.unwrap(),
        Some(first.manifest_digest.clone()),
        "the tag did not move"
    );

    let moved = client
        .push(
            &t,
            &second,
            &PushOptions {
                allow_overwrite: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        moved.tag_status,
        TagStatus::Overwritten {
            previous: first.manifest_digest.clone()
        }
    );
    assert_eq!(
        client.manifest_digest("team/hello", "0.4.0").await.unwrap(),
        Some(second.manifest_digest.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_repository_mounts_the_layer() {
    let reg = support::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    client
        .push(
            &target(&reg.host(), "team/identity:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    let opts = PushOptions {
        mount_from: vec!["team/identity".into()],
        ..Default::default()
    };
    let report = client
        .push(&target(&reg.host(), "team/node:v1"), &img, &opts)
        .await
        .unwrap();
    assert_eq!(
        report.count(|o| matches!(o, BlobOutcome::Mounted { from } if from == "team/identity")),
        2,
        "{report:?}"
    );
    assert_eq!(report.bytes_uploaded, 0);
    // Several candidates: the one that has the blob is found and used.
    let opts = PushOptions {
        mount_from: vec![
            "team/empty".into(),
            "team/node".into(),
            "team/identity".into(),
        ],
        ..Default::default()
    };
    let report = client
        .push(&target(&reg.host(), "team/fourth:v1"), &img, &opts)
        .await
        .unwrap();
    assert_eq!(
        report.count(|o| matches!(o, BlobOutcome::Mounted { from } if from == "team/node")),
        2,
        "{report:?}"
    );
    // A candidate that lacks the blob falls back to an upload (202 on the mount request).
    let other = image(&dir.path().join("cache"), &["/app/hello", "x"]);
    let opts = PushOptions {
        mount_from: vec!["team/empty".into()],
        ..Default::default()
    };
    let report = client
        .push(&target(&reg.host(), "team/third:v1"), &other, &opts)
        .await
        .unwrap();
    assert_eq!(uploaded(&report), 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_takes_env_credentials_and_docker_config() {
    let reg = support::Registry::start_with_auth("ci", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);

    let anonymous = Registry::new(&reg.host(), None, options()).unwrap();
    let err = anonymous
        .push(
            &target(&reg.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("http://{}/v2/team/hello/manifests/v1", reg.host())),
        "names the endpoint: {err}"
    );

    let from_env = CredentialSources {
        username: Some("ci".into()),
        password: Some(Secret::new("s3cret-pass")),
        ..Default::default()
    };
    let creds = resolve_credentials(&reg.host(), &from_env).unwrap();
    let client = Registry::new(&reg.host(), creds, options()).unwrap();
    let report = client
        .push(
            &target(&reg.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(uploaded(&report), 2);

    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret-pass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let from_config = CredentialSources {
        docker_config: Some(docker.join("config.json")),
        ..Default::default()
    };
    let creds = resolve_credentials(&reg.host(), &from_config).unwrap();
    assert!(!format!("{creds:?}").contains("s3cret-pass"));
    let client = Registry::new(&reg.host(), creds, options()).unwrap();
    let report = client
        .push(
            &target(&reg.host(), "team/hello:v2"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.count(|o| *o == BlobOutcome::AlreadyPresent), 2);

    let wrong = CredentialSources {
        username: Some("ci".into()),
        password: Some(Secret::new("nope")),
        ..Default::default()
    };
    let client = Registry::new(
        &reg.host(),
        resolve_credentials(&reg.host(), &wrong).unwrap(),
        options(),
    )
    .unwrap();
    let err = client
        .push(
            &target(&reg.host(), "team/hello:v3"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_challenges_are_answered_and_tokens_cached_per_scope() {
    let reg = support::Registry::start();
    let proxy = Proxy::start(
        reg.port,
        vec![],
        Some(BearerAuth {
            user: "robot",
            password: "tok-pass",
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let creds = oci::Credentials {
        username: "robot".into(),
        password: Secret::new("tok-pass"),
    };
    let client = Registry::new(&proxy.host(), Some(creds), options()).unwrap();
    let report = client
        .push(
            &target(&proxy.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(uploaded(&report), 2);
    let tokens = proxy
        .stats
        .token_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=2).contains(&tokens),
        "one token per scope, not per request: {tokens}"
    );
    // The mount needs pull on the source repository too: a token for both scopes.
    let opts = PushOptions {
        mount_from: vec!["team/hello".into()],
        ..Default::default()
    };
    let report = client
        .push(&target(&proxy.host(), "team/other:v1"), &img, &opts)
        .await
        .unwrap();
    assert_eq!(
        report.count(|o| matches!(o, BlobOutcome::Mounted { .. })),
        2,
        "{report:?}"
    );

    let bad = oci::Credentials {
        username: "robot".into(),
        password: Secret::new("wrong"),
    };
    let client = Registry::new(&proxy.host(), Some(bad), options()).unwrap();
    let err = client
        .push(
            &target(&proxy.host(), "team/hello:v2"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Token { .. }), "{err}");
    assert!(
        err.to_string().contains("/token"),
        "names the endpoint: {err}"
    );
}

async fn push_through_fault(fault: Fault) -> (oci::PushReport, usize) {
    let reg = support::Registry::start();
    let proxy = Proxy::start(reg.port, vec![fault], None).await;
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let client = Registry::new(&proxy.host(), None, options()).unwrap();
    let report = client
        .push(
            &target(&proxy.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        client.manifest_digest("team/hello", "v1").await.unwrap(),
        Some(img.manifest_digest.clone())
    );
    (
        report,
        proxy.stats.faults.load(std::sync::atomic::Ordering::SeqCst),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_on_the_blob_upload_is_retried() {
    let fault = Fault {
        kind: FaultKind::Unavailable,
        method: "PUT",
        path_contains: "/blobs/uploads/",
        times: 1,
    };
    let (report, faults) = push_through_fault(fault).await;
    assert_eq!(faults, 1);
    assert!(report.retries >= 1, "{report:?}");
    assert_eq!(uploaded(&report), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried() {
    let fault = Fault {
        kind: FaultKind::Drop,
        method: "HEAD",
        path_contains: "/blobs/sha256:",
        times: 2,
    };
    let (report, faults) = push_through_fault(fault).await;
    assert_eq!(faults, 2);
    assert!(report.retries >= 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_failed_at_the_manifest_is_finished_without_reuploading() {
    let reg = support::Registry::start();
    // The manifest PUT fails more often than the client retries.
    let fault = Fault {
        kind: FaultKind::Unavailable,
        method: "PUT",
        path_contains: "/manifests/",
        times: 10,
    };
    let proxy = Proxy::start(reg.port, vec![fault], None).await;
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let client = Registry::new(&proxy.host(), None, options()).unwrap();
    let err = client
        .push(
            &target(&proxy.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("/v2/team/hello/manifests/v1"),
        "names the endpoint: {err}"
    );

    let direct = Registry::new(&reg.host(), None, options()).unwrap();
    let report = direct
        .push(
            &target(&reg.host(), "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.tag_status, TagStatus::Created);
    assert_eq!(
        (uploaded(&report), report.bytes_uploaded),
        (0, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_fails_naming_the_endpoint_after_bounded_retries() {
    // A listener that hangs up on every connection: the registry is never reached.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let hang_up = tokio::spawn(async move {
        loop {
            if let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir.path().join("cache"), &["/app/hello"]);
    let client = Registry::new(&host, None, options()).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .push(
            &target(&host, "team/hello:v1"),
            &img,
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("HEAD http://{host}/v2/team/hello/manifests/v1")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    hang_up.abort();
}

/// `build_and_push`, checking what its watch saw: the image (before the push ended) and every
/// layer byte the push uploaded.
async fn publish(host: &str, cache: &Path, repo_tag: &str) -> oci::Published {
    let client = Registry::new(host, None, options()).unwrap();
    let spec = ImageSpec::new(vec!["/app/hello".into()], MTIME);
    let (tell, told) = tokio::sync::oneshot::channel();
    let watch = oci::Watch {
        image: Some(tell),
        ..Default::default()
    };
    let sent = watch.sent.clone();
    let published = oci::build_and_push(
        &LayerCache::new(cache),
        &LayerSpec::binary(static_binary(), "hello", MTIME),
        None,
        &spec,
        &client,
        &target(host, repo_tag),
        &PushOptions::default(),
        watch,
    )
    .await
    .unwrap();
    assert_eq!(told.await.unwrap(), published.image);
    let layer_bytes = published
        .push
        .blobs
        .iter()
        .filter(|b| b.outcome == oci::BlobOutcome::Uploaded && b.digest == published.layer.digest)
        .map(|b| b.size)
        .sum::<u64>();
    assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), layer_bytes);
    published
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_and_push_streams_a_new_layer_and_skips_it_next_time() {
    let reg = support::Registry::start();
    let proxy = Proxy::start(reg.port, vec![], None).await;
    let dir = tempfile::tempdir().unwrap();
    let cold = publish(&proxy.host(), &dir.path().join("cache"), "team/hello:v1").await;
    assert_eq!(cold.cache, oci::CacheOutcome::Built);
    let log = proxy.stats.log.lock().unwrap().clone();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("PATCH /v2/team/hello/blobs/uploads/"))
            .count(),
        1,
        "{log:#?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("POST /v2/team/hello/blobs/uploads/"))
            .count(),
        2,
        "layer + config: {log:#?}"
    );
    assert_eq!(uploaded(&cold.push), 2, "{:?}", cold.push);
    assert_eq!(
        cold.push.bytes_uploaded,
        cold.layer.size + cold.image.config.len() as u64
    );
    // Same digest as the plain path (layer first, push after).
    let plain = image(&dir.path().join("other-cache"), &["/app/hello"]);
    assert_eq!(cold.layer.digest, plain.layers[0].descriptor.digest);
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    assert!(
        client
            .blob_exists("team/hello", &cold.layer.digest)
            .await
            .unwrap(),
        "the streamed blob is committed"
    );
    let raw = run(Command::new(tool("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/team/hello:v1", reg.host())));
    assert_eq!(raw.as_bytes(), cold.image.manifest.as_slice());

    let warm = publish(&proxy.host(), &dir.path().join("cache"), "team/hello:v1").await;
    assert_eq!(warm.cache, oci::CacheOutcome::Hit);
    assert_eq!(warm.push.tag_status, TagStatus::Unchanged);
    assert_eq!((uploaded(&warm.push), warm.push.bytes_uploaded), (0, 0));
    // The speculative build that the cache hit cancelled left no temporary file behind.
    let blobs: Vec<String> = std::fs::read_dir(dir.path().join("cache/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs, [cold.layer.digest.hex().to_owned()], "{blobs:?}");

    // A fresh machine (empty cache) rebuilding the same bits: same digest, the tag is unchanged.
    let fresh = publish(
        &proxy.host(),
        &dir.path().join("fresh-cache"),
        "team/hello:v1",
    )
    .await;
    assert_eq!(fresh.cache, oci::CacheOutcome::Built);
    assert_eq!(fresh.push.tag_status, TagStatus::Unchanged);
    assert_eq!(fresh.image.manifest_digest, cold.image.manifest_digest);

    // The immutable-tag rule holds on this path too.
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    let other = image(&dir.path().join("cache"), &["/app/hello", "--flag"]);
    client
        .push(
            &target(&reg.host(), "team/hello:v9"),
            &other,
            &PushOptions::default(),
        )
        .await
        .unwrap();
    let spec = ImageSpec::new(vec!["/app/hello".into()], MTIME);
    let err = oci::build_and_push(
        &LayerCache::new(dir.path().join("third-cache")),
        &LayerSpec::binary(static_binary(), "hello", MTIME),
        None,
        &spec,
        &client,
        &target(&reg.host(), "team/hello:v9"),
        &PushOptions::default(),
        oci::Watch::default(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&other.manifest_digest.to_string())
            && msg.contains(&cold.image.manifest_digest.to_string()),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_streamed_upload_falls_back_to_uploading_the_finished_blob() {
    let reg = support::Registry::start();
    let fault = Fault {
        kind: FaultKind::Unavailable,
        method: "PATCH",
        path_contains: "/blobs/uploads/",
        times: 1,
    };
    let proxy = Proxy::start(reg.port, vec![fault], None).await;
    let dir = tempfile::tempdir().unwrap();
    let published = publish(&proxy.host(), &dir.path().join("cache"), "team/hello:v1").await;
    assert_eq!(
        proxy.stats.faults.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(uploaded(&published.push), 2, "{:?}", published.push);
    let client = Registry::new(&reg.host(), None, options()).unwrap();
    assert_eq!(
        client.manifest_digest("team/hello", "v1").await.unwrap(),
        Some(published.image.manifest_digest.clone())
    );
}
