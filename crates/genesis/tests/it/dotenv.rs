use genesis::{DotenvErrorKind, ExposeSecret, parse_dotenv};

use crate::{SECRET_A, SECRET_B, assert_no_secret_debug, assert_no_secret_display};

fn value(e: &genesis::Entries, name: &str) -> String {
    e.get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .expose_secret()
        .to_owned()
}

#[test]
fn dotenv_reads_comments_export_quotes_and_escapes() {
    let src = format!(
        "\u{feff}# header comment\n\
         \n\
         export DATABASE_URL={SECRET_A}   # trailing comment\n\
         PLAIN = spaced value here \n\
         HASH_IN_VALUE=a#b\n\
         SINGLE='{SECRET_B} # not a comment \\n'\n\
         DOUBLE=\"tab\\there \\\"q\\\" \\\\ \\$HOME \\x\"  # comment\n\
         MULTI=\"line one\n\
         line two\"\n\
         EMPTY=\n\
         EMPTY_QUOTED=\"\"\n\
         \texport\tTABBED=1\n\
         CRLF=yes\r\n\
         INTERP=${{OTHER}}\n"
    );
    let e = parse_dotenv(&src).unwrap();
    assert_eq!(value(&e, "DATABASE_URL"), SECRET_A);
    assert_eq!(value(&e, "PLAIN"), "spaced value here");
    assert_eq!(value(&e, "HASH_IN_VALUE"), "a#b");
    assert_eq!(
        value(&e, "SINGLE"),
        format!("{SECRET_B} # not a comment \\n")
    );
    assert_eq!(value(&e, "DOUBLE"), "tab\there \"q\" \\ $HOME \\x");
    assert_eq!(value(&e, "MULTI"), "line one\nline two");
    assert_eq!(value(&e, "EMPTY"), "");
    assert_eq!(value(&e, "EMPTY_QUOTED"), "");
    assert_eq!(value(&e, "TABBED"), "1");
    assert_eq!(value(&e, "CRLF"), "yes");
    assert_eq!(value(&e, "INTERP"), "${OTHER}");
    assert_eq!(e.len(), 11);
    assert_no_secret_debug(&e);
}

#[test]
fn dotenv_errors_give_line_numbers_and_never_values() {
    let cases: Vec<(String, usize, DotenvErrorKind)> = vec![
        (
            format!("A=1\n{SECRET_A}\n"),
            2,
            DotenvErrorKind::MissingEquals,
        ),
        (
            format!("# c\n\n=\"{SECRET_A}\"\n"),
            3,
            DotenvErrorKind::EmptyName,
        ),
        (
            format!("A=1\n9BAD={SECRET_A}\n"),
            2,
            DotenvErrorKind::InvalidName,
        ),
        (
            format!("{SECRET_B}-x={SECRET_A}\n"),
            1,
            DotenvErrorKind::InvalidName,
        ),
        (
            format!("A=1\nB=\"{SECRET_A}\nmore\n"),
            2,
            DotenvErrorKind::UnterminatedQuote { quote: '"' },
        ),
        (
            format!("B='{SECRET_A}\n"),
            1,
            DotenvErrorKind::UnterminatedQuote { quote: '\'' },
        ),
        (
            format!("A=\"x\ny\" {SECRET_A}\n"),
            2,
            DotenvErrorKind::TrailingCharacters,
        ),
        (
            format!("A={SECRET_A}\n#\nexport A={SECRET_B}\n"),
            3,
            DotenvErrorKind::Duplicate {
                name: "A".into(),
                first_line: 1,
            },
        ),
    ];
    for (src, line, kind) in cases {
        let err = parse_dotenv(&src).unwrap_err();
        assert_eq!((err.line, &err.kind), (line, &kind), "source {src:?}");
        assert!(
            err.to_string().starts_with(&format!("line {line}: ")),
            "{err}"
        );
        assert_no_secret_display(&err);
        let help = miette::Diagnostic::help(&err)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(!help.is_empty());
        assert!(!help.contains(SECRET_A) && !help.contains(SECRET_B));
    }
}

#[test]
fn dotenv_line_numbers_count_lines_inside_multiline_values() {
    let err = parse_dotenv("A=\"1\n2\n3\"\nB=ok\nnope\n").unwrap_err();
    assert_eq!(err.line, 5);
}
