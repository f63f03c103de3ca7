//! A role binary needs its feature, and cargo says which when it is missing.

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
