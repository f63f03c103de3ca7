//! `rel init`: make an existing Cargo workspace a rel project, asking nothing it can infer.
//!
//! [`inspect`] reads the workspace with `cargo metadata --no-deps` and infers one component per bin
//! target (its `required-features` are the component's role features). [`plan`] turns that into
//! the project's files — a commented `rel.toml`, `templates/base` (Deployment, Service and
//! PodDisruptionBudget per component), `overlays/<env>` pinned by placeholder digests for the
//! chain local → staging → prod, `releases/`, and the `.gitignore` lines for secret sources and
//! keys — each with what writing it would do. [`apply`] writes them atomically; `rel.toml` comes
//! last, so a run killed half way leaves no project and a rerun converges. A file that exists with
//! other content is never replaced without `force`; `.gitignore` only gains the lines it lacks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A digest that pins nothing yet: `rel release` / `rel pin` replace it in place.
pub(crate) const PLACEHOLDER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The environments `rel init` writes, in promotion order.
pub(crate) const ENVIRONMENTS: [&str; 3] = ["local", "staging", "prod"];

/// Packages whose bins are developer tools, not services (the cargo-xtask convention).
const TOOL_PACKAGES: [&str; 1] = ["xtask"];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    #[error("could not run `cargo metadata` in {}", dir.display())]
    #[diagnostic(help(
        "rel runs the cargo that runs it (CARGO) or `cargo` on PATH: install Rust with rustup, or set CARGO to cargo's path"
    ))]
    CargoSpawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not in a Cargo workspace: `cargo metadata` said:\n{stderr}", dir.display())]
    #[diagnostic(help(
        "run `rel init` in (or pass the directory of) a Cargo workspace: a directory with a Cargo.toml that `cargo metadata --no-deps` accepts"
    ))]
    NotAWorkspace { dir: PathBuf, stderr: String },
    #[error("`cargo metadata` printed something rel cannot read: {0}")]
    #[diagnostic(help(
        "check `cargo metadata --no-deps --format-version 1` by hand; rel needs cargo 1.85 or newer"
    ))]
    Metadata(String),
    #[error("the workspace at {} has no bin target rel could build an image of", root.display())]
    #[diagnostic(help(
        "rel ships binaries: add a `[[bin]]` (or `src/main.rs`) to a member crate, then run `rel init` again"
    ))]
    NoBins { root: PathBuf },
    #[error("{} already exist{} with other content: {}", if files.len() == 1 { "this file" } else { "these files" }, if files.len() == 1 { "s" } else { "" }, files.join(", "))]
    #[diagnostic(help(
        "nothing was written. `rel init --dry-run` shows what rel would write; `rel init --force` replaces these files (commit or stash your edits first)"
    ))]
    Exists { files: Vec<String> },
    #[error("could not write {}", path.display())]
    #[diagnostic(help(
        "check that the directory is writable and the disk has room; a rerun finishes the job"
    ))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The workspace as `rel init` sees it.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// `workspace_root` of `cargo metadata`: where rel.toml goes.
    pub root: PathBuf,
    /// A DNS label for namespaces and the registry placeholder (the root directory's name).
    pub name: String,
    /// `org/name` of `git remote get-url origin`, when it is a forge URL.
    pub repo: Option<String>,
    pub components: Vec<Inferred>,
    /// Bins left out, with the reason.
    pub skipped: Vec<String>,
    /// Whether `Cargo.lock` exists (`rel build` compiles with `--locked`).
    pub has_lockfile: bool,
}

/// One component inferred from one bin target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inferred {
    /// The component (and image, Deployment, Service) name: a DNS label.
    pub name: String,
    pub krate: String,
    pub version: String,
    pub bin: String,
    /// The bin's `required-features`: the role it is built with.
    pub features: Vec<String>,
}

