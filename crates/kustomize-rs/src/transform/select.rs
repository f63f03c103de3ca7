//! Patch targets: anchored regexes on GVK, name and namespace, plus label and annotation
//! selectors (kustomize's `resWrangler.Select`).

use regex::Regex;

use crate::kustomization::Selector;
use crate::resource::Resource;

/// A compiled target.
pub struct Target {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

fn anchored(p: &str) -> Result<Option<Regex>, String> {
    if p.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{p})$"))
        .map(Some)
        .map_err(|e| format!("invalid target pattern {p:?}: {e}"))
}

fn is_match(r: &Option<Regex>, s: &str) -> bool {
    r.as_ref().is_none_or(|r| r.is_match(s))
}

impl Target {
    /// Compiles a selector.
    pub fn new(s: &Selector) -> Result<Self, String> {
        Ok(Target {
            group: anchored(&s.group)?,
            version: anchored(&s.version)?,
            kind: anchored(&s.kind)?,
            name: anchored(&s.name)?,
            namespace: anchored(&s.namespace)?,
            labels: parse_selector(&s.label_selector)?,
            annotations: parse_selector(&s.annotation_selector)?,
        })
    }

    /// Whether `r` is selected.
    pub fn selects(&self, r: &Resource) -> bool {
        let cur = r.cur_id();
        let org = &r.org_id;
        if !is_match(&self.namespace, org.effective_namespace())
            && !is_match(&self.namespace, cur.effective_namespace())
        {
            return false;
        }
        if !is_match(&self.name, &org.name) && !is_match(&self.name, &cur.name) {
            return false;
        }
        if !is_match(&self.group, &cur.gvk.group)
            || !is_match(&self.version, &cur.gvk.version)
            || !is_match(&self.kind, &cur.gvk.kind)
        {
            return false;
        }
        self.selects_metadata(r)
    }

    /// Whether `r`'s labels and annotations satisfy the selectors.
    pub fn selects_metadata(&self, r: &Resource) -> bool {
        if !self.labels.is_empty() {
            let l = r.labels();
            if !self.labels.iter().all(|q| q.matches(&l)) {
                return false;
            }
        }
        if !self.annotations.is_empty() {
            let a = r.annotations();
            if !self.annotations.iter().all(|q| q.matches(&a)) {
                return false;
            }
        }
        true
    }
}

enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, pairs: &[(String, String)]) -> bool {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        match self {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Splits at commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Parses a Kubernetes label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
fn parse_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in split_top(s) {
        let p = part.trim();
        if p.is_empty() {
            return Err(format!("invalid selector {s:?}"));
        }
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("invalid selector {s:?}"))?;
            Ok(inner
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect())
        };
        if let Some(k) = p.strip_prefix('!') {
            out.push(Requirement::NotExists(k.trim().to_string()));
        } else if let Some((k, v)) = p.split_once("!=") {
            out.push(Requirement::NotEq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==") {
            out.push(Requirement::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once('=') {
            out.push(Requirement::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            out.push(Requirement::NotIn(k.trim().into(), set(rest)?));
        } else if let Some((k, rest)) = p.split_once(" in ") {
            out.push(Requirement::In(k.trim().into(), set(rest)?));
        } else {
            out.push(Requirement::Exists(p.to_string()));
        }
    }
    Ok(out)
}
