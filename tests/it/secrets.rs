//! Genesis envelopes through the `rel` binary: keygen, seal, check, unseal, diff, reseal, the
//! secret stores (file for real, Key Vault's REST shape in-test), and the end-to-end autoload
//! into the identity service.
//!
//! Every run goes through [`Fx::run`], which fails the test if any secret value, the master key
//! or a store credential appears in the captured stdout or stderr (the one exception is the
//! stdout of `unseal --reveal` to a pipe, whose purpose is the values).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::support::{Project, Run, clean_env, rel_command};

const DB_PASSWORD: &str = "db-pass-Zq8v1rT4k2";
const API_TOKEN: &str = "api-tok-Nw3uX9cL0a";
const PEM_LINE: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDx7Kp";
const AZURE_CLIENT_SECRET: &str = "azure-client-secret-Yt6pQ1";
const AZURE_TOKEN: &str = "kv-access-token-Hb5rJ8";

fn source_text() -> String {
    format!(
        "# staging secrets\nDATABASE_PASSWORD={DB_PASSWORD}\nexport API_TOKEN=\"{API_TOKEN}\"\nTLS_KEY=\"-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\"\nFEATURE_FLAG=on\n"
    )
}

/// A temp project, a master key, and the secrets no output may show.
struct Fx {
    project: Project,
    key: String,
    secrets: Vec<String>,
}

#[derive(Default, Clone)]
struct Opts<'a> {
    env: Vec<(&'a str, String)>,
    stdin: Option<Vec<u8>>,
    /// `--reveal` to a pipe: stdout carries values by design; stderr is still checked.
    stdout_may_reveal: bool,
}

impl Fx {
    fn new() -> Fx {
        let project = Project::platform();
        project.write("staging.env.source", &source_text());
        let mut fx = Fx {
            project,
            key: String::new(),
            secrets: Vec::new(),
        };
        fx.run(&["keygen", "-o", "master.key"], Opts::default())
            .expect(0);
        fx.key = fx.project.read("master.key").trim().to_owned();
        fx.secrets = vec![
            DB_PASSWORD.into(),
            API_TOKEN.into(),
            PEM_LINE.into(),
            AZURE_CLIENT_SECRET.into(),
            AZURE_TOKEN.into(),
            fx.key.clone(),
        ];
        fx
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.path().join(rel)
    }

    fn with_key(&self) -> Opts<'static> {
        Opts {
            env: vec![("REL_MASTER_KEY", self.key.clone())],
            ..Opts::default()
        }
    }

    /// Run `rel ARGS` in the project and check its output for leaks.
    fn run(&self, args: &[&str], opts: Opts<'_>) -> Run {
        let mut cmd = rel_command(self.project.path());
        cmd.args(args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(if opts.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run rel");
        if let Some(input) = &opts.stdin {
            // A command that refuses before reading stdin closes it: that is not a test failure.
            match child.stdin.take().unwrap().write_all(input) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => panic!("write rel's stdin: {e}"),
            }
        }
        let output = child.wait_with_output().unwrap();
        let run = Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        };
        let streams: &[(&str, String)] = if opts.stdout_may_reveal {
            &[("stderr", run.stderr())]
        } else {
            &[("stdout", run.stdout()), ("stderr", run.stderr())]
        };
        for (stream, text) in streams {
            for secret in &self.secrets {
                assert!(
                    !secret.is_empty() && !text.contains(secret.as_str()),
                    "rel {args:?} leaked a secret on {stream}:\n{text}"
                );
            }
        }
        run
    }

    fn seal(&self, env: &str, out: &str) {
        self.run(
            &[
                "seal",
                "--env",
                env,
                "--from",
                "staging.env.source",
                "-o",
                out,
            ],
            self.with_key(),
        )
        .expect(0);
    }

    fn keygen(&self, name: &str) -> String {
        self.run(&["keygen", "-o", name], Opts::default()).expect(0);
        self.project.read(name).trim().to_owned()
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn key_id_of(run: &Run) -> String {
    let out = run.stdout();
    let i = out
        .find("key id")
        .unwrap_or_else(|| panic!("no key id in {out}"));
    out[i + 6..].trim_start().chars().take(16).collect()
}

#[test]
fn keygen_writes_a_0600_key_and_never_overwrites() {
    let fx = Fx::new();
    let p = fx.path("master.key");
    assert_eq!(mode(&p), 0o600);
    assert_eq!(STANDARD.decode(&fx.key).unwrap().len(), 32);
    let again = fx.run(&["keygen", "-o", "master.key"], Opts::default());
    again.expect(1);
    assert!(
        again
            .stderr()
            .contains("already exists; rel keygen never replaces a key"),
        "{}",
        again.stderr()
    );
    assert_eq!(
        fx.project.read("master.key").trim(),
        fx.key,
        "the key was changed"
    );
    // A key file others can read still works, with a warning.
    use std::os::unix::fs::PermissionsExt;
    fx.keygen("shared.key");
    std::fs::set_permissions(
        fx.path("shared.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let shared = fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "staging.env.source",
            "--key-file",
            "shared.key",
        ],
        Opts::default(),
    );
    shared.expect(0);
    assert!(
        shared
            .stderr()
            .contains("is readable by other users (mode 644); run `chmod 600 shared.key`"),
        "{}",
        shared.stderr()
    );
    // Two keys differ; a key is never a flag value.
    assert_ne!(fx.keygen("second.key"), fx.key);
    fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "staging.env.source",
            "--key",
            "x",
        ],
        Opts::default(),
    )
    .expect(2);
}

