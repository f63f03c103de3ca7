//! `cargo xtask tidy`: the rules of ARCHITECTURE.md that the compiler cannot check, checked over
//! the source text (rust-analyzer's `xtask/src/tidy.rs` is the model). Each rule names the file
//! and line at fault and says how to fix it. Test code (after `#[cfg(test)]`) is not checked.

use std::fs;
use std::path::{Path, PathBuf};

/// Files that may write directly: the atomic writer itself, and the OCI blob store whose
/// temporary files are renamed into place by their content digest (a half-written blob never
/// has a digest name).
const DIRECT_WRITE_ALLOWED: &[&str] = &[
    "crates/atomic-file/src/lib.rs",
    "crates/oci/src/layer.rs",
    "crates/oci/src/atomic.rs",
    // Unpacks a layer into a private temporary root filesystem that is renamed into the cache
    // as a whole once complete.
    "crates/oci/src/unpack.rs",
    // Fills a temporary mirror of the overlay to render it pinned; never a file of record.
    "src/diff.rs",
    // Opens the detached supervisor's log, an append-only stream.
    "src/stage.rs",
];

/// Crates that may name `REL_*` variables: `service-runtime` is the services' side of the
/// contract (`REL_MASTER_KEY`, `REL_GENESIS_B64`, `REL_ENV` are what a pod's manifest sets).
const REL_NAMES_ALLOWED: &[&str] = &["crates/service-runtime/"];

/// Files that may sleep outside `crates/retry` (whose `Backoff` and `retry`/`retry_async` are
/// the one way to wait between attempts), each for a wait that is not a retry's backoff.
const SLEEP_ALLOWED: &[&str] = &[
    // The retry loops themselves.
    "crates/retry/src/lib.rs",
    // Polls of state another process changes, each to a deadline: Argo CD's Application and the
    // migration Job (deploy), the detached supervisor's state file (stage, `rel down`).
    "src/ops/deploy.rs",
    "src/stage.rs",
    "crates/stage/src/state.rs",
    // The stage's kubelet: readiness probe periods, and the CrashLoopBackOff wait (its delay is
    // `retry::Backoff::delay`; the wait races the stop signal, so it is not a `retry` loop).
    "crates/stage/src/run.rs",
    // A failed `accept` (out of file descriptors) pauses instead of spinning.
    "crates/stage/src/proxy.rs",
    // The drain delay and shutdown budget are timers by design (Kubernetes' preStop contract);
    // a failed `accept` pauses instead of spinning.
    "crates/service-runtime/src/serve.rs",
    // After writing a shared manifest (the referrers fallback index, the cosign `.sig`), wait
    // twice our read+write before reading it back, so a concurrent writer's PUT lands first.
    "crates/oci/src/registry/referrers.rs",
    // The worker's simulated work (`delayMs` of the request).
    "services/node/src/worker.rs",
];

/// Files whose error variants still lack a help text, each a debt to pay (the list only
/// shrinks: a file that no longer needs its entry makes the check fail until it is removed).
const HELP_DEBT: &[&str] = &[];

pub fn run(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let sources = rust_files(root, &["src", "crates", "services"]);
    for file in &sources {
        let rel = rel_path(root, file);
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let lines = non_test_lines(&text);
        let in_lib_src = rel.contains("/src/") || rel.starts_with("src/");
        // `crates/test-support` is test code: a dev-dependency of the integration tests.
        if !in_lib_src
            || rel.contains("/examples/")
            || rel.contains("/tests/")
            || rel.starts_with("crates/test-support/")
        {
            continue;
        }
        check_direct_writes(&rel, &lines, &mut problems);
        check_env_literals(&rel, &lines, &mut problems);
        check_crate_wording(&rel, &lines, &mut problems);
        check_error_help(&rel, &lines, &mut problems);
        check_sleeps(&rel, &lines, &mut problems);
    }
    check_help_debt(root, &mut problems);
    check_architecture_map(root, &mut problems);
    if problems.is_empty() {
        eprintln!("tidy: {} files checked, no problems", sources.len());
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        Err(format!("tidy: {} problems", problems.len()))
    }
}

fn rust_files(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `(line number, text)` up to the first `#[cfg(test)]`, comments excluded.
fn non_test_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
        .collect()
}

