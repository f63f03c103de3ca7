use genesis::{ExposeSecret, KeyError, MasterKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{assert_no_secret_debug, assert_no_secret_display, key};

#[test]
fn key_base64_round_trip_keeps_the_key_id() {
    let k = key(1);
    let text = k.to_base64();
    assert_eq!(text.expose_secret().len(), 44);
    let again = MasterKey::from_base64(&format!("  {}\n", text.expose_secret())).unwrap();
    assert_eq!(again.key_id(), k.key_id());
    assert_no_secret_debug(&again);
}

#[test]
fn generated_keys_differ() {
    let a = MasterKey::generate().unwrap();
    let b = MasterKey::generate().unwrap();
    assert_ne!(a.key_id(), b.key_id());
    assert_ne!(a.to_base64().expose_secret(), b.to_base64().expose_secret());
}

#[test]
fn key_id_is_domain_separated_sha256_prefix_in_hex() {
    let k = MasterKey::from_bytes(Zeroizing::new([7u8; 32]));
    let mut h = Sha256::new();
    h.update(b"rel-genesis key-id v1\0");
    h.update([7u8; 32]);
    let expected: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(k.key_id().to_string(), expected);
    assert_eq!(k.key_id().to_string().len(), 16);
}

#[test]
fn key_debug_shows_only_the_key_id() {
    let k = key(2);
    let shown = format!("{k:?}");
    assert!(shown.contains(&k.key_id().to_string()), "{shown}");
    assert!(!shown.contains(k.to_base64().expose_secret()), "{shown}");
    assert_no_secret_debug(&k);
}

#[test]
fn key_errors_are_distinct_and_never_echo_the_text() {
    let long = format!(
        "{}AAAA",
        key(3).to_base64().expose_secret().trim_end_matches('=')
    );
    let cases: Vec<(String, KeyError)> = vec![
        ("".into(), KeyError::Empty),
        ("   \n".into(), KeyError::Empty),
        (format!("{}!!", crate::SECRET_A), KeyError::BadBase64),
        ("c2hvcnQ=".into(), KeyError::WrongLength { got: 5 }),
        (long.clone(), KeyError::BadBase64),
    ];
    for (text, expected) in cases {
        let err = MasterKey::from_base64(&text).unwrap_err();
        assert_eq!(err, expected, "for input of length {}", text.len());
        assert_no_secret_display(&err);
        let shown = format!("{err} {err:?}");
        if text.trim().len() > 4 {
            assert!(!shown.contains(text.trim()), "{shown}");
        }
    }
}