#[test]
fn seal_then_unseal_round_trips_names_and_revealed_values() {
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    assert_eq!(mode(&fx.path("staging.b64")), 0o600);
    let sealed = fx.project.read("staging.b64");
    assert!(
        STANDARD
            .decode(sealed.trim())
            .unwrap()
            .starts_with(b"RGEN\x01")
    );

    let list = fx.run(&["unseal", "staging.b64"], fx.with_key());
    list.expect(0);
    let out = list.stdout();
    for want in [
        "env        staging\n",
        "entries    4\n",
        "  API_TOKEN\n",
        "  DATABASE_PASSWORD\n",
        "  FEATURE_FLAG\n",
        "  TLS_KEY\n",
        "sealed at  20",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // --key-file and --key-stdin give the same key.
    let by_file = fx.run(
        &["unseal", "staging.b64", "--key-file", "master.key"],
        Opts::default(),
    );
    by_file.expect(0);
    assert_eq!(by_file.stdout(), out);
    let by_stdin = fx.run(
        &["unseal", "staging.b64", "--key-stdin"],
        Opts {
            stdin: Some(fx.key.clone().into_bytes()),
            ..Opts::default()
        },
    );
    by_stdin.expect(0);
    assert_eq!(by_stdin.stdout(), out);

    // --reveal to a pipe: a dotenv file that reads back to the source's values.
    let mut opts = fx.with_key();
    opts.stdout_may_reveal = true;
    let revealed = fx.run(&["unseal", "staging.b64", "--reveal"], opts);
    revealed.expect(0);
    let text = revealed.stdout();
    assert!(
        text.contains(&format!("DATABASE_PASSWORD=\"{DB_PASSWORD}\"\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "TLS_KEY=\"-----BEGIN PRIVATE KEY-----\\n{PEM_LINE}\\n-----END PRIVATE KEY-----\"\n"
        )),
        "{text}"
    );
    fx.project.write("revealed.env.source", &text);
    let same = fx.run(
        &[
            "seal",
            "diff",
            "--env",
            "staging",
            "--from",
            "revealed.env.source",
            "staging.b64",
            "--exit-code",
        ],
        fx.with_key(),
    );
    same.expect(0);
    assert!(
        same.stdout()
            .contains("0 added, 0 removed, 0 changed, 4 unchanged"),
        "{}",
        same.stdout()
    );

    // --reveal -o FILE: mode 0600, values in the file, names only on the terminal streams.
    let to_file = fx.run(
        &[
            "unseal",
            "staging.b64",
            "--reveal",
            "-o",
            "out/revealed.env",
        ],
        fx.with_key(),
    );
    to_file.expect(0);
    assert_eq!(mode(&fx.path("out/revealed.env")), 0o600);
    assert_eq!(fx.project.read("out/revealed.env"), text);

    // To standard output without -o: the envelope text, the summary on stderr.
    let piped = fx.run(
        &["seal", "--env", "staging", "--from", "staging.env.source"],
        fx.with_key(),
    );
    piped.expect(0);
    assert!(STANDARD.decode(piped.stdout().trim()).is_ok());
    assert!(
        piped
            .stderr()
            .contains("sealed 4 entries for `staging` under key id"),
        "{}",
        piped.stderr()
    );
    // Fresh nonce per seal.
    assert_ne!(piped.stdout().trim(), sealed.trim());
}

#[test]
fn seal_check_exits_0_when_it_opens_and_1_when_it_does_not() {
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    let ok = fx.run(
        &["seal", "--check", "staging.b64", "--env", "staging"],
        fx.with_key(),
    );
    ok.expect(0);
    assert!(
        ok.stdout()
            .starts_with("ok: staging.b64 opens for `staging` with key id "),
        "{}",
        ok.stdout()
    );
    let wrong_env = fx.run(
        &["seal", "--check", "staging.b64", "--env", "prod"],
        fx.with_key(),
    );
    wrong_env.expect(1);
    assert!(
        wrong_env
            .stderr()
            .contains("sealed for `staging`, expected `prod`"),
        "{}",
        wrong_env.stderr()
    );
    fx.keygen("other.key");
    let wrong_key = fx.run(
        &[
            "seal",
            "--check",
            "staging.b64",
            "--env",
            "staging",
            "--key-file",
            "other.key",
        ],
        Opts::default(),
    );
    wrong_key.expect(1);
    assert!(
        wrong_key.stderr().contains("wrong key"),
        "{}",
        wrong_key.stderr()
    );
    // No key at all: the check cannot run.
    let no_key = fx.run(
        &["seal", "--check", "staging.b64", "--env", "staging"],
        Opts::default(),
    );
    no_key.expect(2);
    assert!(
        no_key.stderr().contains("REL_MASTER_KEY is not set"),
        "{}",
        no_key.stderr()
    );
}

/// Re-encode `text` after changing its decoded bytes.
fn mutate(text: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = STANDARD.decode(text.trim()).unwrap();
    f(&mut bytes);
    STANDARD.encode(bytes)
}

#[test]
fn every_open_failure_is_named_and_exits_2() {
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    let sealed = fx.project.read("staging.b64");
    let own_id = key_id_of(&fx.run(&["unseal", "staging.b64"], fx.with_key()));
    fx.keygen("other.key");
    let other_id = key_id_of(&fx.run(
        &[
            "seal",
            "--env",
            "x",
            "--from",
            "staging.env.source",
            "-o",
            "x.b64",
            "--key-file",
            "other.key",
        ],
        Opts::default(),
    ));
    assert_ne!(own_id, other_id);

    fx.project.write(
        "tampered.b64",
        &mutate(&sealed, |b| {
            let last = b.len() - 1;
            b[last] ^= 1;
        }),
    );
    fx.project.write("v9.b64", &mutate(&sealed, |b| b[4] = 9));
    fx.project.write("bad64.b64", "RGVu!!ZW52ZWxvcGU=\n");
    fx.project
        .write("truncated.b64", &mutate(&sealed, |b| b.truncate(40)));
    fx.project.write("source-by-mistake.b64", &source_text());

    let cases: Vec<(Vec<&str>, Opts, String)> = vec![
        (
            vec!["unseal", "staging.b64", "--key-file", "other.key"],
            Opts::default(),
            format!("sealed for key id {own_id}, given key id {other_id}"),
        ),
        (
            vec!["unseal", "tampered.b64"],
            fx.with_key(),
            "authentication failed".into(),
        ),
        (
            vec!["unseal", "staging.b64", "--env", "prod"],
            fx.with_key(),
            "sealed for `staging`, expected `prod`".into(),
        ),
        (
            vec!["unseal", "v9.b64"],
            fx.with_key(),
            "unknown envelope format version 9".into(),
        ),
        (
            vec!["unseal", "bad64.b64"],
            fx.with_key(),
            "not valid base64".into(),
        ),
        (
            vec!["unseal", "truncated.b64"],
            fx.with_key(),
            "truncated".into(),
        ),
        (
            vec!["unseal", "source-by-mistake.b64"],
            fx.with_key(),
            "not valid base64".into(),
        ),
        (
            vec!["unseal", "missing.b64"],
            fx.with_key(),
            "could not read the envelope".into(),
        ),
        (
            vec!["unseal", "staging.b64"],
            Opts::default(),
            "REL_MASTER_KEY is not set".into(),
        ),
        (
            vec!["unseal", "staging.b64"],
            Opts {
                env: vec![("REL_MASTER_KEY", "c2hvcnQ=".into())],
                ..Opts::default()
            },
            "decodes to 5 bytes, expected 32".into(),
        ),
        (
            vec!["unseal", "staging.b64"],
            Opts {
                env: vec![("REL_MASTER_KEY", format!("{}!", &fx.key[..20]))],
                ..Opts::default()
            },
            "not valid base64".into(),
        ),
        (
            vec!["unseal", "staging.b64", "--key-stdin"],
            Opts {
                stdin: Some(Vec::new()),
                ..Opts::default()
            },
            "the master key is empty".into(),
        ),
        (
            vec![
                "seal",
                "diff",
                "--env",
                "staging",
                "--from",
                "staging.env.source",
                "tampered.b64",
            ],
            fx.with_key(),
            "authentication failed".into(),
        ),
    ];
    for (args, opts, want) in cases {
        let run = fx.run(&args, opts);
        run.expect(2);
        assert!(
            run.stderr().contains(&want),
            "rel {args:?}: want {want:?} in\n{}",
            run.stderr()
        );
        assert!(
            run.stderr().contains("help:"),
            "rel {args:?}: no help in\n{}",
            run.stderr()
        );
    }
}

#[test]
fn bad_sources_name_the_line_never_the_value_and_leave_no_file() {
    let fx = Fx::new();
    fx.project
        .write("bad.env.source", &format!("GOOD=1\nBROKEN {DB_PASSWORD}\n"));
    let run = fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "bad.env.source",
            "-o",
            "bad.b64",
        ],
        fx.with_key(),
    );
    run.expect(2);
    assert!(
        run.stderr()
            .contains("bad.env.source:2: expected `KEY=VALUE`"),
        "{}",
        run.stderr()
    );
    assert!(!fx.path("bad.b64").exists());
    fx.project.write(
        "dup.env.source",
        &format!("A={API_TOKEN}\nA={DB_PASSWORD}\n"),
    );
    let dup = fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "dup.env.source",
            "-o",
            "dup.b64",
        ],
        fx.with_key(),
    );
    dup.expect(2);
    assert!(
        dup.stderr().contains("`A` is set twice (first on line 1)"),
        "{}",
        dup.stderr()
    );
    // No key: nothing written either.
    fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "staging.env.source",
            "-o",
            "nokey.b64",
        ],
        Opts::default(),
    )
    .expect(2);
    assert!(!fx.path("nokey.b64").exists());
    // The envelope never replaces its own source.
    let onto_source = fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "staging.env.source",
            "-o",
            "staging.env.source",
        ],
        fx.with_key(),
    );
    onto_source.expect(2);
    assert_eq!(fx.project.read("staging.env.source"), source_text());
    // Bad environment names are usage errors.
    fx.run(
        &["seal", "--env", "bad env", "--from", "staging.env.source"],
        fx.with_key(),
    )
    .expect(2);
}

