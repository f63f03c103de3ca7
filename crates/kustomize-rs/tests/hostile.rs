//! Hostile-input regressions from the security review: each input used to exhaust memory or
//! time, escape the kustomization root, leak a secret into an error, or name a file outside the
//! output directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kustomize::Error;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kustomize-rs-hostile-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn alias_bomb_is_refused_with_file_and_line() {
    let dir = scratch("alias-bomb");
    // The classic 444-byte "billion laughs": 9 levels of 9 aliases each.
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("  {next}: &{next} [{refs}]\n"));
    }
    write(&dir, "bomb.yaml", &bomb);
    write(&dir, "kustomization.yaml", "resources:\n- bomb.yaml\n");
    let started = Instant::now();
    let err = kustomize::render(&dir).expect_err("an alias bomb must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        Error::YamlBudget { at, .. } => {
            assert!(at.path.ends_with("bomb.yaml"), "{err}");
            assert!(at.line.is_some(), "{err}");
        }
        other => panic!("expected Error::YamlBudget, got {other:?}"),
    }
    assert!(err.help_text().is_some());
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let dir = scratch("deep");
    let depth = 100_000;
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    write(&dir, "deep.yaml", &text);
    write(&dir, "kustomization.yaml", "resources:\n- deep.yaml\n");
    let err = kustomize::render(&dir).expect_err("nesting 100,000 deep must be refused");
    // saphyr-parser's own recursion limit or our budget, whichever comes first.
    assert!(
        matches!(err, Error::YamlBudget { .. } | Error::Yaml { .. }),
        "{err:?}"
    );
}

/// Renders one ConfigMap with `n` data keys and returns how long it took.
fn render_keys(n: usize) -> Duration {
    let dir = scratch(&format!("many-keys-{n}"));
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
    for i in 0..n {
        text.push_str(&format!("  key{i}: v\n"));
    }
    write(&dir, "big.yaml", &text);
    write(
        &dir,
        "kustomization.yaml",
        "resources:\n- big.yaml\ncommonLabels:\n  a: b\n",
    );
    let started = Instant::now();
    let rendered = kustomize::render(&dir).expect("renders");
    let took = started.elapsed();
    assert_eq!(rendered.objects.len(), 1);
    assert!(
        rendered.objects[0]
            .yaml
            .contains(&format!("key{}: v\n", n - 1))
    );
    took
}

#[test]
fn eighty_thousand_keys_render_in_linear_time() {
    // Quadratic key lookups took 19 s for 80,000 keys (release build) and 16 times the time
    // of 20,000; linear rendering takes 4 times as long. Compare the two sizes rather than a
    // wall-clock budget, so a loaded machine does not fail the test.
    let small = render_keys(20_000);
    let large = render_keys(80_000);
    assert!(
        large < small * 8 + Duration::from_millis(500),
        "80,000 keys took {large:?}, 20,000 took {small:?}: not linear"
    );
}

