//! `cargo xtask kustomize-oracle [CASE...]`: regenerates every conformance case's
//! `expected.yaml` with `kubectl kustomize`, and checks that error cases fail under kubectl too.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/kustomize-rs/tests/cases")
}

/// Runs `kubectl kustomize INPUT -o TMP` and returns the sorted file names, one a line.
fn split_names(input: &Path) -> Result<String, String> {
    let tmp = std::env::temp_dir().join(format!("rel-oracle-split-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(input)
        .arg("-o")
        .arg(&tmp)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let mut names: Vec<String> = std::fs::read_dir(&tmp)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    names.sort();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(names.iter().map(|n| format!("{n}\n")).collect())
}

pub fn oracle(filter: &[String]) -> i32 {
    let dir = cases_dir();
    let mut cases: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return 2;
        }
    };
    cases.sort();
    let mut problems = 0;
    let mut written = 0;
    for case in cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let out = match Command::new("kubectl")
            .arg("kustomize")
            .arg(case.join("input"))
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("cannot run kubectl: {e}");
                return 2;
            }
        };
        let error_case = case.join("expected_error.txt").exists();
        match (error_case, out.status.success()) {
            (true, true) => {
                eprintln!("{name}: kubectl succeeds but the case expects an error");
                problems += 1;
            }
            (true, false) => {}
            (false, true) => {
                // The per-object file names `kubectl kustomize -o DIR` writes.
                match split_names(&case.join("input")) {
                    Ok(names) => {
                        if let Err(e) = std::fs::write(case.join("expected_files.txt"), names) {
                            eprintln!("{name}: cannot write expected_files.txt: {e}");
                            problems += 1;
                        }
                    }
                    Err(e) => {
                        eprintln!("{name}: kubectl kustomize -o failed: {e}");
                        problems += 1;
                    }
                }
                if let Err(e) = std::fs::write(case.join("expected.yaml"), &out.stdout) {
                    eprintln!("{name}: cannot write expected.yaml: {e}");
                    problems += 1;
                } else {
                    written += 1;
                }
            }
            (false, false) => {
                eprintln!(
                    "{name}: kubectl failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                problems += 1;
            }
        }
    }
    eprintln!("kustomize-oracle: wrote {written} expected.yaml files, {problems} problems");
    if problems > 0 { 1 } else { 0 }
}

/// A small deterministic PRNG (xorshift64*), enough to make fuzz inputs reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// JSON string literal (valid YAML double-quoted scalar).
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A ConfigMap full of awkward strings (quoting, wrapping, block scalars, escapes).
fn fuzz_strings(rng: &mut Rng) -> Vec<(String, String)> {
    const ATOMS: &[&str] = &[
        "a",
        "b",
        "Z",
        "0",
        "1",
        "9",
        " ",
        "  ",
        ":",
        ": ",
        "#",
        " #",
        "-",
        "- ",
        "'",
        "\"",
        "\\",
        "\n",
        "\n\n",
        "\t",
        "é",
        "😀",
        "\u{a0}",
        "{",
        "}",
        "[",
        "]",
        ",",
        "?",
        "*",
        "&",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "~",
        ".",
        "yes",
        "no",
        "true",
        "null",
        "1.5",
        "0x1F",
        "2024-01-01",
        "1e3",
        "=",
        "/",
        "_",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "1e310",
        "1e-400",
        "99999999999999999999",
        "0o17",
        "0b12",
        "-0",
        "+1",
        ".5e3",
        "1_0",
        "0x",
        "1:60",
        "12:30:45",
        "2001-02-03 04:05:06",
        "-.inf",
        "Off",
        "y",
        "~x",
        " word word word word word word word word word word word word",
        "\r",
    ];
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fz\ndata:\n");
    for i in 0..300 {
        let s: String = (0..rng.below(9)).map(|_| *rng.pick(ATOMS)).collect();
        doc.push_str(&format!("  k{i:03}: {}\n", json_str(&s)));
    }
    vec![
        (
            "kustomization.yaml".into(),
            "resources:\n- cm.yaml\n".into(),
        ),
        ("cm.yaml".into(), doc),
    ]
}

