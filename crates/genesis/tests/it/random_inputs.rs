//! Deterministic random-input tests: the parser and opener never panic, whatever the input.
//! (The cargo-fuzz target in `fuzz/` does the same with coverage guidance, on nightly.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use genesis::{OpenError, open, seal};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{env, key, sample};

const ROUNDS: usize = 100_000;

#[test]
fn random_and_mutated_envelopes_never_panic() {
    let k = key(1);
    let valid = seal(&k, &env("staging"), &sample(), 7).unwrap();
    let valid_bytes = STANDARD.decode(&valid).unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut outcomes = std::collections::BTreeMap::<&'static str, usize>::new();
    for i in 0..ROUNDS {
        let text = match i % 5 {
            // Random printable text.
            0 => (0..rng.gen_range(0..200))
                .map(|_| rng.gen_range(0x20u8..0x7f) as char)
                .collect::<String>(),
            // Random bytes, base64-encoded (so they get past the base64 check).
            1 => {
                let mut b: Vec<u8> = (0..rng.gen_range(0..120)).map(|_| rng.r#gen()).collect();
                if rng.gen_bool(0.5) && b.len() >= 5 {
                    b[..4].copy_from_slice(b"RGEN");
                    b[4] = 1;
                }
                STANDARD.encode(b)
            }
            // The valid envelope with a few bytes flipped.
            2 => {
                let mut b = valid_bytes.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..b.len());
                    b[at] ^= 1 << rng.gen_range(0..8);
                }
                STANDARD.encode(b)
            }
            // The valid envelope truncated or extended.
            3 => {
                let mut b = valid_bytes.clone();
                if rng.gen_bool(0.5) {
                    b.truncate(rng.gen_range(0..b.len()));
                } else {
                    b.extend((0..rng.gen_range(1..16)).map(|_| rng.r#gen::<u8>()));
                }
                STANDARD.encode(b)
            }
            // The valid text with characters replaced, inserted or removed.
            _ => {
                let mut t: Vec<u8> = valid.as_bytes().to_vec();
                let at = rng.gen_range(0..t.len());
                match rng.gen_range(0..3) {
                    0 => t[at] = rng.gen_range(0u8..0x80),
                    1 => t.insert(at, rng.gen_range(0u8..0x80)),
                    _ => {
                        t.remove(at);
                    }
                }
                String::from_utf8_lossy(&t).into_owned()
            }
        };
        let outcome = match open(&text, &k, &env("staging")) {
            Ok(_) => "ok",
            Err(OpenError::BadBase64 { .. }) => "bad base64",
            Err(OpenError::BadMagic) => "bad magic",
            Err(OpenError::Truncated { .. }) => "truncated",
            Err(OpenError::UnknownVersion { .. }) => "unknown version",
            Err(OpenError::WrongKey { .. }) => "wrong key",
            Err(OpenError::AuthenticationFailed { .. }) => "authentication failed",
            Err(e) => {
                let _ = e.to_string();
                "other"
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    // Every kind of rejection was reached, so the mutations exercise each check.
    for kind in [
        "bad base64",
        "bad magic",
        "truncated",
        "unknown version",
        "wrong key",
        "authentication failed",
    ] {
        assert!(
            outcomes.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never reached: {outcomes:?}"
        );
    }
}

#[test]
fn random_plaintexts_never_panic_the_decoder() {
    let mut rng = StdRng::seed_from_u64(0xdec0de);
    let mut decoded = 0;
    for i in 0..ROUNDS {
        let mut b: Vec<u8> = (0..rng.gen_range(0..96)).map(|_| rng.r#gen()).collect();
        if i % 2 == 0 && b.len() >= 20 {
            // A plausible prefix: version 1, env "e", then random.
            b[0] = 1;
            b[1] = 1;
            b[2] = b'e';
            b[11..15].copy_from_slice(&(rng.gen_range(0u32..3)).to_be_bytes());
        }
        if genesis::fuzzing::decode_plaintext(&b) {
            decoded += 1;
        }
    }
    // Some random inputs are well-formed (zero entries, nothing trailing).
    let zero_entries = [1u8, 1, b'e', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(genesis::fuzzing::decode_plaintext(&zero_entries));
    let _ = decoded;
}