fn check_direct_writes(rel: &str, lines: &[(usize, &str)], problems: &mut Vec<String>) {
    if DIRECT_WRITE_ALLOWED.contains(&rel) {
        return;
    }
    for (n, l) in lines {
        if l.contains("fs::write(") || l.contains("File::create(") {
            problems.push(format!(
                "{rel}:{n}: a direct file write; write through `atomic_file::write`/`create_new` (temp + fsync + rename) so a crash never leaves half a file"
            ));
        }
    }
}

fn check_sleeps(rel: &str, lines: &[(usize, &str)], problems: &mut Vec<String>) {
    if SLEEP_ALLOWED.contains(&rel) {
        return;
    }
    for (n, l) in lines {
        if l.contains("sleep(") {
            problems.push(format!(
                "{rel}:{n}: a sleep in library code; wait between attempts with `retry::retry`/`retry_async` (a `retry::Backoff` policy), or, for a poll or a timer that is no retry, add the file to SLEEP_ALLOWED in xtask/src/tidy.rs with the reason"
            ));
        }
    }
}

fn check_env_literals(rel: &str, lines: &[(usize, &str)], problems: &mut Vec<String>) {
    if !rel.starts_with("src/") || rel == "src/env_vars.rs" {
        return;
    }
    for (n, l) in lines {
        for call in ["env::var(\"", "env::var_os(\""] {
            if l.contains(call) {
                problems.push(format!(
                    "{rel}:{n}: an environment variable read by a string literal; name it in src/env_vars.rs (with what it is for) and read it through the constant"
                ));
            }
        }
    }
}

fn check_crate_wording(rel: &str, lines: &[(usize, &str)], problems: &mut Vec<String>) {
    if !rel.starts_with("crates/") || REL_NAMES_ALLOWED.iter().any(|p| rel.starts_with(p)) {
        return;
    }
    for (n, l) in lines {
        if l.contains("\"REL_") {
            problems.push(format!(
                "{rel}:{n}: a library crate names a `REL_*` variable; crates speak in concepts: take the value as a parameter and let the CLI read the variable (src/env_vars.rs)"
            ));
        }
        if l.contains("`rel ") {
            problems.push(format!(
                "{rel}:{n}: a library crate names a rel command; say what to do in concepts and let the CLI add its wording"
            ));
        }
    }
}

/// Every `#[error(...)]` has a `#[diagnostic(help(...))]` (or is `transparent`) in its attributes.
fn check_error_help(rel: &str, lines: &[(usize, &str)], problems: &mut Vec<String>) {
    if HELP_DEBT.contains(&rel) {
        return;
    }
    // A hand-written `impl miette::Diagnostic` with a `help` covers every variant (a match).
    if lines
        .iter()
        .any(|(_, l)| l.contains("impl miette::Diagnostic for"))
        && lines
            .iter()
            .any(|(_, l)| l.trim_start().starts_with("fn help"))
    {
        return;
    }
    for (i, (n, l)) in lines.iter().enumerate() {
        if !l.trim_start().starts_with("#[error(") {
            continue;
        }
        let attrs = variant_attributes(lines, i);
        // A transparent error shows its source's diagnostic only if miette is told to.
        let ok = if l.contains("#[error(transparent)]") {
            attrs.iter().any(|a| a.contains("diagnostic(transparent)"))
        } else {
            attrs
                .iter()
                .any(|a| a.contains("help(") || a.contains("forward("))
                || help_field_follows(lines, i)
        };
        if ok {
            continue;
        }
        problems.push(format!(
            "{rel}:{n}: an error without a help; add `#[diagnostic(help(\"...\"))]` that says how to fix it"
        ));
    }
}

/// A struct-level error whose help is a `#[help]` field (miette's derive).
fn help_field_follows(lines: &[(usize, &str)], at: usize) -> bool {
    lines[at..]
        .iter()
        .take_while(|(_, l)| l.trim() != "}")
        .any(|(_, l)| l.trim() == "#[help]")
}

