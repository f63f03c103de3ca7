//! Fixtures for promotion, rollback and audit: a project in a git clone with a bare remote
//! (file://), and an in-test forge speaking GitHub's, Gitea's and GitLab's pull request API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::*;

pub const D4: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
pub const D5: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
pub const D6: &str = "sha256:6666666666666666666666666666666666666666666666666666666666666666";

/// Run git in `dir`; panics with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "")
        .env_remove("GIT_DIR")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A project committed in a clone whose `origin` is a bare repository.
pub struct GitProject {
    pub remote: tempfile::TempDir,
    pub work: Project,
}

impl GitProject {
    /// The fixture project (tests/fixtures/promote), committed and pushed to `origin/main`.
    pub fn new() -> GitProject {
        let work = Project::from_fixture("promote");
        let remote = tempfile::tempdir().unwrap();
        git(
            remote.path(),
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        );
        let w = work.path();
        git(w, &["init", "--quiet", "--initial-branch=main"]);
        configure(w);
        git(w, &["add", "-A"]);
        git(
            w,
            &[
                "commit",
                "--quiet",
                "-m",
                "initial: overlays pin the 0.3.0 digests",
            ],
        );
        git(
            w,
            &[
                "remote",
                "add",
                "origin",
                &format!("file://{}", remote.path().display()),
            ],
        );
        git(w, &["push", "--quiet", "-u", "origin", "main"]);
        GitProject { remote, work }
    }

    pub fn path(&self) -> &Path {
        self.work.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Run rel in the clone as `actor`.
    pub fn rel(&self, args: &[&str]) -> Run {
        rel_env(self.path(), args, &[("REL_ACTOR", "alice@example.com")])
    }

    /// Lock `version` with three digests (identity, gateway, worker) and commit it.
    pub fn lock(&self, version: &str, digests: [&str; 3]) {
        self.rel(&[
            "lock",
            "--version",
            version,
            "--digest",
            &format!("identity={}", digests[0]),
            "--digest",
            &format!("gateway={}", digests[1]),
            "--digest",
            &format!("worker={}", digests[2]),
        ])
        .expect(0);
    }

    /// A green deep-gate report for `version` in `env`, written to a file outside the repository.
    pub fn evidence(&self, version: &str, env: &str) -> PathBuf {
        self.evidence_for(self.path(), version, env)
    }

    /// Like [`GitProject::evidence`], bound to the lockfile of the clone at `root`.
    pub fn evidence_for(&self, root: &Path, version: &str, env: &str) -> PathBuf {
        let p = self
            .remote
            .path()
            .join(format!("evidence-{version}-{env}.json"));
        std::fs::write(&p, deep_report(root, version, env, true)).unwrap();
        p
    }

    /// lock + record in staging, committed.
    pub fn validated(&self, version: &str, digests: [&str; 3]) {
        self.lock(version, digests);
        let ev = self.evidence(version, "staging");
        self.rel(&[
            "record",
            "--version",
            version,
            "--env",
            "staging",
            "--evidence",
            ev.to_str().unwrap(),
        ])
        .expect(0);
    }

    /// A second clone of the remote.
    pub fn clone_remote(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(
            dir.path(),
            &[
                "clone",
                "--quiet",
                &format!("file://{}", self.remote.path().display()),
                ".",
            ],
        );
        configure(dir.path());
        dir
    }

    /// The tip of `branch` on the remote, if it exists.
    pub fn remote_tip(&self, branch: &str) -> Option<String> {
        let out = Command::new("git")
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ])
            .current_dir(self.remote.path())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

fn configure(dir: &Path) {
    git(dir, &["config", "user.name", "Alice"]);
    git(dir, &["config", "user.email", "alice@example.com"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
}

/// Run rel with extra environment variables.
pub fn rel_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = rel_command(dir);
    cmd.args(args).envs(env.iter().copied());
    run_rel(cmd)
}

/// A deep smoke gate report, as `rel gate smoke --profile deep --format json` writes it.
/// A green (or red) deep-gate report for `version` in `env`, bound to the project's lockfile of
/// that version (its sha256, as `rel gate smoke --version` records it) when it exists.
pub fn deep_report(root: &Path, version: &str, env: &str, green: bool) -> String {
    let lock = root.join(format!("releases/{version}.yaml"));
    let lock_sha = if lock.is_file() {
        crate::promote_record::sha256_of(&lock)
    } else {
        "0".repeat(64)
    };
    let (status, fail, last) = if green {
        ("pass", 0, "pass")
    } else {
        ("fail", 1, "fail")
    };
    format!(
        r#"{{
  "gate": "smoke",
  "target": "{env}",
  "status": "{status}",
  "summary": {{ "pass": 2, "fail": {fail}, "warn": 0, "skip": 0 }},
  "checks": [
    {{ "name": "login", "status": "pass", "detail": "token issued" }},
    {{ "name": "ws-roundtrip", "status": "pass", "detail": "echo in 40 ms" }},
    {{ "name": "audio", "status": "{last}", "detail": "stream" }}
  ],
  "context": {{ "profile": "deep", "env": "{env}", "version": "{version}", "lockfileSha256": "{lock_sha}" }}
}}
"#
    )
}

