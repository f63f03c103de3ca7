//! Attaching artifacts and cosign signatures to an image on Debian's `docker-registry`, which has
//! no referrers API: the `sha256-<hex>` fallback index and the `sha256-<hex>.sig` manifest are
//! read, extended and written, so two writers at once must not lose each other's entries.

use std::collections::BTreeMap;
use std::time::Duration;

use oci::Digest;
use oci::registry::{Artifact, ClientOptions, ReferrersSource, Registry};
use oci::spec::{Descriptor, MEDIA_TYPE_MANIFEST};

use crate::proxy::Proxy;
use crate::support;

const REPO: &str = "team/app";

fn client(host: &str) -> Registry {
    Registry::new(
        host,
        None,
        ClientOptions {
            retry: retry::Backoff {
                attempts: 3,
                initial: Duration::from_millis(10),
                factor: 2,
                max_delay: Duration::from_millis(50),
                jitter: retry::Jitter::None,
            },
            timeout: Duration::from_secs(20),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

/// A subject the artifacts name (the fallback does not need the image itself).
fn subject(name: &str) -> Descriptor {
    let bytes = format!("{{\"subject\":\"{name}\"}}");
    Descriptor::new(
        MEDIA_TYPE_MANIFEST,
        Digest::of(bytes.as_bytes()),
        bytes.len() as u64,
    )
}

fn artifact<'a>(kind: &'a str, content: &'a [u8]) -> Artifact<'a> {
    Artifact {
        artifact_type: kind,
        media_type: kind,
        content,
        annotations: BTreeMap::from([("dev.rel.test".to_owned(), kind.to_owned())]),
    }
}

async fn listed(client: &Registry, subject: &Descriptor) -> Vec<Digest> {
    let (list, source) = client.referrers(REPO, &subject.digest).await.unwrap();
    assert_eq!(source, ReferrersSource::FallbackTag);
    list.into_iter().map(|r| r.digest).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_attachers_at_once_both_end_up_in_the_fallback_index() {
    let reg = support::Registry::start();
    let (a, b) = (client(&reg.host()), client(&reg.host()));
    for round in 0..8 {
        let subject = subject(&format!("round {round}"));
        let (ca, cb) = (format!("a {round}"), format!("b {round}"));
        let ours_a = [
            artifact("application/vnd.test.one", ca.as_bytes()),
            artifact("application/vnd.test.two", b"shared"),
        ];
        let ours_b = [artifact("application/vnd.test.one", cb.as_bytes())];
        let (from_a, from_b) = tokio::join!(
            a.attach_all(REPO, &subject, &ours_a),
            b.attach_all(REPO, &subject, &ours_b),
        );
        let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
        let index = listed(&a, &subject).await;
        for d in from_a.iter().chain(&from_b) {
            assert!(
                index.contains(d),
                "round {round}: {d} is missing from the fallback index {index:?}"
            );
        }
        assert_eq!(index.len(), 3, "round {round}: {index:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_signers_at_once_both_end_up_in_the_signature_manifest() {
    let reg = support::Registry::start();
    let (a, b) = (client(&reg.host()), client(&reg.host()));
    for round in 0..8 {
        let subject = subject(&format!("signed {round}")).digest;
        let payload = oci::registry::simple_signing_payload("127.0.0.1/team/app", &subject);
        let (sa, sb) = (format!("c2lnIGE{round}"), format!("c2lnIGI{round}"));
        let (ra, rb) = tokio::join!(
            a.push_cosign_signature(REPO, &subject, &payload, &sa),
            b.push_cosign_signature(REPO, &subject, &payload, &sb),
        );
        ra.unwrap();
        rb.unwrap();
        let sigs: Vec<String> = a
            .cosign_signatures(REPO, &subject)
            .await
            .unwrap()
            .into_iter()
            .map(|(p, s)| {
                assert_eq!(p, payload);
                s
            })
            .collect();
        assert!(
            sigs.contains(&sa) && sigs.contains(&sb),
            "round {round}: {sigs:?}"
        );
        assert_eq!(sigs.len(), 2, "round {round}: {sigs:?}");
    }
}

/// What signing one image costs in requests (the bench's time is mostly round trips): the
/// signature and both attachments of a first image, then of a second image in the same
/// repository, which reuses the empty config it already put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_and_attaching_an_image_takes_few_requests() {
    let reg = support::Registry::start();
    let proxy = Proxy::start(reg.port, Vec::new(), None).await;
    let client = client(&proxy.host());
    let mut counts = Vec::new();
    for name in ["first", "second"] {
        let subject = subject(name);
        let payload = oci::registry::simple_signing_payload("127.0.0.1/team/app", &subject.digest);
        let before = proxy
            .stats
            .requests
            .load(std::sync::atomic::Ordering::SeqCst);
        let artifacts = [
            artifact("application/vnd.test.provenance", name.as_bytes()),
            artifact("application/vnd.test.sbom", b"sbom"),
        ];
        let (sig, attached) = tokio::join!(
            client.push_cosign_signature(REPO, &subject.digest, &payload, "c2ln"),
            client.attach_all(REPO, &subject, &artifacts),
        );
        sig.unwrap();
        assert_eq!(attached.unwrap().len(), 2);
        counts.push(
            proxy
                .stats
                .requests
                .load(std::sync::atomic::Ordering::SeqCst)
                - before,
        );
    }
    let log = proxy.stats.log.lock().unwrap().join("\n");
    // Signature: POST+PUT payload, POST+PUT config, GET .sig, PUT manifest, GET back = 7.
    // Attachments: POST+PUT of two layers and the empty config, two manifests, GET index,
    // PUT index, GET back = 11. No HEAD of a blob we are about to send anyway.
    assert_eq!(counts[0], 18, "first image: {counts:?}\n{log}");
    // The second image: the empty config is known (-2) and the sbom layer "sbom" too (-2).
    assert_eq!(counts[1], 14, "second image: {counts:?}\n{log}");
    assert!(!log.contains("HEAD "), "{log}");
}

/// Upload sessions opened ahead by another client (as `rel build --push` does while cargo runs)
/// make each small blob one PUT: signing and attaching a first image then sends no POST, and
/// the empty config put ahead is not sent again. The session left over is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_opened_ahead_make_each_blob_one_request() {
    let reg = support::Registry::start();
    let proxy = Proxy::start(reg.port, Vec::new(), None).await;
    let ahead = client(&proxy.host());
    // The empty config first: a put takes a spare session when there is one.
    ahead
        .put_blob(REPO, oci::registry::EMPTY_CONFIG)
        .await
        .unwrap();
    ahead.open_spare_uploads(REPO, 5).await.unwrap();
    let client = client(&proxy.host());
    client.adopt(ahead.take_ahead());
    assert!(ahead.take_ahead().is_empty());

    let subject = subject("ahead");
    let payload = oci::registry::simple_signing_payload("127.0.0.1/team/app", &subject.digest);
    let artifacts = [
        artifact("application/vnd.test.provenance", b"provenance"),
        artifact("application/vnd.test.sbom", b"sbom"),
    ];
    let before = proxy.stats.log.lock().unwrap().len();
    let (sig, attached) = tokio::join!(
        client.push_cosign_signature(REPO, &subject.digest, &payload, "c2ln"),
        client.attach_all(REPO, &subject, &artifacts),
    );
    sig.unwrap();
    let attached = attached.unwrap();
    let log = proxy.stats.log.lock().unwrap()[before..].join("\n");
    // 18 (see above) less four POSTs and the empty config's POST and PUT.
    assert_eq!(log.lines().count(), 12, "{log}");
    assert!(!log.contains("POST "), "{log}");
    // What went up is there.
    let (manifest, content) = client.artifact_content(REPO, &attached[1]).await.unwrap();
    assert_eq!(content, b"sbom");
    assert_eq!(
        manifest.subject.map(|s| s.digest),
        Some(subject.digest.clone())
    );
    assert_eq!(
        client
            .cosign_signatures(REPO, &subject.digest)
            .await
            .unwrap(),
        vec![(payload, "c2ln".to_owned())]
    );

    // One of the five sessions is left: cancelling it sends one DELETE.
    let before = proxy.stats.log.lock().unwrap().len();
    client.abort_spare_uploads().await;
    let log = proxy.stats.log.lock().unwrap()[before..].join("\n");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.starts_with("DELETE /v2/team/app/blobs/uploads/"),
        "{log}"
    );
}

/// A session opened ahead that fails (the registry forgot it, or answers 503 until the retries
/// are spent) costs the blob nothing: it goes up in a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_session_opened_ahead_falls_back_to_a_new_one() {
    let reg = support::Registry::start();
    let proxy = Proxy::start(
        reg.port,
        vec![crate::proxy::Fault {
            kind: crate::proxy::FaultKind::Unavailable,
            method: "PUT",
            path_contains: "/blobs/uploads/",
            // The client's three attempts.
            times: 3,
        }],
        None,
    )
    .await;
    let client = client(&proxy.host());
    client.open_spare_uploads(REPO, 1).await.unwrap();
    let digest = client.put_blob(REPO, b"payload").await.unwrap();
    assert_eq!(
        proxy.stats.faults.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert_eq!(client.get_blob(REPO, &digest).await.unwrap(), b"payload");
    let log = proxy.stats.log.lock().unwrap().join("\n");
    assert!(
        log.contains("POST /v2/team/app/blobs/uploads/?digest="),
        "{log}"
    );
    assert!(client.take_ahead().is_empty());
}
