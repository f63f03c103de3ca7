//! What makes manifests written for a cluster work on one machine: values in a container's env,
//! command and args are rewritten, and each rewrite is returned as data ([`Rewrite`]) so the
//! caller can show it (`rel up --dry-run`).
//!
//! - **Listen address.** A whole value `0.0.0.0:PORT`, `[::]:PORT`, `:::PORT` or `:PORT` becomes
//!   `POD_IP:PORT`: every pod has its own loopback address, so two pods with the same
//!   containerPort run side by side.
//! - **Service names.** `name.ns.svc.cluster.local`, `name.ns.svc` anywhere in a value;
//!   `name.ns` and `name` (resolved in the pod's namespace, as cluster DNS does) where they are
//!   a URL's host (`http://name/...`) or followed by a port (`name:80`). The host (and port)
//!   become the Service's stage address: `http://identity/x` → `http://127.64.7.200:10080/x`.
//!   A port the Service declares maps to its proxy port; `http://` and `https://` without a port
//!   mean 80 and 443. A bare word (`ROLE=worker`) is never rewritten.
//! - **Mount paths.** A volume's mountPath at the start of a path (after start of value, `=`,
//!   `:`, `,`, `;`, a space, or `scheme://`) becomes the volume's directory under the stage:
//!   `sqlite:///data/platform.db` → `sqlite:///…/.rel/stage/local/volumes/platform-data/platform.db`.
//!   `/database` is not under `/data`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a value changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewriteKind {
    ListenAddress,
    ServiceName,
    MountPath,
}

/// One rewritten value. Values from Secrets are shown as `(secret)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub pod: String,
    pub container: String,
    /// `env LISTEN_ADDR`, `args[0]`, `command[1]`.
    pub field: String,
    pub kinds: Vec<RewriteKind>,
    pub from: String,
    pub to: String,
}

/// A Service as pods address it.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    /// Service port → the port its proxy listens on.
    pub ports: Vec<(u16, u16)>,
}

/// The rewrite rules for one pod.
pub struct Rewriter<'a> {
    pub pod_ip: &'a str,
    pub namespace: &'a str,
    pub services: &'a [ServiceTarget],
    /// mountPath → host directory, longest mountPath first.
    pub mounts: &'a [(String, PathBuf)],
}

impl Rewriter<'_> {
    /// The rewritten value and what was done to it (empty when unchanged).
    pub fn rewrite(&self, value: &str) -> (String, Vec<RewriteKind>) {
        let mut kinds = Vec::new();
        if let Some(port) = listen_port(value) {
            kinds.push(RewriteKind::ListenAddress);
            return (format!("{}:{port}", self.pod_ip), kinds);
        }
        let mut out = self.rewrite_hosts(value);
        if out != value {
            kinds.push(RewriteKind::ServiceName);
        }
        let mounted = self.rewrite_mounts(&out);
        if mounted != out {
            kinds.push(RewriteKind::MountPath);
            out = mounted;
        }
        (out, kinds)
    }

    fn lookup(&self, host: &str, url_or_port: bool) -> Option<&ServiceTarget> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let parts: Vec<&str> = host.split('.').collect();
        let (name, ns) = match parts.as_slice() {
            [name] if url_or_port => (*name, self.namespace),
            [name, ns] if url_or_port => (*name, *ns),
            [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => (*name, *ns),
            _ => return None,
        };
        self.services
            .iter()
            .find(|s| s.name == name && s.namespace == ns)
    }

    fn rewrite_hosts(&self, value: &str) -> String {
        let bytes = value.as_bytes();
        let is_host = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
        let mut out = String::with_capacity(value.len());
        let mut i = 0;
        while i < bytes.len() {
            if !is_host(bytes[i]) {
                out.push(bytes[i] as char);
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_host(bytes[i]) {
                i += 1;
            }
            let token = &value[start..i];
            let before = &value[..start];
            let scheme = before.strip_suffix("://").map(|head| {
                head.rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '+')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            });
            let after = &value[i..];
            let port: Option<(u16, usize)> = after.strip_prefix(':').and_then(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let next = rest[digits.len()..].chars().next();
                if digits.is_empty() || next.is_some_and(|c| c.is_ascii_alphanumeric()) {
                    None
                } else {
                    digits.parse().ok().map(|p| (p, digits.len() + 1))
                }
            });
            let after_at = before.ends_with('@');
            let url_or_port = scheme.is_some() || port.is_some() || after_at;
            match self.lookup(token, url_or_port) {
                Some(svc) => {
                    let mapped = |p: u16| svc.ports.iter().find(|(sp, _)| *sp == p).map(|m| m.1);
                    match port {
                        Some((p, len)) => {
                            out.push_str(&format!("{}:{}", svc.ip, mapped(p).unwrap_or(p)));
                            i += len;
                        }
                        None => {
                            let default = match scheme.as_deref() {
                                Some("http") | Some("ws") => Some(80),
                                Some("https") | Some("wss") => Some(443),
                                _ => None,
                            };
                            match default.and_then(mapped) {
                                Some(p) => out.push_str(&format!("{}:{p}", svc.ip)),
                                None => out.push_str(&svc.ip),
                            }
                        }
                    }
                }
                None => out.push_str(token),
            }
        }
        out
    }

    fn rewrite_mounts(&self, value: &str) -> String {
        let mut out = value.to_owned();
        for (mount, dir) in self.mounts {
            let mut result = String::with_capacity(out.len());
            let mut rest = out.as_str();
            let mut consumed = String::new();
            while let Some(at) = rest.find(mount.as_str()) {
                let before_full = format!("{consumed}{}", &rest[..at]);
                let after = &rest[at + mount.len()..];
                let start_ok = before_full.is_empty()
                    || before_full.ends_with("://")
                    || before_full
                        .chars()
                        .last()
                        .is_some_and(|c| matches!(c, '=' | ':' | ',' | ';' | ' ' | '"' | '\''));
                let end_ok = after
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
                result.push_str(&rest[..at]);
                consumed.push_str(&rest[..at]);
                if start_ok && end_ok {
                    result.push_str(&dir.display().to_string());
                } else {
                    result.push_str(mount);
                }
                consumed.push_str(mount);
                rest = after;
            }
            result.push_str(rest);
            out = result;
        }
        out
    }
}

