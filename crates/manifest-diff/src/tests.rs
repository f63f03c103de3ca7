use super::*;

fn objs(text: &str) -> Vec<kustomize::Object> {
    objects_from_yaml(text, "test.yaml").unwrap()
}

fn run(old: &str, new: &str) -> ManifestDiff {
    diff(&objs(old), &objs(new), &Masker::with_key(b"test key")).unwrap()
}

fn all_text(d: &ManifestDiff) -> String {
    let view = View {
        title: "t",
        images: &[],
        diff: d,
    };
    format!(
        "{}\n{}\n{}\n{d:?}",
        render::text(&view, false),
        render::markdown(&view, 100_000),
        serde_json::to_string(d).unwrap()
    )
}

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: prod
  labels: {a: "1", b: "2"}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: api
        image: reg.example/api@sha256:1111111111111111111111111111111111111111111111111111111111111111
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        ports:
        - containerPort: 8080
        resources:
          requests: {cpu: 100m, memory: 1Gi}
      - name: sidecar
        image: reg.example/side:1.0
"#;

#[test]
fn key_order_list_order_quantities_and_empty_fields_are_noise() {
    let same = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  labels: {b: "2", a: "1"}
  namespace: prod
  name: api
  annotations: {}
spec:
  template:
    metadata: {}
    spec:
      volumes: []
      initContainers: null
      containers:
      - name: sidecar
        image: reg.example/side:1.0
        env: []
      - image: reg.example/api@sha256:1111111111111111111111111111111111111111111111111111111111111111
        name: api
        ports:
        - containerPort: 8080
        env:
        - name: B
          value: "2"
        - value: "1"
          name: A
        resources:
          requests: {memory: 1024Mi, cpu: "0.1"}
  replicas: 2
status: {readyReplicas: 2}
"#;
    let d = run(DEPLOY, same);
    assert!(d.is_empty(), "{}", all_text(&d));
    assert_eq!(d.unchanged, 1);
}

#[test]
fn named_items_are_matched_by_name_and_images_come_first() {
    let new = DEPLOY
        .replace("sha256:1111", "sha256:2222")
        .replace("value: \"2\"", "value: \"3\"")
        .replace("cpu: 100m", "cpu: 200m");
    let d = run(DEPLOY, &new);
    assert_eq!(d.objects.len(), 1);
    let o = &d.objects[0];
    assert_eq!(o.change, Change::Changed);
    assert_eq!(o.key.to_string(), "Deployment prod/api");
    assert_eq!(o.images.len(), 1);
    assert_eq!(o.images[0].container, "api");
    assert_eq!(o.images[0].path, "spec.template.spec.containers[api].image");
    assert!(o.images[0].new.as_deref().unwrap().contains("sha256:2222"));
    assert_eq!(o.images[0].name(), "reg.example/api");
    let paths: Vec<&str> = o.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.template.spec.containers[api].env[B].value",
            "spec.template.spec.containers[api].resources.requests.cpu",
        ]
    );
    let text = render::text(
        &View {
            title: "t",
            images: &[],
            diff: &d,
        },
        false,
    );
    let image_at = text.find("(image)").unwrap();
    let env_at = text.find("env[B]").unwrap();
    assert!(image_at < env_at, "{text}");
    assert!(text.contains("-   100m\n+   200m\n"), "{text}");
}

#[test]
fn added_and_removed_objects_and_containers() {
    let extra = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n";
    let d = run(DEPLOY, &format!("{DEPLOY}{extra}"));
    assert_eq!(d.objects.len(), 1);
    assert_eq!(d.objects[0].change, Change::Added);
    assert_eq!(d.objects[0].key.to_string(), "ConfigMap extra");
    let d = run(&format!("{DEPLOY}{extra}"), DEPLOY);
    assert_eq!(d.objects[0].change, Change::Removed);
    assert_eq!(d.unchanged, 1);
    // A removed object's images are listed.
    let d = run(DEPLOY, "");
    assert_eq!(d.objects[0].images.len(), 2);
    assert!(d.objects[0].images.iter().all(|i| i.new.is_none()));
    // A container removed from a changed object: its image is listed with the images.
    let d = run(
        DEPLOY,
        &DEPLOY.replace(
            "      - name: sidecar\n        image: reg.example/side:1.0\n",
            "",
        ),
    );
    let o = &d.objects[0];
    assert_eq!(o.change, Change::Changed);
    assert_eq!(o.images.len(), 1);
    assert_eq!(o.images[0].container, "sidecar");
    assert_eq!(o.images[0].old.as_deref(), Some("reg.example/side:1.0"));
    assert_eq!(o.images[0].new, None);
    assert_eq!(o.fields[0].path, "spec.template.spec.containers[sidecar]");
}

