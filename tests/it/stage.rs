//! `rel up` / `rel down`: the local stage runs the platform's real services from real OCI images
//! (assembled here from the service binaries, as `rel build` assembles them), on their own
//! loopback addresses, behind Service proxies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// The service binaries: prebuilt by `cargo xtask test` (REL_SERVICES_BIN_DIR), else built here.
fn service_bins() -> PathBuf {
    if let Some(dir) = std::env::var_os("REL_SERVICES_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = repo_root().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for args in [
        &["-p", "identity", "--bin", "identity"][..],
        &["-p", "node", "--bin", "gateway", "--features", "gateway"],
        &["-p", "node", "--bin", "worker", "--features", "worker"],
    ] {
        let status = Command::new(&cargo)
            .arg("build")
            .arg("--quiet")
            .args(args)
            .arg("--target-dir")
            .arg(&target)
            .current_dir(repo_root())
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "cargo build {args:?}");
    }
    target.join("debug")
}

const SECRET: &str = "stage-client-secret-0123456789";
const SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The three images, built once per set of service binaries into `target/stage-it/<key>/oci`
/// (one layout per component, as `rel build` writes them), and their digests.
fn shared_images() -> (PathBuf, [(String, String); 3]) {
    // One builder per test process (cargo test runs the tests as threads of one process).
    static BUILT: std::sync::OnceLock<(PathBuf, [(String, String); 3])> =
        std::sync::OnceLock::new();
    BUILT.get_or_init(build_shared_images).clone()
}

fn build_shared_images() -> (PathBuf, [(String, String); 3]) {
    use std::hash::{Hash as _, Hasher as _};
    let bins = service_bins();
    let components = [
        ("identity", "identity"),
        ("gateway", "gateway"),
        ("worker", "worker"),
    ];
    let mut key = std::collections::hash_map::DefaultHasher::new();
    for (_, bin) in components {
        let m = std::fs::metadata(bins.join(bin)).unwrap();
        (bin, m.len(), m.modified().unwrap()).hash(&mut key);
    }
    let dir = repo_root()
        .join("target/stage-it")
        .join(format!("{:016x}", key.finish()));
    let oci = dir.join("oci");
    if !oci.join("digests").is_file() {
        let tmp = dir.join(format!("oci.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut lines = String::new();
        for (component, bin) in components {
            let mut spec = oci::LayerSpec::binary(bins.join(bin), bin, 1_700_000_000);
            spec.gzip_level = 1;
            let layer = oci::build_layer(&spec, &tmp.join("blobs")).unwrap();
            let image = oci::assemble(
                None,
                &[layer],
                &oci::ImageSpec::new(vec![format!("/app/{bin}")], 1_700_000_000),
            )
            .unwrap();
            oci::write_layout(&tmp.join(component), &image, "test").unwrap();
            lines.push_str(&format!("{component} {}\n", image.manifest_digest));
        }
        std::fs::remove_dir_all(tmp.join("blobs")).unwrap();
        std::fs::write(tmp.join("digests"), lines).unwrap();
        // Another test may have finished first: keep its copy.
        if std::fs::rename(&tmp, &oci).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let text = std::fs::read_to_string(oci.join("digests")).unwrap();
    let digests: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (c, d) = l.split_once(' ').unwrap();
            (c.to_owned(), d.to_owned())
        })
        .collect();
    (dir, digests.try_into().unwrap())
}

struct Staged {
    project: Project,
    digests: [(String, String); 3],
}

/// This repository's rel.toml, templates and local overlay in a temp project; the three images
/// in its `target/rel/oci/<component>` layouts, the overlay pinned to them; a sealed envelope for
/// `local` in the file store and its key in `key`.
fn staged_project(extra_patch: Option<&str>) -> Staged {
    let p = Project::platform();
    copy_tree(&repo_root().join("templates"), &p.path().join("templates"));
    copy_tree(
        &repo_root().join("overlays/local"),
        &p.path().join("overlays/local"),
    );
    let (shared, digests) = shared_images();
    // Images and the unpacked-image cache are shared by the tests (both are content-addressed
    // and written atomically); each project links to them where rel looks by default.
    std::fs::create_dir_all(p.path().join("target/rel")).unwrap();
    std::os::unix::fs::symlink(shared.join("oci"), p.path().join("target/rel/oci")).unwrap();
    std::fs::create_dir_all(shared.join("stage-images")).unwrap();
    std::os::unix::fs::symlink(
        shared.join("stage-images"),
        p.path().join("target/rel/stage-images"),
    )
    .unwrap();
    let mut overlay = with_placeholder_pins(&p.read("overlays/local/kustomization.yaml"));
    for ((_, digest), placeholder) in digests.iter().zip([D1, D2, D3]) {
        overlay = overlay.replace(placeholder, digest);
    }
    if let Some(patch) = extra_patch {
        overlay = overlay.replace("\nimages:\n", &format!("{patch}\nimages:\n"));
    }
    p.write("overlays/local/kustomization.yaml", &overlay);

    p.rel(&["keygen", "-o", "key"]).expect(0);
    p.write(
        "genesis-local.env",
        &format!(
            "IDENTITY_SIGNING_KEY_B64={SEED}\nIDENTITY_CLIENTS=stage:service_account:{SECRET}\n"
        ),
    );
    p.rel(&[
        "seal",
        "--env",
        "local",
        "--from",
        "genesis-local.env",
        "-o",
        ".rel/genesis/local.b64",
        "--key-file",
        "key",
    ])
    .expect(0);
    p.rel(&["secrets", "push", "--env", "local", "--key-file", "key"])
        .expect(0);
    Staged {
        project: p,
        digests,
    }
}

fn state(p: &Project) -> serde_json::Value {
    let run = p.rel(&["up", "status", "--env", "local", "--format", "json"]);
    run.expect(0);
    serde_json::from_str(&run.stdout()).unwrap()
}

fn service_address(state: &serde_json::Value, name: &str) -> String {
    state["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no Service {name}"))["ports"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every pid the state names: the supervisor and each container.
fn pids(state: &serde_json::Value) -> Vec<u32> {
    let mut out: Vec<u32> = state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["containers"].as_array().unwrap().iter())
        .filter_map(|c| c["process"]["pid"].as_u64())
        .map(|p| p as u32)
        .collect();
    if let Some(p) = state["supervisor"]["pid"].as_u64() {
        out.push(p as u32);
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

/// Stops the stage when a test fails halfway.
struct Down<'a>(&'a Project);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.rel(&["down", "--env", "local"]);
    }
}

