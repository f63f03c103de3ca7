//! What runs in a cluster: pods and nodes, from `kubectl get ... -o json` output or from the
//! Kubernetes API through a kubeconfig.
//!
//! Why a direct REST call and not the `kube` crate: the gates need three list calls
//! (`GET /api/v1/namespaces/{ns}/pods`, `/api/v1/pods`, `/api/v1/nodes`). `kube` pulls in
//! `k8s-openapi` (every API type of every group) plus a second HTTP stack, minutes of build on
//! this workspace's machines for three GETs. reqwest is already here for the smoke gate, and the
//! kubeconfig subset below covers what clusters hand out: bearer tokens (inline or file), client
//! certificates, basic auth, a CA bundle or `insecure-skip-tls-verify`, and `exec` credential
//! plugins (kubelogin, aws, gke-gcloud-auth-plugin) returning a token.
//!
//! Every failure is an error naming the endpoint (exit 2): no kubeconfig, no such context, 401,
//! 403, a timeout. It never degrades into an empty pod list.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use retry::{Backoff, Verdict};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::env_vars;

/// List calls: a refused or reset connection is tried 3 times in all, waits of 200 and 400 ms.
const LIST_RETRY: Backoff = Backoff::exponential(3, Duration::from_millis(200));

/// The object metadata the gates read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    pub controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    pub node_name: Option<String>,
    pub containers: Vec<ContainerSpec>,
    pub init_containers: Vec<ContainerSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub resources: Resources,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub requests: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    pub phase: Option<String>,
    pub container_statuses: Vec<ContainerStatus>,
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    /// What actually runs: `docker-pullable://repo@sha256:...`, `repo@sha256:...` or a bare digest.
    #[serde(rename = "imageID")]
    pub image_id: String,
}

impl ContainerStatus {
    /// The `sha256:<hex>` the container runs, when the runtime reported one.
    pub fn digest(&self) -> Option<&str> {
        let at = self.image_id.rfind("sha256:")?;
        let d = &self.image_id[at..];
        (d.len() == 71).then_some(d)
    }
}

impl Pod {
    /// Pods that finished (`Succeeded`, `Failed`) hold no resources and run nothing.
    pub fn is_terminated(&self) -> bool {
        matches!(self.status.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    /// The controlling owner, if any.
    pub fn controller(&self) -> Option<&OwnerReference> {
        let refs = &self.metadata.owner_references;
        refs.iter()
            .find(|o| o.controller == Some(true))
            .or(refs.first())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    pub metadata: ObjectMeta,
    pub spec: NodeSpec,
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeSpec {
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    pub allocatable: BTreeMap<String, String>,
}

/// A list as `kubectl get -o json` and the API return it; `kind` tells Pods from Nodes in a
/// mixed `kubectl get nodes,pods -o json` list.
#[derive(Debug, Deserialize)]
struct List<T> {
    items: Vec<T>,
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListMeta {
    #[serde(rename = "continue")]
    cont: Option<String>,
}

/// Any item of a list, read in one pass: the fields of a Pod and of a Node together, so a mixed
/// `kubectl get nodes,pods` list needs no intermediate JSON tree (10,000 pods parse in tens of ms).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AnyObject {
    kind: String,
    metadata: ObjectMeta,
    spec: AnySpec,
    status: AnyStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AnySpec {
    node_name: Option<String>,
    containers: Vec<ContainerSpec>,
    init_containers: Vec<ContainerSpec>,
    unschedulable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AnyStatus {
    phase: Option<String>,
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
    allocatable: BTreeMap<String, String>,
}

impl AnyObject {
    fn into_pod(self) -> Pod {
        Pod {
            metadata: self.metadata,
            spec: PodSpec {
                node_name: self.spec.node_name,
                containers: self.spec.containers,
                init_containers: self.spec.init_containers,
            },
            status: PodStatus {
                phase: self.status.phase,
                container_statuses: self.status.container_statuses,
                init_container_statuses: self.status.init_container_statuses,
            },
        }
    }

    fn into_node(self) -> Node {
        Node {
            metadata: self.metadata,
            spec: NodeSpec {
                unschedulable: self.spec.unschedulable,
            },
            status: NodeStatus {
                allocatable: self.status.allocatable,
            },
        }
    }
}

/// Why the cluster could not be read. Every variant is an exit-2 error: the gate cannot run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KubeError {
    #[error("could not read {what} from {origin}: {detail}")]
    #[diagnostic(help(
        "pass the output of `kubectl get {what} -o json` (a file, or `-` for stdin)"
    ))]
    Input {
        what: &'static str,
        origin: String,
        detail: String,
    },

    #[error("no kubeconfig: {looked}")]
    #[diagnostic(help(
        "set KUBECONFIG or pass --kubeconfig FILE, or give recorded objects with --pods FILE / --nodes FILE"
    ))]
    NoKubeconfig { looked: String },

    #[error("kubeconfig {path}: {detail}")]
    #[diagnostic(help(
        "`kubectl config view` shows what is configured; `kubectl config get-contexts` lists the contexts"
    ))]
    Kubeconfig { path: String, detail: String },

    #[error("{method} {url}: {detail}")]
    #[diagnostic(help("{help}"))]
    Api {
        method: &'static str,
        url: String,
        detail: String,
        help: String,
    },
}