#[test]
fn reveal_to_a_terminal_is_refused_unless_forced() {
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs `script` (Debian package util-linux) to give rel a terminal"
    );
    let in_terminal = |extra: &str| {
        // script(1) runs the command on a pseudo-terminal and copies what it shows to our pipe.
        let cmd = format!(
            "'{}' unseal staging.b64 --reveal {extra}; echo \"exit=$?\"",
            env!("CARGO_BIN_EXE_rel")
        );
        let out = clean_env(&mut Command::new("script"))
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(fx.project.path())
            .env("REL_MASTER_KEY", &fx.key)
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = in_terminal("");
    assert!(
        refused.contains("refusing to print secret values to a terminal"),
        "{refused}"
    );
    assert!(refused.contains("exit=1"), "{refused}");
    for s in &fx.secrets {
        assert!(
            !refused.contains(s.as_str()),
            "a value reached the terminal:\n{refused}"
        );
    }
    let forced = in_terminal("--force");
    assert!(forced.contains("exit=0"), "{forced}");
    assert!(
        forced.contains(DB_PASSWORD),
        "--force prints the values:\n{forced}"
    );
    // -o FILE is allowed from a terminal, and the terminal sees names only.
    let to_file = in_terminal("-o revealed.env");
    assert!(
        to_file.contains("exit=0") && !to_file.contains(DB_PASSWORD),
        "{to_file}"
    );
    assert!(fx.project.read("revealed.env").contains(DB_PASSWORD));
}

