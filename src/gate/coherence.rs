//! The coherence gate: is a release lockfile complete, digest-pinned and self-consistent?
//!
//! Always: `version` is semver and matches the file name, `engineVersion` is semver, every
//! component is pinned by a valid `sha256:` digest, and every `builtAgainstEngine` equals
//! `engineVersion`. Inside a project: every component `rel.toml` expects is present, none it does
//! not know is, each that must carry `builtAgainstEngine` does, and image names match.

use crate::config::Config;
use crate::lockfile::LoadedRaw;
use crate::report::{Check, Report};
use crate::version::Version;

/// Run every check on a parsed lockfile; `config` adds the project-level checks.
pub fn check(loaded: &LoadedRaw, config: Option<&Config>) -> Report {
    let raw = &loaded.raw;
    let mut report = Report::new("coherence", loaded.path.display().to_string());

    // version, and its agreement with the file name.
    let version = match &raw.version {
        None => {
            report.push(Check::fail(
                "version",
                "the lockfile has no `version` field; add `version: \"X.Y.Z\"`",
            ));
            None
        }
        Some(v) => match v.value.parse::<Version>() {
            Ok(parsed) => {
                report.push(Check::pass("version", format!("{parsed}")));
                Some(parsed)
            }
            Err(e) => {
                report.push(Check::fail("version", format!("{}: {e}", loaded.at(v))));
                None
            }
        },
    };
    let stem = loaded
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(v) = &raw.version {
        if v.value == stem {
            report.push(Check::pass(
                "version/file-name",
                format!("`{}` matches {stem}.yaml", v.value),
            ));
        } else {
            report.push(Check::fail(
                "version/file-name",
                format!(
                    "{}: version `{}` does not match the file name `{}`; a lockfile lives at releases/<version>.yaml (rename the file or fix `version`)",
                    loaded.at(v),
                    v.value,
                    loaded.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
                ),
            ));
        }
    }

    let engine = match &raw.engine_version {
        None => {
            report.push(Check::fail(
                "engineVersion",
                "the lockfile has no `engineVersion` field; add `engineVersion: \"X.Y.Z\"` (usually equal to `version`)",
            ));
            None
        }
        Some(e) => match e.value.parse::<Version>() {
            Ok(parsed) => {
                report.push(Check::pass("engineVersion", format!("{parsed}")));
                Some(parsed)
            }
            Err(err) => {
                report.push(Check::fail(
                    "engineVersion",
                    format!("{}: {err}", loaded.at(e)),
                ));
                None
            }
        },
    };
    let _ = version;

    let empty = Default::default();
    let components = match &raw.components {
        Some(c) if !c.value.is_empty() => &c.value,
        _ => {
            report.push(Check::fail(
                "components",
                "the lockfile pins no components; add `components.<name>.digest: sha256:...`",
            ));
            &empty
        }
    };

    // Presence against rel.toml.
    if let Some(config) = config {
        for name in config.components.keys() {
            if components.contains_key(name) {
                report.push(Check::pass(
                    format!("component/{name}/present"),
                    "expected by rel.toml and present",
                ));
            } else {
                report.push(Check::fail(
                    format!("component/{name}/present"),
                    format!(
                        "rel.toml expects component `{name}` but the lockfile does not pin it; rebuild with `rel build` and `rel lock`, or add it with `rel lock --digest {name}=sha256:...`"
                    ),
                ));
            }
        }
        for (name, c) in components {
            if !config.components.contains_key(name) {
                report.push(Check::fail(
                    format!("component/{name}/known"),
                    format!(
                        "{}: component `{name}` is not in rel.toml (known: {}); remove it from the lockfile or add `[components.{name}]` to rel.toml",
                        loaded.at(c),
                        config.components.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }

    for (name, spanned) in components {
        let c = &spanned.value;
        let expected = config.and_then(|cfg| cfg.components.get(name));

        // Digest pin.
        let check_name = format!("component/{name}/digest");
        match &c.digest {
            None => {
                let by_tag = c.tag.as_deref().map(str::to_owned).or_else(|| {
                    c.image
                        .as_ref()
                        .and_then(|i| i.value.parse::<image_ref::ImageRef>().ok())
                        .and_then(|r| r.tag().map(str::to_owned))
                });
                let detail = match by_tag {
                    Some(tag) => format!(
                        "{}: `{name}` is pinned by tag `{tag}` only; a tag is a label, never an authority: add `digest: sha256:<64 hex>` (`rel lock` writes it from the build)",
                        loaded.at(spanned)
                    ),
                    None => format!(
                        "{}: `{name}` has no `digest`; add `digest: sha256:<64 hex>`",
                        loaded.at(spanned)
                    ),
                };
                report.push(Check::fail(check_name, detail));
            }
            Some(d) => match d.value.parse::<image_ref::Digest>() {
                Ok(digest) => report.push(Check::pass(check_name, digest.to_string())),
                Err(e) => {
                    let hint = if !d.value.contains(':') {
                        " (it looks like a tag: pin by digest instead)"
                    } else {
                        ""
                    };
                    report.push(Check::fail(
                        check_name,
                        format!("{}: {e}{hint}", loaded.at(d)),
                    ));
                }
            },
        }

        // builtAgainstEngine.
        let required = expected.is_some_and(|e| e.built_against_engine);
        let check_name = format!("component/{name}/builtAgainstEngine");
        match (&c.built_against_engine, required) {
            (None, true) => report.push(Check::fail(
                check_name,
                format!(
                    "{}: rel.toml says `{name}` must carry `builtAgainstEngine` (built-against-engine = true) and it has none; add `builtAgainstEngine: \"<engineVersion>\"`",
                    loaded.at(spanned)
                ),
            )),
            (None, false) => {}
            (Some(b), _) => match (&engine, b.value.parse::<Version>()) {
                (_, Err(e)) => report.push(Check::fail(check_name, format!("{}: {e}", loaded.at(b)))),
                (Some(engine), Ok(v)) if &v == engine => {
                    report.push(Check::pass(check_name, format!("{v} equals engineVersion")))
                }
                (Some(engine), Ok(v)) => report.push(Check::fail(
                    check_name,
                    format!(
                        "{}: `{name}` was built against engine {v} but the release's engineVersion is {engine}; rebuild `{name}` against {engine} or fix engineVersion",
                        loaded.at(b)
                    ),
                )),
                (None, Ok(v)) => report.push(Check::fail(
                    check_name,
                    format!("{}: builtAgainstEngine {v} cannot be compared: engineVersion is missing or invalid", loaded.at(b)),
                )),
            },
        }

        // Base image: pinned by digest, as every image the release depends on.
        if let Some(base) = &c.base {
            let check_name = format!("component/{name}/base");
            match base.value.parse::<image_ref::ImageRef>() {
                Ok(r) if r.digest().is_some() => report.push(Check::pass(check_name, r.to_string())),
                Ok(r) => report.push(Check::fail(
                    check_name,
                    format!(
                        "{}: base `{r}` of `{name}` is not pinned by digest; write `{}@sha256:<64 hex>` in rel.toml and rebuild",
                        loaded.at(base),
                        r.without_version()
                    ),
                )),
                Err(e) => report.push(Check::fail(check_name, format!("{}: {e}", loaded.at(base)))),
            }
        }

        // Image name against rel.toml.
        if let (Some(expected), Some(image)) = (expected, &c.image) {
            let check_name = format!("component/{name}/image");
            match image.value.parse::<image_ref::ImageRef>() {
                Ok(r) if r.without_version() == expected.image => {
                    report.push(Check::pass(check_name, expected.image.to_string()))
                }
                Ok(r) if r.repository().rsplit('/').next() == expected.image.repository().rsplit('/').next() => report.push(Check::warn(
                    check_name,
                    format!(
                        "{}: built as `{}` while rel.toml names `{}`: pinning points the overlay entry at it with `newName`",
                        loaded.at(image),
                        r.without_version(),
                        expected.image
                    ),
                )),
                Ok(r) => report.push(Check::fail(
                    check_name,
                    format!(
                        "{}: image `{}` is not the one rel.toml names for `{name}` (`{}`); rebuild and re-lock, or fix `image`/`registry` in rel.toml",
                        loaded.at(image),
                        r.without_version(),
                        expected.image
                    ),
                )),
                Err(e) => report.push(Check::fail(check_name, format!("{}: {e}", loaded.at(image)))),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::parse_raw;
    use crate::report::Status;
    use std::path::Path;

    const D: &str = "sha256:3d3eae79e9f97b2bc334410b07f340b6e279bb13b750401e5f11da8469313003";

    fn run(name: &str, text: &str) -> Report {
        check(&parse_raw(Path::new(name), text).unwrap(), None)
    }

    fn failed(r: &Report) -> Vec<(&str, &str)> {
        r.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| (c.name.as_str(), c.detail.as_str()))
            .collect()
    }

    #[test]
    fn a_good_lockfile_passes() {
        let text = format!(
            "version: \"1.0.0\"\nengineVersion: \"1.0.0\"\ncomponents:\n  a:\n    digest: {D}\n  b:\n    digest: {D}\n    builtAgainstEngine: \"1.0.0\"\n"
        );
        let r = run("1.0.0.yaml", &text);
        assert!(r.passed(), "{}", r.to_plain());
        assert_eq!(r.summary.pass, 6);
    }

    #[test]
    fn each_intrinsic_failure_has_its_reason() {
        let text = format!(
            "version: \"1.0.1\"\nengineVersion: \"1.0.1\"\ncomponents:\n  a:\n    tag: \"1.0.1\"\n  b:\n    digest: sha256:abc\n  c:\n    digest: {D}\n    builtAgainstEngine: \"1.0.0\"\n  d:\n    digest: \"1.0.1\"\n"
        );
        let r = run("releases/1.0.0.yaml", &text);
        let f = failed(&r);
        assert_eq!(f.len(), 5, "{}", r.to_plain());
        assert!(f[0].0 == "version/file-name" && f[0].1.contains("releases/1.0.0.yaml:1:10: version `1.0.1` does not match the file name `1.0.0.yaml`"), "{f:?}");
        assert!(
            f[1].0 == "component/a/digest" && f[1].1.contains("pinned by tag `1.0.1` only"),
            "{f:?}"
        );
        assert!(
            f[2].0 == "component/b/digest"
                && f[2]
                    .1
                    .contains(":7:13: digest `sha256:abc` has 3 hex characters"),
            "{f:?}"
        );
        assert!(
            f[3].0 == "component/c/builtAgainstEngine"
                && f[3].1.contains(
                    "built against engine 1.0.0 but the release's engineVersion is 1.0.1"
                ),
            "{f:?}"
        );
        assert!(
            f[4].0 == "component/d/digest" && f[4].1.contains("looks like a tag"),
            "{f:?}"
        );
    }

    #[test]
    fn missing_fields() {
        let r = run("x.yaml", "components: {}\n");
        let names: Vec<_> = failed(&r).into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["version", "engineVersion", "components"]);
    }
}
