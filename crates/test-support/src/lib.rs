//! Fixtures shared by the workspace's integration tests (a dev-dependency only; tidy does not
//! check it as library code).
//!
//! Nothing here picks a port and releases it: the registry and the services are started on port 0
//! and report the port they bound, which is read from their log. Readiness is the service's own
//! answer (`GET /v2/`, `GET /readyz`), never "a TCP connect worked".

// Test fixtures write their own config files and logs directly, and report through panics.
#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A tool from a Debian package, or a panic that says which package to install.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` not found on PATH: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

/// The kustomize version `kubectl` must carry to be the rendering oracle: the renderer is
/// conformance-tested against this minor release.
pub const ORACLE_KUSTOMIZE: &str = "v5.5.";

/// `kubectl`, once checked to be the oracle the renderer is tested against (kustomize
/// [`ORACLE_KUSTOMIZE`]); panics saying what was found and what to install otherwise. A different
/// kustomize renders differently in places, and the tests would blame the renderer.
pub fn kubectl() -> Command {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let out = Command::new("kubectl")
            .args(["version", "--client", "-o", "json"])
            .output()
            .map_err(|e| format!("cannot run `kubectl` ({e}): install kubectl (it carries kustomize {ORACLE_KUSTOMIZE}x), it is the rendering oracle"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("\"kustomizeVersion\": \""))
            .map(|v| v.trim_end_matches(['"', ',']).to_owned());
        match found {
            Some(v) if v.starts_with(ORACLE_KUSTOMIZE) => Ok(()),
            Some(v) => Err(format!(
                "kubectl carries kustomize {v}; the rendering oracle is kustomize {ORACLE_KUSTOMIZE}x (kubectl 1.31 to 1.32): install that kubectl"
            )),
            None => Err(format!(
                "`kubectl version --client -o json` names no kustomizeVersion ({}): install kubectl 1.32 (kustomize {ORACLE_KUSTOMIZE}x)",
                text.trim()
            )),
        }
    });
    if let Err(why) = checked {
        panic!("{why}");
    }
    Command::new("kubectl")
}

/// Run a command, panic with its output when it fails, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The log lines a child has written so far, shared with the thread that reads them: a waiter is
/// woken by each new line (or the end of the log), never by a timer.
#[derive(Clone, Default)]
pub struct LogWatch(std::sync::Arc<(std::sync::Mutex<(String, bool)>, std::sync::Condvar)>);

impl LogWatch {
    fn push(&self, line: &str) {
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap();
        state.0.push_str(line);
        state.0.push('\n');
        cvar.notify_all();
    }

    fn close(&self) {
        let (lock, cvar) = &*self.0;
        lock.lock().unwrap().1 = true;
        cvar.notify_all();
    }