#[test]
fn seal_diff_shows_changes_as_fingerprints_never_values() {
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    let new_password = "db-pass-NEW-77hh21";
    let mut secrets = fx.secrets.clone();
    secrets.push(new_password.into());
    let fx = Fx { secrets, ..fx };
    fx.project.write(
        "next.env.source",
        &format!("DATABASE_PASSWORD={new_password}\nAPI_TOKEN={API_TOKEN}\nTLS_KEY=\"-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\"\nNEW_SETTING=abc\n"),
    );
    let diff = fx.run(
        &[
            "seal",
            "diff",
            "--env",
            "staging",
            "--from",
            "next.env.source",
            "staging.b64",
        ],
        fx.with_key(),
    );
    diff.expect(0);
    let out = diff.stdout();
    assert!(out.contains("+ NEW_SETTING        added\n"), "{out}");
    assert!(out.contains("- FEATURE_FLAG       removed\n"), "{out}");
    let changed = out
        .lines()
        .find(|l| l.starts_with("~ DATABASE_PASSWORD"))
        .unwrap_or_else(|| panic!("{out}"));
    let fps: Vec<&str> = changed
        .split_whitespace()
        .filter(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(fps.len(), 2, "{changed}");
    assert_ne!(fps[0], fps[1]);
    assert!(
        out.contains("1 added, 1 removed, 1 changed, 2 unchanged"),
        "{out}"
    );
    // Fingerprints are stable across runs (keyed, not salted).
    let again = fx.run(
        &[
            "seal",
            "diff",
            "--env",
            "staging",
            "--from",
            "next.env.source",
            "staging.b64",
        ],
        fx.with_key(),
    );
    assert_eq!(again.stdout(), out);
    fx.run(
        &[
            "seal",
            "diff",
            "--env",
            "staging",
            "--from",
            "next.env.source",
            "staging.b64",
            "--exit-code",
        ],
        fx.with_key(),
    )
    .expect(1);
    fx.run(
        &[
            "seal",
            "diff",
            "--env",
            "prod",
            "--from",
            "next.env.source",
            "staging.b64",
        ],
        fx.with_key(),
    )
    .expect(2);
}

#[test]
fn reseal_rotates_many_skips_rotated_and_writes_nothing_on_failure() {
    let fx = Fx::new();
    fx.seal("staging", "envs/staging.b64");
    fx.seal("prod", "envs/prod.b64");
    fx.seal("dev", "envs/dev.b64");
    let new_key = fx.keygen("new.key");
    let mut secrets = fx.secrets.clone();
    secrets.push(new_key.clone());
    let fx = Fx { secrets, ..fx };
    let files = ["envs/staging.b64", "envs/prod.b64", "envs/dev.b64"];
    let before: Vec<String> = files.iter().map(|f| fx.project.read(f)).collect();

    // A dry run reports and writes nothing.
    let dry = fx.run(
        &[
            "reseal",
            "--new-key",
            "new.key",
            "--dry-run",
            files[0],
            files[1],
            files[2],
        ],
        fx.with_key(),
    );
    dry.expect(0);
    assert_eq!(
        dry.stdout().matches("would rotate  ").count(),
        3,
        "{}",
        dry.stdout()
    );
    assert!(dry.stdout().contains("dry run, nothing written"));
    assert_eq!(
        files.iter().map(|f| fx.project.read(f)).collect::<Vec<_>>(),
        before
    );

    // One bad envelope among them: every file is reported, none is written.
    fx.project
        .write("envs/broken.b64", &mutate(&before[0], |b| b[60] ^= 0xff));
    let failed = fx.run(
        &[
            "reseal",
            "--new-key",
            "new.key",
            files[0],
            "envs/broken.b64",
            files[1],
        ],
        fx.with_key(),
    );
    failed.expect(2);
    assert!(
        failed.stdout().contains(
            "failed        envs/broken.b64  cannot open envs/broken.b64: authentication failed"
        ),
        "{}",
        failed.stdout()
    );
    assert!(
        failed
            .stderr()
            .contains("1 of 3 envelopes cannot be re-sealed; nothing was written"),
        "{}",
        failed.stderr()
    );
    assert_eq!(
        files.iter().map(|f| fx.project.read(f)).collect::<Vec<_>>(),
        before
    );

    // Rotate two, then all three: the two already done are skipped.
    fx.run(
        &["reseal", "--new-key", "new.key", files[0], files[1]],
        fx.with_key(),
    )
    .expect(0);
    let all = fx.run(
        &[
            "reseal",
            "--new-key",
            "new.key",
            files[0],
            files[1],
            files[2],
        ],
        fx.with_key(),
    );
    all.expect(0);
    let out = all.stdout();
    assert_eq!(out.matches("skipped       envs/").count(), 2, "{out}");
    assert!(
        out.contains("rotated       envs/dev.b64  env `dev`, 4 entries, key id "),
        "{out}"
    );
    assert!(out.contains("rotated 1, skipped 2"), "{out}");

    // The new key opens all three with the same values and environments; the old key no longer does.
    let new = Opts {
        env: vec![("REL_MASTER_KEY", new_key.clone())],
        ..Opts::default()
    };
    for (file, env) in files.iter().zip(["staging", "prod", "dev"]) {
        fx.run(&["seal", "--check", file, "--env", env], new.clone())
            .expect(0);
        fx.run(&["seal", "--check", file, "--env", env], fx.with_key())
            .expect(1);
        fx.run(
            &[
                "seal",
                "diff",
                "--env",
                env,
                "--from",
                "staging.env.source",
                file,
                "--exit-code",
            ],
            new.clone(),
        )
        .expect(0);
        assert_eq!(mode(&fx.path(file)), 0o600);
    }
    // The same key twice is a usage error.
    fx.run(
        &["reseal", "--new-key", "master.key", files[0]],
        fx.with_key(),
    )
    .expect(2);
}

#[test]
fn file_store_push_pull_and_versions() {
    let fx = Fx::new();
    fx.seal("staging", ".rel/genesis/staging.b64");
    let first = fx.project.read(".rel/genesis/staging.b64");
    // Default envelope path and store from rel.toml's defaults.
    let push = fx.run(&["secrets", "push", "--env", "staging"], fx.with_key());
    push.expect(0);
    assert!(
        push.stdout()
            .contains("as rel-genesis-b64 version 00000000000000000001"),
        "{}",
        push.stdout()
    );
    let stored = fx.path(".rel/secrets/staging/rel-genesis-b64/00000000000000000001");
    assert_eq!(mode(&stored), 0o600);
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), first.trim());

    // A second version, from standard input this time; no key given: pushed without the env check.
    fx.seal("staging", "second.b64");
    let second = fx.project.read("second.b64");
    let piped = fx.run(
        &["secrets", "push", "--env", "staging", "--envelope", "-"],
        Opts {
            stdin: Some(second.clone().into_bytes()),
            ..Opts::default()
        },
    );
    piped.expect(0);
    assert!(
        piped
            .stderr()
            .contains("was not checked to open for `staging`"),
        "{}",
        piped.stderr()
    );

    let versions = fx.run(
        &["secrets", "versions", "--env", "staging"],
        Opts::default(),
    );
    versions.expect(0);
    let listing = versions.stdout();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{}", versions.stdout());
    assert!(
        lines[1].starts_with("00000000000000000001  20")
            && lines[2].starts_with("00000000000000000002  20"),
        "{lines:?}"
    );

    let latest = fx.run(&["secrets", "pull", "--env", "staging"], Opts::default());
    latest.expect(0);
    assert_eq!(latest.stdout(), second);
    fx.run(
        &[
            "secrets",
            "pull",
            "--env",
            "staging",
            "--version",
            "00000000000000000001",
            "-o",
            "pulled.b64",
        ],
        Opts::default(),
    )
    .expect(0);
    assert_eq!(fx.project.read("pulled.b64"), first);
    fx.run(
        &["seal", "--check", "pulled.b64", "--env", "staging"],
        fx.with_key(),
    )
    .expect(0);

    // Refusals: plaintext, the wrong environment's envelope, unknown env, unknown version.
    let plain = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--envelope",
            "staging.env.source",
        ],
        Opts::default(),
    );
    plain.expect(2);
    assert!(
        plain.stderr().contains("is not a sealed envelope"),
        "{}",
        plain.stderr()
    );
    let wrong_env = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "prod",
            "--envelope",
            "second.b64",
        ],
        fx.with_key(),
    );
    wrong_env.expect(2);
    assert!(
        wrong_env
            .stderr()
            .contains("sealed for `staging`, expected `prod`"),
        "{}",
        wrong_env.stderr()
    );
    assert!(!fx.path(".rel/secrets/prod/rel-genesis-b64").exists());
    let unknown = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "prd",
            "--envelope",
            "second.b64",
        ],
        Opts::default(),
    );
    unknown.expect(2);
    assert!(
        unknown.stderr().contains("unknown environment `prd`"),
        "{}",
        unknown.stderr()
    );
    let missing = fx.run(
        &[
            "secrets",
            "pull",
            "--env",
            "staging",
            "--version",
            "00000000000000000009",
        ],
        Opts::default(),
    );
    missing.expect(2);
    assert!(
        missing.stderr().contains("not found"),
        "{}",
        missing.stderr()
    );
    fx.run(&["secrets", "versions", "--env", "prod"], Opts::default())
        .expect(2);
    // Still two versions: nothing was stored by a refused push.
    assert_eq!(
        std::fs::read_dir(fx.path(".rel/secrets/staging/rel-genesis-b64"))
            .unwrap()
            .count(),
        2
    );

    // The master key, for the External Secrets template: stored as rel-master-key, shown by id only.
    let pushed_key = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--master-key",
            "--key-file",
            "master.key",
        ],
        Opts::default(),
    );
    pushed_key.expect(0);
    assert!(
        pushed_key.stdout().contains("pushed master key id ")
            && pushed_key
                .stdout()
                .contains("as rel-master-key version 00000000000000000001"),
        "{}",
        pushed_key.stdout()
    );
    let key_file = fx.path(".rel/secrets/staging/rel-master-key/00000000000000000001");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), fx.key);
    assert_eq!(mode(&key_file), 0o600);
    let key_versions = fx.run(
        &["secrets", "versions", "--env", "staging", "--master-key"],
        Opts::default(),
    );
    key_versions.expect(0);
    assert_eq!(
        key_versions.stdout().lines().count(),
        2,
        "{}",
        key_versions.stdout()
    );
    fx.run(
        &["secrets", "push", "--env", "staging", "--master-key"],
        Opts::default(),
    )
    .expect(2);
    // Standard input feeds one thing only.
    let two = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--envelope",
            "-",
            "--key-stdin",
        ],
        Opts {
            stdin: Some(second.clone().into_bytes()),
            ..Opts::default()
        },
    );
    two.expect(2);
    assert!(
        two.stderr()
            .contains("both the envelope and the master key would be read from standard input"),
        "{}",
        two.stderr()
    );

    // rel.toml's [secrets] moves the store.
    let config = format!(
        "{}\n[secrets]\ndir = \"vault-files\"\n",
        fx.project.read("rel.toml")
    );
    fx.project.write("rel.toml", &config);
    fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "prod",
            "--envelope",
            "second.b64",
            "--store",
            "file",
        ],
        Opts::default(),
    )
    .expect(0);
    assert!(
        fx.path("vault-files/prod/rel-genesis-b64/00000000000000000001")
            .is_file()
    );
}

