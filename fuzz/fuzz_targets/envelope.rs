//! The genesis envelope opener on arbitrary text: it must refuse, never panic, and never accept
//! anything a fixed key did not seal.
#![no_main]

use std::sync::OnceLock;

fn key() -> &'static genesis::MasterKey {
    static KEY: OnceLock<genesis::MasterKey> = OnceLock::new();
    KEY.get_or_init(|| genesis::MasterKey::generate().expect("a key"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = genesis::EnvName::new("staging").expect("a valid name");
        assert!(genesis::open(text, key(), &env).is_err(), "opened an envelope it never sealed");
        let _ = genesis::open_any_env(text, key());
    }
});
