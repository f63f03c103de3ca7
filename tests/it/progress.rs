//! How long work talks off a terminal (CI, pipes): plain one-line events with no control
//! characters; `--quiet` says nothing on success; `--verbose` adds debug logs; stdout is the same
//! in every mode.

use test_support::Registry;

use crate::init::{commit, two_crate_workspace};

/// No escape sequence, carriage return or other control character: only printable text and
/// newlines.
#[track_caller]
fn assert_plain(what: &str, bytes: &[u8]) {
    let text = String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
    for (n, line) in text.lines().enumerate() {
        assert!(
            !line.chars().any(char::is_control),
            "{what}: control character in line {}: {line:?}",
            n + 1
        );
    }
    assert!(!text.contains('\r'), "{what}: carriage return");
}

#[test]
fn off_a_terminal_long_work_is_plain_lines_and_quiet_and_verbose_hold_everywhere() {
    let registry = Registry::start();
    let host = registry.host();
    let p = two_crate_workspace();
    p.rel(&["init"]).expect(0);
    commit(p.path(), "rel init");

    let build = p.rel(&["build"]);
    build.expect(0);
    assert_plain("rel build stderr", &build.output.stderr);
    assert_plain("rel build stdout", &build.output.stdout);
    let talk = build.stderr();
    for component in ["api", "gateway", "queue-worker"] {
        assert!(
            talk.contains(&format!("{component}: compiling\n")),
            "{talk}"
        );
        assert!(
            talk.contains(&format!("{component}: image sha256:")),
            "{talk}"
        );
    }

    let registry_arg = format!("{host}/shop");
    let push = p.rel(&[
        "build",
        "--push",
        "--registry",
        &registry_arg,
        "--tag",
        "1.0.0",
    ]);
    push.expect(0);
    assert_plain("rel build --push stderr", &push.output.stderr);
    let talk = push.stderr();
    for component in ["api", "gateway", "queue-worker"] {
        assert!(talk.contains(&format!("{component}: pushing\n")), "{talk}");
        assert!(
            talk.contains(&format!(
                "{component}: pushed {host}/shop/{component}@sha256:"
            )),
            "{talk}"
        );
    }

    let release = p.rel(&["release"]);
    release.expect(0);
    assert_plain("rel release stderr", &release.output.stderr);
    assert_plain("rel release stdout", &release.output.stdout);
    assert!(
        release.stderr().contains("[5/5] render local\n"),
        "{}",
        release.stderr()
    );

    // Warnings stay even with --quiet (a dirty tree is one): commit the release first.
    commit(p.path(), "release");

    // --quiet: nothing on stderr, the same data on stdout; on every command, before or after it.
    for args in [
        vec!["--quiet", "build"],
        vec!["build", "-q"],
        vec!["-q", "init", "--dry-run", "--force"],
        vec!["-q", "render", "overlays/staging"],
    ] {
        let r = p.rel(&args);
        r.expect(0);
        assert_eq!(r.stderr(), "", "rel {args:?} was not quiet");
    }
    let quiet = p.rel(&["-q", "build", "--format", "json"]);
    let loud = p.rel(&["build", "--format", "json"]);
    assert_eq!(quiet.stdout(), loud.stdout());

    // --verbose: debug logs too, still plain lines.
    let verbose = p.rel(&["--verbose", "build"]);
    verbose.expect(0);
    assert_plain("rel --verbose build stderr", &verbose.output.stderr);
    assert!(verbose.stderr().contains("DEBUG"), "{}", verbose.stderr());
    let r = p.rel(&["-q", "-v", "build"]);
    r.expect(2);
    assert!(r.stderr().contains("cannot be used with"), "{}", r.stderr());
}