/// Read the workspace at (or above) `dir`.
pub(crate) fn inspect(dir: &Path) -> Result<Workspace, InitError> {
    let cargo = std::env::var_os(crate::env_vars::CARGO).unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    crate::env_vars::scrub_secrets(&mut cmd);
    let out = cmd
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(dir)
        .output()
        .map_err(|source| InitError::CargoSpawn {
            dir: dir.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(InitError::NotAWorkspace {
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let meta: Metadata =
        serde_json::from_slice(&out.stdout).map_err(|e| InitError::Metadata(e.to_string()))?;
    let root = meta.workspace_root;
    let name = dns_label(
        root.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("platform"),
    );
    let members: BTreeSet<&str> = meta.workspace_members.iter().map(String::as_str).collect();
    let mut packages: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| members.contains(p.id.as_str()))
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let mut components: Vec<Inferred> = Vec::new();
    let mut skipped = Vec::new();
    for p in packages {
        let mut bins: Vec<&Target> = p
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .collect();
        bins.sort_by(|a, b| a.name.cmp(&b.name));
        for t in bins {
            if TOOL_PACKAGES.contains(&p.name.as_str()) {
                skipped.push(format!(
                    "{}: bin `{}` (a developer tool, not a service)",
                    p.name, t.name
                ));
                continue;
            }
            let mut name = dns_label(&t.name);
            if components.iter().any(|c| c.name == name) {
                name = dns_label(&format!("{}-{}", p.name, t.name));
            }
            if components.iter().any(|c| c.name == name) {
                skipped.push(format!(
                    "{}: bin `{}` (its name collides with another component)",
                    p.name, t.name
                ));
                continue;
            }
            components.push(Inferred {
                name,
                krate: p.name.clone(),
                version: p.version.clone(),
                bin: t.name.clone(),
                features: t.required_features.clone(),
            });
        }
    }
    if components.is_empty() {
        return Err(InitError::NoBins { root });
    }
    Ok(Workspace {
        has_lockfile: root.join("Cargo.lock").is_file(),
        repo: origin_repo(&root),
        root,
        name,
        components,
        skipped,
    })
}

#[derive(serde::Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
}

#[derive(serde::Deserialize)]
struct Package {
    name: String,
    version: String,
    id: String,
    targets: Vec<Target>,
}

#[derive(serde::Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
    #[serde(default, rename = "required-features")]
    required_features: Vec<String>,
}

/// `name` as a DNS label (Kubernetes object names, image path components, rel component names).
fn dns_label(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(40).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "app-");
    }
    out
}

/// `org/name` from the `origin` remote (`git@host:org/name.git`, `https://host/org/name`).
fn origin_repo(root: &Path) -> Option<String> {
    let repo = git2::Repository::discover(root).ok()?;
    let remote = repo.find_remote("origin").ok()?;
    let url = remote.url()?.trim_end_matches('/').trim_end_matches(".git");
    let path = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1
    } else {
        url.split_once(':')?.1
    };
    let mut parts = path.rsplit('/');
    let name = parts.next()?;
    let org = parts.next()?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (ok(org) && ok(name)).then(|| format!("{org}/{name}"))
}

/// What writing one file does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Create,
    /// The file exists with this content already.
    Unchanged,
    /// The file exists with other content: replaced with `force`, else a refusal.
    Overwrite,
    /// `.gitignore`: the lines it lacks are appended.
    Append,
}

impl Action {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Unchanged => "unchanged",
            Action::Overwrite => "overwrite",
            Action::Append => "append",
        }
    }
}

/// One file of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PlannedFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    /// What the file holds after the write (for `Append`, the whole new file).
    pub content: String,
    /// What this run adds (for `Append`, only the new lines; else the whole content).
    pub shown: String,
    pub action: Action,
}

/// Every file `rel init` writes, and what writing it does.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub workspace: Workspace,
    pub files: Vec<PlannedFile>,
}

impl Plan {
    /// Files that exist with other content.
    pub(crate) fn conflicts(&self) -> Vec<&PlannedFile> {
        self.files
            .iter()
            .filter(|f| f.action == Action::Overwrite)
            .collect()
    }
}

