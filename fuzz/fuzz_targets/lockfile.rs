//! Lockfile loading (`releases/<v>.yaml`) on arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(loaded) = rel::lockfile::parse_raw("releases/0.4.0.yaml".as_ref(), text)
    {
        let _ = rel::gate::coherence::check(&loaded, None);
    }
});
