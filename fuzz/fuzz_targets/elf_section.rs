//! Adding `.dep-v0` to any bytes: an answer, never a panic; what is added reads back, the input
//! survives but for the section table's place and count, and a second add leaves it alone.
#![no_main]

use elf_section::{Added, add_section, find_section};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = find_section(data, ".text");
    if let Ok(Added::New(out)) = add_section(data, ".dep-v0", b"payload") {
        assert_eq!(find_section(&out, ".dep-v0"), Ok(Some(&b"payload"[..])));
        for (i, (a, b)) in data.iter().zip(&out).enumerate() {
            // e_shoff and e_shnum are the only bytes of the input that change.
            if !(0x28..0x30).contains(&i) && !(0x3c..0x3e).contains(&i) {
                assert_eq!(a, b, "byte {i:#x} changed");
            }
        }
        assert_eq!(
            add_section(&out, ".dep-v0", b"other"),
            Ok(Added::AlreadyPresent)
        );
    }
});
