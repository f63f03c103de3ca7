//! The GitOps templates and the overlays: each renders with `rel render` byte-identical to
//! `kubectl kustomize`; the core Kubernetes objects validate against the Kubernetes 1.32 schemas
//! (`kubernetes-validate`, offline, strict); the Argo objects (Rollout, AnalysisTemplate,
//! Application, AppProject) have their published field shapes (required fields, allowed keys).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

fn kubectl_kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl is needed as the rendering oracle (it carries kustomize v5.5); install kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `rel render DIR` (run in the repository) equals `kubectl kustomize DIR`; the objects.
fn render_same(dir: &Path) -> (String, Vec<Value>) {
    let run = rel_in(&repo_root(), &["render", dir.to_str().unwrap()]);
    run.expect(0);
    let ours = run.stdout();
    assert_eq!(ours, kubectl_kustomize(dir), "{}", dir.display());
    let objects = rel::manifests::parse_manifests(&ours, &dir.display().to_string()).unwrap();
    (ours, objects)
}

fn repo_dir(rel_path: &str) -> PathBuf {
    repo_root().join(rel_path)
}

/// The rollouts component on the base alone, in a temporary kustomization (a Component does not
/// render by itself), with `extra` kustomization fields.
fn component_on_base(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // Relative paths: kubectl refuses an absolute resource directory.
    let up = relative_to(&repo_root(), dir.path());
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "resources:\n  - {up}/templates/base\ncomponents:\n  - {up}/templates/rollouts\n{extra}"
        ),
    )
    .unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// `target` relative to `from` (both absolute).
fn relative_to(target: &Path, from: &Path) -> String {
    let (t, f): (Vec<_>, Vec<_>) = (target.components().collect(), from.components().collect());
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = f[common..].iter().map(|_| "..".to_owned()).collect();
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

// ---- kubernetes-validate ------------------------------------------------------------------

/// The kinds `kubernetes-validate` has no schema for; every other object must validate.
const CUSTOM_KINDS: &[&str] = &[
    "Rollout",
    "AnalysisTemplate",
    "Application",
    "AppProject",
    "ExternalSecret",
    "SecretStore",
    "Webhook",
];

/// Validates `objects` (YAML stream `text`) with `python3 -m kubernetes_validate` against
/// Kubernetes 1.32, strict. Returns the validator's output.
fn validate_k8s(text: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--kubernetes-version",
            "1.32.0",
            "--strict",
        ])
        .arg(&file)
        .output()
        .expect("python3 is needed for kubernetes-validate");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("No module named kubernetes_validate"),
        "kubernetes-validate is missing: `cargo xtask test` installs it, or `pip install kubernetes-validate`"
    );
    if out.status.success() {
        Ok(all)
    } else {
        Err(all)
    }
}

/// Every core object of `objects` passes, and only the custom kinds lack a schema.
fn assert_core_objects_validate(text: &str, objects: &[Value]) {
    let out = validate_k8s(text).unwrap_or_else(|e| panic!("kubernetes-validate failed:\n{e}"));
    let core: Vec<&Value> = objects
        .iter()
        .filter(|o| !CUSTOM_KINDS.contains(&o["kind"].as_str().unwrap()))
        .collect();
    let passed = out.matches(" passed for resource ").count();
    assert_eq!(passed, core.len(), "every core object validated:\n{out}");
    for line in out.lines().filter(|l| l.contains("Couldn't find schema")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|k| line.contains(&format!("kind {k} "))),
            "a core kind without a schema: {line}"
        );
    }
}

#[test]
fn kubernetes_validate_is_strict_and_fails_a_misspelled_field() {
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n  selector:\n    matchLabels: {a: b}\n  template:\n    metadata:\n      labels: {a: b}\n    spec:\n      containers:\n      - name: a\n        image: a\n";
    let e = validate_k8s(bad).unwrap_err();
    assert!(e.contains("'replica' was unexpected"), "{e}");
    let good = bad.replace("replica:", "replicas:");
    validate_k8s(&good).unwrap();
}

