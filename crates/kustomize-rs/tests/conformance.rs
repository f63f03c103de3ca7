//! Data-driven conformance: every `tests/cases/<case>/input` renders to `expected.yaml`
//! (made by `kubectl kustomize`, see `cargo xtask kustomize-oracle`) byte for byte, or fails
//! with an error containing `expected_error.txt`.

use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// Runs one case; `Err` carries a readable report.
fn check(case: &Path) -> Result<(), String> {
    let input = case.join("input");
    let result = kustomize::render(&input);
    let expected_yaml = case.join("expected.yaml");
    let expected_err = case.join("expected_error.txt");
    if expected_err.exists() {
        let want = std::fs::read_to_string(&expected_err).map_err(|e| e.to_string())?;
        let want = want.trim_end_matches('\n');
        return match result {
            Ok(_) => Err(format!(
                "expected an error containing {want:?}, but rendering succeeded"
            )),
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!("expected an error containing {want:?}, got: {e}")),
        };
    }
    let want = std::fs::read_to_string(&expected_yaml)
        .map_err(|e| format!("{}: {e}", expected_yaml.display()))?;
    let rendered = match result {
        Ok(r) => r,
        Err(e) => return Err(format!("render failed: {e}")),
    };
    let expected_files = case.join("expected_files.txt");
    if expected_files.exists() {
        let want = std::fs::read_to_string(&expected_files).map_err(|e| e.to_string())?;
        let mut names: Vec<String> = rendered
            .output_files()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        names.dedup();
        let got: String = names.iter().map(|n| format!("{n}\n")).collect();
        if got != want {
            return Err(format!(
                "per-object file names differ from `kubectl kustomize -o`:\nwant:\n{want}got:\n{got}"
            ));
        }
    }
    let expected_warnings = case.join("expected_warnings.txt");
    if expected_warnings.exists() {
        // kubectl's `# Warning:` lines on standard error, each once.
        let want = std::fs::read_to_string(&expected_warnings).map_err(|e| e.to_string())?;
        let got: String = rendered
            .warnings_once_per_field()
            .iter()
            .filter(|w| w.message.starts_with("# Warning:"))
            .map(|w| format!("{}\n", w.message))
            .collect();
        if got != want {
            return Err(format!(
                "warnings differ from kubectl's standard error:\nwant:\n{want}got:\n{got}"
            ));
        }
    }
    let got = rendered.to_yaml();
    if got == want {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(&want, &got)
        .unified_diff()
        .context_radius(3)
        .header("expected (kubectl kustomize)", "actual (kustomize-rs)")
        .to_string();
    Err(diff)
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/cases exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 60,
        "expected at least 60 conformance cases, found {}",
        cases.len()
    );
    let trials = cases
        .into_iter()
        .map(|case| {
            let name = case
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            libtest_mimic::Trial::test(name, move || check(&case).map_err(Into::into))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