#[cfg(unix)]
#[test]
fn kustomization_symlink_outside_root_is_refused() {
    let dir = scratch("symlink");
    write(
        &dir,
        "outside/kustomization.yaml",
        "resources:\n- cm.yaml\n",
    );
    write(
        &dir,
        "root/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    std::os::unix::fs::symlink(
        "../outside/kustomization.yaml",
        dir.join("root/kustomization.yaml"),
    )
    .expect("symlink");
    let err = kustomize::render(&dir.join("root")).expect_err("must refuse");
    assert!(matches!(err, Error::OutsideRoot { .. }), "{err:?}");
    // A symlink to a file inside the root is fine.
    write(&dir, "root/sub/k.yaml", "resources:\n- ../cm.yaml\n");
    std::fs::remove_file(dir.join("root/kustomization.yaml")).expect("rm");
    write(
        &dir,
        "root2/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    write(&dir, "root2/sub/k.yaml", "resources:\n- cm.yaml\n");
    std::os::unix::fs::symlink("sub/k.yaml", dir.join("root2/kustomization.yaml"))
        .expect("symlink");
    kustomize::render(&dir.join("root2")).expect("a symlink inside the root is followed");
}

#[test]
fn env_file_lines_kubectl_accepts_render_and_never_leak_values() {
    let dir = scratch("env");
    write(
        &dir,
        "kustomization.yaml",
        "secretGenerator:\n- name: s\n  envs:\n  - e.env\n",
    );
    // kustomize v5.5 (api/kv/kv.go) takes any text before the first '=' as the key (its
    // IsEnvVarName is a no-op), a line without '=' as a key with an empty value, and skips a
    // line with an empty key.
    write(
        &dir,
        "e.env",
        "GOOD=1\nbad key!=sup3rsecret\n=novalue\nnoeq\n",
    );
    let rendered = kustomize::render(&dir).expect("kubectl renders these lines");
    let yaml = rendered.to_yaml();
    assert!(yaml.contains("bad key!: c3VwM3JzZWNyZXQ=\n"), "{yaml}");
    assert!(yaml.contains("noeq: \"\"\n"), "{yaml}");
    // A duplicate key is an error that names the key, never the value.
    write(&dir, "e.env", "TOKEN=sup3rsecret\nTOKEN=0therSecret\n");
    let err = kustomize::render(&dir).expect_err("duplicate keys are an error");
    let text = format!("{err} {err:?} {}", err.help_text().unwrap_or(""));
    assert!(
        !text.contains("sup3rsecret") && !text.contains("0therSecret"),
        "{text}"
    );
    assert!(text.contains("TOKEN"), "{text}");
    // A literal without '=' is refused without echoing it.
    write(
        &dir,
        "kustomization.yaml",
        "secretGenerator:\n- name: s\n  literals:\n  - hunter2-no-equals\n",
    );
    let err = kustomize::render(&dir).expect_err("a literal needs key=value");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn output_file_names_refuse_path_traversal() {
    let dir = scratch("names");
    write(&dir, "kustomization.yaml", "resources:\n- cm.yaml\n");
    for bad in ["x/../../../../releases/0.4.0", "..", "a\\\\b"] {
        write(
            &dir,
            "cm.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{bad}\"\n"),
        );
        let rendered = kustomize::render(&dir).expect("renders as a stream");
        let err = rendered
            .output_files()
            .expect_err("unsafe name must be refused");
        assert!(matches!(err, Error::UnsafeFileName { .. }), "{err:?}");
        assert!(err.help_text().is_some());
    }
    for (field, doc) in [
        (
            "kind",
            "apiVersion: v1\nkind: \"../x\"\nmetadata:\n  name: ok\n",
        ),
        (
            "apiVersion",
            "apiVersion: \"a/../v1\"\nkind: X\nmetadata:\n  name: ok\n",
        ),
    ] {
        write(&dir, "cm.yaml", doc);
        let rendered = kustomize::render(&dir).expect("renders as a stream");
        let err = rendered.output_files().expect_err("unsafe file name");
        assert!(err.to_string().contains(field), "{err}");
    }
    // Two namespaces: the namespace prefixes the name and is checked too.
    write(
        &dir,
        "kustomization.yaml",
        "resources:\n- cm.yaml\n- cm2.yaml\n",
    );
    write(
        &dir,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: \"..\"\n",
    );
    write(
        &dir,
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ok\n",
    );
    let rendered = kustomize::render(&dir).expect("renders");
    let err = rendered.output_files().expect_err("unsafe namespace");
    assert!(err.to_string().contains("metadata.namespace"), "{err}");
    // Safe names come out as kubectl names them.
    write(
        &dir,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: one\n",
    );
    let rendered = kustomize::render(&dir).expect("renders");
    let names: Vec<String> = rendered
        .output_files()
        .expect("safe")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["ok_v1_configmap_a.yaml", "one_v1_configmap_a.yaml"]);
}
