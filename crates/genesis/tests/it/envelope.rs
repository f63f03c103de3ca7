use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use genesis::{
    ExposeSecret, OpenError, ResealError, check, inspect, open, open_any_env, reseal, seal,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{
    SECRET_A, SECRET_B, SECRET_C, assert_no_secret_debug, assert_no_secret_display, entries, env,
    key, sample,
};

const T0: u64 = 1_767_225_600;

fn decode(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Build an envelope by hand around an arbitrary plaintext, sealed properly under `seed`'s key.
fn hand_sealed(seed: u64, header_version: u8, plaintext: &[u8]) -> String {
    let k = key(seed);
    let raw = STANDARD.decode(k.to_base64().expose_secret()).unwrap();
    let cipher = XSalsa20Poly1305::new(Key::from_slice(&raw));
    let nonce = [9u8; 24];
    let boxed = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap();
    let mut out = b"RGEN".to_vec();
    out.push(header_version);
    out.extend_from_slice(k.key_id().as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&boxed);
    encode(&out)
}

fn plaintext(version: u8, env: &str, sealed_at: u64, entries: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![version, env.len() as u8];
    p.extend_from_slice(env.as_bytes());
    p.extend_from_slice(&sealed_at.to_be_bytes());
    p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (n, v) in entries {
        p.extend_from_slice(&(n.len() as u16).to_be_bytes());
        p.extend_from_slice(n.as_bytes());
        p.extend_from_slice(&(v.len() as u32).to_be_bytes());
        p.extend_from_slice(v.as_bytes());
    }
    p
}

#[test]
fn seal_open_round_trip() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), T0).unwrap();
    assert_no_secret_display(&text);
    let opened = open(&text, &k, &env("staging")).unwrap();
    assert_eq!(opened.env().as_str(), "staging");
    assert_eq!(opened.sealed_at(), T0);
    assert_eq!(opened.key_id(), k.key_id());
    assert_eq!(
        opened.names().collect::<Vec<_>>(),
        ["API_TOKEN", "DATABASE_URL", "IDENTITY_SIGNING_KEY_B64"]
    );
    assert_eq!(
        opened
            .entries()
            .get("DATABASE_URL")
            .unwrap()
            .expose_secret(),
        SECRET_A
    );
    assert_eq!(
        opened.entries().get("API_TOKEN").unwrap().expose_secret(),
        SECRET_B
    );
    assert_eq!(
        opened
            .entries()
            .get("IDENTITY_SIGNING_KEY_B64")
            .unwrap()
            .expose_secret(),
        SECRET_C
    );
    assert_no_secret_debug(&opened);
}

#[test]
fn round_trip_keeps_empty_multiline_and_unicode_values() {
    let k = key(1);
    let src = entries(&[
        ("EMPTY", ""),
        ("PEM", "-----BEGIN-----\nabc\n-----END-----\n"),
        ("UNI", "clé→✓"),
    ]);
    let text = seal(&k, &env("dev"), &src, 0).unwrap();
    let opened = open(&text, &k, &env("dev")).unwrap();
    for (name, value) in src.iter() {
        assert_eq!(
            opened.entries().get(name.as_str()).unwrap().expose_secret(),
            value.expose_secret()
        );
    }
    let none = seal(&k, &env("dev"), &genesis::Entries::new(), 0).unwrap();
    assert!(open(&none, &k, &env("dev")).unwrap().entries().is_empty());
}

#[test]
fn each_seal_draws_a_fresh_nonce() {
    let k = key(1);
    let a = seal(&k, &env("staging"), &sample(), T0).unwrap();
    let b = seal(&k, &env("staging"), &sample(), T0).unwrap();
    assert_ne!(a, b);
    assert_ne!(decode(&a)[13..37], decode(&b)[13..37], "nonces must differ");
    open(&a, &k, &env("staging")).unwrap();
    open(&b, &k, &env("staging")).unwrap();
}

#[test]
fn envelope_byte_layout_matches_the_documented_format() {
    let k = key(1);
    let src = entries(&[("A", "xy")]);
    let text =
        genesis::seal_with_rng(&k, &env("prod"), &src, T0, &mut StdRng::seed_from_u64(5)).unwrap();
    let bytes = decode(&text);
    assert_eq!(&bytes[0..4], b"RGEN");
    assert_eq!(bytes[4], 1);
    assert_eq!(&bytes[5..13], k.key_id().as_bytes());
    let pt = plaintext(1, "prod", T0, &[("A", "xy")]);
    assert_eq!(bytes.len(), 4 + 1 + 8 + 24 + 16 + pt.len());
    // The box opens with plain crypto_secretbox to exactly the documented plaintext.
    let raw = STANDARD.decode(k.to_base64().expose_secret()).unwrap();
    let cipher = XSalsa20Poly1305::new(Key::from_slice(&raw));
    let opened = cipher
        .decrypt(Nonce::from_slice(&bytes[13..37]), &bytes[37..])
        .unwrap();
    assert_eq!(opened, pt);
    let header = inspect(&text).unwrap();
    assert_eq!((header.version, header.key_id), (1, k.key_id()));
}