// ---- render == kubectl, and validation, per directory --------------------------------------

fn overlay(env: &str) -> Vec<Value> {
    let (text, objects) = render_same(&repo_dir(&format!("overlays/{env}")));
    assert_core_objects_validate(&text, &objects);
    objects
}

#[test]
fn overlay_local_keeps_plain_deployments() {
    let objects = overlay("local");
    assert!(objects.iter().all(|o| o["kind"] != "Rollout"));
    assert_eq!(
        find(&objects, "Deployment", "gateway")["spec"]["replicas"],
        2
    );
}

#[test]
fn overlay_staging_rolls_with_rollouts() {
    let objects = overlay("staging");
    check_rollout_objects(&objects, "platform-staging", 2);
}

#[test]
fn overlay_prod_rolls_with_rollouts_and_three_gateways() {
    let objects = overlay("prod");
    check_rollout_objects(&objects, "platform-prod", 3);
}

/// What an overlay with the rollouts component must render: Rollouts adopting Deployments at
/// zero, the digest pinned in the Deployment only, Services and the gate in the namespace.
fn check_rollout_objects(objects: &[Value], ns: &str, gateway_replicas: u64) {
    for name in ["gateway", "worker"] {
        let d = find(objects, "Deployment", name);
        let r = find(objects, "Rollout", name);
        assert_eq!(d["spec"]["replicas"], 0, "Deployment/{name} scaled to 0");
        assert_eq!(r["metadata"]["namespace"], ns);
        assert_eq!(
            r["spec"]["workloadRef"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name})
        );
        assert!(
            r["spec"].get("template").is_none(),
            "the template stays in the Deployment"
        );
        assert!(
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .contains("@sha256:"),
            "the overlay pins the Deployment's image"
        );
        assert_eq!(
            r["spec"]["selector"]["matchLabels"],
            d["spec"]["template"]["metadata"]["labels"]
                .as_object()
                .map(|l| json!({"app.kubernetes.io/name": l["app.kubernetes.io/name"]}))
                .unwrap()
        );
        check_shape(r, &rollout_shape(), &format!("Rollout/{name}"));
    }
    let gw = find(objects, "Rollout", "gateway");
    assert_eq!(gw["spec"]["replicas"], gateway_replicas);
    let bg = &gw["spec"]["strategy"]["blueGreen"];
    assert_eq!(bg["activeService"], "gateway");
    assert_eq!(bg["previewService"], "gateway-preview");
    assert_eq!(bg["autoPromotionEnabled"], false);
    // Longer than a pod's own graceful stop (45 s grace): connections drain before scale-down.
    assert!(bg["scaleDownDelaySeconds"].as_u64().unwrap() > 45);
    assert_eq!(
        bg["prePromotionAnalysis"]["templates"],
        json!([{"templateName": "deploy-gate"}])
    );
    let canary = &find(objects, "Rollout", "worker")["spec"]["strategy"]["canary"];
    assert_eq!(canary["maxSurge"], 1);
    assert_eq!(canary["maxUnavailable"], 0);
    assert_eq!(canary["canaryService"], "worker-canary");
    assert_eq!(canary["analysis"]["startingStep"], 1);
    let steps: Vec<String> = canary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s.get("setWeight") {
            Some(w) => format!("{w}%"),
            None => "pause".to_owned(),
        })
        .collect();
    assert_eq!(steps, ["25%", "pause", "50%", "pause", "100%"]);
    for svc in ["gateway", "gateway-preview", "worker", "worker-canary"] {
        assert_eq!(find(objects, "Service", svc)["metadata"]["namespace"], ns);
    }
    let at = find(objects, "AnalysisTemplate", "deploy-gate");
    check_shape(
        at,
        &analysis_template_shape(),
        "AnalysisTemplate/deploy-gate",
    );
    // Every argument a Rollout passes is one the template declares, and the template's
    // arguments without a default are all passed.
    let declared: Vec<(&str, bool)> = at["spec"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a.get("value").is_some()))
        .collect();
    for args in [
        &bg["prePromotionAnalysis"]["args"],
        &canary["analysis"]["args"],
    ] {
        let passed: Vec<&str> = args
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for p in &passed {
            assert!(declared.iter().any(|(d, _)| d == p), "undeclared arg {p}");
        }
        for (d, has_default) in &declared {
            assert!(*has_default || passed.contains(d), "arg {d} not passed");
        }
    }
    check_gate_token(objects, at, "rel-gate-token", Some(ns));
    // The metric's Job spec is a real Kubernetes JobSpec: validate it as a Job.
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "deploy-gate", "namespace": ns},
        "spec": at["spec"]["metrics"][0]["provider"]["job"]["spec"],
    });
    validate_k8s(&serde_json::to_string(&job).unwrap())
        .unwrap_or_else(|e| panic!("the deploy-gate Job spec:\n{e}"));
}

