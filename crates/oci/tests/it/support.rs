//! Fixtures: a static test binary, Debian tools found or a failure naming their package, and a
//! `docker-registry` on port 0 (it logs the port it got) that is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

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

/// A small static binary (Rust, `+crt-static`): prints a line, or with `serve ADDR` answers HTTP.
/// Built once per target directory.
pub fn static_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixture/hello.rs");
        // Named after its source, so that a changed fixture is built again.
        let source_digest = oci::Digest::of(&std::fs::read(&src).unwrap());
        let out = dir.join(format!(
            "rel-oci-fixture-hello-{}",
            &source_digest.hex()[..12]
        ));
        if out.is_file() {
            return out;
        }
        let tmp = dir.join(format!("rel-oci-fixture-hello.{}", std::process::id()));
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = Command::new(rustc)
            .args([
                "-O",
                "-C",
                "target-feature=+crt-static",
                "-C",
                "strip=symbols",
                "--remap-path-prefix",
            ])
            .arg(format!("{}=/src", src.parent().unwrap().display()))
            .arg(&src)
            .arg("-o")
            .arg(&tmp)
            .status()
            .expect("rustc runs");
        assert!(
            status.success(),
            "building the static fixture binary failed"
        );
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
    .clone()
}

/// A running Debian `docker-registry` (distribution v2) with filesystem storage in a temp dir.
pub struct Registry {
    child: Child,
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
        // Port 0: the registry binds a free port and logs `listening on 127.0.0.1:PORT` (at
        // info level), which is read below.
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
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");
        // One thread reads the log to its end (so the registry never blocks on a full pipe),
        // copying it to a file and reporting the port once it is logged.
        let stderr = child.stderr.take().unwrap();
        let log_path = dir.path().join("registry.log");
        let mut log = std::fs::File::create(&log_path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(port) = line
                    .split("listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|p| p.parse().ok())
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("docker-registry did not say where it listens within 20 s; log:\n{log}");
            }
        };
        let registry = Registry { child, port, dir };
        registry.check_ready();
        registry
    }

    /// The port is bound (it was logged after binding): one `GET /v2/` must answer.
    fn check_ready(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 12];
        let answered = s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.");
        if !answered {
            let log =
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
            panic!(
                "docker-registry on port {} does not answer /v2/; log:\n{log}",
                self.port
            );
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
