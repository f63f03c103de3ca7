//! Starts the platform's three binaries as real processes on free loopback ports.
//!
//! The binaries come from `REL_SERVICES_BIN_DIR` when set (prebuilt, e.g. by CI), otherwise they
//! are built here with cargo into this test's own target directory: the gateway and the worker
//! need different, mutually exclusive features of `node`, so no single cargo invocation (and no
//! `CARGO_BIN_EXE_*`) can provide both.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ISSUER: &str = "rel-identity";
pub const SMOKE_CLIENT: &str = "smoke";
pub const SMOKE_SECRET: &str = "smoke-secret-3a1f";
pub const NODE_CLIENT: &str = "node-a";
pub const NODE_SECRET: &str = "node-secret-77c2";
/// The signing seed the tests give identity (32 bytes of 0x2a).
pub const SEED: [u8; 32] = [0x2a; 32];

/// Where the three binaries are.
pub struct Bins {
    pub identity: PathBuf,
    pub gateway: PathBuf,
    pub worker: PathBuf,
}

pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = match std::env::var_os("REL_SERVICES_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => build_all(),
        };
        let bins = Bins {
            identity: dir.join("identity"),
            gateway: dir.join("gateway"),
            worker: dir.join("worker"),
        };
        for path in [&bins.identity, &bins.gateway, &bins.worker] {
            assert!(path.is_file(), "missing service binary {}", path.display());
        }
        bins
    })
}

/// Builds the binaries into the target directory this test runs from; returns the profile dir.
fn build_all() -> PathBuf {
    // <target>/<profile>/deps/<this test>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_owned();
    let target_dir = profile_dir.parent().expect("target dir").to_owned();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let builds: [&[&str]; 3] = [
        &["-p", "identity", "--bin", "identity"],
        &["-p", "node", "--bin", "gateway", "--features", "gateway"],
        &["-p", "node", "--bin", "worker", "--features", "worker"],
    ];
    for args in builds {
        let mut cmd = Command::new(&cargo);
        cmd.arg("build")
            .arg("--quiet")
            .args(args)
            .arg("--target-dir")
            .arg(&target_dir);
        if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "`cargo build {}` failed", args.join(" "));
    }
    profile_dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running service; killed on drop if still running.
pub struct Service {
    pub name: &'static str,
    pub url: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    pub fn start(name: &'static str, bin: &Path, dir: &Path, envs: &[(&str, String)]) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}-{port}.log"));
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (key, value) in envs {
            cmd.env(key, value);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let service = Service {
            name,
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        service.wait_listening();
        service
    }

    fn wait_listening(&self) {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not listen on {addr}; log:\n{}",
            self.name,
            self.log()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-s", "TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clean_env(cmd: &mut Command) {
    for key in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "DATABASE_URL",
        "LISTEN_ADDR",
        "IDENTITY_SIGNING_KEY_B64",
        "IDENTITY_CLIENTS",
        "IDENTITY_CLIENTS_FILE",
        "IDENTITY_JWKS_URL",
        "WORKER_URL",
        "WORKER_ID",
        "DRAIN_DELAY_MS",
        "SHUTDOWN_BUDGET_MS",
    ] {
        cmd.env_remove(key);
    }
}

/// Runs `identity migrate` against `db`.
pub fn migrate(db: &Path) -> std::process::Output {
    let mut cmd = Command::new(&bins().identity);
    clean_env(&mut cmd);
    cmd.arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap()
}

/// identity, a worker and a gateway sharing one database under a temp dir.
pub struct Platform {
    /// Holds the temp dir (database, logs) until the platform is dropped.
    pub _dir: tempfile::TempDir,
    pub db: PathBuf,
    pub identity: Service,
    pub worker: Service,
    pub gateway: Service,
}

pub struct Options {
    pub migrate_first: bool,
    pub drain_delay_ms: u64,
    pub shutdown_budget_ms: u64,
    pub worker_max_delay_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            migrate_first: true,
            drain_delay_ms: 200,
            shutdown_budget_ms: 5_000,
            worker_max_delay_ms: 0,
        }
    }
}

pub fn seed_b64() -> String {
    service_runtime::token::encode_seed(&SEED)
}

impl Platform {
    pub fn start(options: Options) -> Self {
        let bins = bins();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/platform.db");
        if options.migrate_first {
            let out = migrate(&db);
            assert!(
                out.status.success(),
                "identity migrate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let database_url = format!("sqlite://{}", db.display());
        let common = |extra: Vec<(&'static str, String)>| {
            let mut envs = vec![
                ("DATABASE_URL", database_url.clone()),
                ("DRAIN_DELAY_MS", options.drain_delay_ms.to_string()),
                ("SHUTDOWN_BUDGET_MS", options.shutdown_budget_ms.to_string()),
            ];
            envs.extend(extra);
            envs
        };
        let identity = Service::start(
            "identity",
            &bins.identity,
            dir.path(),
            &common(vec![
                ("IDENTITY_SIGNING_KEY_B64", seed_b64()),
                (
                    "IDENTITY_CLIENTS",
                    format!(
                        "{SMOKE_CLIENT}:service_account:{SMOKE_SECRET},{NODE_CLIENT}:node:{NODE_SECRET}"
                    ),
                ),
                ("IDENTITY_ISSUER", ISSUER.to_owned()),
            ]),
        );
        let worker = Service::start(
            "worker",
            &bins.worker,
            dir.path(),
            &common(vec![
                ("WORKER_ID", "worker-test-1".to_owned()),
                (
                    "WORKER_MAX_DELAY_MS",
                    options.worker_max_delay_ms.to_string(),
                ),
            ]),
        );
        let gateway = Service::start(
            "gateway",
            &bins.gateway,
            dir.path(),
            &common(vec![
                (
                    "IDENTITY_JWKS_URL",
                    format!("{}/.well-known/jwks.json", identity.url),
                ),
                ("WORKER_URL", worker.url.clone()),
                ("IDENTITY_ISSUER", ISSUER.to_owned()),
            ]),
        );
        Platform {
            _dir: dir,
            db,
            identity,
            worker,
            gateway,
        }
    }

    pub fn services(&self) -> [&Service; 3] {
        [&self.identity, &self.worker, &self.gateway]
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A token from identity for `client`.
pub async fn token(identity: &Service, client: &str, secret: &str) -> String {
    let resp = http()
        .post(format!("{}/token", identity.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "token for {client}");
    let body: serde_json::Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn status(url: &str) -> u16 {
    http()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