/// A minimal Key Vault: the 401 challenge, a client-secret token endpoint, PUT, GET, versions.
struct Vault {
    url: String,
    /// (name, version, value), oldest first.
    secrets: Arc<Mutex<Vec<(String, String, String)>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
}

impl Vault {
    fn start() -> Vault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let secrets: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, r, base) = (secrets.clone(), requests.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                r.lock()
                    .unwrap()
                    .push(format!("{} {}", req.method, req.path));
                Vault::handle(&base, &s, &mut stream, req);
            }
        });
        Vault {
            url,
            secrets,
            requests,
        }
    }

    fn handle(
        base: &str,
        secrets: &Mutex<Vec<(String, String, String)>>,
        stream: &mut TcpStream,
        req: Request,
    ) {
        let path = req.path.split('?').next().unwrap_or("").to_owned();
        if req.method == "POST" && path == "/tenant-1/oauth2/v2.0/token" {
            let form = String::from_utf8_lossy(&req.body).into_owned();
            let ok = form.contains(&format!("client_secret={AZURE_CLIENT_SECRET}"))
                && form.contains("client_id=client-1");
            if ok {
                respond(
                    stream,
                    "200 OK",
                    "",
                    &format!(
                        r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{AZURE_TOKEN}"}}"#
                    ),
                );
            } else {
                respond(
                    stream,
                    "401 Unauthorized",
                    "",
                    r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
                );
            }
            return;
        }
        let authorized = req
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && *v == format!("Bearer {AZURE_TOKEN}"));
        if !authorized {
            let challenge = format!(
                "WWW-Authenticate: Bearer authorization=\"{base}/tenant-1\", resource=\"{base}\"\r\n"
            );
            respond(
                stream,
                "401 Unauthorized",
                &challenge,
                r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
            );
            return;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let bundle = |name: &str, version: &str, value: Option<&str>| {
            let mut v = serde_json::json!({"id": format!("{base}/secrets/{name}/{version}"), "attributes": {"enabled": true, "created": 1_790_000_000}});
            if let Some(value) = value {
                v["value"] = value.into();
            }
            v
        };
        let mut store = secrets.lock().unwrap();
        match (req.method.as_str(), segments.as_slice()) {
            ("PUT", ["secrets", name]) => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                let value = body["value"].as_str().unwrap().to_owned();
                let version = format!("{:032x}", 0xa000 + store.len());
                store.push((name.to_string(), version.clone(), value.clone()));
                respond(
                    stream,
                    "200 OK",
                    "",
                    &bundle(name, &version, Some(&value)).to_string(),
                );
            }
            ("GET", ["secrets", name, "versions"]) => {
                let items: Vec<_> = store
                    .iter()
                    .rev()
                    .filter(|(n, _, _)| n == name)
                    .map(|(_, v, _)| bundle(name, v, None))
                    .collect();
                respond(
                    stream,
                    "200 OK",
                    "",
                    &serde_json::json!({"value": items, "nextLink": null}).to_string(),
                );
            }
            ("GET", ["secrets", name]) => match store.iter().rev().find(|(n, _, _)| n == name) {
                Some((_, v, value)) => respond(
                    stream,
                    "200 OK",
                    "",
                    &bundle(name, v, Some(value)).to_string(),
                ),
                None => respond(
                    stream,
                    "404 Not Found",
                    "",
                    r#"{"error":{"code":"SecretNotFound","message":"not found"}}"#,
                ),
            },
            ("GET", ["secrets", name, version]) => {
                match store.iter().find(|(n, v, _)| n == name && v == version) {
                    Some((_, v, value)) => respond(
                        stream,
                        "200 OK",
                        "",
                        &bundle(name, v, Some(value)).to_string(),
                    ),
                    None => respond(
                        stream,
                        "404 Not Found",
                        "",
                        r#"{"error":{"code":"SecretNotFound","message":"not found"}}"#,
                    ),
                }
            }
            _ => respond(
                stream,
                "400 Bad Request",
                "",
                r#"{"error":{"code":"BadRequest","message":"?"}}"#,
            ),
        }
    }
}

