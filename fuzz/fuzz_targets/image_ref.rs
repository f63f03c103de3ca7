//! Image references and digests: parsing, and that what parses prints back to what parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = text.parse::<image_ref::ImageRef>() {
            let again: image_ref::ImageRef = r.to_string().parse().expect("a printed reference parses");
            assert_eq!(again.to_string(), r.to_string());
        }
        let _ = text.parse::<image_ref::Digest>();
    }
});
