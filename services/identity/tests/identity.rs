//! identity as a real process: migrations (also two at once), the JWKS, and token issuance.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use service_runtime::database::DatabaseUrl;
use service_runtime::schema::{self, MIGRATIONS};
use service_runtime::token::{self, Jwks, KeySet, TokenClass};
use test_support::LogWatch;

const BIN: &str = env!("CARGO_BIN_EXE_identity");
const CLIENT_SECRET: &str = "ci-secret-5b0e";

fn identity() -> Command {
    let mut cmd = Command::new(BIN);
    for key in [
        "DATABASE_URL",
        "IDENTITY_SIGNING_KEY_B64",
        "IDENTITY_CLIENTS",
        "IDENTITY_CLIENTS_FILE",
        "LISTEN_ADDR",
    ] {
        cmd.env_remove(key);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn migrate(db: &Path) -> Output {
    identity()
        .arg("migrate")
        .arg("--database-url")
        .arg(db)
        .output()
        .unwrap()
}

fn table_names(db: &Path) -> Vec<String> {
    let conn = DatabaseUrl::from_path(db).open_read_only().unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn two_migrations_at_once_both_succeed_and_leave_one_schema() {
    // Round 0 lines the two up behind a write lock the test holds, so both are waiting when it is
    // released and really race; the other rounds just start them together on a fresh database.
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("race.db");
        let holder = (round == 0).then(|| {
            let conn = DatabaseUrl::from_path(&db).open_or_create().unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            conn
        });
        let spawn = || {
            identity()
                .arg("migrate")
                .env("DATABASE_URL", format!("sqlite://{}", db.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (spawn(), spawn());
        let (log_a, log_b) = (LogWatch::stderr_of(&mut a), LogWatch::stderr_of(&mut b));
        if let Some(holder) = holder {
            // Each says it found the lock taken before it waits on it: both are queued behind
            // the holder, and neither can finish until it commits.
            for log in [&log_a, &log_b] {
                log.wait_for("waiting for the write lock", Duration::from_secs(30))
                    .unwrap_or_else(|so_far| panic!("migrate did not report waiting: {so_far}"));
            }
            assert!(
                a.try_wait().unwrap().is_none() && b.try_wait().unwrap().is_none(),
                "migrate must wait for the lock: {}{}",
                log_a.text(),
                log_b.text()
            );
            holder.execute_batch("COMMIT").unwrap();
        }
        let mut applied_counts = Vec::new();
        for (name, mut child, log) in [("first", a, log_a), ("second", b, log_b)] {
            let status = child.wait().unwrap();
            let stderr = log
                .wait_closed(Duration::from_secs(30))
                .unwrap_or_else(|so_far| panic!("{name}: stderr still open: {so_far}"));
            assert!(
                status.success(),
                "round {round}: {name} migrate failed: {stderr}"
            );
            applied_counts.push(stderr.contains("migrations applied"));
        }
        applied_counts.sort();
        assert_eq!(
            applied_counts,
            vec![false, true],
            "round {round}: exactly one run applies the migrations"
        );
        let conn = DatabaseUrl::from_path(&db).open_read_only().unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            versions,
            MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>(),
            "round {round}"
        );
        assert_eq!(
            table_names(&db),
            vec![
                "issued_tokens",
                "query_audit",
                "schema_migrations",
                "sqlite_sequence"
            ],
            "round {round}"
        );
    }
}

#[test]
fn migrate_again_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/rel.db");
    assert!(migrate(&db).status.success());
    let before = table_names(&db);
    let again = migrate(&db);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing applied"));
    assert_eq!(table_names(&db), before);
    identity::SCHEMA
        .check(&DatabaseUrl::from_path(&db))
        .unwrap();
    assert_eq!(schema::latest_version(), MIGRATIONS.last().unwrap().version);
}

#[test]
fn serve_refuses_to_start_without_a_key_or_clients_and_says_why() {
    let out = identity()
        .env("IDENTITY_CLIENTS", "a:node:b")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IDENTITY_SIGNING_KEY_B64 is not set"));

    let out = identity()
        .env("IDENTITY_SIGNING_KEY_B64", token::encode_seed(&[1; 32]))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no clients configured"));

    let out = identity()
        .env("IDENTITY_SIGNING_KEY_B64", "dG9vIHNob3J0")
        .env("IDENTITY_CLIENTS", "a:node:b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("9 bytes") && !stderr.contains("dG9vIHNob3J0"),
        "{stderr}"
    );
}

struct Running {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: &Path, seed: &[u8; 32]) -> Running {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clients = dir.join(format!("clients-{port}.txt"));
    std::fs::write(
        &clients,
        format!(
            "# test clients\nci:service_account:{CLIENT_SECRET}\nnode-b:node:{CLIENT_SECRET}\n"
        ),
    )
    .unwrap();
    let log = dir.join(format!("identity-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = identity()
        .arg("serve")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db)
        .env("IDENTITY_SIGNING_KEY_B64", token::encode_seed(seed))
        .env("IDENTITY_CLIENTS_FILE", &clients)
        .env("IDENTITY_TOKEN_TTL_SECS", "120")
        .env("RUST_LOG", "debug")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "identity did not listen: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Running {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_with_one_seed_serve_one_jwks_and_tokens_carry_class_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rel.db");
    assert!(migrate(&db).status.success());
    let seed = [0x5a; 32];
    let (a, b) = (serve(dir.path(), &db, &seed), serve(dir.path(), &db, &seed));
    let other = serve(dir.path(), &db, &[0x11; 32]);

    let jwks = |r: &Running| {
        let url = format!("{}/.well-known/jwks.json", r.url);
        async move {
            http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Jwks>()
                .await
                .unwrap()
        }
    };
    let (ja, jb, jo) = (jwks(&a).await, jwks(&b).await, jwks(&other).await);
    assert_eq!(
        ja, jb,
        "two replicas with one seed must serve the same JWKS"
    );
    assert_eq!(ja.keys.len(), 1);
    let key = &ja.keys[0];
    assert_eq!(
        (key.kty.as_str(), key.crv.as_deref(), key.alg.as_deref()),
        ("OKP", Some("Ed25519"), Some("EdDSA"))
    );
    assert_ne!(ja.keys[0].kid, jo.keys[0].kid);

    // JSON body, service account; a token from replica b verifies with replica a's JWKS.
    let resp = http()
        .post(format!("{}/token", b.url))
        .json(&serde_json::json!({"client_id": "ci", "client_secret": CLIENT_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 120);
    let access = body["access_token"].as_str().unwrap();
    let keys = KeySet::from_jwks(&ja);
    let kid = token::key_id(access).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = token::verify(access, keys.get(&kid).unwrap(), "rel-identity", now).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.class),
        ("ci", TokenClass::ServiceAccount)
    );
    assert_eq!(claims.exp - claims.iat, 120);
    // The other key's JWKS does not verify it.
    assert!(KeySet::from_jwks(&jo).get(&kid).is_none());

    // Form body, node class.
    let resp = http()
        .post(format!("{}/token", a.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "node-b"),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["class"], "node");

    // Refusals: wrong secret, unknown client, wrong grant, no body.
    let post = |form: Vec<(&'static str, &'static str)>| {
        let url = format!("{}/token", a.url);
        async move {
            http()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(vec![("client_id", "ci"), ("client_secret", "nope")]).await,
        401
    );
    assert_eq!(
        post(vec![
            ("client_id", "ghost"),
            ("client_secret", CLIENT_SECRET)
        ])
        .await,
        401
    );
    assert_eq!(
        post(vec![
            ("grant_type", "password"),
            ("client_id", "ci"),
            ("client_secret", CLIENT_SECRET)
        ])
        .await,
        400
    );
    assert_eq!(post(vec![]).await, 400);

    // Issued tokens are recorded (by jti, never the token), and no secret reached the logs.
    let conn = DatabaseUrl::from_path(&db).open_read_only().unwrap();
    let issued: i64 = conn
        .query_row("SELECT COUNT(*) FROM issued_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(issued, 2);
    for running in [&a, &b, &other] {
        let log = std::fs::read_to_string(&running.log).unwrap();
        assert!(!log.contains(CLIENT_SECRET), "client secret in log:\n{log}");
        assert!(!log.contains(access), "token in log");
        assert!(!log.contains(&token::encode_seed(&seed)), "seed in log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_is_refused_with_503_when_the_schema_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never-migrated.db");
    let running = serve(dir.path(), &db, &[3; 32]);
    let resp = http()
        .post(format!("{}/token", running.url))
        .json(&serde_json::json!({"client_id": "ci", "client_secret": CLIENT_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        http()
            .get(format!("{}/readyz", running.url))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert!(!db.exists(), "serving must not create the database");
}
