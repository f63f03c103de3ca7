//! `configMapGenerator` / `secretGenerator` and kustomize's name-suffix hash.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};
use crate::kustomization::{GenOptions, GeneratorSpec, Kustomization};
use crate::loader;
use crate::resource::{Behavior, Resource};
use crate::yaml::{Map, Value};

/// Which generator.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GenKind {
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
}

/// Builds the object a generator entry describes, and its behavior.
pub fn generate(
    k: &Kustomization,
    g: &GeneratorSpec,
    kind: GenKind,
) -> Result<(Resource, Behavior)> {
    let at = k.at(g.line);
    let pairs = collect_pairs(k, g, &at)?;
    let opts = merge_options(k.generator_options.as_ref(), &g.options);
    let mut meta = Map::new();
    meta.insert("name", Value::Str(g.name.clone()));
    if !g.namespace.is_empty() {
        meta.insert("namespace", Value::Str(g.namespace.clone()));
    }
    if !opts.labels.is_empty() {
        meta.insert(
            "labels",
            Value::Map(Map::from_iter(
                opts.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone()))),
            )),
        );
    }
    if !opts.annotations.is_empty() {
        meta.insert(
            "annotations",
            Value::Map(Map::from_iter(
                opts.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone()))),
            )),
        );
    }
    let mut obj = Map::new();
    obj.insert("apiVersion", Value::Str("v1".into()));
    let mut data = Map::new();
    let mut binary = Map::new();
    match kind {
        GenKind::ConfigMap => {
            obj.insert("kind", Value::Str("ConfigMap".into()));
            obj.insert("metadata", Value::Map(meta));
            for (key, bytes) in pairs {
                match String::from_utf8(bytes) {
                    Ok(s) => data.insert(key, Value::Str(s)),
                    Err(e) => binary.insert(key, Value::Str(encode_base64(e.as_bytes()))),
                }
            }
        }
        GenKind::Secret => {
            obj.insert("kind", Value::Str("Secret".into()));
            obj.insert("metadata", Value::Map(meta));
            for (key, bytes) in pairs {
                data.insert(key, Value::Str(encode_base64(&bytes)));
            }
            let t = if g.kind_type.is_empty() {
                "Opaque"
            } else {
                &g.kind_type
            };
            obj.insert("type", Value::Str(t.to_string()));
        }
    }
    // kustomize always gives a Secret a `data` map (`data: {}` when there are no sources).
    if !data.is_empty() || kind == GenKind::Secret {
        obj.insert("data", Value::Map(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData", Value::Map(binary));
    }
    if opts.immutable == Some(true) {
        obj.insert("immutable", Value::Bool(true));
    }
    let mut r = Resource::new(Value::Map(obj));
    r.generated = true;
    r.needs_hash = opts.disable_hash != Some(true);
    // kustomize reads any other value (even an unknown one) as "create".
    let behavior = match g.behavior.as_str() {
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        _ => Behavior::Create,
    };
    Ok((r, behavior))
}

fn merge_options(global: Option<&GenOptions>, local: &GenOptions) -> GenOptions {
    let Some(g) = global else {
        return local.clone();
    };
    let mut out = g.clone();
    for (k, v) in &local.labels {
        upsert(&mut out.labels, k, v);
    }
    for (k, v) in &local.annotations {
        upsert(&mut out.annotations, k, v);
    }
    // A global `true` wins over a local `false`.
    out.disable_hash = match (g.disable_hash, local.disable_hash) {
        (Some(true), _) => Some(true),
        (_, Some(l)) => Some(l),
        (gl, None) => gl,
    };
    out.immutable = match (g.immutable, local.immutable) {
        (Some(true), _) => Some(true),
        (_, Some(l)) => Some(l),
        (gl, None) => gl,
    };
    out
}

fn upsert(v: &mut Vec<(String, String)>, k: &str, val: &str) {
    match v.iter_mut().find(|(x, _)| x == k) {
        Some(slot) => slot.1 = val.to_string(),
        None => v.push((k.to_string(), val.to_string())),
    }
}

fn collect_pairs(
    k: &Kustomization,
    g: &GeneratorSpec,
    at: &Location,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let push = |key: String, val: Vec<u8>, out: &mut Vec<(String, Vec<u8>)>| -> Result<()> {
        if out.iter().any(|(x, _)| *x == key) {
            return Err(Error::Transform {
                at: at.clone(),
                message: format!(
                    "configmap/secret '{}': cannot add key '{key}', another key by that name already exists",
                    g.name
                ),
            });
        }
        out.push((key, val));
        Ok(())
    };
    for env in &g.envs {
        refuse_remote(env, at)?;
        let (_, text) = loader::read_text(&k.dir, env, at)?;
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{FEFF}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, val) = line.split_once('=').unwrap_or((line, ""));
            push(key.to_string(), val.as_bytes().to_vec(), &mut out)?;
        }
    }
    for (i, lit) in g.literals.iter().enumerate() {
        // The literal is not echoed: in a secretGenerator it is a secret.
        let Some((key, val)) = lit.split_once('=') else {
            return Err(Error::Transform {
                at: at.clone(),
                message: format!(
                    "invalid literal source #{} of '{}', expected key=value",
                    i + 1,
                    g.name
                ),
            });
        };
        let val = strip_quotes(val);
        push(key.to_string(), val.as_bytes().to_vec(), &mut out)?;
    }
    for f in &g.files {
        let (key, rel) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p),
            None => {
                let base = f.rsplit('/').next().unwrap_or(f);
                (base.to_string(), f.as_str())
            }
        };
        refuse_remote(rel, at)?;
        let (_, bytes) = loader::read_file(&k.dir, rel, at)?;
        push(key, bytes, &mut out)?;
    }
    Ok(out)
}

