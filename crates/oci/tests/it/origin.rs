//! Where credentials may go: only to the registry's own origin, never over a downgrade to plain
//! http, and to a token realm only over https (plain http only for a plain-HTTP registry).

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use oci::registry::{Backoff, ClientOptions, Credentials, Registry, Secret};
use oci::{Digest, RegistryError};

use crate::fake::{Answer, Fake, PrivateCa};

const HOST: &str = "registry.test";

fn options() -> ClientOptions {
    ClientOptions {
        retry: Backoff::exponential(3, Duration::from_millis(10))
            .with_max_delay(Duration::from_millis(20)),
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn credentials() -> Credentials {
    Credentials {
        username: "ci".into(),
        password: Secret::new("hunter2"),
    }
}

fn bytes(data: &'static [u8]) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::iter([Ok(bytes::Bytes::from_static(data))])
}

/// A registry that wants basic auth and sends uploads to `storage` (another origin).
fn basic_registry_sending_uploads_to(storage: String) -> Answer {
    Arc::new(move |method: &Method, target: &str, auth: Option<&str>| {
        if auth.is_none() {
            return (
                401,
                vec![("www-authenticate".into(), r#"Basic realm="test""#.into())],
            );
        }
        if method == Method::POST && target.starts_with("/v2/team/app/blobs/uploads/") {
            let location = format!("{storage}/upload/1?_state=opaque");
            return (202, vec![("location".into(), location)]);
        }
        (404, vec![])
    })
}

fn storage() -> Answer {
    Arc::new(|method: &Method, _target: &str, _auth: Option<&str>| {
        if method == Method::PATCH {
            let location = "/upload/1?_state=next".to_owned();
            return (202, vec![("location".into(), location)]);
        }
        (201, vec![])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_location_on_another_origin_gets_no_authorization() {
    let storage = Fake::http(storage()).await;
    let registry = Fake::http(basic_registry_sending_uploads_to(format!(
        "http://{}",
        storage.addr
    )))
    .await;
    let client = Registry::new(&registry.addr.to_string(), Some(credentials()), options()).unwrap();
    let upload = client.begin_upload("team/app").await.unwrap();
    let upload = client
        .stream_upload(upload, bytes(b"layer bytes"), 11)
        .await
        .unwrap();
    client
        .commit_upload(&upload, &Digest::of(b"layer bytes"))
        .await
        .unwrap();

    // The registry itself got the credentials (so this test can tell the difference)...
    let at_registry = registry.seen();
    assert!(
        at_registry.iter().any(|s| s
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))),
        "{at_registry:?}"
    );
    // ...and the storage origin saw the PATCH and PUT, without any Authorization.
    let at_storage = storage.seen();
    let methods: Vec<&str> = at_storage.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["PATCH", "PUT"], "{at_storage:?}");
    assert!(
        at_storage[1]
            .target
            .starts_with("/upload/1?_state=next&digest=sha256%3A"),
        "a relative Location is resolved against the URL that sent it: {at_storage:?}"
    );
    assert!(
        at_storage.iter().all(|s| s.authorization.is_none()),
        "credentials leaked to another origin: {at_storage:?}"
    );
}

async fn tls_registry(answer: Answer) -> (Fake, PrivateCa, ClientOptions) {
    let ca = PrivateCa::new(HOST);
    let fake = Fake::https(answer, ca.chain.clone(), ca.key.clone()).await;
    let mut options = options().with_ca_pem(ca.ca_pem.as_bytes());
    options.resolve = vec![(HOST.to_owned(), fake.addr)];
    (fake, ca, options)
}

fn registry_name(fake: &Fake) -> String {
    format!("{HOST}:{}", fake.addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_may_not_send_an_upload_to_plain_http() {
    let storage = Fake::http(storage()).await;
    let answer = basic_registry_sending_uploads_to(format!("http://{}", storage.addr));
    let (registry, _ca, options) = tls_registry(answer).await;
    let client = Registry::new(&registry_name(&registry), Some(credentials()), options).unwrap();
    let err = client.begin_upload("team/app").await.unwrap_err();
    assert!(matches!(err, RegistryError::Downgrade { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("plain http"), "{shown}");
    assert!(
        !shown.contains("opaque"),
        "the upload state is redacted: {shown}"
    );
    assert!(storage.seen().is_empty(), "{:?}", storage.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_may_not_send_credentials_to_a_plain_http_realm() {
    let tokens = Fake::http(Arc::new(|_: &Method, _: &str, _: Option<&str>| {
        (200, vec![])
    }))
    .await;
    let realm = format!("http://{}/token", tokens.addr);
    let answer: Answer = Arc::new(move |_: &Method, _: &str, _: Option<&str>| {
        (
            401,
            vec![(
                "www-authenticate".into(),
                format!(r#"Bearer realm="{realm}",service="registry.test""#),
            )],
        )
    });
    let (registry, _ca, options) = tls_registry(answer).await;
    let client = Registry::new(&registry_name(&registry), Some(credentials()), options).unwrap();
    let err = client.manifest_digest("team/app", "v1").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::InsecureRealm { .. }),
        "{err:?}"
    );
    assert!(tokens.seen().is_empty(), "{:?}", tokens.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_when_given_and_its_absence_is_named_at_once() {
    let answer: Answer = Arc::new(|_: &Method, _: &str, _: Option<&str>| (404, vec![]));
    let (registry, _ca, with_ca) = tls_registry(answer).await;
    let name = registry_name(&registry);

    let without_ca = ClientOptions {
        ca_pem: Vec::new(),
        ..with_ca.clone()
    };
    let client = Registry::new(&name, None, without_ca).unwrap();
    let err = client.manifest_digest("team/app", "v1").await.unwrap_err();
    let RegistryError::Tls { cause, .. } = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(cause.contains("certificate"), "the cause is named: {cause}");
    assert!(cause.contains("UnknownIssuer"), "{cause}");
    assert_eq!(
        registry.connections(),
        1,
        "a certificate failure is not retried"
    );
    assert!(
        miette::Diagnostic::help(&err).is_some_and(|h| h.to_string().contains("CA")),
        "the help says how to fix it"
    );

    let client = Registry::new(&name, None, with_ca).unwrap();
    assert_eq!(
        client.manifest_digest("team/app", "v1").await.unwrap(),
        None
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let options = ClientOptions::default().with_ca_pem(&b"not a certificate"[..]);
    let err = Registry::new(HOST, None, options).err().expect("an error");
    assert!(
        matches!(err, RegistryError::CaCertificate { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_may_not_redirect_to_plain_http() {
    let elsewhere = Fake::http(Arc::new(|_: &Method, _: &str, _: Option<&str>| {
        (200, vec![])
    }))
    .await;
    let to = format!("http://{}/v2/team/app/manifests/v1", elsewhere.addr);
    let answer: Answer = Arc::new(move |_: &Method, _: &str, _: Option<&str>| {
        (307, vec![("location".into(), to.clone())])
    });
    let (registry, _ca, options) = tls_registry(answer).await;
    let client = Registry::new(&registry_name(&registry), None, options).unwrap();
    let err = client.manifest_digest("team/app", "v1").await.unwrap_err();
    assert!(
        err.to_string().contains("from https to plain http"),
        "{err:?}"
    );
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_carries_no_authorization() {
    let storage = Fake::http(Arc::new(|_: &Method, _: &str, _: Option<&str>| {
        (404, vec![])
    }))
    .await;
    let to = format!("http://{}/v2/team/app/manifests/v1", storage.addr);
    let registry = Fake::http(Arc::new(move |_: &Method, _: &str, auth: Option<&str>| {
        if auth.is_none() {
            return (
                401,
                vec![("www-authenticate".into(), r#"Basic realm="test""#.into())],
            );
        }
        (307, vec![("location".into(), to.clone())])
    }))
    .await;
    let client = Registry::new(&registry.addr.to_string(), Some(credentials()), options()).unwrap();
    assert_eq!(
        client.manifest_digest("team/app", "v1").await.unwrap(),
        None
    );
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1, "{at_storage:?}");
    assert!(at_storage[0].authorization.is_none(), "{at_storage:?}");
    assert!(
        registry.seen().iter().any(|s| s.authorization.is_some()),
        "the registry itself got the credentials"
    );
}
