//! The renderer's YAML parser and kustomization loader on arbitrary bytes: a kustomization that
//! lists one resource file, both taken from the input. Errors are fine; panics, aborts and
//! runaway memory are not.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (kustomization, resource) = text.split_once("\n---8<---\n").unwrap_or((&text, ""));
    let Ok(dir) = tempfile::tempdir() else { return };
    let ok = std::fs::write(dir.path().join("kustomization.yaml"), kustomization).is_ok()
        && std::fs::write(dir.path().join("r.yaml"), resource).is_ok();
    if ok {
        let _ = kustomize::render(dir.path());
    }
});