#[test]
fn azure_push_pull_and_versions_through_the_key_vault_rest_shape() {
    let fx = Fx::new();
    let vault = Vault::start();
    fx.seal("staging", "staging.b64");
    let sealed = fx.project.read("staging.b64");
    let azure = |secret: &str| Opts {
        env: vec![
            ("AZURE_TENANT_ID", "tenant-1".into()),
            ("AZURE_CLIENT_ID", "client-1".into()),
            ("AZURE_CLIENT_SECRET", secret.into()),
            ("AZURE_AUTHORITY_HOST", vault.url.clone()),
        ],
        ..Opts::default()
    };
    let push = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--store",
            "azure",
            "--vault",
            &vault.url,
            "--envelope",
            "staging.b64",
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    push.expect(0);
    assert!(
        push.stdout().contains(&format!(
            "to Key Vault {} as rel-genesis-b64 version 0000000000000000000000000000a000",
            vault.url
        )),
        "{}",
        push.stdout()
    );
    assert_eq!(
        vault.secrets.lock().unwrap()[0].2,
        sealed.trim(),
        "the vault holds the sealed envelope, as is"
    );
    let requests = vault.requests.lock().unwrap().clone();
    assert!(
        requests[0].starts_with("PUT /secrets/rel-genesis-b64?api-version=2025-07-01"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /tenant-1/oauth2/v2.0/token")),
        "{requests:?}"
    );

    // The vault comes from rel.toml's [secrets.vaults] when --vault is not given... but only
    // https:// there, so the test server is given with --vault.
    fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--store",
            "azure",
            "--vault",
            &vault.url,
            "--envelope",
            "staging.b64",
        ],
        azure(AZURE_CLIENT_SECRET),
    )
    .expect(0);
    let versions = fx.run(
        &[
            "secrets", "versions", "--env", "staging", "--store", "azure", "--vault", &vault.url,
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    versions.expect(0);
    assert!(
        versions
            .stdout()
            .contains("0000000000000000000000000000a000  2026-09-21T"),
        "{}",
        versions.stdout()
    );
    assert!(
        versions
            .stdout()
            .contains("0000000000000000000000000000a001"),
        "{}",
        versions.stdout()
    );
    let pull = fx.run(
        &[
            "secrets",
            "pull",
            "--env",
            "staging",
            "--store",
            "azure",
            "--vault",
            &vault.url,
            "--version",
            "0000000000000000000000000000a000",
            "-o",
            "from-kv.b64",
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    pull.expect(0);
    assert_eq!(fx.project.read("from-kv.b64"), sealed);

    // The master key goes to the same vault under its own name; the envelope stays the latest
    // `rel-genesis-b64`.
    let mut with_key = azure(AZURE_CLIENT_SECRET);
    with_key.env.push(("REL_MASTER_KEY", fx.key.clone()));
    fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "staging",
            "--store",
            "azure",
            "--vault",
            &vault.url,
            "--master-key",
        ],
        with_key,
    )
    .expect(0);
    assert!(
        vault
            .secrets
            .lock()
            .unwrap()
            .iter()
            .any(|(n, _, v)| n == "rel-master-key" && *v == fx.key)
    );
    let latest = fx.run(
        &[
            "secrets", "pull", "--env", "staging", "--store", "azure", "--vault", &vault.url,
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    latest.expect(0);
    assert_eq!(latest.stdout(), sealed);

    // A wrong client secret is a clear token error that shows no secret.
    let denied = fx.run(
        &[
            "secrets", "pull", "--env", "staging", "--store", "azure", "--vault", &vault.url,
        ],
        azure("wrong-secret-x"),
    );
    denied.expect(2);
    assert!(
        denied
            .stderr()
            .contains("token request failed with HTTP 401 invalid_client"),
        "{}",
        denied.stderr()
    );
    assert!(!denied.stderr().contains("wrong-secret-x"));
    // No vault configured for the environment.
    let no_vault = fx.run(
        &[
            "secrets",
            "push",
            "--env",
            "prod",
            "--store",
            "azure",
            "--envelope",
            "staging.b64",
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    no_vault.expect(2);
    assert!(
        no_vault
            .stderr()
            .contains("no Key Vault for environment `prod`"),
        "{}",
        no_vault.stderr()
    );
    // Plain http to anything but loopback is refused before any request.
    let insecure = fx.run(
        &[
            "secrets",
            "versions",
            "--env",
            "staging",
            "--store",
            "azure",
            "--vault",
            "http://kv.example.net",
        ],
        azure(AZURE_CLIENT_SECRET),
    );
    insecure.expect(2);
    assert!(
        insecure.stderr().contains("must be reached over https"),
        "{}",
        insecure.stderr()
    );
}

#[test]
fn no_command_prints_a_secret_even_with_trace_logging() {
    // Every command, on its success and its failure paths, with the most verbose logs: Fx::run
    // checks each one's stdout and stderr for the values, the master key and store credentials.
    let fx = Fx::new();
    let vault = Vault::start();
    fx.keygen("new.key");
    let trace = |mut o: Opts<'static>| {
        o.env.push(("RUST_LOG", "trace".into()));
        o
    };
    let key = trace(fx.with_key());
    let none = trace(Opts::default());
    let azure = trace(Opts {
        env: vec![
            ("REL_MASTER_KEY", fx.key.clone()),
            ("AZURE_TENANT_ID", "tenant-1".into()),
            ("AZURE_CLIENT_ID", "client-1".into()),
            ("AZURE_CLIENT_SECRET", AZURE_CLIENT_SECRET.into()),
            ("AZURE_AUTHORITY_HOST", vault.url.clone()),
        ],
        ..Opts::default()
    });
    let url = vault.url.as_str();
    let mut reveal = key.clone();
    reveal.stdout_may_reveal = true;
    let runs: Vec<(Vec<&str>, Opts)> = vec![
        (
            vec![
                "seal",
                "--env",
                "staging",
                "--from",
                "staging.env.source",
                "-o",
                "s.b64",
            ],
            key.clone(),
        ),
        (
            vec!["seal", "--env", "staging", "--from", "staging.env.source"],
            key.clone(),
        ),
        (
            vec![
                "seal",
                "--env",
                "staging",
                "--from",
                "staging.env.source",
                "--key-stdin",
            ],
            Opts {
                stdin: Some(fx.key.clone().into_bytes()),
                ..none.clone()
            },
        ),
        (
            vec!["seal", "--check", "s.b64", "--env", "staging"],
            key.clone(),
        ),
        (
            vec!["seal", "--check", "s.b64", "--env", "prod"],
            key.clone(),
        ),
        (
            vec![
                "seal",
                "--check",
                "s.b64",
                "--env",
                "staging",
                "--key-file",
                "new.key",
            ],
            none.clone(),
        ),
        (
            vec![
                "seal",
                "diff",
                "--env",
                "staging",
                "--from",
                "staging.env.source",
                "s.b64",
            ],
            key.clone(),
        ),
        (vec!["unseal", "s.b64"], key.clone()),
        (
            vec!["unseal", "s.b64", "--reveal", "-o", "r.env"],
            key.clone(),
        ),
        (vec!["unseal", "s.b64", "--reveal"], reveal),
        (
            vec!["unseal", "s.b64", "--key-file", "new.key"],
            none.clone(),
        ),
        (vec!["unseal", "staging.env.source"], key.clone()),
        (
            vec!["unseal", "s.b64"],
            trace(Opts {
                env: vec![("REL_MASTER_KEY", format!("{}x", fx.key))],
                ..Opts::default()
            }),
        ),
        (
            vec![
                "seal",
                "--env",
                "staging",
                "--from",
                "r.env",
                "--key-file",
                "r.env",
            ],
            none.clone(),
        ),
        (
            vec!["secrets", "push", "--env", "staging", "--envelope", "s.b64"],
            key.clone(),
        ),
        (
            vec![
                "secrets",
                "push",
                "--env",
                "staging",
                "--envelope",
                "staging.env.source",
            ],
            key.clone(),
        ),
        (vec!["secrets", "pull", "--env", "staging"], none.clone()),
        (
            vec!["secrets", "versions", "--env", "staging"],
            none.clone(),
        ),
        (
            vec![
                "secrets",
                "push",
                "--env",
                "staging",
                "--store",
                "azure",
                "--vault",
                url,
                "--envelope",
                "s.b64",
            ],
            azure.clone(),
        ),
        (
            vec![
                "secrets", "pull", "--env", "staging", "--store", "azure", "--vault", url,
            ],
            azure.clone(),
        ),
        (
            vec![
                "secrets", "versions", "--env", "staging", "--store", "azure", "--vault", url,
            ],
            azure.clone(),
        ),
        (
            vec!["secrets", "push", "--env", "staging", "--master-key"],
            key.clone(),
        ),
        (
            vec![
                "secrets",
                "push",
                "--env",
                "staging",
                "--store",
                "azure",
                "--vault",
                url,
                "--master-key",
            ],
            azure.clone(),
        ),
        (
            vec!["unseal", "-", "--key-stdin"],
            Opts {
                stdin: Some(fx.key.clone().into_bytes()),
                ..none.clone()
            },
        ),
        (
            vec!["reseal", "--new-key", "new.key", "--dry-run", "s.b64"],
            key.clone(),
        ),
        (
            vec![
                "reseal",
                "--new-key",
                "new.key",
                "s.b64",
                "staging.env.source",
            ],
            key.clone(),
        ),
        (vec!["reseal", "--new-key", "new.key", "s.b64"], key.clone()),
    ];
    let mut codes = Vec::new();
    for (args, opts) in runs {
        codes.push(fx.run(&args, opts).code());
    }
    assert_eq!(
        codes,
        [
            0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0
        ]
    );
    // The revealed file is the one place values may be.
    assert!(fx.project.read("r.env").contains(DB_PASSWORD));
}

#[test]
fn the_leak_guard_catches_a_value_on_stdout() {
    // The guard behind every run above must be able to fail: `--reveal` to a pipe prints values,
    // and without `stdout_may_reveal` the guard must reject that output.
    let fx = Fx::new();
    fx.seal("staging", "staging.b64");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fx.run(&["unseal", "staging.b64", "--reveal"], fx.with_key());
    }));
    let message = caught.expect_err("the guard let a revealed value through");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("leaked a secret on stdout"), "{text}");
}