/// The deploy gate's token reaches the Job: identity's `/token` in `ns` (when the overlay sets
/// one) → the Webhook generator `generator` → the ExternalSecret that names it → the Secret (key
/// `token`) the AnalysisTemplate mounts; refreshed well within identity's 15-minute token life.
fn check_gate_token(objects: &[Value], at: &Value, generator: &str, ns: Option<&str>) {
    let webhook = find(objects, "Webhook", generator);
    assert_eq!(
        webhook["apiVersion"],
        "generators.external-secrets.io/v1alpha1"
    );
    let url = webhook["spec"]["url"].as_str().unwrap();
    if let Some(ns) = ns {
        assert_eq!(
            url,
            format!("http://identity.{ns}.svc.cluster.local/token"),
            "identity in the environment's own namespace, never a public host"
        );
    }
    assert_eq!(webhook["spec"]["method"], "POST");
    let body: Value = serde_json::from_str(webhook["spec"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["grant_type"], "client_credentials");
    assert_eq!(webhook["spec"]["result"]["jsonPath"], "$");
    let client = webhook["spec"]["secrets"][0]["secretRef"]["name"]
        .as_str()
        .unwrap();
    // The client secret comes from Key Vault, labelled so External Secrets lets a webhook read it.
    let from_vault = objects
        .iter()
        .find(|o| o["kind"] == "ExternalSecret" && o["spec"]["target"]["name"] == client)
        .unwrap_or_else(|| panic!("no ExternalSecret writes the Secret {client}"));
    assert_eq!(
        from_vault["spec"]["target"]["template"]["metadata"]["labels"]["external-secrets.io/type"],
        "webhook"
    );
    let mounted =
        at["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|v| v["secret"]["secretName"].as_str())
            .unwrap();
    let token = objects
        .iter()
        .find(|o| o["kind"] == "ExternalSecret" && o["spec"]["target"]["name"] == mounted)
        .unwrap_or_else(|| panic!("no ExternalSecret writes the mounted Secret {mounted}"));
    assert_eq!(
        token["spec"]["dataFrom"][0]["sourceRef"]["generatorRef"]["name"],
        generator
    );
    assert_eq!(
        token["spec"]["target"]["template"]["data"]["token"],
        "{{ .access_token }}"
    );
    let refresh = token["spec"]["refreshInterval"].as_str().unwrap();
    let minutes: u64 = refresh.strip_suffix('m').unwrap().parse().unwrap();
    assert!(
        minutes <= 5,
        "refreshed every {refresh}: a token lives 15 minutes"
    );
}

#[test]
fn template_base() {
    let (text, objects) = render_same(&repo_dir("templates/base"));
    assert_core_objects_validate(&text, &objects);
    let job = find(&objects, "Job", "platform-migrate");
    let identity = find(&objects, "Deployment", "identity");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        identity["spec"]["template"]["spec"]["containers"][0]["image"],
        "the migration runs identity's image"
    );
    let a = &job["metadata"]["annotations"];
    assert_eq!(a["argocd.argoproj.io/hook"], "PreSync");
    assert!(a["argocd.argoproj.io/hook-delete-policy"].is_string());
    let wave = |kind: &str, name: &str| -> i64 {
        find(&objects, kind, name)["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let identity_wave = wave("Deployment", "identity");
    assert!(wave("Job", "platform-migrate") < identity_wave);
    assert!(identity_wave < wave("Deployment", "worker"));
    assert!(identity_wave < wave("Deployment", "gateway"));
}

#[test]
fn template_rollouts_component_on_the_base() {
    let (_keep, dir) = component_on_base("");
    let (text, objects) = render_same(&dir);
    assert_core_objects_validate(&text, &objects);
    // Sync waves: the Rollouts keep identity first.
    let wave = |o: &Value| o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].clone();
    assert_eq!(wave(find(&objects, "Rollout", "worker")), "1");
    assert_eq!(wave(find(&objects, "Rollout", "gateway")), "2");
}

#[test]
fn template_rollouts_analysis() {
    let (text, objects) = render_same(&repo_dir("templates/rollouts/analysis"));
    assert_core_objects_validate(&text, &objects);
    let at = find(&objects, "AnalysisTemplate", "deploy-gate");
    check_shape(
        at,
        &analysis_template_shape(),
        "AnalysisTemplate/deploy-gate",
    );
    let pod = &at["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"];
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(args[2..4], ["gate", "smoke"]);
    assert_eq!(after("--profile"), "deep");
    // Cluster DNS of the Service under test, never a public host.
    assert_eq!(
        after("--base-url"),
        "http://{{args.service}}.{{args.namespace}}.svc.cluster.local:{{args.port}}"
    );
    // The token is a mounted file, never a flag value or an environment variable.
    assert!(!args.contains(&"--token"));
    assert!(pod["containers"][0].get("env").is_none());
    assert!(after("--token-file").starts_with("/var/run/secrets/rel-gate/"));
    assert_eq!(pod["automountServiceAccountToken"], false);
}

#[test]
fn template_argocd_app_of_apps() {
    let (text, objects) = render_same(&repo_dir("templates/argocd"));
    assert_core_objects_validate(&text, &objects);
    let root = find(&objects, "Application", "root");
    check_shape(root, &application_shape(), "Application/root");
    assert_eq!(root["spec"]["source"]["path"], "templates/argocd/apps");
    let repo = root["spec"]["source"]["repoURL"].clone();
    for p in ["platform", "platform-apps"] {
        let project = find(&objects, "AppProject", p);
        check_shape(project, &app_project_shape(), &format!("AppProject/{p}"));
        assert_eq!(
            project["spec"]["sourceRepos"],
            json!([repo]),
            "{p}: this repository only"
        );
    }
    let platform = find(&objects, "AppProject", "platform");
    let namespaces: Vec<&str> = platform["spec"]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["platform-staging", "platform-prod"]);
    assert_eq!(
        find(&objects, "AppProject", "platform-apps")["spec"]["namespaceResourceWhitelist"],
        json!([{"group": "argoproj.io", "kind": "Application"}])
    );
    assert_eq!(root["spec"]["project"], "platform-apps");
}

#[test]
fn template_argocd_apps_one_application_per_environment() {
    let (text, objects) = render_same(&repo_dir("templates/argocd/apps"));
    assert_core_objects_validate(&text, &objects);
    let config = rel::config::Config::load(&repo_root().join("rel.toml")).unwrap();
    for env in ["staging", "prod"] {
        let app = find(&objects, "Application", &format!("platform-{env}"));
        check_shape(app, &application_shape(), env);
        assert_eq!(app["metadata"]["namespace"], "argocd");
        assert_eq!(app["spec"]["project"], "platform");
        assert_eq!(app["spec"]["source"]["path"], format!("overlays/{env}"));
        assert_eq!(
            app["spec"]["destination"]["namespace"],
            format!("platform-{env}")
        );
        let automated = &app["spec"]["syncPolicy"]["automated"];
        assert_eq!(automated["prune"], true);
        assert_eq!(automated["selfHeal"], true);
        // rel.toml's environment names this Application (`argocd-app`, `argocd-namespace`).
        let e = config.environment(env).unwrap();
        assert_eq!(
            e.runtime,
            rel::config::Runtime::Cluster(rel::config::ArgoApp {
                name: app["metadata"]["name"].as_str().unwrap().to_owned(),
                namespace: app["metadata"]["namespace"].as_str().unwrap().to_owned(),
            })
        );
        assert_eq!(
            config.overlay_dir(e),
            repo_root().join(app["spec"]["source"]["path"].as_str().unwrap())
        );
    }
}

#[test]
fn template_external_secrets() {
    let (text, objects) = render_same(&repo_dir("templates/external-secrets"));
    assert_core_objects_validate(&text, &objects);
}

// ---- published field shapes of the Argo objects -------------------------------------------
//
// A shape is a JSON object: each key allowed in the value, with the shape of its value (`null`:
// not checked further; an array's items take the key's shape); `"!required"` lists the keys that
// must be present. The allowed keys are those of the published CRDs / API types
// (argoproj.io/v1alpha1: Argo Rollouts' Rollout and AnalysisTemplate, Argo CD's Application and
// AppProject), restricted to the subtrees these templates use.

fn check_shape(value: &Value, shape: &Value, at: &str) {
    let mut errors = Vec::new();
    shape_errors(value, shape, at, &mut errors);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn shape_errors(value: &Value, shape: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(allowed) = shape.as_object() else {
        return;
    };
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                shape_errors(item, shape, &format!("{at}[{i}]"), errors);
            }
        }
        Value::Object(map) => {
            for r in allowed
                .get("!required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !map.contains_key(r) {
                    errors.push(format!("{at}: required field `{r}` is missing"));
                }
            }
            for (k, v) in map {
                match allowed.get(k) {
                    Some(sub) => shape_errors(v, sub, &format!("{at}.{k}"), errors),
                    None => errors.push(format!("{at}: unknown field `{k}`")),
                }
            }
        }
        other => errors.push(format!("{at}: expected an object, found {other}")),
    }
}