#[test]
fn wrong_key_names_both_key_ids() {
    let (k1, k2) = (key(1), key(2));
    let text = seal(&k1, &env("staging"), &sample(), T0).unwrap();
    let err = open(&text, &k2, &env("staging")).unwrap_err();
    assert_eq!(
        err,
        OpenError::WrongKey {
            sealed_for: k1.key_id(),
            given: k2.key_id()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "sealed for key id {}, given key id {}",
            k1.key_id(),
            k2.key_id()
        )),
        "{msg}"
    );
    assert_no_secret_display(&err);
}

#[test]
fn tampering_with_the_box_fails_authentication() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), T0).unwrap();
    let bytes = decode(&text);
    // Flip one bit in every byte of the nonce, tag and ciphertext, one at a time.
    for i in 13..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let err = open(&encode(&t), &k, &env("staging")).unwrap_err();
        assert_eq!(
            err,
            OpenError::AuthenticationFailed { key_id: k.key_id() },
            "byte {i}"
        );
        assert!(err.to_string().contains("authentication failed"));
        assert_no_secret_display(&err);
    }
}

#[test]
fn tampering_with_the_key_id_is_reported_as_a_wrong_key() {
    let k = key(1);
    let mut bytes = decode(&seal(&k, &env("staging"), &sample(), T0).unwrap());
    bytes[5] ^= 0xff;
    let err = open(&encode(&bytes), &k, &env("staging")).unwrap_err();
    assert!(
        matches!(err, OpenError::WrongKey { given, .. } if given == k.key_id()),
        "{err:?}"
    );
}

#[test]
fn wrong_environment_is_refused_after_opening() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), T0).unwrap();
    let err = open(&text, &k, &env("prod")).unwrap_err();
    assert_eq!(
        err,
        OpenError::WrongEnvironment {
            sealed_for: env("staging"),
            expected: env("prod")
        }
    );
    assert!(
        err.to_string()
            .contains("sealed for `staging`, expected `prod`"),
        "{err}"
    );
    assert_no_secret_display(&err);
    // open_any_env reads it regardless.
    assert_eq!(open_any_env(&text, &k).unwrap().env().as_str(), "staging");
}

#[test]
fn unknown_version_is_named() {
    let k = key(1);
    let mut bytes = decode(&seal(&k, &env("staging"), &sample(), T0).unwrap());
    bytes[4] = 2;
    let err = open(&encode(&bytes), &k, &env("staging")).unwrap_err();
    assert_eq!(err, OpenError::UnknownVersion { found: 2 });
    assert!(err.to_string().contains("version 2"));
    assert_no_secret_display(&err);
}

#[test]
fn bad_base64_is_distinct() {
    let k = key(1);
    for text in ["not base64 at all!", "UkdFTgE*", "UkdFTgE"] {
        let err = open(text, &k, &env("staging")).unwrap_err();
        assert!(
            matches!(err, OpenError::BadBase64 { .. }),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains("not valid base64"));
        assert_no_secret_display(&err);
    }
}

#[test]
fn bad_magic_is_distinct() {
    let k = key(1);
    let mut bytes = decode(&seal(&k, &env("staging"), &sample(), T0).unwrap());
    bytes[0] = b'X';
    let err = open(&encode(&bytes), &k, &env("staging")).unwrap_err();
    assert_eq!(err, OpenError::BadMagic);
    // The key itself, pasted where an envelope goes, is bad magic too, and is not echoed.
    let err = open(k.to_base64().expose_secret(), &k, &env("staging")).unwrap_err();
    assert_eq!(err, OpenError::BadMagic);
    assert_no_secret_display(&err);
}

#[test]
fn truncated_envelopes_are_distinct() {
    let k = key(1);
    let bytes = decode(&seal(&k, &env("staging"), &sample(), T0).unwrap());
    for len in [1, 3, 4, 5, 12, 37, 52, 53, 60] {
        let err = open(&encode(&bytes[..len]), &k, &env("staging")).unwrap_err();
        assert!(
            matches!(err, OpenError::Truncated { len: l, .. } if l == len),
            "{len}: {err:?}"
        );
        assert!(err.to_string().contains("truncated"));
        assert_no_secret_display(&err);
    }
    // Cut inside the box (past the minimum): the tag no longer matches.
    let err = open(&encode(&bytes[..bytes.len() - 1]), &k, &env("staging")).unwrap_err();
    assert_eq!(err, OpenError::AuthenticationFailed { key_id: k.key_id() });
}

#[test]
fn empty_and_oversized_envelopes_are_refused() {
    let k = key(1);
    assert_eq!(
        open("  \n", &k, &env("staging")).unwrap_err(),
        OpenError::Empty
    );
    let huge = "A".repeat(genesis::envelope::MAX_ENVELOPE_TEXT_LEN + 4);
    assert!(matches!(
        open(&huge, &k, &env("staging")).unwrap_err(),
        OpenError::TooLarge { .. }
    ));
}