    /// Watches the stderr of `child` (spawned with `Stdio::piped()` stderr): a thread reads it to
    /// the end, line by line.
    pub fn stderr_of(child: &mut Child) -> LogWatch {
        let stderr = child
            .stderr
            .take()
            .expect("the child's stderr is piped (Stdio::piped())");
        let watch = LogWatch::default();
        let lines = watch.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.push(&line);
            }
            lines.close();
        });
        watch
    }

    /// The log so far.
    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().0.clone()
    }

    /// Waits until the log has ended (the process closed its stderr, e.g. by exiting), then
    /// returns it whole. `Err` with the log so far when `within` passes first.
    pub fn wait_closed(&self, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap();
        loop {
            if state.1 {
                return Ok(state.0.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(state.0.clone());
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits until a line containing `needle` has been logged. `Err` with the log so far when
    /// `within` passes, or the log ends (the process exited), first.
    pub fn wait_for(&self, needle: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap();
        loop {
            if state.0.contains(needle) {
                return Ok(());
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return Err(state.0.clone());
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

/// Spawns `cmd` with its stderr read to the end by a thread that copies it to `log` and sends
/// the first port `port_of` finds in a line. Returns the child and the port, or the log when the
/// process exits (or says nothing) before `within` is over.
pub fn spawn_reporting_port(
    cmd: Command,
    log: &Path,
    within: Duration,
    port_of: fn(&str) -> Option<u16>,
) -> Result<(Child, u16), String> {
    spawn_watching(cmd, log, within, port_of).map(|(child, port, _)| (child, port))
}

/// As [`spawn_reporting_port`], with a [`LogWatch`] of the child's log for waiting on the events
/// it reports.
pub fn spawn_watching(
    mut cmd: Command,
    log: &Path,
    within: Duration,
    port_of: fn(&str) -> Option<u16>,
) -> Result<(Child, u16, LogWatch), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}",
                Path::new(cmd.get_program()).display()
            )
        });
    let stderr = child.stderr.take().unwrap();
    let mut file = std::fs::File::create(log).unwrap();
    let (tx, rx) = mpsc::channel::<u16>();
    let watch = LogWatch::default();
    let lines = watch.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(file, "{line}");
            lines.push(&line);
            if let Some(port) = port_of(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
        // The sender is dropped here, after the whole log is written: a process that exits
        // without reporting a port ends the wait below at once.
        lines.close();
    });
    match rx.recv_timeout(within) {
        Ok(port) => Ok((child, port, watch)),
        Err(timeout_or_exit) => {
            let _ = child.kill();
            let status = child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let why = match timeout_or_exit {
                mpsc::RecvTimeoutError::Timeout => format!("nothing within {within:?}, killed"),
                mpsc::RecvTimeoutError::Disconnected => "it exited".to_owned(),
            };
            // The program only: its environment may hold the secrets under test.
            Err(format!(
                "{} did not say where it listens ({why}; {status}); log:\n{text}",
                Path::new(cmd.get_program()).display()
            ))
        }
    }
}

/// The port after `marker` in `line`, up to the first non-digit.
pub fn port_after(line: &str, marker: &str) -> Option<u16> {
    line.split(marker)
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// GET `path` on `127.0.0.1:port` over HTTP/1.0: the status code, or None when it cannot connect
/// or the answer is not HTTP.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `GET path` until it answers `want` (a readiness condition the service itself reports,
/// retried with a doubling interval up to 100 ms), or panics after `within` with the log.
pub fn wait_until_answers(port: u16, path: &str, want: u16, within: Duration, log: &Path) {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(2);
    loop {
        if http_status(port, path) == Some(want) {
            return;
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("127.0.0.1:{port}{path} did not answer {want} within {within:?}; log:\n{text}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A process killed (and reaped) on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One of the workspace's services (identity, gateway, worker) run as a process on
/// `127.0.0.1:0`; its port is read from the `listening addr=…` line every service logs after
/// binding, and it is ready once `GET /readyz` answers 200.
pub struct Service {
    pub process: Killed,
    pub port: u16,
    pub log: PathBuf,
}

impl Service {
    /// Starts `bin` with only PATH and `envs` in its environment (plus `LISTEN_ADDR`, logging at
    /// info, no colour, no drain delay unless `envs` sets one), logging to `log`, and waits until
    /// it is ready.
    pub fn start(bin: &Path, log: &Path, envs: &[(&str, String)]) -> Service {
        let service = Service::spawn(bin, log, envs);
        wait_until_answers(service.port, "/readyz", 200, Duration::from_secs(30), log);
        service
    }

    /// As [`Service::start`], without waiting for readiness (the port is bound).
    pub fn spawn(bin: &Path, log: &Path, envs: &[(&str, String)]) -> Service {
        Service::try_spawn(bin, log, envs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Service::spawn`], returning the log of a service that exits instead of listening.
    pub fn try_spawn(bin: &Path, log: &Path, envs: &[(&str, String)]) -> Result<Service, String> {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("DRAIN_DELAY_MS", "0");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let (child, port) = spawn_reporting_port(cmd, log, Duration::from_secs(30), |line| {
            line.contains("listening")
                .then(|| port_after(line, "addr=127.0.0.1:"))
                .flatten()
        })?;
        Ok(Service {
            process: Killed(child),
            port,
            log: log.to_path_buf(),
        })
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A running Debian `docker-registry` (distribution v2) with filesystem storage in a temp dir,
/// on port 0 (it logs `listening on 127.0.0.1:PORT` once bound), killed on drop.
pub struct Registry {
    _process: Killed,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry requiring basic auth for `user`/`password` (bcrypt htpasswd made here).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Self {
        let bin = tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rel-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config_path);
        let log = dir.path().join("registry.log");
        let (child, port) = spawn_reporting_port(cmd, &log, Duration::from_secs(20), |line| {
            port_after(line, "listening on 127.0.0.1:")
        })
        .unwrap_or_else(|e| panic!("docker-registry: {e}"));
        let registry = Registry {
            _process: Killed(child),
            port,
            dir,
        };
        // The port was logged after binding: /v2/ must answer at once (200 open, 401 with auth).
        let want = if auth.is_some() { 401 } else { 200 };
        let got = http_status(port, "/v2/");
        assert_eq!(
            got,
            Some(want),
            "docker-registry on port {port} does not answer /v2/; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        registry
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