/// The attribute lines around the `#[error(` at `at`: up to the item they decorate.
fn variant_attributes<'a>(lines: &[(usize, &'a str)], at: usize) -> Vec<&'a str> {
    let is_attr = |l: &str| {
        let t = l.trim_start();
        t.starts_with("#[") || t.starts_with("///") || t.starts_with(')') || t.starts_with('"')
    };
    let mut out = Vec::new();
    let mut k = at;
    while k > 0 && is_attr(lines[k - 1].1) {
        k -= 1;
        out.push(lines[k].1);
    }
    let mut k = at;
    while k < lines.len() {
        let t = lines[k].1.trim_start();
        let starts_item = t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            || t.starts_with("pub ")
            || t.starts_with("struct ")
            || t.starts_with("enum ");
        if k > at && starts_item {
            break;
        }
        out.push(lines[k].1);
        k += 1;
    }
    out
}

fn check_help_debt(root: &Path, problems: &mut Vec<String>) {
    for rel in HELP_DEBT {
        let Ok(text) = fs::read_to_string(root.join(rel)) else {
            problems.push(format!(
                "xtask/src/tidy.rs: HELP_DEBT names {rel}, which does not exist"
            ));
            continue;
        };
        let lines = non_test_lines(&text);
        let mut found = Vec::new();
        check_error_help("", &lines, &mut found);
        if found.is_empty() {
            problems.push(format!(
                "xtask/src/tidy.rs: {rel} has a help on every error now; remove it from HELP_DEBT"
            ));
        }
    }
}

/// Every path ARCHITECTURE.md names in backquotes exists (`{a,b}` alternatives expanded).
fn check_architecture_map(root: &Path, problems: &mut Vec<String>) {
    let Ok(text) = fs::read_to_string(root.join("ARCHITECTURE.md")) else {
        problems.push("ARCHITECTURE.md is missing".to_owned());
        return;
    };
    for (n, line) in text.lines().enumerate() {
        for (i, quoted) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let prefixes = [
                "src/",
                "crates/",
                "services/",
                "templates/",
                "overlays/",
                "tests/",
                "xtask/",
            ];
            if !prefixes.iter().any(|p| quoted.starts_with(p))
                || quoted.contains(['*', '<', ' ', '$'])
            {
                continue;
            }
            for path in expand_braces(quoted) {
                if !root.join(path.trim_end_matches('/')).exists() {
                    problems.push(format!(
                        "ARCHITECTURE.md:{}: names `{path}`, which does not exist; keep the code map true",
                        n + 1
                    ));
                }
            }
        }
    }
}

fn expand_braces(s: &str) -> Vec<String> {
    match (s.find('{'), s.find('}')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b]
            .split(',')
            .flat_map(|alt| expand_braces(&format!("{}{}{}", &s[..a], alt, &s[b + 1..])))
            .collect(),
        _ => vec![s.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand() {
        assert_eq!(
            expand_braces("src/commands/{record,promote}.rs"),
            vec!["src/commands/record.rs", "src/commands/promote.rs"]
        );
    }

    #[test]
    fn an_error_without_help_is_found_and_one_with_help_is_not() {
        let text = "enum E {\n    #[error(\"a\")]\n    A,\n    #[error(\"b\")]\n    #[diagnostic(help(\"fix\"))]\n    B,\n    /// doc\n    #[diagnostic(transparent)]\n    #[error(transparent)]\n    C(X),\n    #[error(transparent)]\n    D(Y),\n}\n";
        let mut found = Vec::new();
        check_error_help("x.rs", &non_test_lines(text), &mut found);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("x.rs:2:"), "{found:?}");
        assert!(found[1].starts_with("x.rs:11:"), "{found:?}");
    }

    #[test]
    fn a_hand_written_backoff_sleep_is_found_outside_the_allowed_files() {
        let text = "fn f() {\n    // a comment about sleep(1)\n    std::thread::sleep(d);\n}\n#[cfg(test)]\nmod tests {\n    fn t() { std::thread::sleep(d); }\n}\n";
        let mut found = Vec::new();
        check_sleeps("src/forge/mod.rs", &non_test_lines(text), &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("src/forge/mod.rs:3:"), "{found:?}");
        let mut allowed = Vec::new();
        check_sleeps("src/ops/deploy.rs", &non_test_lines(text), &mut allowed);
        assert!(allowed.is_empty(), "{allowed:?}");
    }
}
