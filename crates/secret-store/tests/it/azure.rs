use std::sync::atomic::Ordering;
use std::time::Duration;

use secret_store::{
    AzureError, AzureKeyVaultStore, AzureOptions, Credential, ExposeSecret, ManagedIdentitySource,
    SecretName, SecretStore, SecretString, StoreError,
};

use crate::server::{
    self, CLIENT_ID, CLIENT_SECRET, FEDERATED_TOKEN, IDENTITY_HEADER, Server, TENANT,
};
use crate::{SECRETS, assert_no_secret, assert_no_secret_debug};

fn options() -> AzureOptions {
    AzureOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: secret_store::Backoff::exponential(3, Duration::from_millis(10))
            .with_max_delay(Duration::from_millis(40)),
        disable_challenge_resource_verification: true,
        allow_insecure_http: true,
        ..AzureOptions::default()
    }
}

fn client_secret(s: &Server, secret: &str) -> Credential {
    Credential::ClientSecret {
        authority_host: s.url.clone(),
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(secret.to_owned()),
    }
}

fn store(s: &Server, cred: Credential) -> AzureKeyVaultStore {
    AzureKeyVaultStore::new(&s.url, cred, options()).unwrap()
}

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[test]
fn azure_put_get_and_list_versions_through_the_challenge_with_a_client_secret() {
    let s = server::start();
    let kv = store(&s, client_secret(&s, CLIENT_SECRET));
    let n = name("rel-genesis-staging");
    let v1 = kv.put(&n, &secret(SECRETS[0])).unwrap();
    let v2 = kv.put(&n, &secret(SECRETS[1])).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(v1.as_str().len(), 32);
    let latest = kv.get(&n, None).unwrap();
    assert_eq!(
        (&latest.version, latest.value.expose_secret()),
        (&v2, SECRETS[1])
    );
    assert_eq!(
        kv.get(&n, Some(&v1)).unwrap().value.expose_secret(),
        SECRETS[0]
    );
    let versions = kv.versions(&n).unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.clone())
            .collect::<Vec<_>>(),
        [v1, v2],
        "oldest first, across pages"
    );
    assert!(
        versions
            .iter()
            .all(|v| v.enabled == Some(true) && v.created.is_some())
    );
    // One challenge, one token (cached afterwards), and the probe carried no value.
    assert_eq!(s.state.issued.lock().unwrap().len(), 1);
    assert_eq!(*s.state.unauthorized_body_lens.lock().unwrap(), [0]);
    let form = s.state.token_forms.lock().unwrap()[0].clone();
    assert_eq!(form["scope"], "https://vault.azure.net/.default");
    assert_eq!(form["grant_type"], "client_credentials");
    assert_no_secret_debug(&kv);
    assert_no_secret_debug(&latest);
}

