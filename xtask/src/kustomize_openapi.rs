//! `cargo xtask kustomize-openapi SWAGGER.pb`: extracts, from the Kubernetes OpenAPI schema
//! kustomize embeds (`kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb` in kustomize v5.5.0, a
//! gnostic OpenAPI v2 protobuf), what strategic merge needs: each definition's group/version/
//! kind, and for each property its type reference, whether it is a list, and its
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key` and `x-kubernetes-list-map-keys`.
//! Writes `crates/kustomize-rs/src/builtin/openapi_patch.txt`.

use std::fmt::Write as _;
use std::path::Path;

/// One protobuf field: number and payload (varints are returned as their value in `Varint`).
enum Field<'a> {
    Bytes(u64, &'a [u8]),
    Other,
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// The fields of one message.
fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let tag = varint(b, &mut i)?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(b, &mut i)?;
                out.push(Field::Other);
            }
            1 => {
                i += 8;
                out.push(Field::Other);
            }
            2 => {
                let len = usize::try_from(varint(b, &mut i)?).ok()?;
                let data = b.get(i..i + len)?;
                i += len;
                out.push(Field::Bytes(num, data));
            }
            5 => {
                i += 4;
                out.push(Field::Other);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn bytes_of(b: &[u8], num: u64) -> Vec<&[u8]> {
    fields(b)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| match f {
            Field::Bytes(n, d) if n == num => Some(d),
            _ => None,
        })
        .collect()
}

fn string_of(b: &[u8], num: u64) -> Option<String> {
    bytes_of(b, num)
        .first()
        .map(|d| String::from_utf8_lossy(d).into_owned())
}

/// gnostic `Schema`: `_ref` = 1, `items` = 23 (`ItemsItem { repeated Schema schema = 1 }`),
/// `properties` = 25 (`Properties { repeated NamedSchema additional_properties = 1 }`),
/// `vendor_extension` = 31 (`NamedAny { name = 1, value = 2: Any { yaml = 2 } }`).
struct Schema<'a>(&'a [u8]);

impl<'a> Schema<'a> {
    fn reference(&self) -> Option<String> {
        string_of(self.0, 1).map(|r| r.trim_start_matches("#/definitions/").to_string())
    }
    fn items(&self) -> Option<Schema<'a>> {
        let items = *bytes_of(self.0, 23).first()?;
        bytes_of(items, 1).first().map(|s| Schema(s))
    }
    fn properties(&self) -> Vec<(String, Schema<'a>)> {
        let Some(props) = bytes_of(self.0, 25).first().copied() else {
            return Vec::new();
        };
        bytes_of(props, 1)
            .into_iter()
            .filter_map(|ns| {
                let name = string_of(ns, 1)?;
                let value = *bytes_of(ns, 2).first()?;
                Some((name, Schema(value)))
            })
            .collect()
    }
    fn extension(&self, name: &str) -> Option<String> {
        bytes_of(self.0, 31).into_iter().find_map(|na| {
            if string_of(na, 1)? != name {
                return None;
            }
            let any = *bytes_of(na, 2).first()?;
            string_of(any, 2)
        })
    }
}

/// The scalars of a YAML block list (`- a\n- b\n`) or a single scalar.
fn yaml_list(y: &str) -> Vec<String> {
    y.lines()
        .map(|l| l.trim().trim_start_matches("- ").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `x-kubernetes-group-version-kind` entries as `group/version/kind` (`-` for the core group).
fn gvks(y: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut g, mut v, mut k) = (String::new(), String::new(), String::new());
    let mut flush = |g: &mut String, v: &mut String, k: &mut String| {
        if !k.is_empty() {
            let group = if g.is_empty() {
                "-".to_string()
            } else {
                g.clone()
            };
            out.push(format!("{group}/{v}/{k}"));
        }
        g.clear();
        v.clear();
        k.clear();
    };
    for line in y.lines() {
        let l = line.trim();
        if l.starts_with("- ") {
            flush(&mut g, &mut v, &mut k);
        }
        let l = l.trim_start_matches("- ");
        if let Some((key, val)) = l.split_once(':') {
            let val = val.trim().trim_matches('"').to_string();
            match key.trim() {
                "group" => g = val,
                "version" => v = val,
                "kind" => k = val,
                _ => {}
            }
        }
    }
    flush(&mut g, &mut v, &mut k);
    out
}

pub fn run(args: &[String]) -> i32 {
    let [pb] = args else {
        eprintln!(
            "usage: cargo xtask kustomize-openapi SWAGGER.pb\n  (kustomize v5.5.0: kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb)"
        );
        return 2;
    };
    let data = match std::fs::read(pb) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{pb}: {e}");
            return 2;
        }
    };
    // gnostic `Document`: `definitions` = 9 (`Definitions { repeated NamedSchema = 1 }`).
    let Some(defs) = bytes_of(&data, 9).first().copied() else {
        eprintln!("{pb}: no definitions (not a gnostic OpenAPI v2 document?)");
        return 1;
    };
    let mut out = String::from(
        "# Strategic-merge data from the Kubernetes OpenAPI schema kustomize v5.5.0 embeds\n\
         # (kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb). Generated by\n\
         # `cargo xtask kustomize-openapi SWAGGER.pb`; do not edit by hand.\n\
         # D <definition> <group/version/kind>...   (group `-` is the core group)\n\
         # P <property> <ref|-> <list|one> <patch-strategy|-> <merge-keys,...|->\n",
    );
    let mut count = 0;
    for ns in bytes_of(defs, 1) {
        let (Some(name), Some(schema)) = (string_of(ns, 1), bytes_of(ns, 2).first().copied())
        else {
            continue;
        };
        let schema = Schema(schema);
        let gvk = schema
            .extension("x-kubernetes-group-version-kind")
            .map(|y| gvks(&y))
            .unwrap_or_default();
        let mut props = String::new();
        for (pname, p) in schema.properties() {
            let items = p.items();
            let list = items.is_some();
            let reference = match &items {
                Some(i) => i.reference(),
                None => p.reference(),
            };
            let strategy = p
                .extension("x-kubernetes-patch-strategy")
                .map(|s| s.trim().to_string());
            if reference.is_none() && strategy.is_none() {
                continue;
            }
            let keys = match strategy {
                Some(_) => match p.extension("x-kubernetes-list-map-keys") {
                    Some(y) => yaml_list(&y).join(","),
                    None => p
                        .extension("x-kubernetes-patch-merge-key")
                        .map(|k| k.trim().to_string())
                        .unwrap_or_default(),
                },
                None => String::new(),
            };
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            let _ = writeln!(
                props,
                "P {pname} {} {} {} {}",
                reference.as_deref().unwrap_or("-"),
                if list { "list" } else { "one" },
                dash(strategy.as_deref().unwrap_or("")),
                dash(&keys)
            );
        }
        if props.is_empty() && gvk.is_empty() {
            continue;
        }
        count += 1;
        let _ = writeln!(out, "D {name} {}", gvk.join(" "));
        out.push_str(&props);
    }
    let dest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/kustomize-rs/src/builtin/openapi_patch.txt");
    if let Err(e) = std::fs::write(&dest, out) {
        eprintln!("{}: {e}", dest.display());
        return 1;
    }
    eprintln!(
        "kustomize-openapi: {count} definitions written to {}",
        dest.display()
    );
    0
}