/// Read pods from `kubectl get pods -o json` output (`path` of `-` is stdin).
pub fn read_pods(path: &Path) -> Result<Vec<Pod>, KubeError> {
    let (bytes, origin) = read_input(path, "pods")?;
    Ok(parse_objects(&bytes, "pods", &origin)?.0)
}

/// Read nodes and, when present, pods from `kubectl get nodes,pods -A -o json` output.
pub fn read_nodes_and_pods(path: &Path) -> Result<(Vec<Node>, Vec<Pod>), KubeError> {
    let (bytes, origin) = read_input(path, "nodes")?;
    let (pods, nodes) = parse_objects(&bytes, "nodes", &origin)?;
    Ok((nodes, pods))
}

fn read_input(path: &Path, what: &'static str) -> Result<(Vec<u8>, String), KubeError> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| KubeError::Input {
                what,
                origin: "<stdin>".into(),
                detail: e.to_string(),
            })?;
        Ok((bytes, "<stdin>".to_owned()))
    } else {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| KubeError::Input {
            what,
            origin: origin.clone(),
            detail: e.to_string(),
        })?;
        Ok((bytes, origin))
    }
}

/// Pods and nodes of a `kubectl get -o json` list (the `--pods`/`--nodes` readers' parser).
pub fn parse_pods_and_nodes(bytes: &[u8]) -> Result<(Vec<Pod>, Vec<Node>), KubeError> {
    parse_objects(bytes, "pods", "<input>")
}

/// Whether `text` reads as a kubeconfig (the reader's parser alone: no file, no exec plugin).
pub fn parse_kubeconfig(text: &str) -> Result<(), String> {
    serde_saphyr::from_str::<Kubeconfig>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Split a list into its pods and nodes (items without a `kind`, as in a `PodList`, are pods).
fn parse_objects(
    bytes: &[u8],
    what: &'static str,
    origin: &str,
) -> Result<(Vec<Pod>, Vec<Node>), KubeError> {
    let list: List<AnyObject> = serde_json::from_slice(bytes).map_err(|e| KubeError::Input {
        what,
        origin: origin.to_owned(),
        detail: format!("not a Kubernetes list in JSON: {e}"),
    })?;
    let (mut pods, mut nodes) = (Vec::with_capacity(list.items.len()), Vec::new());
    for item in list.items {
        match item.kind.as_str() {
            "Node" => nodes.push(item.into_node()),
            "Pod" | "" => pods.push(item.into_pod()),
            _ => {}
        }
    }
    Ok((pods, nodes))
}

/// How to reach the API server.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// `--kubeconfig`; default `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`; default the kubeconfig's `current-context`.
    pub context: Option<String>,
    /// Timeout of each API call.
    pub timeout: Duration,
}