#[test]
fn azure_workload_identity_sends_the_federated_token_as_client_assertion() {
    let s = server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, format!("{FEDERATED_TOKEN}\n")).unwrap();
    let cred = Credential::WorkloadIdentity {
        authority_host: s.url.clone(),
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        token_file: file.clone(),
    };
    let kv = store(&s, cred);
    let n = name("rel-master-key");
    kv.put(&n, &secret(SECRETS[1])).unwrap();
    assert_eq!(kv.get(&n, None).unwrap().value.expose_secret(), SECRETS[1]);
    let form = s.state.token_forms.lock().unwrap()[0].clone();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    assert_no_secret_debug(&kv);

    // A missing token file is a clear error naming the file.
    let cred = Credential::WorkloadIdentity {
        authority_host: s.url.clone(),
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        token_file: dir.path().join("missing"),
    };
    let err = store(&s, cred).get(&n, None).unwrap_err();
    assert!(
        matches!(err, StoreError::Azure(AzureError::TokenFile { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing"));
    assert_no_secret(&err);
}

#[test]
fn azure_managed_identity_from_imds_and_app_service() {
    let s = server::start();
    let imds = Credential::ManagedIdentity {
        source: ManagedIdentitySource::Imds {
            endpoint: format!("{}/msi/token", s.url),
        },
        client_id: Some("user-assigned-id".into()),
    };
    let kv = store(&s, imds);
    let n = name("memory-nodes-database-dsn");
    kv.put(&n, &secret(SECRETS[0])).unwrap();
    assert_eq!(kv.get(&n, None).unwrap().value.expose_secret(), SECRETS[0]);
    assert_eq!(
        s.state.msi_queries.lock().unwrap()[0]["client_id"],
        "user-assigned-id"
    );

    let app = Credential::ManagedIdentity {
        source: ManagedIdentitySource::AppService {
            endpoint: format!("{}/appsvc/token", s.url),
            header: SecretString::from(IDENTITY_HEADER.to_owned()),
        },
        client_id: None,
    };
    let kv = store(&s, app);
    assert_eq!(kv.get(&n, None).unwrap().value.expose_secret(), SECRETS[0]);
    assert_no_secret_debug(&kv);
    assert_eq!(s.state.issued.lock().unwrap().len(), 2);
}

#[test]
fn azure_names_and_sizes_are_checked_before_sending() {
    let s = server::start();
    let kv = store(&s, client_secret(&s, CLIENT_SECRET));
    for bad in ["rel_genesis", "a.b", "", "x/y"] {
        let err = SecretName::new(bad).unwrap_err();
        assert!(err.to_string().contains("not a valid secret name"), "{err}");
        assert_no_secret(&err);
    }
    let big = SecretString::from(format!("{}{}", SECRETS[0], "v".repeat(25 * 1024)));
    let err = kv.put(&name("big"), &big).unwrap_err();
    assert!(
        matches!(err, StoreError::ValueTooLarge { max: 25600, .. }),
        "{err:?}"
    );
    assert_no_secret(&err);
    assert_eq!(
        s.state.vault_requests.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}

#[test]
fn azure_server_errors_are_retried_with_backoff_then_reported() {
    let s = server::start();
    let kv = store(&s, client_secret(&s, CLIENT_SECRET));
    let n = name("flaky");
    kv.put(&n, &secret(SECRETS[0])).unwrap();
    let before = s.state.vault_requests.load(Ordering::SeqCst);
    s.state.fail_next.store(2, Ordering::SeqCst);
    assert_eq!(kv.get(&n, None).unwrap().value.expose_secret(), SECRETS[0]);
    assert_eq!(
        s.state.vault_requests.load(Ordering::SeqCst) - before,
        3,
        "two 503s, then success"
    );

    s.state.fail_next.store(100, Ordering::SeqCst);
    let before = s.state.vault_requests.load(Ordering::SeqCst);
    let err = kv.get(&n, None).unwrap_err();
    assert_eq!(
        s.state.vault_requests.load(Ordering::SeqCst) - before,
        3,
        "bounded to the retry policy's attempts"
    );
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Azure(AzureError::Service { status: 503, .. })
        ),
        "{err:?}"
    );
    assert!(
        msg.contains(&format!("GET {}/secrets/flaky", s.url)),
        "names the endpoint: {msg}"
    );
    assert_no_secret(&err);
}

#[test]
fn azure_connection_failures_name_the_endpoint_after_bounded_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let cred = Credential::ClientSecret {
        authority_host: url.clone(),
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: secret(CLIENT_SECRET),
    };
    let kv = AzureKeyVaultStore::new(&url, cred, options()).unwrap();
    let err = kv.get(&name("anything"), None).unwrap_err();
    match &err {
        StoreError::Azure(AzureError::Connection {
            endpoint, attempts, ..
        }) => {
            assert_eq!(*attempts, 3);
            assert_eq!(endpoint, &format!("GET {url}/secrets/anything"));
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(err.to_string().contains(&url));
    assert_no_secret(&err);
}

#[test]
fn azure_bad_client_secret_is_a_token_error_without_the_secret() {
    let s = server::start();
    let wrong = "cs-secret-value-91f0-but-wrong";
    let kv = store(&s, client_secret(&s, wrong));
    let err = kv.get(&name("x"), None).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Azure(AzureError::Token { status: 401, .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("AADSTS7000215") && msg.contains("oauth2/v2.0/token"),
        "{msg}"
    );
    assert!(!format!("{err} {err:?}").contains(wrong));
    assert_no_secret(&err);
}

#[test]
fn azure_challenge_for_a_foreign_resource_gets_no_token() {
    let s = server::start();
    let mut opts = options();
    opts.disable_challenge_resource_verification = false;
    let kv =
        AzureKeyVaultStore::new(&s.url, client_secret(&s, CLIENT_SECRET), opts.clone()).unwrap();
    let err = kv.get(&name("x"), None).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Azure(AzureError::ChallengeResourceMismatch { .. })
        ),
        "{err:?}"
    );
    assert!(
        s.state.token_forms.lock().unwrap().is_empty(),
        "no token was requested"
    );
    assert_no_secret(&err);
    // A challenge naming the vault's own host passes verification.
    *s.state.challenge_resource.lock().unwrap() = s.url.clone();
    let kv = AzureKeyVaultStore::new(&s.url, client_secret(&s, CLIENT_SECRET), opts).unwrap();
    let err = kv.get(&name("x"), None).unwrap_err();
    // ...and then the token server refuses the scope, which shows the scope came from the challenge.
    assert!(
        matches!(
            err,
            StoreError::Azure(AzureError::Token { status: 400, .. })
        ),
        "{err:?}"
    );
    let scope = s.state.token_forms.lock().unwrap()[0]["scope"].clone();
    assert_eq!(scope, format!("{}/.default", s.url));
}

#[test]
fn azure_missing_secret_is_not_found_and_has_no_versions() {
    let s = server::start();
    let kv = store(&s, client_secret(&s, CLIENT_SECRET));
    let err = kv.get(&name("nope"), None).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("Key Vault"));
    assert!(kv.versions(&name("nope")).unwrap().is_empty());
    assert_no_secret(&err);
}

#[test]
fn azure_vault_url_must_be_https_unless_opted_out() {
    let cred = || Credential::ClientSecret {
        authority_host: "https://login.microsoftonline.com".into(),
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: secret(CLIENT_SECRET),
    };
    for bad in [
        "http://kv.vault.azure.net",
        "ftp://kv",
        "https://kv.vault.azure.net/secrets/x",
        "not a url",
    ] {
        let err = AzureKeyVaultStore::new(bad, cred(), AzureOptions::default()).unwrap_err();
        assert!(
            matches!(err, AzureError::InvalidVaultUrl { .. }),
            "{bad}: {err:?}"
        );
        assert_no_secret(&err);
    }
    AzureKeyVaultStore::new(
        "https://kv-app-staging.vault.azure.net/",
        cred(),
        AzureOptions::default(),
    )
    .unwrap();
}

#[test]
fn credential_from_env_picks_the_standard_kinds_and_redacts() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = Credential::from_env(env(&[
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
    ]))
    .unwrap();
    assert!(
        matches!(&c, Credential::ClientSecret { authority_host, .. } if authority_host == "https://login.microsoftonline.com")
    );
    assert_no_secret_debug(&c);
    let c = Credential::from_env(env(&[
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_AUTHORITY_HOST", "https://login.example"),
    ]))
    .unwrap();
    assert!(
        matches!(&c, Credential::WorkloadIdentity { authority_host, .. } if authority_host == "https://login.example")
    );
    let c = Credential::from_env(env(&[
        ("IDENTITY_ENDPOINT", "http://localhost:42/msi/token"),
        ("IDENTITY_HEADER", IDENTITY_HEADER),
    ]))
    .unwrap();
    assert!(matches!(
        &c,
        Credential::ManagedIdentity {
            source: ManagedIdentitySource::AppService { .. },
            client_id: None
        }
    ));
    assert_no_secret_debug(&c);
    let c = Credential::from_env(env(&[])).unwrap();
    assert!(matches!(
        &c,
        Credential::ManagedIdentity {
            source: ManagedIdentitySource::Imds { .. },
            ..
        }
    ));
    let err = Credential::from_env(env(&[
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
        ("AZURE_CLIENT_ID", "c"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("AZURE_TENANT_ID"), "{err}");
    assert_no_secret(&err);
}

#[test]
fn azure_plain_http_goes_only_to_a_loopback_host_and_never_with_user_info() {
    let cred = || client_secret(&server::start(), CLIENT_SECRET);
    // In the first, `127.0.0.1:80` is user info: the real host is 10.0.0.2.
    for bad in [
        "http://127.0.0.1:80@10.0.0.2:5588",
        "http://localhost@kv.example:80",
        "http://kv.example:80",
        "http://127.0.0.1.kv.example",
        "https://user:pw@kv.vault.azure.net",
    ] {
        let err = AzureKeyVaultStore::new(bad, cred(), options()).unwrap_err();
        assert!(
            matches!(err, AzureError::InvalidVaultUrl { .. }),
            "{bad}: {err:?}"
        );
        assert!(!err.to_string().contains("pw@"), "{err}");
        assert!(!secret_store::is_loopback_http(bad), "{bad}");
    }
    for good in [
        "http://127.0.0.1:8200",
        "http://localhost:8200",
        "http://[::1]:8200",
    ] {
        AzureKeyVaultStore::new(good, cred(), options()).unwrap();
        assert!(secret_store::is_loopback_http(good), "{good}");
    }
}

#[test]
fn azure_a_2xx_answer_to_the_challenge_probe_is_an_error_not_a_push() {
    let s = server::start();
    s.state.probe_ok.store(true, Ordering::SeqCst);
    let kv = store(&s, client_secret(&s, CLIENT_SECRET));
    let err = kv
        .put(&name("rel-genesis"), &secret("genesis-envelope-value-8c1d"))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Azure(AzureError::Challenge { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("instead of a 401 challenge"),
        "{err}"
    );
    assert!(
        s.state.issued.lock().unwrap().is_empty(),
        "no token was asked for"
    );
    assert_no_secret(&err);
}

#[test]
fn azure_private_ca_is_trusted_when_given_and_a_certificate_failure_is_not_retried() {
    let (ca_pem, chain, key) = server::private_ca();
    let s = server::start_tls(chain, key);
    let https = AzureOptions {
        allow_insecure_http: false,
        ..options()
    };
    let kv =
        AzureKeyVaultStore::new(&s.url, client_secret(&s, CLIENT_SECRET), https.clone()).unwrap();
    let err = kv.get(&name("rel-genesis"), None).unwrap_err();
    let StoreError::Azure(AzureError::Tls { cause, .. }) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(cause.contains("UnknownIssuer"), "{cause}");
    assert_eq!(s.state.vault_requests.load(Ordering::SeqCst), 0);
    assert_eq!(
        s.state.connections.load(Ordering::SeqCst),
        1,
        "a certificate failure is not retried"
    );
    assert!(
        miette::Diagnostic::help(&err).is_some_and(|h| h.to_string().contains("CA")),
        "{err:?}"
    );

    // With the CA the request reaches the vault (which challenges it; the client secret
    // credential's authority is this TLS server too).
    let kv = AzureKeyVaultStore::new(
        &s.url,
        client_secret(&s, CLIENT_SECRET),
        https.with_ca_pem(ca_pem.into_bytes()),
    )
    .unwrap();
    let err = kv.get(&name("rel-genesis"), None).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { .. }),
        "the TLS connection works and the secret is simply absent: {err:?}"
    );
    assert!(s.state.vault_requests.load(Ordering::SeqCst) >= 2);
}