/// A Deployment and a random strategic-merge patch (merge keys, `$patch: delete`, nulls).
fn fuzz_patch(rng: &mut Rng) -> Vec<(String, String)> {
    fn container(rng: &mut Rng, name: char, patch: bool) -> String {
        let mut c = format!("      - name: {name}\n");
        if !patch || rng.chance(0.5) {
            c.push_str(&format!("        image: img-{name}:{}\n", rng.below(9)));
        }
        if patch && rng.chance(0.15) {
            return format!("      - name: {name}\n        $patch: delete\n");
        }
        if rng.chance(0.6) {
            c.push_str("        env:\n");
            let mut names = vec!["A", "B", "C", "D"];
            for _ in 0..1 + rng.below(3) {
                if names.is_empty() {
                    break;
                }
                let n = names.remove(rng.below(names.len()));
                if patch && rng.chance(0.2) {
                    c.push_str(&format!("        - name: {n}\n          $patch: delete\n"));
                } else {
                    c.push_str(&format!(
                        "        - name: {n}\n          value: \"{}\"\n",
                        rng.below(10)
                    ));
                }
            }
        }
        if rng.chance(0.4) {
            c.push_str("        ports:\n");
            let mut ports = vec![80, 81, 82];
            for _ in 0..1 + rng.below(2) {
                let p = ports.remove(rng.below(ports.len()));
                c.push_str(&format!("        - containerPort: {p}\n"));
                if rng.chance(0.3) {
                    c.push_str("          protocol: UDP\n");
                }
            }
        }
        if rng.chance(0.3) {
            c.push_str(&format!("        args: [\"--{}\"]\n", rng.below(5)));
        }
        if patch && rng.chance(0.15) {
            c.push_str("        resources: null\n");
        } else if !patch && rng.chance(0.5) {
            c.push_str("        resources:\n          limits:\n            cpu: \"1\"\n");
        }
        c
    }
    let mut names: Vec<char> = "abcde".chars().collect();
    let mut base = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    a: \"1\"\nspec:\n  template:\n    spec:\n      containers:\n",
    );
    for _ in 0..1 + rng.below(4) {
        let n = names.remove(rng.below(names.len()));
        base.push_str(&container(rng, n, false));
    }
    base.push_str("      volumes:\n      - name: v1\n        emptyDir: {}\n      - name: v2\n        secret:\n          secretName: s\n");
    let mut names: Vec<char> = "abcdef".chars().collect();
    let mut patch = String::from("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n");
    if rng.chance(0.3) {
        patch.push_str("  labels:\n    a: null\n    b: \"2\"\n");
    }
    patch.push_str("spec:\n  template:\n    spec:\n      containers:\n");
    for _ in 0..1 + rng.below(4) {
        let n = names.remove(rng.below(names.len()));
        patch.push_str(&container(rng, n, true));
    }
    if rng.chance(0.5) {
        patch
            .push_str("      volumes:\n      - name: v2\n        configMap:\n          name: cm\n");
    }
    vec![
        (
            "kustomization.yaml".into(),
            "resources:\n- d.yaml\npatches:\n- path: p.yaml\n".into(),
        ),
        ("d.yaml".into(), base),
        ("p.yaml".into(), patch),
    ]
}