/// An authenticated connection to one API server.
pub struct KubeClient {
    http: reqwest::Client,
    server: String,
    auth: Auth,
    /// The context's namespace (`default` when it names none).
    pub namespace: String,
    /// `context-name (server)`, for messages.
    pub describe: String,
    timeout: Duration,
}

enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct Kubeconfig {
    clusters: Vec<Named<ClusterEntry>>,
    users: Vec<Named<UserEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    current_context: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named<T: Default> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct ClusterEntry {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
}

/// A kubeconfig user: credentials, so its `Debug` names which fields are set, never their values.
#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct UserEntry {
    token: Option<String>,
    token_file: Option<String>,
    #[serde(alias = "tokenFile")]
    token_file_camel: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<ExecConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExecConfig {
    command: String,
    args: Vec<String>,
    env: Vec<ExecEnv>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ExecEnv {
    name: String,
    value: String,
}

impl std::fmt::Debug for ExecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecEnv")
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "-" };
        f.debug_struct("UserEntry")
            .field("token", &set(&self.token))
            .field(
                "token_file",
                &self.token_file.as_ref().or(self.token_file_camel.as_ref()),
            )
            .field("client_certificate", &self.client_certificate)
            .field(
                "client_certificate_data",
                &set(&self.client_certificate_data),
            )
            .field("client_key", &self.client_key)
            .field("client_key_data", &set(&self.client_key_data))
            .field("username", &set(&self.username))
            .field("password", &set(&self.password))
            .field("exec", &self.exec)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ContextEntry {
    cluster: String,
    user: String,
    namespace: Option<String>,
}

fn kubeconfig_path(opts: &KubeOptions) -> Result<PathBuf, KubeError> {
    if let Some(p) = &opts.kubeconfig {
        return Ok(p.clone());
    }
    let mut looked = Vec::new();
    if let Some(list) = std::env::var_os(env_vars::KUBECONFIG).filter(|v| !v.is_empty()) {
        for p in std::env::split_paths(&list) {
            if p.is_file() {
                return Ok(p);
            }
            looked.push(p.display().to_string());
        }
        return Err(KubeError::NoKubeconfig {
            looked: format!("KUBECONFIG names no existing file ({})", looked.join(", ")),
        });
    }
    if let Some(home) = std::env::var_os(env_vars::HOME) {
        let p = PathBuf::from(home).join(".kube/config");
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    Err(KubeError::NoKubeconfig {
        looked: format!(
            "KUBECONFIG is not set and {} does not exist",
            looked.join(", ")
        ),
    })
}

fn b64(data: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
}

impl KubeClient {
    /// Connect as the kubeconfig's context says.
    pub fn from_kubeconfig(opts: &KubeOptions) -> Result<KubeClient, KubeError> {
        let path = kubeconfig_path(opts)?;
        let shown = path.display().to_string();
        let err = |detail: String| KubeError::Kubeconfig {
            path: shown.clone(),
            detail,
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let config: Kubeconfig = serde_saphyr::from_str(&text).map_err(|e| {
            err(format!(
                "invalid YAML: {}",
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                dir.join(p)
            }
        };

        let context_name = opts.context.clone().or(config.current_context.clone()).filter(|c| !c.is_empty()).ok_or_else(|| {
            err("no context: the kubeconfig has no `current-context` and --context was not given".to_owned())
        })?;
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .map(|c| &c.value)
            .ok_or_else(|| {
                err(format!(
                    "no context `{context_name}` (contexts: {})",
                    config
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .map(|c| &c.value)
            .ok_or_else(|| {
                err(format!(
                    "context `{context_name}` names cluster `{}`, which is not defined",
                    context.cluster
                ))
            })?;
        if !(cluster.server.starts_with("https://") || cluster.server.starts_with("http://")) {
            return Err(err(format!(
                "cluster `{}` has no http(s) `server` (`{}`)",
                context.cluster,
                crate::redact::urls(&cluster.server)
            )));
        }
        let default_user = UserEntry::default();
        let user = match config.users.iter().find(|u| u.name == context.user) {
            Some(u) => &u.value,
            None if context.user.is_empty() => &default_user,
            None => {
                return Err(err(format!(
                    "context `{context_name}` names user `{}`, which is not defined",
                    context.user
                )));
            }
        };

        let mut builder = crate::trust::client(reqwest::Client::builder())
            .use_rustls_tls()
            .connect_timeout(opts.timeout);
        let ca = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) => Some(
                b64(data)
                    .ok_or_else(|| err("`certificate-authority-data` is not base64".to_owned()))?,
            ),
            (None, Some(file)) => Some(
                std::fs::read(resolve(file))
                    .map_err(|e| err(format!("cannot read certificate-authority {file}: {e}")))?,
            ),
            (None, None) => None,
        };
        if let Some(pem) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| err(format!("certificate authority: {e}")))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if cluster.insecure_skip_tls_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let cert = match (&user.client_certificate_data, &user.client_certificate) {
            (Some(d), _) => Some(
                b64(d).ok_or_else(|| err("`client-certificate-data` is not base64".to_owned()))?,
            ),
            (None, Some(f)) => Some(
                std::fs::read(resolve(f))
                    .map_err(|e| err(format!("cannot read client-certificate {f}: {e}")))?,
            ),
            _ => None,
        };
        let key = match (&user.client_key_data, &user.client_key) {
            (Some(d), _) => {
                Some(b64(d).ok_or_else(|| err("`client-key-data` is not base64".to_owned()))?)
            }
            (None, Some(f)) => Some(
                std::fs::read(resolve(f))
                    .map_err(|e| err(format!("cannot read client-key {f}: {e}")))?,
            ),
            _ => None,
        };
        if let (Some(mut cert), Some(key)) = (cert, key) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&cert)
                .map_err(|e| err(format!("client certificate and key: {e}")))?;
            builder = builder.identity(identity);
        }
        let token_file = user.token_file.as_ref().or(user.token_file_camel.as_ref());
        let auth = if let Some(t) = &user.token {
            Auth::Bearer(t.trim().to_owned())
        } else if let Some(f) = token_file {
            let t = std::fs::read_to_string(resolve(f))
                .map_err(|e| err(format!("cannot read tokenFile {f}: {e}")))?;
            Auth::Bearer(t.trim().to_owned())
        } else if let Some(exec) = &user.exec {
            Auth::Bearer(
                exec_token(exec)
                    .map_err(|d| err(format!("exec credential plugin `{}`: {d}", exec.command)))?,
            )
        } else if let (Some(u), Some(p)) = (&user.username, &user.password) {
            Auth::Basic(u.clone(), p.clone())
        } else {
            Auth::None
        };
        let http = builder
            .build()
            .map_err(|e| err(format!("cannot set up TLS: {}", crate::error::chain(&e))))?;
        Ok(KubeClient {
            http,
            server: cluster.server.trim_end_matches('/').to_owned(),
            auth,
            namespace: context
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            describe: format!(
                "context `{context_name}` ({})",
                crate::redact::urls(&cluster.server)
            ),
            timeout: opts.timeout,
        })
    }

    /// The kubeconfig's default namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One JSON request (GET an object, POST a Job): the status and the body. 401/403 and
    /// transport failures are errors; every other status is the caller's to judge (404 "not
    /// there yet", 409 "already exists").
    pub async fn request_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), KubeError> {
        let url = format!("{}{path}", self.server);
        let verb: &'static str = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "DELETE" => "DELETE",
            "PATCH" => "PATCH",
            _ => "PUT",
        };
        let api_err = |detail: String, help: &str| KubeError::Api {
            method: verb,
            url: crate::redact::urls(&url),
            detail,
            help: help.to_owned(),
        };
        let mut req = self
            .http
            .request(method, &url)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        let resp = match tokio::time::timeout(self.timeout, req.send()).await {
            Err(_) => {
                return Err(api_err(
                    format!("timed out after {}s", self.timeout.as_secs_f32()),
                    "is the API server reachable from here (VPN, firewall)? raise --kube-timeout if it is slow",
                ));
            }
            Ok(Err(e)) => {
                return Err(api_err(
                    crate::error::chain(&e),
                    "check the cluster's `server` in the kubeconfig and that it is reachable",
                ));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let bytes = match tokio::time::timeout(self.timeout, resp.bytes()).await {
            Ok(Ok(b)) => b,
            _ => {
                return Err(api_err(
                    "the answer broke off".to_owned(),
                    "retry; the connection broke",
                ));
            }
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let message = value
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned();
        match status {
            401 => Err(api_err(
                format!("401 Unauthorized: {message}"),
                "the credentials of the kubeconfig's user were rejected: log in again (e.g. `az aks get-credentials`, `kubelogin`)",
            )),
            403 => Err(api_err(
                format!("403 Forbidden: {message}"),
                "the kubeconfig's user lacks the permission: grant it (a Role/ClusterRole and binding), or use another --context",
            )),
            _ => Ok((status, value)),
        }
    }

    /// All items of a list endpoint, following `continue` tokens.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, KubeError> {
        let mut items = Vec::new();
        let mut cont: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{}{path}{sep}limit=500", self.server);
            if let Some(c) = &cont {
                url.push_str("&continue=");
                url.push_str(&percent_encode(c));
            }
            let api_err = |detail: String, help: &str| KubeError::Api {
                method: "GET",
                url: crate::redact::urls(&url),
                detail,
                help: help.to_owned(),
            };
            // A refused or reset connection is retried twice with backoff; an answer is not.
            let sent = retry::retry_async(
                &LIST_RETRY,
                |attempt| {
                    let mut req = self.http.get(&url).header("accept", "application/json");
                    req = match &self.auth {
                        Auth::None => req,
                        Auth::Bearer(t) => req.bearer_auth(t),
                        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
                    };
                    let send = tokio::time::timeout(self.timeout, req.send());
                    async move {
                        match send.await {
                            Err(_) => Err(None),
                            Ok(Err(e)) => Err(Some((e, attempt))),
                            Ok(Ok(r)) => Ok(r),
                        }
                    }
                },
                |sent, _| match sent {
                    Err(Some((e, _))) if e.is_connect() => Verdict::Retry,
                    _ => Verdict::Stop,
                },
            )
            .await;
            let resp = match sent {
                Ok(r) => r,
                Err(None) => {
                    return Err(api_err(
                        format!("timed out after {}s", self.timeout.as_secs_f32()),
                        "is the API server reachable from here (VPN, firewall)? raise --kube-timeout if it is slow",
                    ));
                }
                Err(Some((e, attempts))) => {
                    let tries = if attempts > 1 {
                        format!(" (after {attempts} attempts)")
                    } else {
                        String::new()
                    };
                    return Err(api_err(
                        format!("{}{tries}", crate::error::chain(&e)),
                        "check the cluster's `server` in the kubeconfig and that it is reachable",
                    ));
                }
            };
            let status = resp.status();
            let body = match tokio::time::timeout(self.timeout, resp.bytes()).await {
                Err(_) => {
                    return Err(api_err(
                        format!(
                            "timed out reading the body after {}s",
                            self.timeout.as_secs_f32()
                        ),
                        "raise --kube-timeout",
                    ));
                }
                Ok(Err(e)) => {
                    return Err(api_err(
                        crate::error::chain(&e),
                        "retry; the connection broke",
                    ));
                }
                Ok(Ok(b)) => b,
            };
            let message = || {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect())
            };
            match status.as_u16() {
                200 => {}
                401 => {
                    return Err(api_err(
                        format!("401 Unauthorized: {}", message()),
                        "the credentials of the kubeconfig's user were rejected: log in again (e.g. `az aks get-credentials`, `kubelogin`)",
                    ));
                }
                403 => {
                    return Err(api_err(
                        format!("403 Forbidden: {}", message()),
                        &format!(
                            "the user may not list {what} here: grant `list` on {what} (a Role/ClusterRole and binding), or use another --context"
                        ),
                    ));
                }
                404 => {
                    return Err(api_err(
                        format!("404 Not Found: {}", message()),
                        "is this a Kubernetes API server? check the kubeconfig's `server`",
                    ));
                }
                _ => {
                    return Err(api_err(
                        format!("{status}: {}", message()),
                        "retry later; the API server answered with an error",
                    ));
                }
            }
            let list: List<T> = serde_json::from_slice(&body).map_err(|e| {
                api_err(
                    format!("not a {what} list: {e}"),
                    "is this a Kubernetes API server? check the kubeconfig's `server`",
                )
            })?;
            items.extend(list.items);
            match list.metadata.cont.filter(|c| !c.is_empty()) {
                Some(c) => cont = Some(c),
                None => return Ok(items),
            }
        }
    }

    /// Pods of one namespace.
    pub async fn pods(&self, namespace: &str) -> Result<Vec<Pod>, KubeError> {
        self.list(
            &format!("/api/v1/namespaces/{}/pods", percent_encode(namespace)),
            "pods",
        )
        .await
    }

    /// Pods of every namespace that hold resources (not `Succeeded` or `Failed`).
    pub async fn active_pods_everywhere(&self) -> Result<Vec<Pod>, KubeError> {
        self.list(
            "/api/v1/pods?fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed",
            "pods",
        )
        .await
    }

    pub async fn nodes(&self) -> Result<Vec<Node>, KubeError> {
        self.list("/api/v1/nodes", "nodes").await
    }
}

/// Run an exec credential plugin and return the token of its `ExecCredential`.
fn exec_token(exec: &ExecConfig) -> Result<String, String> {
    let mut cmd = std::process::Command::new(&exec.command);
    crate::env_vars::scrub_secrets(&mut cmd);
    cmd.args(&exec.args).stdin(std::process::Stdio::null());
    for e in &exec.env {
        cmd.env(&e.name, &e.value);
    }
    let out = cmd.output().map_err(|e| format!("cannot run it: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("did not print an ExecCredential: {e}"))?;
    v.pointer("/status/token").and_then(|t| t.as_str()).map(str::to_owned).ok_or_else(|| "its ExecCredential has no status.token (client certificates from exec plugins are not supported)".to_owned())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_image_ids() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        for id in [
            format!("docker-pullable://r.io/p/x@{d}"),
            format!("r.io/p/x@{d}"),
            d.to_owned(),
        ] {
            let s = ContainerStatus {
                image_id: id,
                ..Default::default()
            };
            assert_eq!(s.digest(), Some(d));
        }
        assert_eq!(ContainerStatus::default().digest(), None);
    }

    #[test]
    fn mixed_lists_split_by_kind() {
        let json = br#"{"kind":"List","items":[
            {"kind":"Node","metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"2","memory":"4Gi"}}},
            {"kind":"Pod","metadata":{"name":"p1"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":"100m"}}}]}}
        ]}"#;
        let (pods, nodes) = parse_objects(json, "nodes", "x").unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].status.allocatable["memory"], "4Gi");
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].spec.containers[0].resources.requests["cpu"], "100m");
        assert!(parse_objects(b"[]", "pods", "x").is_err());
        assert!(parse_objects(b"{}", "pods", "x").is_err());
        assert!(parse_objects(br#"{"kind":"Pod","metadata":{"name":"p"}}"#, "pods", "x").is_err());
    }

    #[test]
    fn encodes() {
        assert_eq!(percent_encode("a b/c=d"), "a%20b%2Fc%3Dd");
    }
}
