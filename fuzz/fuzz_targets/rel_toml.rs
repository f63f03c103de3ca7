//! `rel.toml` parsing and validation on arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rel::config::Config::parse("rel.toml".as_ref(), text, "/project".into());
    }
});