// --- The issue's "Done when": keygen, seal, push, start identity from the envelope, get a token.

/// The identity binary: `REL_SERVICES_BIN_DIR` when set, else built into this test's target dir.
fn identity_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("REL_SERVICES_BIN_DIR") {
        return PathBuf::from(dir).join("identity");
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps")
                .to_owned();
            let target_dir = profile_dir.parent().unwrap().to_owned();
            let profile = profile_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "identity",
                "--bin",
                "identity",
                "--target-dir",
            ])
            .arg(&target_dir);
            if profile != "debug" {
                cmd.args(["--profile", &profile]);
            }
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p identity failed");
            profile_dir.join("identity")
        })
        .clone()
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(addr: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// The identity service on port 0 (its address read from its log).
struct Identity {
    service: test_support::Service,
    addr: String,
}

impl Identity {
    fn start(dir: &Path, name: &str, envs: &[(&str, String)]) -> Result<Identity, String> {
        let log = dir.join(format!("{name}.log"));
        let service = test_support::Service::try_spawn(&identity_bin(), &log, envs)?;
        let addr = service.addr();
        Ok(Identity { service, addr })
    }

    fn log(&self) -> String {
        self.service.log_text()
    }
}

/// The Ed25519 public key of the seed, as the JWKS `x` (base64url, no padding).
fn public_x(seed_b64: &str) -> String {
    let seed: [u8; 32] = STANDARD.decode(seed_b64).unwrap().try_into().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes())
}