fn object_meta() -> Value {
    json!({"!required": ["name"], "name": null, "namespace": null, "labels": null,
           "annotations": null, "finalizers": null})
}

fn analysis_args() -> Value {
    json!({"!required": ["name"], "name": null, "value": null,
           "valueFrom": {"podTemplateHashValue": null, "fieldRef": {"!required": ["fieldPath"], "fieldPath": null}}})
}

fn rollout_analysis() -> Value {
    json!({"!required": ["templates"],
           "templates": {"!required": ["templateName"], "templateName": null, "clusterScope": null},
           "args": analysis_args(), "startingStep": null, "dryRun": null,
           "measurementRetention": null, "analysisRunMetadata": null})
}

fn rollout_shape() -> Value {
    json!({
        "!required": ["apiVersion", "kind", "metadata", "spec"],
        "apiVersion": null, "kind": null, "metadata": object_meta(),
        "spec": {
            "!required": ["strategy"],
            "replicas": null, "selector": null, "template": null, "minReadySeconds": null,
            "revisionHistoryLimit": null, "paused": null, "progressDeadlineSeconds": null,
            "progressDeadlineAbort": null, "restartAt": null, "analysis": null,
            "rollbackWindow": null,
            "workloadRef": {"!required": ["apiVersion", "kind", "name"], "apiVersion": null,
                            "kind": null, "name": null, "scaleDown": null},
            "strategy": {"blueGreen": blue_green_shape(), "canary": canary_shape()},
        },
    })
}