#[test]
fn whitespace_and_line_wrapping_in_the_text_are_ignored() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), T0).unwrap();
    let wrapped: String = text
        .as_bytes()
        .chunks(20)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_eq!(
        open(&format!("  {wrapped}"), &k, &env("staging"))
            .unwrap()
            .entries()
            .len(),
        3
    );
}

#[test]
fn header_version_is_checked_against_the_plaintext() {
    // A v1 header around a plaintext that claims version 7.
    let text = hand_sealed(1, 1, &plaintext(7, "staging", T0, &[("A", SECRET_A)]));
    let err = open(&text, &key(1), &env("staging")).unwrap_err();
    assert_eq!(
        err,
        OpenError::VersionMismatch {
            header: 1,
            inner: 7
        }
    );
    assert_no_secret_display(&err);
}

#[test]
fn malformed_plaintexts_are_reported_without_their_bytes() {
    let good = plaintext(1, "staging", T0, &[("A", SECRET_A), ("B", SECRET_B)]);
    let mut trailing = good.clone();
    trailing.push(0);
    let cases: Vec<Vec<u8>> = vec![
        vec![1u8; 15],
        good[..good.len() - 3].to_vec(),
        trailing,
        plaintext(1, "staging", T0, &[("B", SECRET_B), ("A", SECRET_A)]),
        plaintext(1, "staging", T0, &[("A", SECRET_A), ("A", SECRET_B)]),
        plaintext(1, "bad env!", T0, &[("A", SECRET_A)]),
        plaintext(1, "staging", T0, &[("1BAD", SECRET_A)]),
    ];
    for (i, pt) in cases.iter().enumerate() {
        let err = open(&hand_sealed(1, 1, pt), &key(1), &env("staging")).unwrap_err();
        assert!(
            matches!(err, OpenError::Malformed { .. }),
            "case {i}: {err:?}"
        );
        assert_no_secret_display(&err);
    }
    let mut bad_utf8 = plaintext(1, "staging", T0, &[("A", "xx")]);
    let n = bad_utf8.len();
    bad_utf8[n - 1] = 0xff;
    assert!(matches!(
        open(&hand_sealed(1, 1, &bad_utf8), &key(1), &env("staging")).unwrap_err(),
        OpenError::Malformed {
            reason: "entry value is not UTF-8"
        }
    ));
    // And the hand-built good one opens, which shows the cases above fail for their own reason.
    assert_eq!(
        open(&hand_sealed(1, 1, &good), &key(1), &env("staging"))
            .unwrap()
            .entries()
            .len(),
        2
    );
}

#[test]
fn check_reports_names_and_metadata_only() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), T0).unwrap();
    let summary = check(&text, &k, &env("staging")).unwrap();
    assert_eq!(
        summary.names,
        ["API_TOKEN", "DATABASE_URL", "IDENTITY_SIGNING_KEY_B64"]
    );
    assert_eq!(
        (summary.key_id, summary.sealed_at, summary.env.as_str()),
        (k.key_id(), T0, "staging")
    );
    assert_no_secret_debug(&summary);
    assert!(check(&text, &key(2), &env("staging")).is_err());
}

#[test]
fn reseal_rewraps_for_the_new_key_and_keeps_the_contents() {
    let (old, new) = (key(1), key(2));
    let text = seal(&old, &env("prod"), &sample(), T0).unwrap();
    let r = reseal(&text, &old, &new).unwrap();
    assert_eq!(
        (r.from, r.to, r.env.as_str(), r.sealed_at, r.entry_count),
        (old.key_id(), new.key_id(), "prod", T0, 3)
    );
    assert_no_secret_debug(&r);
    assert_eq!(inspect(&r.text).unwrap().key_id, new.key_id());
    let opened = open(&r.text, &new, &env("prod")).unwrap();
    assert_eq!(
        opened.entries().get("API_TOKEN").unwrap().expose_secret(),
        SECRET_B
    );
    assert_eq!(opened.sealed_at(), T0);
    assert!(matches!(
        open(&r.text, &old, &env("prod")).unwrap_err(),
        OpenError::WrongKey { .. }
    ));
}

#[test]
fn reseal_refusals_are_clear() {
    let (old, new, other) = (key(1), key(2), key(3));
    let text = seal(&old, &env("prod"), &sample(), T0).unwrap();
    let e = reseal(&text, &old, &old).unwrap_err();
    assert_eq!(
        e,
        ResealError::SameKey {
            key_id: old.key_id()
        }
    );
    let done = reseal(&text, &old, &new).unwrap().text;
    let e = reseal(&done, &old, &new).unwrap_err();
    assert_eq!(
        e,
        ResealError::AlreadyUnderNewKey {
            key_id: new.key_id()
        }
    );
    let e = reseal(&text, &other, &new).unwrap_err();
    assert_eq!(
        e,
        ResealError::Open(OpenError::WrongKey {
            sealed_for: old.key_id(),
            given: other.key_id()
        })
    );
    for e in [
        e,
        ResealError::SameKey {
            key_id: old.key_id(),
        },
    ] {
        assert_no_secret_display(&e);
    }
}
