//! Starts the platform's three binaries as real processes on loopback, each on port 0 (the
//! port it got is read from its log).
//!
//! The binaries come from `REL_SERVICES_BIN_DIR` when set (prebuilt, e.g. by CI), otherwise they
//! are built here with cargo into this test's own target directory (each role's binary needs its
//! feature of `node`, which this test binary is not built with).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
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

/// A `cargo` command without the variables cargo sets for the test process itself
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...): some build scripts (ring's) track them, and
/// inheriting them would make every nested build recompile those crates, and the next outer one.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_for_test = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_for_test {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The profile directory this test runs from: `<target>/<profile>/deps/<this test>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_owned()
}

/// The target directory this test was built into.
pub fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target dir").to_owned()
}

/// Builds the binaries into the target directory this test runs from; returns the profile dir.
fn build_all() -> PathBuf {
    let profile_dir = profile_dir();
    let target_dir = target_dir();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name")
        .to_owned();
    // The role features are additive: one cargo run builds the three binaries.
    let args = [
        "-p",
        "identity",
        "--bin",
        "identity",
        "-p",
        "node",
        "--bin",
        "gateway",
        "--bin",
        "worker",
        "--features",
        "node/gateway,node/worker",
    ];
    let mut cmd = cargo();
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
    profile_dir
}

/// One running service; killed on drop if still running.
pub struct Service {
    pub name: &'static str,
    pub url: String,
    child: Child,
    log: PathBuf,
    /// The log as the service writes it, to wait on the events it reports.
    watch: test_support::LogWatch,
}

impl Service {
    /// Starts `bin` on `127.0.0.1:0`; the port is read from the `listening addr=` line the
    /// service logs once bound (no free-port race).
    pub fn start(name: &'static str, bin: &Path, dir: &Path, envs: &[(&str, String)]) -> Self {
        Self::start_at("127.0.0.1:0", name, bin, dir, envs)
    }

    /// Starts `bin` on a port this test already had (a restart at the same address).
    pub fn start_on(
        port: u16,
        name: &'static str,
        bin: &Path,
        dir: &Path,
        envs: &[(&str, String)],
    ) -> Self {
        Self::start_at(&format!("127.0.0.1:{port}"), name, bin, dir, envs)
    }

    fn start_at(
        listen: &str,
        name: &'static str,
        bin: &Path,
        dir: &Path,
        envs: &[(&str, String)],
    ) -> Self {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("{name}-{n}.log"));
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.env("LISTEN_ADDR", listen)
            .env("RUST_LOG", "info,node=debug")
            .env("NO_COLOR", "1");
        for (key, value) in envs {
            cmd.env(key, value);
        }
        let (child, port, watch) =
            test_support::spawn_watching(cmd, &log, Duration::from_secs(20), |line| {
                line.contains("listening")
                    .then(|| test_support::port_after(line, "addr=127.0.0.1:"))
                    .flatten()
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let tls = envs.iter().any(|(key, _)| *key == "TLS_CERT_FILE");
        Service {
            name,
            url: if tls {
                format!("https://localhost:{port}")
            } else {
                format!("http://127.0.0.1:{port}")
            },
            child,
            log,
            watch,
        }
    }

    /// Waits until the service's log has a line containing `needle` (an event the service
    /// reports, e.g. `shutdown requested`), up to `within`.
    pub fn wait_log(&self, needle: &str, within: Duration) {
        if let Err(log) = self.watch.wait_for(needle, within) {
            panic!(
                "{} did not log `{needle}` within {within:?} (or exited); log:\n{log}",
                self.name
            );
        }
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        "TLS_CERT_FILE",
        "TLS_KEY_FILE",
        "UPSTREAM_CA_FILE",
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
    options: Options,
}

#[derive(Clone, Copy)]
pub struct Options {
    pub migrate_first: bool,
    pub drain_delay_ms: u64,
    pub shutdown_budget_ms: u64,
    pub worker_max_delay_ms: u64,
    /// The gateway's `JWKS_MIN_REFRESH_MS` (its default when `None`).
    pub jwks_min_refresh_ms: Option<u64>,
    /// Serve HTTPS with the test certificate (and have the gateway trust it upstream).
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            migrate_first: true,
            drain_delay_ms: 200,
            shutdown_budget_ms: 5_000,
            worker_max_delay_ms: 0,
            jwks_min_refresh_ms: None,
            tls: false,
        }
    }
}

fn identity_env(seed: &[u8; 32]) -> Vec<(&'static str, String)> {
    vec![
        (
            "IDENTITY_SIGNING_KEY_B64",
            service_runtime::token::encode_seed(seed),
        ),
        (
            "IDENTITY_CLIENTS",
            format!(
                "{SMOKE_CLIENT}:service_account:{SMOKE_SECRET},{NODE_CLIENT}:node:{NODE_SECRET}"
            ),
        ),
        ("IDENTITY_ISSUER", ISSUER.to_owned()),
    ]
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
            if options.tls {
                envs.extend(tls_env());
            }
            envs.extend(extra);
            envs
        };
        let identity = Service::start(
            "identity",
            &bins.identity,
            dir.path(),
            &common(identity_env(&SEED)),
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
        let mut gateway_env = vec![
            (
                "IDENTITY_JWKS_URL",
                format!("{}/.well-known/jwks.json", identity.url),
            ),
            ("WORKER_URL", worker.url.clone()),
            ("IDENTITY_ISSUER", ISSUER.to_owned()),
        ];
        if let Some(ms) = options.jwks_min_refresh_ms {
            gateway_env.push(("JWKS_MIN_REFRESH_MS", ms.to_string()));
        }
        let gateway = Service::start("gateway", &bins.gateway, dir.path(), &common(gateway_env));
        Platform {
            _dir: dir,
            db,
            identity,
            worker,
            gateway,
            options,
        }
    }

    /// Replaces identity with one signing with `seed`, on the same port (a key rotation).
    pub fn restart_identity(&mut self, seed: &[u8; 32]) {
        let port = self.identity.port();
        self.identity.kill();
        let mut envs = vec![
            ("DATABASE_URL", format!("sqlite://{}", self.db.display())),
            ("DRAIN_DELAY_MS", self.options.drain_delay_ms.to_string()),
            (
                "SHUTDOWN_BUDGET_MS",
                self.options.shutdown_budget_ms.to_string(),
            ),
        ];
        if self.options.tls {
            envs.extend(tls_env());
        }
        envs.extend(identity_env(seed));
        self.identity =
            Service::start_on(port, "identity", &bins().identity, self._dir.path(), &envs);
    }

    pub fn services(&self) -> [&Service; 3] {
        [&self.identity, &self.worker, &self.gateway]
    }
}

/// The self-signed test certificate (for `localhost` and 127.0.0.1) and its key.
pub const TLS_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/cert.pem");
pub const TLS_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/key.pem");

fn tls_env() -> Vec<(&'static str, String)> {
    vec![
        ("TLS_CERT_FILE", TLS_CERT.to_owned()),
        ("TLS_KEY_FILE", TLS_KEY.to_owned()),
        ("UPSTREAM_CA_FILE", TLS_CERT.to_owned()),
    ]
}

/// A client that trusts the test certificate.
pub fn http() -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(TLS_CERT).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(cert)
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