fn blue_green_shape() -> Value {
    json!({
        "!required": ["activeService"],
        "activeService": null, "previewService": null,
        "autoPromotionEnabled": null, "autoPromotionSeconds": null,
        "scaleDownDelaySeconds": null, "scaleDownDelayRevisionLimit": null,
        "abortScaleDownDelaySeconds": null, "previewReplicaCount": null,
        "maxUnavailable": null, "antiAffinity": null, "activeMetadata": null,
        "previewMetadata": null,
        "prePromotionAnalysis": rollout_analysis(),
        "postPromotionAnalysis": rollout_analysis(),
    })
}

fn canary_shape() -> Value {
    json!({
        "canaryService": null, "stableService": null, "maxSurge": null,
        "maxUnavailable": null, "analysis": rollout_analysis(),
        "scaleDownDelaySeconds": null, "scaleDownDelayRevisionLimit": null,
        "abortScaleDownDelaySeconds": null, "antiAffinity": null,
        "canaryMetadata": null, "stableMetadata": null, "trafficRouting": null,
        "dynamicStableScale": null, "minPodsPerReplicaSet": null, "pingPong": null,
        "steps": {
            "setWeight": null, "pause": {"duration": null},
            "analysis": rollout_analysis(), "experiment": null,
            "setCanaryScale": null, "setHeaderRoute": null,
            "setMirrorRoute": null, "plugin": null,
        },
    })
}