/// The files for `ws`, each compared with what is on disk.
pub(crate) fn plan(ws: Workspace) -> Result<Plan, InitError> {
    let mut files = Vec::new();
    let registry = format!("registry.example.com/{}", ws.name);
    for c in &ws.components {
        files.push((
            format!("templates/base/{}.yaml", c.name),
            component_manifests(c, &registry),
        ));
    }
    files.push((
        "templates/base/kustomization.yaml".to_owned(),
        base_kustomization(&ws),
    ));
    for (i, env) in ENVIRONMENTS.iter().enumerate() {
        files.push((
            format!("overlays/{env}/namespace.yaml"),
            namespace(&ws.name, env),
        ));
        files.push((
            format!("overlays/{env}/kustomization.yaml"),
            overlay(&ws, &registry, env, ENVIRONMENTS.get(i + 1).copied()),
        ));
    }
    files.push(("releases/.gitkeep".to_owned(), String::new()));
    // Last: a project exists once rel.toml does, so a run killed before it leaves none.
    files.push(("rel.toml".to_owned(), rel_toml(&ws, &registry)));

    let mut planned = Vec::new();
    let gitignore = ws.root.join(".gitignore");
    let existing = read_existing(&gitignore)?;
    let have: BTreeSet<&str> = existing
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .collect();
    let missing: Vec<&str> = GITIGNORE_LINES
        .iter()
        .copied()
        .filter(|l| !have.contains(l))
        .collect();
    if !missing.is_empty() {
        let mut content = existing.clone().unwrap_or_default();
        if !content.is_empty() && !content.ends_with('\n') {
            content.push('\n');
        }
        let mut added = String::new();
        if !content.is_empty() {
            added.push('\n');
        }
        added.push_str(GITIGNORE_HEADER);
        for l in missing {
            added.push_str(l);
            added.push('\n');
        }
        content.push_str(&added);
        planned.push(PlannedFile {
            path: PathBuf::from(".gitignore"),
            content,
            shown: added,
            action: if existing.is_some() {
                Action::Append
            } else {
                Action::Create
            },
        });
    }
    for (rel, content) in files {
        let path = PathBuf::from(rel);
        let action = match read_existing(&ws.root.join(&path))? {
            None => Action::Create,
            Some(old) if old == content => Action::Unchanged,
            Some(_) => Action::Overwrite,
        };
        planned.push(PlannedFile {
            shown: content.clone(),
            path,
            content,
            action,
        });
    }
    // rel.toml stays last (see above); .gitignore goes first.
    Ok(Plan {
        workspace: ws,
        files: planned,
    })
}

fn read_existing(path: &Path) -> Result<Option<String>, InitError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InitError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write the plan: refused as a whole when a file exists with other content and `force` is off.
/// Returns the files written (unchanged ones are not).
pub(crate) fn apply(plan: &Plan, force: bool) -> Result<Vec<PathBuf>, InitError> {
    let conflicts = plan.conflicts();
    if !force && !conflicts.is_empty() {
        return Err(InitError::Exists {
            files: conflicts
                .iter()
                .map(|f| f.path.display().to_string())
                .collect(),
        });
    }
    let mut written = Vec::new();
    for f in &plan.files {
        if f.action == Action::Unchanged {
            continue;
        }
        let path = plan.workspace.root.join(&f.path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::atomic_write::write(&path, f.content.as_bytes())
        };
        write().map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(f.path.clone());
    }
    Ok(written)
}

const GITIGNORE_HEADER: &str =
    "# rel: build products, local stage state, secret sources and master keys (rel init)\n";

/// What must never be committed: build output, the local stage's keys and seeds (`.rel/`),
/// dotenv sources of sealed envelopes, master keys, and interrupted atomic writes.
pub(crate) const GITIGNORE_LINES: [&str; 5] =
    ["/target", "/.rel/", "*.env.source", "*.key", ".*.rel-tmp-*"];

fn cargo_build_line(c: &Inferred) -> String {
    let mut s = format!("cargo build -p {} --bin {}", c.krate, c.bin);
    if !c.features.is_empty() {
        s.push_str(&format!(" --features {}", c.features.join(",")));
    }
    s
}