/// Kills the pods of a stage run in the test process itself when a test fails halfway.
struct KillPods<'a>(&'a Project);

impl Drop for KillPods<'_> {
    fn drop(&mut self) {
        if let Ok(Some(state)) = ::stage::read(&self.0.path().join(".rel/stage/local")) {
            for p in state.processes() {
                ::stage::state::signal_group(p.pid, 9);
            }
        }
    }
}

#[test]
fn stage_runs_the_platform_from_its_images_restarts_pods_and_stops_every_process() {
    let Staged {
        project: p,
        digests,
    } = staged_project(None);
    let _down = Down(&p);

    // The plan names each pod, its address and the rewrites, and starts nothing.
    let dry = p.rel(&["up", "--env", "local", "--dry-run", "--key-file", "key"]);
    dry.expect(0);
    assert!(
        dry.stdout().contains("env LISTEN_ADDR: 0.0.0.0:8080 →"),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stdout()
            .contains("env DATABASE_URL: sqlite:///data/platform.db → sqlite://")
    );
    assert!(!p.path().join(".rel/stage/local/state.json").exists());

    let up = p.rel(&[
        "up",
        "--env",
        "local",
        "--detach",
        "--key-file",
        "key",
        "--format",
        "json",
    ]);
    up.expect(0);
    assert!(!up.stderr().contains(SECRET) && !up.stdout().contains(SECRET));
    let st: serde_json::Value = serde_json::from_str(&up.stdout()).unwrap();
    assert_eq!(st["phase"], "ready");

    // Every pod runs its image's digest (as the drift gate reads live pods), on its own address.
    let parsed: ::stage::StageState = serde_json::from_value(st.clone()).unwrap();
    let live = rel::stage::live_pods(&parsed);
    let running: Vec<_> = live.iter().filter(|p| !p.is_terminated()).collect();
    assert_eq!(running.len(), 6, "{st:#}");
    for pod in &running {
        let status = &pod.status.container_statuses[0];
        let component = pod.metadata.labels["app.kubernetes.io/name"].as_str();
        let want = &digests.iter().find(|(c, _)| c == component).unwrap().1;
        assert_eq!(
            status.digest(),
            Some(want.as_str()),
            "{}",
            pod.metadata.name
        );
        assert_eq!(pod.controller().unwrap().kind, "ReplicaSet");
    }
    let migrate = live
        .iter()
        .find(|p| p.metadata.name.starts_with("platform-migrate-"))
        .expect("the migration Job's pod");
    assert_eq!(migrate.status.phase.as_deref(), Some("Succeeded"));
    let mut addresses: Vec<_> = st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ip"].as_str().unwrap().to_owned())
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 7, "one address per pod");

    // End to end through the Services: a token from identity, a query through the gateway,
    // answered by a worker (gateway → JWKS from identity → worker, all by Service name).
    let identity = service_address(&st, "identity");
    let gateway = service_address(&st, "gateway");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token: serde_json::Value = client
        .post(format!("http://{identity}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "stage"),
            ("client_secret", SECRET),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let query = |client: &reqwest::blocking::Client| {
        client
            .post(format!("http://{gateway}/api/query"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"query": "count the nodes"}))
            .send()
            .unwrap()
    };
    let answer = query(&client);
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().unwrap();
    let worker_id = answer["worker_id"].as_str().unwrap().to_owned();
    assert!(worker_id.starts_with("worker-"), "{answer}");

    // Kill a worker pod's process: the stage restarts it (same pod, same address, new pid).
    let worker = st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["labels"]["app.kubernetes.io/name"] == "worker")
        .unwrap()
        .clone();
    let name = worker["name"].as_str().unwrap().to_owned();
    let old_pid = worker["containers"][0]["process"]["pid"].as_u64().unwrap() as u32;
    ::stage::state::signal_process(old_pid, 9);
    let deadline = Instant::now() + Duration::from_secs(60);
    let restarted = loop {
        let now = state(&p);
        let pod = now["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .cloned()
            .unwrap();
        let c = &pod["containers"][0];
        if c["restarts"].as_u64() >= Some(1)
            && c["ready"] == true
            && c["process"]["pid"]
                .as_u64()
                .is_some_and(|p| p as u32 != old_pid)
        {
            break now;
        }
        assert!(Instant::now() < deadline, "worker not restarted: {pod:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!alive(old_pid));
    assert_eq!(query(&client).status(), 200);

    // A new version of the worker, rolled by the detached supervisor (what `rel deploy` asks).
    let old_workers: Vec<String> = restarted["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["workload_name"] == "worker")
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect();
    let overlay = p.read("overlays/local/kustomization.yaml");
    p.write(
        "overlays/local/kustomization.yaml",
        &overlay.replace(
            "\nimages:\n",
            "  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: worker\n      spec:\n        template:\n          metadata:\n            annotations:\n              rel.dev/rollout: \"2\"\n\nimages:\n",
        ),
    );
    let config = rel::project::load(p.path()).unwrap();
    let rolled = rel::stage::request_converge(&config, "local", Duration::from_secs(60)).unwrap();
    let new_workers: Vec<&::stage::state::PodState> = rolled
        .pods
        .iter()
        .filter(|x| x.workload_name == "worker")
        .collect();
    assert_eq!(new_workers.len(), 2);
    assert!(
        new_workers
            .iter()
            .all(|w| w.ready() && !old_workers.contains(&w.name))
    );
    assert_eq!(query(&client).status(), 200);
    let restarted = state(&p);

    // The drift gate reads the stage's live pods as it reads a cluster's.
    let pods = p.rel(&["up", "status", "--env", "local", "--pods"]);
    pods.expect(0);
    p.write("pods.json", &pods.stdout());
    let drift = p.rel(&[
        "gate",
        "drift",
        "--env",
        "local",
        "--pods",
        "pods.json",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&drift.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}{}", drift.stdout(), drift.stderr()));
    let live: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("live/")))
        .collect();
    assert_eq!(live.len(), 4, "{report:#}");
    assert!(live.iter().all(|c| c["status"] == "pass"), "{report:#}");

    // Logs per pod.
    let logs = p.rel(&["up", "logs", "--env", "local", &name]);
    logs.expect(0);
    assert!(
        logs.stdout().contains("exited: signal 9"),
        "{}",
        logs.stdout()
    );

    // Down stops every process; a second down has nothing left to do.
    let all = pids(&restarted);
    assert!(all.len() >= 7, "{all:?}");
    p.rel(&["down", "--env", "local"]).expect(0);
    let left: Vec<u32> = all.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
    let again = p.rel(&["down", "--env", "local"]);
    again.expect(0);
    assert!(
        again.stderr().contains("no supervisor was running"),
        "{}",
        again.stderr()
    );
    assert_eq!(state(&p)["phase"], "stopped");
}

#[test]
fn a_failing_migration_job_stops_up_before_any_workload_starts() {
    // The migration cannot create its database: `identity migrate` exits 1.
    let patch = r#"  - patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: platform-migrate
      spec:
        backoffLimit: 1
        template:
          spec:
            containers:
              - name: migrate
                env:
                  - name: DATABASE_URL
                    value: sqlite:///proc/rel-stage-test/platform.db
"#;
    let Staged { project: p, .. } = staged_project(Some(patch));
    let _down = Down(&p);
    let up = p.rel(&["up", "--env", "local", "--key-file", "key"]);
    up.expect(2);
    let err = up.stderr();
    assert!(
        err.contains("Job/platform-migrate failed (exit 1)"),
        "{err}"
    );
    assert!(
        err.contains("cannot create the directory for database /proc/rel-stage-test/platform.db"),
        "the log tail is in the error: {err}"
    );
    let st = state(&p);
    assert_eq!(st["phase"], "failed");
    let logs: Vec<String> = std::fs::read_dir(p.path().join(".rel/stage/local/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        logs.iter().all(|l| l.starts_with("platform-migrate-")),
        "only the Job ran: {logs:?}"
    );
    // Two attempts (backoffLimit 1), then nothing.
    let log =
        std::fs::read_to_string(p.path().join(".rel/stage/local/logs").join(&logs[0])).unwrap();
    assert_eq!(log.matches("--- rel stage: start #").count(), 2, "{log}");
}

#[test]
fn converge_rolls_a_changed_workload_with_new_pods_ready_before_old_ones_stop() {
    let Staged { project: p, .. } = staged_project(None);
    // The stage runs in this process: on failure, kill its pods (not this process).
    let _kill = KillPods(&p);
    let config = rel::project::load(p.path()).unwrap();
    let opts = rel::stage::UpOptions {
        env: "local".into(),
        images: Vec::new(),
        ready_timeout: Duration::from_secs(60),
        key: rel::secrets::KeySource::File(p.path().join("key")),
        cancel: None,
    };
    let secrets = rel::stage::cluster_secrets(&config, &opts).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stage = rel::stage::up(&config, &opts, secrets.clone()).await.unwrap();
        let before = stage.state();
        let worker = service_address(&serde_json::to_value(&before).unwrap(), "worker");

        // Requests through the worker Service, each on a new connection, all along the rollout.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hammer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let (mut ok, mut failed) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.get(format!("http://{worker}/readyz")).send() {
                        Ok(r) if r.status() == 200 => ok += 1,
                        Ok(r) => failed.push(r.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        };

        // A new version of the worker only: its pod template changes.
        let overlay = p.read("overlays/local/kustomization.yaml");
        p.write(
            "overlays/local/kustomization.yaml",
            &overlay.replace(
                "\nimages:\n",
                "  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: worker\n      spec:\n        template:\n          metadata:\n            annotations:\n              rel.dev/rollout: \"2\"\n\nimages:\n",
            ),
        );
        let report = rel::stage::converge(&config, &opts, &stage, secrets)
            .await
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = hammer.join().unwrap();
        assert!(failed.is_empty(), "{ok} ok, failed: {failed:?}");
        assert!(ok > 0);

        let old_workers: Vec<String> = before
            .pods
            .iter()
            .filter(|p| p.workload_name == "worker")
            .map(|p| p.name.clone())
            .collect();
        let after = stage.state();
        let new_workers: Vec<String> = after
            .pods
            .iter()
            .filter(|p| p.workload_name == "worker")
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(new_workers.len(), 2);
        assert!(new_workers.iter().all(|n| !old_workers.contains(n)));
        assert!(old_workers.iter().all(|n| report.stopped.contains(n)), "{report:?}");
        // identity and gateway were not touched.
        for p in before
            .pods
            .iter()
            .filter(|p| p.workload_name == "identity" || p.workload_name == "gateway")
        {
            assert!(report.kept.contains(&p.name), "{report:?}");
        }
        assert!(after.pods.iter().filter(|p| p.workload_kind != "Job").all(|p| p.ready()));
        let pids: Vec<u32> = after.processes().iter().map(|p| p.pid).collect();
        stage.stop().await;
        assert!(pids.iter().all(|p| !alive(*p)));
    });
}

#[test]
fn ctrl_c_stops_a_foreground_stage_and_every_pod() {
    use std::io::BufRead as _;
    let Staged { project: p, .. } = staged_project(None);
    let _down = Down(&p);
    let talk = p.path().join("up.stderr");
    let mut child = rel_command(p.path())
        .args(["up", "--env", "local", "--key-file", "key"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&talk).unwrap())
        .spawn()
        .unwrap();
    // The status table is printed once the stage is ready.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("stage local (ready)"), "{first}");
    let table: Vec<String> = lines
        .take_while(|l| l.is_ok())
        .map_while(Result::ok)
        .take(9)
        .collect();
    assert!(table.iter().any(|l| l.starts_with("POD ")), "{table:?}");
    let st = state(&p);
    let all = pids(&st);
    assert_eq!(all.len(), 7, "six pods and the supervisor: {st:#}");
    ::stage::state::signal_process(child.id(), 2);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let left: Vec<u32> = all.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
    assert_eq!(state(&p)["phase"], "stopped");
    // Off a terminal, progress is one plain line per workload change: readiness of each one.
    let talk = std::fs::read_to_string(&talk).unwrap();
    assert!(
        talk.lines().all(|l| !l.chars().any(char::is_control)),
        "{talk:?}"
    );
    for workload in [
        "Deployment identity",
        "Deployment gateway",
        "Deployment worker",
    ] {
        assert!(
            talk.lines()
                .any(|l| l.contains(&format!("{workload}: ")) && l.contains(" ready")),
            "no readiness of {workload}:\n{talk}"
        );
    }
}
