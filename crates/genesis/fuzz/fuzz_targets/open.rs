//! No input makes the envelope parser, the opener, the plaintext decoder or the dotenv parser
//! panic; and whatever dotenv source parses, seals and opens back to the same entries.
#![no_main]

use genesis::{EnvName, ExposeSecret, MasterKey};
use libfuzzer_sys::fuzz_target;

/// A fixed key, so inputs carrying its key id reach the decryption step.
fn key() -> MasterKey {
    MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("valid test key")
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    let env = EnvName::new("staging").expect("valid env");
    // 1. As text: base64 parsing, header checks, key id, decryption, environment.
    let text = String::from_utf8_lossy(data);
    if let Err(e) = genesis::open(&text, &key, &env) {
        let _ = e.to_string();
    }
    // 2. As decoded bytes: header parsing and decryption without the base64 layer.
    if let Ok(envelope) = genesis::Envelope::from_bytes(data) {
        let _ = envelope.open(&key);
    }
    // 3. As a plaintext: the decoder behind the box, which random ciphertexts never reach.
    let _ = genesis::fuzzing::decode_plaintext(data);
    // 4. As a dotenv source; when it parses, seal → open must give the same entries back.
    if let Ok(entries) = genesis::parse_dotenv(&text) {
        let sealed = genesis::seal(&key, &env, &entries, 1).expect("seal");
        let opened = genesis::open(&sealed, &key, &env).expect("a fresh envelope opens");
        assert_eq!(opened.entries().len(), entries.len());
        for (name, value) in entries.iter() {
            let back = opened.entries().get(name.as_str()).expect("entry survives");
            assert_eq!(back.expose_secret(), value.expose_secret());
        }
    }
});