/// kustomize can load generator sources over HTTP(S); rel's renderer does no network I/O.
fn refuse_remote(source: &str, at: &Location) -> Result<()> {
    if source.contains("://") {
        return Err(Error::Unsupported {
            at: at.clone(),
            what: format!("remote files are not supported ('{source}')"),
        });
    }
    Ok(())
}

fn strip_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2
        && ((b[0] == b'"' && b[b.len() - 1] == b'"') || (b[0] == b'\'' && b[b.len() - 1] == b'\''))
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Base64 with a newline after every 70 characters once the text reaches 70 (kyaml's
/// `encodeBase64`).
pub fn encode_base64(b: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(b);
    if enc.len() < 70 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / 70 + 1);
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// kustomize's content hash of a generated ConfigMap or Secret (the name is always empty in
/// the hashed text, a quirk of kustomize's path lookup).
pub fn hash(r: &Resource) -> String {
    let v = &r.value;
    let mut fields: Vec<(&str, String)> = Vec::new();
    let data_json = |key: &str| -> String {
        match v.get(key) {
            Some(Value::Map(m)) => json_string_map(m),
            _ => "\"\"".to_string(),
        }
    };
    match r.kind() {
        "Secret" => {
            fields.push(("data", data_json("data")));
            fields.push(("kind", "\"Secret\"".into()));
            fields.push(("name", "\"\"".into()));
            if let Some(Value::Map(m)) = v.get("stringData") {
                fields.push(("stringData", json_string_map(m)));
            }
            let t = v.get("type").and_then(Value::as_str).unwrap_or("");
            fields.push(("type", json_str(t)));
        }
        _ => {
            if let Some(Value::Map(m)) = v.get("binaryData") {
                if !m.is_empty() {
                    fields.push(("binaryData", json_string_map(m)));
                }
            }
            fields.push(("data", data_json("data")));
            fields.push(("kind", "\"ConfigMap\"".into()));
            fields.push(("name", "\"\"".into()));
        }
    }
    let mut text = String::from("{");
    for (i, (k, val)) in fields.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&json_str(k));
        text.push(':');
        text.push_str(val);
    }
    text.push('}');
    encode_hash(&text)
}

/// SHA-256 hex, first 10 characters, with kustomize's vowel-avoiding substitutions.
pub fn encode_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

fn json_string_map(m: &Map) -> String {
    let mut entries: Vec<(&String, String)> = m
        .iter()
        .map(|(k, v)| (k, v.scalar_text().unwrap_or_default()))
        .collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_str(k));
        s.push(':');
        s.push_str(&json_str(v));
    }
    s.push('}');
    s
}

/// Go `encoding/json` string encoding (HTML-safe).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_vector_from_kustomize() {
        assert_eq!(
            encode_hash(r#"{"data":{"A":"1","B":"true"},"kind":"ConfigMap","name":""}"#),
            "cgcg2845m8"
        );
    }
}