fn toml_str(s: &str) -> String {
    // Cargo names and features are plain ASCII identifiers: nothing to escape but quotes.
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn rel_toml(ws: &Workspace, registry: &str) -> String {
    let mut s = String::from(
        "# rel project configuration, written by `rel init` from `cargo metadata`: edit freely.\n\
# A component takes three lines:\n\
#   [components.<name>]                # the image, Deployment and Service name\n\
#   crate = \"<workspace crate>\"\n\
#   features = [\"<role>\"]              # cargo features it is built with; bin defaults to the name\n\
#\n\
# `rel release` builds every component (reproducibly: same commit, same digests), writes the\n\
# lockfile releases/<version>.yaml, pins overlays/local to the new digests and renders it into\n\
# target/rel/rendered/local. `rel promote` carries validated digests local → staging → prod.\n\n",
    );
    s.push_str(&format!(
        "# Image repository prefix: images are <registry>/<component>. A placeholder: `rel build` and\n\
# `rel release` write OCI layouts under target/rel/oci without pushing; before `--push`, set your\n\
# registry here and in the overlays' `images:` names (or pass --registry).\n\
registry = {}\n",
        toml_str(registry)
    ));
    match &ws.repo {
        Some(repo) => s.push_str(&format!(
            "# Source repository of the built components (from `git remote get-url origin`).\n\
repo = {}\n",
            toml_str(repo)
        )),
        None => s.push_str(
            "# Source repository of the built components, written to lockfiles (no git origin found).\n\
# repo = \"org/name\"\n",
        ),
    }
    if !ws.skipped.is_empty() {
        s.push_str("\n# Not components:\n");
        for skipped in &ws.skipped {
            s.push_str(&format!("#   {skipped}\n"));
        }
    }
    for c in &ws.components {
        s.push_str(&format!(
            "\n# `{}` ({} {}).\n[components.{}]\ncrate = {}\n",
            cargo_build_line(c),
            c.krate,
            c.version,
            c.name,
            toml_str(&c.krate)
        ));
        if c.bin != c.name {
            s.push_str(&format!("bin = {}\n", toml_str(&c.bin)));
        }
        if !c.features.is_empty() {
            let list: Vec<String> = c.features.iter().map(|f| toml_str(f)).collect();
            s.push_str(&format!(
                "features = [{}]   # the bin's required-features\n",
                list.join(", ")
            ));
        }
        s.push_str(
            "# base = \"registry.example.com/distroless/static@sha256:...\"   # CA certificates, tzdata (default: FROM scratch)\n",
        );
    }
    s.push_str(
        r#"
# The promotion chain: local → staging → prod. Each overlay's `images:` list pins every
# component by digest; `rel release` pins the head of the chain, `rel promote` the others.

# `rel up --env local`: this machine runs the workloads as processes from their images, no cluster.
[environments.local]
overlay = "overlays/local"
promotes-to = "staging"
stage = true

[environments.staging]
overlay = "overlays/staging"
promotes-to = "prod"
# argocd-app = "<name>-staging"   # the Argo CD Application `rel deploy` waits for

# Prod never builds: it runs the digests that passed staging's deep smoke gate.
[environments.prod]
overlay = "overlays/prod"
"#,
    );
    s
}

fn base_kustomization(ws: &Workspace) -> String {
    let mut s = format!(
        r#"# Base manifests of {name}: a Deployment, Service and PodDisruptionBudget per component.
#
# Images here carry human-readable tags; they are labels, never the authority. Each overlay
# (overlays/<env>/kustomization.yaml) pins every image to a sha256 digest in its `images:` list.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

labels:
  - pairs:
      app.kubernetes.io/part-of: {name}
    includeSelectors: false

resources:
"#,
        name = ws.name
    );
    for c in &ws.components {
        s.push_str(&format!("  - {}.yaml\n", c.name));
    }
    s
}

fn component_manifests(c: &Inferred, registry: &str) -> String {
    format!(
        r#"# {name}: bin `{bin}` of crate `{krate}`, built by rel as `{build}`.
#
# Probes: rel cannot know what the binary serves. These assume HTTP on port 8080 with /readyz
# (ready for traffic: the Service sends requests only to ready pods) and /healthz (alive: the
# kubelet restarts the container when it fails). Point them at your endpoints, or use
# `tcpSocket: {{port: http}}` for a service without HTTP.
#
# Shutdown: on a rollout or a node drain the pod leaves the Service's endpoints while the kubelet
# runs preStop. The preStop sleep (5 s) keeps the process serving until load balancers and
# kube-proxy have stopped sending it new requests; then SIGTERM arrives and the process should
# stop accepting, finish what is in flight and exit. terminationGracePeriodSeconds (30) counts from
# the start of preStop: keep it above 5 s + the longest drain your process needs, or SIGKILL cuts
# requests off. Change them together.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/component: {name}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Never fewer ready pods than desired during a rollout: one new pod first, then one old out.
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
        app.kubernetes.io/component: {name}
    spec:
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {name}
          # A label; the overlay pins the digest.
          image: {registry}/{name}:{version}
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            failureThreshold: 2
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
            # Generous: a pod that is draining must not be restarted within its grace period.
            failureThreshold: 6
          lifecycle:
            preStop:
              # Native sleep action (Kubernetes 1.30+): the image needs no shell.
              sleep:
                seconds: 5
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
            limits:
              memory: 256Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/component: {name}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
---
# Keeps one {name} pod serving through voluntary disruptions (node drains, cluster upgrades).
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/component: {name}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
"#,
        name = c.name,
        bin = c.bin,
        krate = c.krate,
        build = cargo_build_line(c),
        version = c.version,
    )
}

fn namespace(name: &str, env: &str) -> String {
    format!(
        "# The {env} environment's namespace.\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}-{env}\n"
    )
}

fn overlay(ws: &Workspace, registry: &str, env: &str, promotes_to: Option<&str>) -> String {
    let about = match env {
        "local" => {
            "# Local: the base manifests run on this machine by `rel up --env local` (no cluster).\n\
#\n\
# `rel release` pins the digests it builds here and renders the result into\n\
# target/rel/rendered/local."
        }
        "prod" => {
            "# Production: the base manifests, in their own namespace, every image pinned by digest.\n\
#\n\
# Prod never builds: `rel promote --version V --env prod` copies the digests that passed the deep\n\
# smoke gate in staging into the `images:` list below."
        }
        _ => "# Staging: the base manifests, in their own namespace, every image pinned by digest.",
    };
    let next = match promotes_to {
        Some(n) => format!("\n#\n# Promotion goes {env} → {n}."),
        None => String::new(),
    };
    let mut s = format!(
        r#"{about}{next}
#
# The `images:` list is the single image authority of this environment: each entry pins one
# component to a sha256 digest (all zeros until the first release reaches it), and the rendered
# manifests carry `name@sha256:...`. `rel pin` and `rel promote` rewrite the digest values in
# place and keep everything else in this file, comments included.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

namespace: {name}-{env}

resources:
  - namespace.yaml
  - ../../templates/base

images:
"#,
        name = ws.name
    );
    for c in &ws.components {
        s.push_str(&format!(
            "  # {}: `{}`.\n  - name: {registry}/{}\n    digest: {PLACEHOLDER_DIGEST}\n",
            c.name,
            cargo_build_line(c),
            c.name
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("my_service"), "my-service");
        assert_eq!(dns_label("Api.Server"), "api-server");
        assert_eq!(dns_label("9lives"), "app-9lives");
        assert_eq!(dns_label("__x__"), "x");
        assert!(crate::config::valid_name(&dns_label(&"a_".repeat(60))));
    }

    #[test]
    fn repo_is_inferred_from_the_origin_remote() {
        for (url, want) in [
            ("git@github.com:acme/shop.git", Some("acme/shop")),
            ("https://gitlab.example.com/acme/shop", Some("acme/shop")),
            (
                "ssh://git@forge.example.com:2222/acme/shop.git/",
                Some("acme/shop"),
            ),
            ("/srv/git/shop.git", None),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let repo = git2::Repository::init(dir.path()).unwrap();
            repo.remote("origin", url).unwrap();
            assert_eq!(origin_repo(dir.path()).as_deref(), want, "{url}");
        }
        let none = tempfile::tempdir().unwrap();
        git2::Repository::init(none.path()).unwrap();
        assert_eq!(origin_repo(none.path()), None);
    }

    fn ws(dir: &Path) -> Workspace {
        Workspace {
            root: dir.to_path_buf(),
            name: "shop".to_owned(),
            repo: None,
            components: vec![Inferred {
                name: "api-server".to_owned(),
                krate: "api".to_owned(),
                version: "0.2.0".to_owned(),
                bin: "api_server".to_owned(),
                features: vec!["server".to_owned()],
            }],
            skipped: vec!["xtask: bin `xtask` (a developer tool, not a service)".to_owned()],
            has_lockfile: true,
        }
    }

    #[test]
    fn rel_toml_parses_with_the_inferred_component() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(ws(dir.path())).unwrap();
        let toml = &plan.files.last().unwrap();
        assert_eq!(toml.path, Path::new("rel.toml"));
        let path = dir.path().join("rel.toml");
        std::fs::write(&path, &toml.content).unwrap();
        let config = crate::config::Config::load(&path).unwrap();
        let c = &config.components["api-server"];
        match &c.source {
            crate::config::ComponentSource::Built {
                krate,
                bin,
                features,
                base,
            } => {
                assert_eq!((krate.as_str(), bin.as_str()), ("api", "api_server"));
                assert_eq!(features, &["server".to_owned()]);
                assert!(base.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            crate::ops::release::first_environment(&config).unwrap(),
            "local"
        );
    }

    #[test]
    fn gitignore_gains_only_missing_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "/target\n*.key").unwrap();
        let plan = plan(ws(dir.path())).unwrap();
        let g = &plan.files[0];
        assert_eq!(g.action, Action::Append);
        assert!(g.content.starts_with("/target\n*.key\n"));
        assert_eq!(g.content.matches("/target").count(), 1);
        assert!(g.shown.contains("*.env.source") && !g.shown.contains("*.key"));
    }
}