fn listen_port(value: &str) -> Option<u16> {
    let v = value.trim();
    let port = v
        .strip_prefix("0.0.0.0:")
        .or_else(|| v.strip_prefix("[::]:"))
        .or_else(|| v.strip_prefix(":::"))
        .or_else(|| v.strip_prefix(':'))?;
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter<'a>(
        services: &'a [ServiceTarget],
        mounts: &'a [(String, PathBuf)],
    ) -> Rewriter<'a> {
        Rewriter {
            pod_ip: "127.64.0.9",
            namespace: "platform",
            services,
            mounts,
        }
    }

    #[test]
    fn rewrites_listen_addresses_service_names_and_mounts() {
        let services = [
            ServiceTarget {
                name: "identity".into(),
                namespace: "platform".into(),
                ip: "127.64.0.200".into(),
                ports: vec![(80, 10080)],
            },
            ServiceTarget {
                name: "db".into(),
                namespace: "other".into(),
                ip: "127.64.0.201".into(),
                ports: vec![(5432, 5432)],
            },
        ];
        let mounts = [(
            "/data".to_owned(),
            PathBuf::from("/stage/volumes/platform-data"),
        )];
        let r = rewriter(&services, &mounts);
        let cases = [
            (
                "0.0.0.0:8080",
                "127.64.0.9:8080",
                vec![RewriteKind::ListenAddress],
            ),
            (":9090", "127.64.0.9:9090", vec![RewriteKind::ListenAddress]),
            (
                "http://identity/.well-known/jwks.json",
                "http://127.64.0.200:10080/.well-known/jwks.json",
                vec![RewriteKind::ServiceName],
            ),
            (
                "identity:80",
                "127.64.0.200:10080",
                vec![RewriteKind::ServiceName],
            ),
            (
                "https://identity.platform.svc.cluster.local:80/x",
                "https://127.64.0.200:10080/x",
                vec![RewriteKind::ServiceName],
            ),
            (
                "identity.platform.svc",
                "127.64.0.200",
                vec![RewriteKind::ServiceName],
            ),
            (
                "postgres://u:p@db.other:5432/app",
                "postgres://u:p@127.64.0.201:5432/app",
                vec![RewriteKind::ServiceName],
            ),
            // The short name resolves in the pod's namespace only.
            ("http://db/", "http://db/", vec![]),
            // Bare words and look-alikes stay.
            ("identity", "identity", vec![]),
            ("http://identity-admin/", "http://identity-admin/", vec![]),
            (
                "sqlite:///data/platform.db",
                "sqlite:///stage/volumes/platform-data/platform.db",
                vec![RewriteKind::MountPath],
            ),
            (
                "/data",
                "/stage/volumes/platform-data",
                vec![RewriteKind::MountPath],
            ),
            ("/database/x", "/database/x", vec![]),
            ("a/data/b", "a/data/b", vec![]),
        ];
        for (from, to, kinds) in cases {
            assert_eq!(r.rewrite(from), (to.to_owned(), kinds), "{from}");
        }
    }
}
