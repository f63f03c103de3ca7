//! `rel completions SHELL` and `rel man`: generated, complete, and valid for their readers.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

/// Every shell's script names the subcommands (and nested ones) and is what that shell expects.
#[test]
fn each_shell_gets_a_script_that_knows_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _rel"),
        ("zsh", "#compdef rel"),
        ("fish", "complete -c rel"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = rel_in(dir.path(), &["completions", shell]);
        r.expect(0);
        let script = r.stdout();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in [
            "release",
            "build",
            "deploy",
            "init",
            "promote",
            "completions",
            "man",
            "coherence",
        ] {
            assert!(script.contains(sub), "{shell}: no `{sub}`");
        }
        assert!(script.contains("dry-run"), "{shell}: no flags");
    }
    // bash parses its script (syntax only) when it is installed.
    if Command::new("bash").arg("--version").output().is_ok() {
        let script = rel_in(dir.path(), &["completions", "bash"]).stdout();
        let path = dir.path().join("rel.bash");
        std::fs::write(&path, script).unwrap();
        let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bad = rel_in(dir.path(), &["completions", "tcsh"]);
    bad.expect(2);
    assert!(bad.stderr().contains("possible values"), "{}", bad.stderr());
}

/// The manual page is roff that `man` formats without a warning (when `man` is installed), and
/// in any case has the structure of a man(7) page with a section per subcommand.
#[test]
fn man_page_is_valid_roff_with_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let r = rel_in(dir.path(), &["man"]);
    r.expect(0);
    let page = r.stdout();
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("\n.TH rel 1"), "no title");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for sub in [
        "RELEASE",
        "INIT",
        "GATE SMOKE",
        "COMPLETIONS",
        "SECRETS PUSH",
    ] {
        assert!(
            page.contains(&format!(".SH \"REL {sub}\"")),
            "no section for rel {sub}"
        );
    }
    assert!(
        page.is_ascii(),
        "roff input is ASCII (escapes for the rest)"
    );
    // Every control line is a request or macro man(7) knows.
    const KNOWN: &[&str] = &[
        "TH", "SH", "SS", "PP", "TP", "IP", "RS", "RE", "br", "B", "I", "BR", "IR", "RB", "ie",
        "el", "\\\"", "sp", "nf", "fi", "in", "ft", "LP", "P", "HP",
    ];
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let name = line[1..].split([' ', '\t']).next().unwrap_or("");
        assert!(KNOWN.contains(&name), "unknown control line: {line}");
    }
    if Command::new("man").arg("--version").output().is_err() {
        return;
    }
    let mut child = Command::new("man")
        .args(["--warnings=all", "-l", "-"])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man: {stderr}");
    assert!(stderr.trim().is_empty(), "man warns:\n{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("REL INIT") && text.contains("--dry-run"),
        "{text}"
    );
}
