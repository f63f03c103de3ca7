//! The role features are exclusive, and a role binary needs its feature: each mistake is refused
//! with a message that says how to build it right.

fn cargo_build(args: &[&str]) -> (bool, String) {
    let out = crate::harness::cargo()
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(crate::harness::target_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn both_role_features_do_not_compile_and_the_error_says_how_to_build() {
    let (ok, stderr) = cargo_build(&["-p", "node", "--features", "gateway,worker"]);
    assert!(!ok, "node built with both roles");
    assert!(stderr.contains("mutually exclusive"), "{stderr}");
    assert!(
        stderr.contains("cargo build -p node --bin gateway --features gateway"),
        "{stderr}"
    );
}

#[test]
fn a_role_binary_without_its_feature_is_refused() {
    for (bin, feature) in [("gateway", "gateway"), ("worker", "worker")] {
        let (ok, stderr) = cargo_build(&["-p", "node", "--bin", bin]);
        assert!(!ok, "{bin} built without its feature");
        assert!(
            stderr.contains(&format!("requires the features: `{feature}`")),
            "{stderr}"
        );
    }
}