/// A base and an overlay with random combinations of the transformers, over workloads that
/// refer to generated ConfigMaps/Secrets, a ServiceAccount, a Role and Services.
fn fuzz_overlay(rng: &mut Rng) -> Vec<(String, String)> {
    let mut docs: Vec<String> = Vec::new();
    let mut workloads: Vec<(&str, &str)> = Vec::new();
    for name in ["web", "api", "db"] {
        if !rng.chance(0.7) {
            continue;
        }
        let kind = *rng.pick(&["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]);
        let image = *rng.pick(&[
            "nginx",
            "nginx:1.2",
            "ghcr.io/x/app:3",
            "busybox@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ]);
        let init = if rng.chance(0.5) {
            "      initContainers:\n      - name: init\n        image: busybox\n"
        } else {
            ""
        };
        let pod = format!(
            "    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: runner\n{init}      containers:\n      - name: main\n        image: {image}\n        envFrom:\n        - configMapRef:\n            name: settings\n        - secretRef:\n            name: creds\n        env:\n        - name: K\n          valueFrom:\n            configMapKeyRef:\n              name: settings\n              key: k\n      volumes:\n      - name: v\n        configMap:\n          name: settings\n      - name: s\n        secret:\n          secretName: creds\n"
        );
        let indent = |text: &str, n: usize| -> String {
            text.lines()
                .map(|l| format!("{}{l}\n", " ".repeat(n)))
                .collect()
        };
        let (api, spec) = match kind {
            "CronJob" => (
                "batch/v1",
                format!(
                    "  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      template:\n{}",
                    indent(&pod, 4)
                ),
            ),
            "Job" => ("batch/v1", format!("  template:\n{pod}")),
            "StatefulSet" => (
                "apps/v1",
                format!(
                    "  serviceName: {name}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n{pod}"
                ),
            ),
            _ => (
                "apps/v1",
                format!("  selector:\n    matchLabels:\n      app: {name}\n  template:\n{pod}"),
            ),
        };
        docs.push(format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}"
        ));
        docs.push(format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n"));
        workloads.push((name, kind));
    }
    docs.push("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n".into());
    docs.push("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  resourceNames: [settings]\n  verbs: [get]\n".into());
    docs.push("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: r\nsubjects:\n- kind: ServiceAccount\n  name: runner\n- kind: ServiceAccount\n  name: default\n".into());
    let mut base = format!(
        "resources:\n- res.yaml\nconfigMapGenerator:\n- name: settings\n  literals:\n  - k=v\n  - x={}\nsecretGenerator:\n- name: creds\n  literals:\n  - p={}\n",
        rng.below(10),
        rng.below(100)
    );
    if rng.chance(0.5) {
        base.push_str("namePrefix: b-\n");
    }
    if rng.chance(0.4) {
        base.push_str("namespace: base-ns\n");
    }
    if rng.chance(0.5) {
        base.push_str("commonLabels:\n  tier: base\n");
    }
    let mut ov = String::from("resources:\n- base\n");
    if rng.chance(0.6) {
        ov.push_str(&format!("namePrefix: {}\n", rng.pick(&["p-", "prod-"])));
    }
    if rng.chance(0.4) {
        ov.push_str("nameSuffix: -s\n");
    }
    if rng.chance(0.6) {
        ov.push_str("namespace: prod\n");
    }
    if rng.chance(0.5) {
        ov.push_str(&format!(
            "labels:\n- pairs:\n    env: prod\n  includeSelectors: {}\n  includeTemplates: {}\n",
            rng.chance(0.5),
            rng.chance(0.5)
        ));
    }
    if rng.chance(0.5) {
        ov.push_str("commonAnnotations:\n  owner: team\n");
    }
    if rng.chance(0.6) {
        ov.push_str("images:\n- name: nginx\n  newTag: \"9\"\n- name: busybox\n  digest: sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n- name: ghcr.io/x/app\n  newName: mirror/app\n");
    }
    if rng.chance(0.5) {
        ov.push_str("configMapGenerator:\n- name: settings\n  behavior: merge\n  literals:\n  - x=overlay\n");
    }
    if rng.chance(0.3) {
        ov.push_str("generatorOptions:\n  disableNameSuffixHash: true\n");
    }
    if rng.chance(0.4) {
        ov.push_str("patches:\n- target:\n    kind: Service\n  patch: |-\n    - op: add\n      path: /spec/type\n      value: NodePort\n");
    }
    if let Some((name, _)) = workloads
        .iter()
        .find(|(_, k)| *k == "Deployment" || *k == "StatefulSet")
        && rng.chance(0.4)
    {
        ov.push_str(&format!("replicas:\n- name: {name}\n  count: 2\n"));
    }
    vec![
        ("kustomization.yaml".into(), ov),
        ("base/kustomization.yaml".into(), base),
        ("base/res.yaml".into(), docs.join("---\n")),
    ]
}

/// `cargo xtask kustomize-fuzz [--runs N] [--seed S]`: differential testing against kubectl on
/// generated inputs (awkward strings for the emitter, random strategic-merge patches, random
/// overlays over a base). Inputs
/// that render differently are kept in a temp directory for turning into conformance cases.
pub fn fuzz(args: &[String]) -> i32 {
    let mut runs = 20usize;
    let mut seed = 1u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), v) {
            ("--runs", Some(v)) => runs = v as usize,
            ("--seed", Some(v)) => seed = v.max(1),
            _ => {
                eprintln!("usage: cargo xtask kustomize-fuzz [--runs N] [--seed S]");
                return 2;
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = match crate::bench_render::renderer_example(&root) {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let tmp = std::env::temp_dir().join(format!("rel-kustomize-fuzz-{}", std::process::id()));
    let mut mismatches = 0;
    let mut both_failed = 0;
    for run in 0..runs {
        let run_seed = seed.wrapping_mul(1_000_003).wrapping_add(run as u64 + 1);
        let mut rng = Rng(run_seed);
        let (kind, files) = match run % 3 {
            0 => ("strings", fuzz_strings(&mut rng)),
            1 => ("patch", fuzz_patch(&mut rng)),
            _ => ("overlay", fuzz_overlay(&mut rng)),
        };
        let dir = tmp.join(format!("{kind}-{run_seed}"));
        let _ = std::fs::create_dir_all(&dir);
        for (name, content) in &files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(e) = std::fs::write(path, content) {
                eprintln!("cannot write fuzz input: {e}");
                return 2;
            }
        }
        let want = Command::new("kubectl").arg("kustomize").arg(&dir).output();
        let got = Command::new(&bin).arg(&dir).output();
        let (Ok(want), Ok(got)) = (want, got) else {
            eprintln!("cannot run kubectl or the renderer");
            return 2;
        };
        let same = want.status.success() == got.status.success()
            && (!want.status.success() || want.stdout == got.stdout);
        if same && !want.status.success() {
            both_failed += 1;
        }
        if same {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            mismatches += 1;
            eprintln!("mismatch: {} (input kept)", dir.display());
        }
    }
    eprintln!(
        "kustomize-fuzz: {runs} runs, {mismatches} mismatches ({both_failed} inputs both renderers refused)"
    );
    if mismatches > 0 { 1 } else { 0 }
}