#[test]
fn identity_signs_with_the_key_from_the_envelope_pushed_to_the_file_store() {
    // The newcomer's path: keygen, write a source, seal, push, pull, start identity with only the
    // envelope, the master key and the environment (plus non-secret config), get a token.
    let seed_b64 = STANDARD.encode([0x5au8; 32].map(|b| b ^ 0x13));
    let client_secret = "e2e-client-secret-Kp4s";
    let fx = Fx::new();
    let mut secrets = fx.secrets.clone();
    secrets.extend([seed_b64.clone(), client_secret.to_owned()]);
    let fx = Fx { secrets, ..fx };
    fx.project.write(
        "platform.env.source",
        &format!("IDENTITY_SIGNING_KEY_B64={seed_b64}\nIDENTITY_CLIENTS=smoke:service_account:{client_secret}\nIDENTITY_ISSUER=rel-identity\n"),
    );
    fx.run(
        &[
            "seal",
            "--env",
            "staging",
            "--from",
            "platform.env.source",
            "-o",
            ".rel/genesis/staging.b64",
        ],
        fx.with_key(),
    )
    .expect(0);
    fx.run(&["secrets", "push", "--env", "staging"], fx.with_key())
        .expect(0);
    let pulled = fx.run(&["secrets", "pull", "--env", "staging"], Opts::default());
    pulled.expect(0);
    let genesis_b64 = pulled.stdout().trim().to_owned();

    let dir = fx.project.path();
    let db = format!("sqlite://{}", dir.join("platform.db").display());
    let migrate = Command::new(identity_bin())
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "identity migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let base = vec![
        ("REL_GENESIS_B64", genesis_b64.clone()),
        ("REL_MASTER_KEY", fx.key.clone()),
        ("REL_ENV", "staging".to_owned()),
        ("DATABASE_URL", db.clone()),
    ];
    let identity = Identity::start(dir, "identity", &base).unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = http(
        &identity.addr,
        "POST",
        "/token",
        "application/x-www-form-urlencoded",
        &format!("grant_type=client_credentials&client_id=smoke&client_secret={client_secret}"),
    );
    assert_eq!(status, 200, "{body}\n{}", identity.log());
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let jwt = token["access_token"].as_str().unwrap().to_owned();

    // The JWKS key is the public half of the sealed seed ...
    let (status, jwks) = http(
        &identity.addr,
        "GET",
        "/.well-known/jwks.json",
        "application/json",
        "",
    );
    assert_eq!(status, 200);
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(
        jwks["keys"][0]["x"].as_str().unwrap(),
        public_x(&seed_b64),
        "{jwks}"
    );
    // ... and the token's signature verifies under it.
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    let seed: [u8; 32] = STANDARD.decode(&seed_b64).unwrap().try_into().unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    public
        .verify_strict(signed.as_bytes(), &sig)
        .expect("the token is signed by the key from the envelope");
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signed.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "smoke");

    // The log names what autoload set, never the values.
    let log = identity.log();
    assert!(
        log.contains("genesis autoload: set 3 entries, skipped 0"),
        "{log}"
    );
    assert!(
        log.contains("IDENTITY_SIGNING_KEY_B64") && log.contains("IDENTITY_CLIENTS"),
        "{log}"
    );
    for s in &fx.secrets {
        assert!(
            !log.contains(s.as_str()),
            "identity logged a secret:\n{log}"
        );
    }
    drop(identity);

    // An explicit variable wins over the envelope: another seed, another JWKS key.
    let explicit = STANDARD.encode([7u8; 32]);
    let mut env = base.clone();
    env.push(("IDENTITY_SIGNING_KEY_B64", explicit.clone()));
    let overridden =
        Identity::start(dir, "identity-explicit", &env).unwrap_or_else(|e| panic!("{e}"));
    let (_, jwks) = http(
        &overridden.addr,
        "GET",
        "/.well-known/jwks.json",
        "application/json",
        "",
    );
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"][0]["x"].as_str().unwrap(), public_x(&explicit));
    let log = overridden.log();
    assert!(
        log.contains("set 2 entries, skipped 1")
            && log.contains("skipped=[\"IDENTITY_SIGNING_KEY_B64\"]"),
        "{log}"
    );
    assert!(!log.contains(&explicit) && !log.contains(&seed_b64));
    drop(overridden);

    // The envelope for another environment, or the wrong key: identity refuses to start (exit 2).
    let mut wrong_env = base.clone();
    wrong_env[2].1 = "prod".into();
    let err = Identity::start(dir, "identity-wrong-env", &wrong_env)
        .err()
        .expect("identity must not start");
    assert!(
        err.contains("exit status: 2") && err.contains("sealed for `staging`, expected `prod`"),
        "{err}"
    );
    let other_key = fx.keygen("other.key");
    let mut wrong_key = base.clone();
    wrong_key[1].1 = other_key.clone();
    let err = Identity::start(dir, "identity-wrong-key", &wrong_key)
        .err()
        .expect("identity must not start");
    assert!(
        err.contains("exit status: 2") && err.contains("wrong key"),
        "{err}"
    );
    assert!(!err.contains(&other_key) && !err.contains(&fx.key));
}