const SECRET_OLD: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: creds-5f7t8mh6g2
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"PASSWORD":"aHVudGVyMg=="}}'
data:
  PASSWORD: aHVudGVyMg==
  USER: YWRtaW4=
stringData:
  TOKEN: plain-old-token
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
      - name: api
        image: reg.example/api:1
        envFrom:
        - secretRef:
            name: creds-5f7t8mh6g2
"#;

#[test]
fn secret_values_and_generated_secret_names_never_show() {
    let new = SECRET_OLD
        .replace("aHVudGVyMg==", "czNjcjN0LW5ldw==")
        .replace("plain-old-token", "plain-new-token")
        .replace("creds-5f7t8mh6g2", "creds-b2c4d6f8gh");
    let d = run(SECRET_OLD, &new);
    // Added and removed Secrets show their bodies, masked, too.
    let text = format!(
        "{}{}{}",
        all_text(&d),
        all_text(&run("", &new)),
        all_text(&run(SECRET_OLD, ""))
    );
    for planted in [
        "aHVudGVyMg==",
        "czNjcjN0LW5ldw==",
        "hunter2",
        "s3cr3t-new",
        "plain-old-token",
        "plain-new-token",
        "YWRtaW4=",
        "5f7t8mh6g2",
        "b2c4d6f8gh",
    ] {
        assert!(!text.contains(planted), "{planted} leaked:\n{text}");
    }
    // The Secret pairs across the rename and shows its changed keys, masked.
    let secret = d.objects.iter().find(|o| o.key.kind == "Secret").unwrap();
    assert_eq!(secret.change, Change::Changed, "{text}");
    assert_eq!(secret.key.name, "creds-<hash>");
    let paths: Vec<&str> = secret.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["data.PASSWORD", "metadata.name", "stringData.TOKEN"],
        "{text}"
    );
    assert!(matches!(secret.fields[0].old, Some(Node::Secret(_))));
    assert!(text.contains("<secret "), "{text}");
    // The Deployment's reference changes too (a rollout), shown masked.
    let deploy = d
        .objects
        .iter()
        .find(|o| o.key.kind == "Deployment")
        .unwrap();
    assert_eq!(
        deploy.fields[0].path,
        "spec.template.spec.containers[api].envFrom[0].secretRef.name"
    );
    assert!(text.contains("creds-<hash:"), "{text}");
    // An unchanged key (USER) is not reported.
    assert!(!paths.contains(&"data.USER"));
}

#[test]
fn fingerprints_depend_on_the_key_and_same_values_are_no_change() {
    let d = run(SECRET_OLD, SECRET_OLD);
    assert!(d.is_empty());
    let new = SECRET_OLD.replace("YWRtaW4=", "cm9vdA==");
    let a = diff(&objs(SECRET_OLD), &objs(&new), &Masker::with_key(b"k1")).unwrap();
    let b = diff(&objs(SECRET_OLD), &objs(&new), &Masker::with_key(b"k2")).unwrap();
    let fp = |d: &ManifestDiff| format!("{:?}", d.objects[0].fields[0].new);
    assert_ne!(fp(&a), fp(&b));
}

#[test]
fn generated_configmaps_pair_by_stem() {
    let old =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-2b4h9mtkdc\ndata:\n  LOG: info\n";
    let new =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-7g8bfk5h2m\ndata:\n  LOG: debug\n";
    let d = run(old, new);
    assert_eq!(d.objects.len(), 1);
    assert_eq!(d.objects[0].change, Change::Changed);
    let text = all_text(&d);
    assert!(
        text.contains("cfg-7g8bfk5h2m"),
        "ConfigMap names are not secret: {text}"
    );
    assert!(text.contains("+   debug"), "{text}");
}

#[test]
fn duplicate_objects_are_an_error() {
    let e = diff(
        &objs(&format!("{DEPLOY}---\n{DEPLOY}")),
        &[],
        &Masker::with_key(b"k"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DiffError::DuplicateObject {
                side: Side::Old,
                ..
            }
        ),
        "{e}"
    );
    let e = objects_from_yaml("a: [\n", "bad.yaml").unwrap_err();
    assert!(e.to_string().starts_with("bad.yaml: invalid YAML"), "{e}");
}

#[test]
fn multi_line_strings_show_a_line_diff() {
    let old = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  conf: |\n    a = 1\n    b = 2\n    c = 3\n";
    let new = old.replace("b = 2", "b = 20");
    let d = run(old, &new);
    let text = all_text(&d);
    assert!(text.contains("-   b = 2\n+   b = 20\n"), "{text}");
    assert!(text.contains("    a = 1\n"), "{text}");
}

