//! The platform end to end: identity, the gateway and the worker as real processes.

mod harness;
mod roles;

use std::time::{Duration, Instant};

use harness::{
    NODE_CLIENT, NODE_SECRET, Options, Platform, SMOKE_CLIENT, SMOKE_SECRET, http, status, token,
};
use node::protocol::{QueryResponse, answer};
use service_runtime::token::{Claims, Signer, TokenClass};

async fn query(platform: &Platform, bearer: Option<&str>, query: &str) -> reqwest::Response {
    let mut request = http()
        .post(format!("{}/api/query", platform.gateway.url))
        .json(&serde_json::json!({"query": query}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_identity_gets_the_workers_answer_through_the_gateway() {
    let platform = Platform::start(Options::default());
    for (client, secret) in [(SMOKE_CLIENT, SMOKE_SECRET), (NODE_CLIENT, NODE_SECRET)] {
        let token = token(&platform.identity, client, secret).await;
        let resp = query(&platform, Some(&token), "count the nodes").await;
        assert_eq!(
            resp.status(),
            200,
            "gateway log:\n{}",
            platform.gateway.log()
        );
        let body: QueryResponse = resp.json().await.unwrap();
        assert_eq!(body.answer, answer("count the nodes"));
        assert_eq!(body.worker_id, "worker-test-1");
    }
    // Each answered query is audited (who asked, which worker answered).
    let conn = service_runtime::database::DatabaseUrl::from_path(&platform.db)
        .open_read_only()
        .unwrap();
    let rows: Vec<(String, String, String)> = conn
        .prepare("SELECT subject, class, worker_id FROM query_audit ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "smoke".into(),
                "service_account".into(),
                "worker-test-1".into()
            ),
            ("node-a".into(), "node".into(), "worker-test-1".into()),
        ]
    );
    for service in platform.services() {
        let version: serde_json::Value = http()
            .get(format!("{}/version", service.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(version["component"], service.name);
        assert_eq!(version["role"], service.name);
        assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
        assert!(version["git_commit"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_the_whole_path_works_and_plain_http_is_refused() {
    let mut platform = Platform::start(Options {
        tls: true,
        drain_delay_ms: 1_000,
        ..Options::default()
    });
    assert!(platform.gateway.url.starts_with("https://"));
    let token = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    // gateway -> identity's JWKS and gateway -> worker both over https, trusting UPSTREAM_CA_FILE.
    let resp = query(&platform, Some(&token), "over tls").await;
    assert_eq!(
        resp.status(),
        200,
        "gateway log:\n{}",
        platform.gateway.log()
    );
    let body: QueryResponse = resp.json().await.unwrap();
    assert_eq!(body.answer, answer("over tls"));
    for service in platform.services() {
        assert_eq!(
            status(&format!("{}/readyz", service.url)).await,
            200,
            "{}",
            service.name
        );
        let plain = service.url.replacen("https://", "http://", 1);
        assert_eq!(
            status(&format!("{plain}/healthz")).await,
            0,
            "{} answered plain HTTP",
            service.name
        );
    }
    // The drain sequence is the same over TLS.
    platform.worker.sigterm();
    platform
        .worker
        .wait_log("shutdown requested", Duration::from_secs(5));
    assert_eq!(
        status(&format!("{}/healthz", platform.worker.url)).await,
        503
    );
    assert_eq!(
        platform.worker.wait_exit(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        platform.worker.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_a_foreign_key_or_a_bad_token_is_refused() {
    let platform = Platform::start(Options::default());

    let resp = query(&platform, None, "q").await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // Well-formed and unexpired, right issuer and class, but signed by a key identity never had.
    let stranger = Signer::from_seed(&[0x99; 32]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = Claims {
        iss: harness::ISSUER.into(),
        sub: SMOKE_CLIENT.into(),
        class: TokenClass::ServiceAccount,
        iat: now,
        exp: now + 300,
        jti: "forged".into(),
    };
    let forged = stranger.sign(&claims);
    let resp = query(&platform, Some(&forged), "q").await;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown key"),
        "{body}"
    );

    // identity's real token still works after the unknown-kid refresh, and a tampered copy does not.
    let good = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    assert_eq!(query(&platform, Some(&good), "q").await.status(), 200);
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(query(&platform, Some(&tampered), "q").await.status(), 401);
    assert_eq!(query(&platform, Some("not-a-jwt"), "q").await.status(), 401);

    // A wrong client secret gets no token.
    let resp = http()
        .post(format!("{}/token", platform.identity.url))
        .form(&[("client_id", SMOKE_CLIENT), ("client_secret", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Nothing secret reached the logs.
    for service in platform.services() {
        let log = service.log();
        for secret in [
            SMOKE_SECRET,
            NODE_SECRET,
            good.as_str(),
            harness::seed_b64().as_str(),
        ] {
            assert!(
                !log.contains(secret),
                "{} logged a secret:\n{log}",
                service.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_with_unknown_keys_trigger_at_most_one_jwks_refresh_per_interval() {
    // An interval no test run outlasts: the count below does not depend on the machine's speed.
    let platform = Platform::start(Options {
        jwks_min_refresh_ms: Some(600_000),
        ..Options::default()
    });
    let good = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    assert_eq!(query(&platform, Some(&good), "first").await.status(), 200);
    let stranger = Signer::from_seed(&[0x55; 32]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for n in 0..5 {
        let forged = stranger.sign(&Claims {
            iss: harness::ISSUER.into(),
            sub: SMOKE_CLIENT.into(),
            class: TokenClass::ServiceAccount,
            iat: now,
            exp: now + 300,
            jti: format!("forged-{n}"),
        });
        assert_eq!(query(&platform, Some(&forged), "q").await.status(), 401);
    }
    let log = platform.gateway.log();
    assert_eq!(
        log.matches("JWKS refreshed").count(),
        1,
        "five unknown-kid tokens inside the interval refreshed again; log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_refreshes_the_jwks_on_an_unknown_kid_after_a_key_rotation() {
    // No refresh rate limit here, so the first new-kid token triggers a refresh (the limit is
    // checked by tokens_with_unknown_keys_trigger_at_most_one_jwks_refresh_per_interval).
    let mut platform = Platform::start(Options {
        jwks_min_refresh_ms: Some(0),
        ..Options::default()
    });
    let old = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    assert_eq!(query(&platform, Some(&old), "before").await.status(), 200);

    // Rotate: identity comes back on the same address with a new seed, so a new kid.
    platform.restart_identity(&[0x77; 32]);
    let new = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    assert_ne!(
        service_runtime::token::key_id(&new).unwrap(),
        service_runtime::token::key_id(&old).unwrap()
    );
    let resp = query(&platform, Some(&new), "after").await;
    assert_eq!(
        resp.status(),
        200,
        "gateway log:\n{}",
        platform.gateway.log()
    );
    assert!(platform.gateway.log().matches("JWKS refreshed").count() >= 2);
    // The rotated-out key no longer verifies.
    assert_eq!(query(&platform, Some(&old), "stale").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_before_the_migration_and_200_after() {
    let platform = Platform::start(Options {
        migrate_first: false,
        ..Options::default()
    });
    for service in platform.services() {
        assert_eq!(
            status(&format!("{}/healthz", service.url)).await,
            200,
            "{} healthz",
            service.name
        );
        let resp = http()
            .get(format!("{}/readyz", service.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{} readyz before migrate", service.name);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("identity migrate"),
            "{body}"
        );
    }
    // Asserting never creates or migrates the database.
    assert!(
        !platform.db.exists(),
        "a /readyz check created the database"
    );

    let out = harness::migrate(&platform.db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in platform.services() {
        assert_eq!(
            status(&format!("{}/readyz", service.url)).await,
            200,
            "{} readyz after migrate",
            service.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_healthz_503_while_an_in_flight_query_completes() {
    let mut platform = Platform::start(Options {
        drain_delay_ms: 1_500,
        shutdown_budget_ms: 5_000,
        worker_max_delay_ms: 4_000,
        ..Options::default()
    });
    let token = token(&platform.identity, SMOKE_CLIENT, SMOKE_SECRET).await;
    let gateway_url = platform.gateway.url.clone();
    let in_flight = tokio::spawn(async move {
        http()
            .post(format!("{gateway_url}/api/query"))
            .bearer_auth(token)
            .json(&serde_json::json!({"query": "slow one", "delay_ms": 3_000}))
            .send()
            .await
    });
    // The query is at the worker before the signals.
    platform
        .worker
        .wait_log("work started", Duration::from_secs(10));
    let signalled = Instant::now();
    platform.gateway.sigterm();
    platform.worker.sigterm();

    // Draining: the probes say 503 while the listener still serves.
    for service in [&platform.gateway, &platform.worker] {
        service.wait_log("shutdown requested", Duration::from_secs(5));
    }
    for service in [&platform.gateway, &platform.worker] {
        assert_eq!(
            status(&format!("{}/healthz", service.url)).await,
            503,
            "{} healthz while draining",
            service.name
        );
        assert_eq!(
            status(&format!("{}/readyz", service.url)).await,
            503,
            "{} readyz while draining",
            service.name
        );
    }
    assert_eq!(
        status(&format!("{}/healthz", platform.identity.url)).await,
        200
    );

    // After the drain delay the listener is closed (new connections refused) while the
    // in-flight query is still being served.
    platform
        .gateway
        .wait_log("drain delay over", Duration::from_secs(5));
    let closing = Instant::now();
    while status(&format!("{}/healthz", platform.gateway.url)).await != 0 {
        assert!(
            closing.elapsed() < Duration::from_secs(1),
            "gateway still accepting after the drain delay"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        !in_flight.is_finished(),
        "the slow query finished too early for this check"
    );

    let resp = in_flight
        .await
        .unwrap()
        .expect("the in-flight query was answered");
    assert_eq!(
        resp.status(),
        200,
        "gateway log:\n{}",
        platform.gateway.log()
    );
    let body: QueryResponse = resp.json().await.unwrap();
    assert_eq!(body.answer, answer("slow one"));

    for service in [&mut platform.gateway, &mut platform.worker] {
        let exit = service.wait_exit(Duration::from_secs(10));
        assert_eq!(
            exit.code(),
            Some(0),
            "{} exit; log:\n{}",
            service.name,
            service.log()
        );
    }
    // It waited for the request (3 s from start) rather than for the drain delay alone.
    assert!(
        signalled.elapsed() >= Duration::from_millis(2_500),
        "exited after {:?}",
        signalled.elapsed()
    );
    assert!(platform.gateway.log().contains("draining"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_budget_exceeded_exits_nonzero_naming_the_cause() {
    let mut platform = Platform::start(Options {
        drain_delay_ms: 100,
        shutdown_budget_ms: 300,
        worker_max_delay_ms: 3_000,
        ..Options::default()
    });
    let worker_url = platform.worker.url.clone();
    let stuck = tokio::spawn(async move {
        http()
            .post(format!("{worker_url}/work"))
            .json(&serde_json::json!({"query": "q", "delay_ms": 3_000}))
            .send()
            .await
    });
    platform
        .worker
        .wait_log("work started", Duration::from_secs(10));
    platform.worker.sigterm();
    let exit = platform.worker.wait_exit(Duration::from_secs(5));
    assert_eq!(exit.code(), Some(1));
    assert!(
        platform.worker.log().contains("shutdown budget"),
        "{}",
        platform.worker.log()
    );
    assert!(
        stuck.await.unwrap().is_err(),
        "the cut request must not look answered"
    );
}