fn analysis_template_shape() -> Value {
    json!({
        "!required": ["apiVersion", "kind", "metadata", "spec"],
        "apiVersion": null, "kind": null, "metadata": object_meta(),
        "spec": {
            "!required": ["metrics"],
            "args": {"!required": ["name"], "name": null, "value": null,
                     "valueFrom": {"secretKeyRef": null, "fieldRef": null}},
            "dryRun": null, "measurementRetention": null,
            "metrics": {
                "!required": ["name", "provider"],
                "name": null, "interval": null, "initialDelay": null, "count": null,
                "successCondition": null, "failureCondition": null, "failureLimit": null,
                "inconclusiveLimit": null, "consecutiveErrorLimit": null,
                "consecutiveSuccessLimit": null,
                "provider": {
                    "job": {"!required": ["spec"], "metadata": {"labels": null, "annotations": null},
                            "spec": null},
                    "prometheus": null, "web": null, "datadog": null, "newRelic": null,
                    "wavefront": null, "kayenta": null, "cloudWatch": null, "graphite": null,
                    "influxdb": null, "skywalking": null, "plugin": null,
                },
            },
        },
    })
}

fn application_shape() -> Value {
    let source = json!({"!required": ["repoURL"], "repoURL": null, "path": null,
                        "targetRevision": null, "kustomize": null, "directory": null,
                        "helm": null, "plugin": null, "chart": null, "ref": null, "name": null});
    json!({
        "!required": ["apiVersion", "kind", "metadata", "spec"],
        "apiVersion": null, "kind": null, "metadata": object_meta(),
        "spec": {
            "!required": ["destination", "project"],
            "project": null, "source": source.clone(), "sources": source,
            "destination": {"server": null, "name": null, "namespace": null},
            "syncPolicy": {
                "automated": {"prune": null, "selfHeal": null, "allowEmpty": null, "enabled": null},
                "syncOptions": null,
                "retry": {"limit": null,
                          "backoff": {"duration": null, "factor": null, "maxDuration": null}},
                "managedNamespaceMetadata": null,
            },
            "ignoreDifferences": null, "info": null, "revisionHistoryLimit": null,
        },
    })
}

fn app_project_shape() -> Value {
    let group_kind = json!({"!required": ["group", "kind"], "group": null, "kind": null});
    json!({
        "!required": ["apiVersion", "kind", "metadata", "spec"],
        "apiVersion": null, "kind": null, "metadata": object_meta(),
        "spec": {
            "description": null, "sourceRepos": null, "sourceNamespaces": null,
            "destinations": {"server": null, "name": null, "namespace": null},
            "clusterResourceWhitelist": group_kind.clone(),
            "clusterResourceBlacklist": group_kind.clone(),
            "namespaceResourceWhitelist": group_kind.clone(),
            "namespaceResourceBlacklist": group_kind,
            "roles": null, "syncWindows": null, "orphanedResources": null,
            "signatureKeys": null, "permitOnlyProjectScopedClusterResources": null,
        },
    })
}