#[test]
fn markdown_stays_under_the_budget_and_says_what_it_left_out() {
    let mut old = String::new();
    let mut new = String::new();
    for i in 0..50 {
        let d = DEPLOY.replace(
            "name: api\n  namespace",
            &format!("name: api-{i}\n  namespace"),
        );
        old.push_str(&d);
        old.push_str("---\n");
        new.push_str(&d.replace("sha256:1111", "sha256:2222"));
        new.push_str("---\n");
    }
    let d = run(&old, &new);
    assert_eq!(d.objects.len(), 50);
    let moves = [ImageMove {
        component: "api".into(),
        image: "reg.example/api".into(),
        old_digest: Some(format!("sha256:{}", "1".repeat(64)).parse().unwrap()),
        new_digest: Some(format!("sha256:{}", "2".repeat(64)).parse().unwrap()),
        old_commit: Some("a".repeat(40)),
        new_commit: Some("b".repeat(40)),
        source_repo: Some("org/repo".into()),
    }];
    let view = View {
        title: "Manifest changes",
        images: &moves,
        diff: &d,
    };
    let full = render::markdown(&view, usize::MAX);
    assert_eq!(full.matches("<details>").count(), 50);
    assert!(!full.contains("not shown"));
    assert!(
        full.contains("https://github.com/org/repo/compare/"),
        "{full}"
    );
    for budget in [2_000, 5_000, 10_000] {
        let md = render::markdown(&view, budget);
        assert!(md.len() <= budget, "{} > {budget}", md.len());
        let shown = md.matches("<details>").count();
        assert!(shown > 0 && shown < 50, "{shown}");
        assert!(
            md.contains(&format!("_… {} more objects not shown", 50 - shown)),
            "{md}"
        );
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count()
        );
    }
    // Component and commit range, images first.
    let text = render::text(&view, false);
    assert!(text.contains("Images:\n  api  reg.example/api  sha256:111111111111 -> sha256:222222222222  commits aaaaaaaaaaaa..bbbbbbbbbbbb\n"), "{text}");
    assert!(text.contains("(image) — component api @@"), "{text}");
    let colored = render::text(&view, true);
    assert!(colored.contains("\x1b[32m+   reg.example/api@sha256:2222"));
}

#[test]
fn snapshot_of_text_and_markdown() {
    let old = format!("{DEPLOY}---\n{SECRET_OLD}");
    let new = old
        .replace("sha256:1111", "sha256:2222")
        .replace("value: \"2\"", "value: \"3\"")
        .replace("aHVudGVyMg==", "czNjcjN0LW5ldw==")
        .replace("creds-5f7t8mh6g2", "creds-b2c4d6f8gh")
        .replace(
            "      - name: sidecar\n        image: reg.example/side:1.0\n",
            "",
        );
    let d = run(
        &old,
        &format!(
            "{new}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added\ndata:\n  conf: |\n    a = 1\n"
        ),
    );
    let moves = [ImageMove {
        component: "api".into(),
        image: "reg.example/api".into(),
        old_digest: Some(format!("sha256:{}", "1".repeat(64)).parse().unwrap()),
        new_digest: Some(format!("sha256:{}", "2".repeat(64)).parse().unwrap()),
        old_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        new_commit: Some("89abcdef0123456789abcdef0123456789abcdef".into()),
        source_repo: Some("org/repo".into()),
    }];
    let view = View {
        title: "prod: before → after",
        images: &moves,
        diff: &d,
    };
    insta::assert_snapshot!("text", render::text(&view, false));
    insta::assert_snapshot!("markdown", render::markdown(&view, 4_000));
}

#[test]
fn values_copied_from_a_secret_are_masked_elsewhere() {
    // `replacements` (or a hand copy) put the secret's value into a ConfigMap and an env var.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  PASSWORD: Y29waWVkLXMzY3JldA==\nstringData:\n  TOKEN: tok-98765\n";
    let cm = |v: &str, url: &str| {
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LEVEL: {v}\n  URL: {url}\n  TOKEN_COPY: tok-98765\n"
        )
    };
    let old = format!("{secret}{}", cm("info", "postgres://app@db/x"));
    let new = format!(
        "{secret}{}",
        cm("debug", "postgres://app:copied-s3cret@db/x")
    );
    let d = run(&old, &new);
    let text = all_text(&d);
    assert!(!text.contains("copied-s3cret"), "{text}");
    assert!(
        text.contains("+   debug"),
        "ordinary values still show: {text}"
    );
    let obj = &d.objects[0];
    let url = obj.fields.iter().find(|f| f.path == "data.URL").unwrap();
    assert!(matches!(url.old, Some(Node::Str(_))), "{text}");
    assert!(matches!(url.new, Some(Node::Secret(_))), "{text}");
    // Unchanged copies are not reported; added objects mask them in their bodies.
    let added = run(secret, &format!("{secret}{}", cm("info", "x")));
    let text = all_text(&added);
    assert!(!text.contains("tok-98765"), "{text}");
}