/// One request the fake forge received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Pr {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
}

/// Which API the fake forge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Github,
    Gitea,
    Gitlab,
}

/// An HTTP server on a loopback port speaking one forge's pull request API.
pub struct FakeForge {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub prs: Arc<Mutex<Vec<Pr>>>,
}

pub const TOKEN: &str = "tok-s3cr3t-do-not-print";

impl FakeForge {
    pub fn start(kind: Kind) -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let prs: Arc<Mutex<Vec<Pr>>> = Arc::new(Mutex::new(Vec::new()));
        let (rq, pr) = (requests.clone(), prs.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                rq.lock().unwrap().push(req.clone());
                let (status, body) = route(kind, &req, &pr, addr.port());
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        let base = match kind {
            Kind::Github => format!("http://{addr}"),
            Kind::Gitea => format!("http://{addr}/api/v1"),
            Kind::Gitlab => format!("http://{addr}/api/v4"),
        };
        FakeForge {
            url: base,
            requests,
            prs,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn prs(&self) -> Vec<Pr> {
        self.prs.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn query(path: &str, key: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn route(kind: Kind, req: &Request, prs: &Mutex<Vec<Pr>>, port: u16) -> (&'static str, String) {
    let (auth_header, auth_value) = match kind {
        Kind::Github => ("authorization", format!("Bearer {TOKEN}")),
        Kind::Gitea => ("authorization", format!("token {TOKEN}")),
        Kind::Gitlab => ("private-token", TOKEN.to_owned()),
    };
    if req.header(auth_header) != Some(auth_value.as_str()) {
        return (
            "401 Unauthorized",
            r#"{"message":"Bad credentials"}"#.into(),
        );
    }
    let path = req.path.split('?').next().unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_str(&req.body).unwrap_or(serde_json::Value::Null);
    let mut prs = prs.lock().unwrap();
    let render = |p: &Pr| match kind {
        Kind::Github => {
            serde_json::json!({"number": p.number, "html_url": format!("http://127.0.0.1:{port}/org/gitops/pull/{}", p.number), "state": "open", "title": p.title, "body": p.body, "head": {"ref": p.head, "label": format!("org:{}", p.head)}, "base": {"ref": p.base}})
        }
        Kind::Gitea => {
            serde_json::json!({"number": p.number, "html_url": format!("http://127.0.0.1:{port}/org/gitops/pulls/{}", p.number), "state": "open", "title": p.title, "body": p.body, "head": {"ref": p.head}, "base": {"ref": p.base}})
        }
        Kind::Gitlab => {
            serde_json::json!({"iid": p.number, "id": 1000 + p.number, "web_url": format!("http://127.0.0.1:{port}/org/gitops/-/merge_requests/{}", p.number), "state": "opened", "title": p.title, "description": p.body, "source_branch": p.head, "target_branch": p.base})
        }
    };
    let (list_path, item_prefix) = match kind {
        Kind::Github => (
            "/repos/org/gitops/pulls".to_owned(),
            "/repos/org/gitops/pulls/".to_owned(),
        ),
        Kind::Gitea => (
            "/api/v1/repos/org/gitops/pulls".to_owned(),
            "/api/v1/repos/org/gitops/pulls/".to_owned(),
        ),
        Kind::Gitlab => (
            "/api/v4/projects/org%2Fgitops/merge_requests".to_owned(),
            "/api/v4/projects/org%2Fgitops/merge_requests/".to_owned(),
        ),
    };
    match (req.method.as_str(), path) {
        ("GET", p) if p == list_path => {
            let found: Vec<serde_json::Value> = prs
                .iter()
                .filter(|pr| match kind {
                    Kind::Github => {
                        query(&req.path, "head").is_none_or(|h| h == format!("org:{}", pr.head))
                    }
                    Kind::Gitea => true,
                    Kind::Gitlab => query(&req.path, "source_branch").is_none_or(|h| h == pr.head),
                })
                .map(render)
                .collect();
            ("200 OK", serde_json::Value::Array(found).to_string())
        }
        ("POST", p) if p == list_path => {
            let (head, base, text) = match kind {
                Kind::Gitlab => ("source_branch", "target_branch", "description"),
                _ => ("head", "base", "body"),
            };
            if kind == Kind::Github
                && body[text]
                    .as_str()
                    .is_some_and(|b| b.chars().count() > 65_536)
            {
                return ("422 Unprocessable Entity", r#"{"message":"Validation Failed","errors":[{"message":"body is too long (maximum is 65536 characters)"}]}"#.into());
            }
            let pr = Pr {
                number: prs.len() as u64 + 1,
                head: body[head].as_str().unwrap_or_default().to_owned(),
                base: body[base].as_str().unwrap_or_default().to_owned(),
                title: body["title"].as_str().unwrap_or_default().to_owned(),
                body: body[text].as_str().unwrap_or_default().to_owned(),
            };
            let out = render(&pr).to_string();
            prs.push(pr);
            ("201 Created", out)
        }
        ("PATCH" | "PUT", p) if p.starts_with(&item_prefix) => {
            let n: u64 = p[item_prefix.len()..].parse().unwrap_or(0);
            let text = if kind == Kind::Gitlab {
                "description"
            } else {
                "body"
            };
            let expected_method = if kind == Kind::Gitlab { "PUT" } else { "PATCH" };
            if req.method != expected_method {
                return ("405 Method Not Allowed", "{}".into());
            }
            let Some(pr) = prs.iter_mut().find(|pr| pr.number == n) else {
                return ("404 Not Found", r#"{"message":"Not Found"}"#.into());
            };
            if let Some(t) = body["title"].as_str() {
                pr.title = t.to_owned();
            }
            if let Some(b) = body[text].as_str() {
                pr.body = b.to_owned();
            }
            ("200 OK", render(pr).to_string())
        }
        _ => ("404 Not Found", r#"{"message":"Not Found"}"#.into()),
    }
}

impl GitProject {
    /// The fixture with a `[forge]` section pointing at `forge`, committed and pushed.
    pub fn with_forge(kind: Kind, forge: &FakeForge) -> GitProject {
        let p = GitProject::new();
        let kind = match kind {
            Kind::Github => "github",
            Kind::Gitea => "gitea",
            Kind::Gitlab => "gitlab",
        };
        let mut config = p.work.read("rel.toml");
        config.push_str(&format!(
            "\n[forge]\nkind = \"{kind}\"\napi-url = \"{}\"\nrepo = \"org/gitops\"\n",
            forge.url
        ));
        p.work.write("rel.toml", &config);
        p.git(&["commit", "--quiet", "-am", "forge"]);
        p.git(&["push", "--quiet", "origin", "main"]);
        p
    }

    /// 0.3.0 = what the overlays pin now (D1, D2, D3), locked and committed; 0.4.0 validated in staging.
    pub fn with_releases(self) -> GitProject {
        self.lock("0.3.0", [D1, D2, D3]);
        self.git(&["add", "releases/0.3.0.yaml"]);
        self.git(&["commit", "--quiet", "-m", "release 0.3.0"]);
        self.validated("0.4.0", [D4, D5, D6]);
        self
    }
}

/// The prod overlay of the fixture with the 0.3.0 digests replaced by `digests`.
pub fn prod_overlay_with(digests: [&str; 3]) -> String {
    std::fs::read_to_string(fixture("promote/overlays/prod/kustomization.yaml"))
        .unwrap()
        .replace(&D1["sha256:".len()..], &digests[0]["sha256:".len()..])
        .replace(&D2["sha256:".len()..], &digests[1]["sha256:".len()..])
        .replace(&D3["sha256:".len()..], &digests[2]["sha256:".len()..])
}