#[test]
fn shapes_reject_unknown_and_missing_fields() {
    let (_keep, dir) = component_on_base("");
    let (_, objects) = render_same(&dir);
    let mut rollout = find(&objects, "Rollout", "gateway").clone();
    rollout["spec"]["strategy"]["blueGreen"]["autoPromotion"] = json!(false);
    rollout["spec"]["strategy"]["blueGreen"]
        .as_object_mut()
        .unwrap()
        .remove("activeService");
    let mut errors = Vec::new();
    shape_errors(&rollout, &rollout_shape(), "Rollout", &mut errors);
    assert_eq!(
        errors,
        [
            "Rollout.spec.strategy.blueGreen: required field `activeService` is missing",
            "Rollout.spec.strategy.blueGreen: unknown field `autoPromotion`",
        ]
    );
    let mut at = find(&objects, "AnalysisTemplate", "deploy-gate").clone();
    at["spec"]["metrics"][0]["provider"]["job"]
        .as_object_mut()
        .unwrap()
        .remove("spec");
    let mut errors = Vec::new();
    shape_errors(&at, &analysis_template_shape(), "AT", &mut errors);
    assert_eq!(
        errors,
        ["AT.spec.metrics[0].provider.job: required field `spec` is missing"]
    );
}

#[test]
fn template_rollouts_component_follows_prefix_suffix_and_labels() {
    let (_keep, dir) = component_on_base(
        "namePrefix: blue-\nnameSuffix: -v2\nlabels:\n- pairs:\n    team: platform\n  includeSelectors: true\n",
    );
    let (text, objects) = render_same(&dir);
    assert_core_objects_validate(&text, &objects);
    let gw = find(&objects, "Rollout", "blue-gateway-v2");
    let bg = &gw["spec"]["strategy"]["blueGreen"];
    assert_eq!(bg["activeService"], "blue-gateway-v2");
    assert_eq!(bg["previewService"], "blue-gateway-preview-v2");
    assert_eq!(
        bg["prePromotionAnalysis"]["templates"][0]["templateName"],
        "blue-deploy-gate-v2"
    );
    assert_eq!(gw["spec"]["workloadRef"]["name"], "blue-gateway-v2");
    assert_eq!(gw["spec"]["selector"]["matchLabels"]["team"], "platform");
    // The selector label reaches the pods through the Deployment's template, and the Rollout
    // gets no template of its own (invalid next to a workloadRef).
    assert!(gw["spec"].get("template").is_none(), "{gw}");
    let d = find(&objects, "Deployment", "blue-gateway-v2");
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["team"],
        "platform"
    );
    let worker = find(&objects, "Rollout", "blue-worker-v2");
    let canary = &worker["spec"]["strategy"]["canary"];
    assert_eq!(canary["canaryService"], "blue-worker-canary-v2");
    assert_eq!(
        canary["analysis"]["templates"][0]["templateName"],
        "blue-deploy-gate-v2"
    );
    let at = find(&objects, "AnalysisTemplate", "blue-deploy-gate-v2");
    let volumes =
        &at["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "blue-rel-gate-v2");
    // The token's ExternalSecret follows its generator's new name; the Secrets it writes keep
    // theirs (they are not resources of the kustomization).
    check_gate_token(&objects, at, "blue-rel-gate-token-v2", None);
    check_shape(gw, &rollout_shape(), "Rollout/blue-gateway-v2");
}

#[test]
fn an_overlay_images_entry_pins_the_deploy_gate_image_as_kubectl_does() {
    let digest = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
    let (_keep, dir) = component_on_base(&format!(
        "images:\n- name: registry.example.com/platform/rel\n  digest: {digest}\n"
    ));
    let (_, objects) = render_same(&dir);
    let at = find(&objects, "AnalysisTemplate", "deploy-gate");
    assert_eq!(
        at["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.example.com/platform/rel@{digest}")
    );
}
