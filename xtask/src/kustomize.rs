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
