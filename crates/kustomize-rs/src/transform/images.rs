//! `images:` — kustomize's image tag transformer.

use regex::Regex;

use crate::fieldspec::{FieldSpec, Leaf, visit};
use crate::kustomization::ImageSpec;
use crate::resource::ResMap;
use crate::yaml::Value;

/// A compiled `images:` entry.
pub struct ImageRule {
    spec: ImageSpec,
    re: Option<Regex>,
    /// The name when it holds no regex syntax except `.` and no `:`/`@` (the common case),
    /// matched by hand.
    simple: Option<Vec<u8>>,
}

fn tail_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'{' | b'}' | b'-')
}

/// `(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$` on what follows the name.
fn tail_matches(rest: &[u8]) -> bool {
    let mut i = 0;
    if rest.first() == Some(&b':') {
        i = 1;
        while i < rest.len() && tail_char(rest[i]) {
            i += 1;
        }
    }
    if i == rest.len() {
        return true;
    }
    let Some(d) = rest[i..].strip_prefix(b"@sha256:") else {
        return false;
    };
    d.iter().all(|c| tail_char(*c))
}

impl ImageRule {
    /// Compiles an entry (a name that is not a valid pattern matches nothing, as in kustomize).
    pub fn new(spec: ImageSpec) -> Self {
        let re = Regex::new(&format!(
            r"^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
            spec.name
        ))
        .ok();
        let simple = spec
            .name
            .bytes()
            .all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'-' | b'_' | b':' | b'@')
            })
            .then(|| spec.name.as_bytes().to_vec())
            // The tail's optional parts can also be matched by the name's own `.`s only in the
            // regex engine's backtracking sense; names without `:`/`@` avoid that.
            .filter(|n| !n.contains(&b':') && !n.contains(&b'@'));
        ImageRule { spec, re, simple }
    }

    /// Whether `image` is matched by this entry.
    pub fn matches(&self, image: &str) -> bool {
        if let Some(name) = &self.simple {
            // `.` in the name matches any one character (kustomize does not escape it); the
            // tail after the name is anchored. A `.` could also swallow a multi-byte character,
            // so non-ASCII images go to the regex.
            let img = image.as_bytes();
            // Names in one `images:` list often share a long prefix (the registry), so compare
            // from the end of the name, where they differ.
            if img.len() < name.len()
                || !name
                    .iter()
                    .zip(img)
                    .rev()
                    .all(|(n, c)| *n == b'.' || n == c)
            {
                // No match, whatever the bytes are: the name's literal bytes differ.
                if image.is_ascii() {
                    return false;
                }
            } else if image.is_ascii() {
                return tail_matches(&img[name.len()..]);
            }
        }
        self.re.as_ref().is_some_and(|r| r.is_match(image))
    }

    /// The rewritten image, if matched.
    pub fn apply(&self, image: &str) -> Option<String> {
        if !self.matches(image) {
            return None;
        }
        let (mut name, mut tag, mut digest) = split(image);
        let s = &self.spec;
        if !s.new_name.is_empty() {
            name = s.new_name.clone();
        }
        if !s.new_tag.is_empty() && !s.digest.is_empty() {
            tag = s.new_tag.clone();
            digest = s.digest.clone();
        } else if !s.new_tag.is_empty() {
            tag = s.new_tag.clone();
            digest.clear();
        } else if !s.digest.is_empty() {
            tag.clear();
            digest = s.digest.clone();
        } else if !s.tag_suffix.is_empty() {
            tag.push_str(&s.tag_suffix);
            digest.clear();
        }
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        Some(name)
    }
}

/// Splits an image reference into name, tag and digest the way kustomize does (anything before
/// the first `/` is ignored when looking for `:` and `@`).
pub fn split(image: &str) -> (String, String, String) {
    let slash = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (ic, Some(d)) if ic.is_none_or(|c| d < c) => {
            let d = d + slash;
            (
                image[..d].to_string(),
                String::new(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), Some(d)) => {
            let (c, d) = (c + slash, d + slash);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + slash;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        (None, Some(_)) => unreachable!("handled by the digest-only arm"),
    }
}

/// Applies every entry, in order, to every image field.
pub fn transform(m: &mut ResMap, rules: &[ImageRule], extra_specs: &[FieldSpec]) {
    if rules.is_empty() {
        return;
    }
    let rewrite = &mut |v: &mut Value| {
        if let Value::Str(s) = v {
            for r in rules {
                if let Some(new) = r.apply(s) {
                    *s = new;
                }
            }
        }
    };
    // kustomize's `images` field specs (data), with the paths as written (`containers[]`).
    let builtin = crate::build::builtin_field_specs("images");
    for r in &mut m.list {
        let gvk = r.gvk();
        if gvk.kind == "CustomResourceDefinition" {
            continue;
        }
        walk_containers(&mut r.value, rewrite);
        // kustomize runs its built-in field specs after the walk above, so the pod-spec paths
        // they name are rewritten a second time (visible with `tagSuffix`).
        for fs in &builtin {
            visit(&mut r.value, &fs.path, false, Leaf::Scalar, rewrite);
        }
        for fs in extra_specs {
            if fs.selects(&gvk) {
                visit(&mut r.value, &fs.path, fs.create, Leaf::Scalar, rewrite);
            }
        }
    }
}

/// Every `image` under a `containers` or `initContainers` key, at any depth.
fn walk_containers(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                if k == "containers" || k == "initContainers" {
                    if let Value::Seq(items) = child {
                        for item in items.iter_mut() {
                            if let Some(img) = item.get_mut("image") {
                                f(img);
                            }
                        }
                    }
                }
                walk_containers(child, f);
            }
        }
        Value::Seq(items) => {
            for item in items {
                walk_containers(item, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ignores_registry_port() {
        assert_eq!(
            split("localhost:5000/app:1"),
            ("localhost:5000/app".into(), "1".into(), String::new())
        );
        assert_eq!(
            split("app@sha256:ab"),
            ("app".into(), String::new(), "sha256:ab".into())
        );
        assert_eq!(
            split("app:1@sha256:ab"),
            ("app".into(), "1".into(), "sha256:ab".into())
        );
    }

    #[test]
    fn hand_matcher_agrees_with_the_regex() {
        let names = ["nginx", "my.registry/nginx", "nginx.", "a/b", "img-01", "x"];
        let images = [
            "nginx",
            "nginx:1",
            "nginx@sha256:abc",
            "nginx:1@sha256:abc",
            "nginxx",
            "nginx:",
            "nginx@sha1:x",
            "my.registry/nginx:2",
            "myxregistry/nginx",
            "nginx1:3",
            "a/b:c{d}",
            "img-01:1.0.3",
            "x:y:z",
            "x@sha256:a@b",
        ];
        for n in names {
            let rule = ImageRule::new(ImageSpec {
                name: n.into(),
                new_tag: "t".into(),
                ..Default::default()
            });
            assert!(rule.simple.is_some());
            for i in images {
                let by_regex = rule.re.as_ref().unwrap().is_match(i);
                assert_eq!(rule.matches(i), by_regex, "name {n} image {i}");
            }
        }
    }

    #[test]
    fn registry_must_match_literally() {
        let r = ImageRule::new(ImageSpec {
            name: "nginx".into(),
            new_tag: "2".into(),
            ..Default::default()
        });
        assert_eq!(r.apply("docker.io/nginx:1"), None);
        assert_eq!(r.apply("nginx:1@sha256:x").as_deref(), Some("nginx:2"));
    }
}
