use genesis::{ExposeSecret, SecretString, diff, fingerprint, open, seal};
use sha2::{Digest, Sha256};

use crate::{SECRET_A, SECRET_B, SECRET_C, assert_no_secret_debug, entries, env, key};

#[test]
fn diff_lists_added_removed_changed_and_unchanged_by_name() {
    let k = key(1);
    let text = seal(
        &k,
        &env("staging"),
        &entries(&[("KEEP", SECRET_A), ("CHANGE", SECRET_B), ("DROP", "x")]),
        0,
    )
    .unwrap();
    let opened = open(&text, &k, &env("staging")).unwrap();
    let source = entries(&[("KEEP", SECRET_A), ("CHANGE", SECRET_C), ("NEW", "y")]);
    let d = diff(&k, &opened, &source);
    assert_eq!(d.added, ["NEW"]);
    assert_eq!(d.removed, ["DROP"]);
    assert_eq!(d.unchanged, ["KEEP"]);
    assert_eq!(d.changed.len(), 1);
    let c = &d.changed[0];
    assert_eq!(c.name, "CHANGE");
    assert_ne!(c.old, c.new);
    assert_eq!(
        c.old,
        fingerprint(&k, "CHANGE", &SecretString::from(SECRET_B.to_owned()))
    );
    assert_eq!(c.new.to_string().len(), 8);
    assert!(!d.is_empty());
    assert_no_secret_debug(&d);
    // The same source against itself: nothing to do.
    let same = diff(
        &k,
        &opened,
        &entries(&[("KEEP", SECRET_A), ("CHANGE", SECRET_B), ("DROP", "x")]),
    );
    assert!(same.is_empty());
}

#[test]
fn fingerprints_are_keyed_stable_and_bound_to_the_name() {
    let v = SecretString::from("true".to_owned());
    let (k1, k2) = (key(1), key(2));
    assert_eq!(
        fingerprint(&k1, "FLAG", &v),
        fingerprint(&k1, "FLAG", &v),
        "stable across calls"
    );
    assert_ne!(
        fingerprint(&k1, "FLAG", &v),
        fingerprint(&k2, "FLAG", &v),
        "keyed by the master key"
    );
    assert_ne!(
        fingerprint(&k1, "FLAG", &v),
        fingerprint(&k1, "OTHER", &v),
        "bound to the name"
    );
    // Not a plain hash of the value, which anyone could reproduce by guessing.
    let plain: String = Sha256::digest(v.expose_secret().as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(fingerprint(&k1, "FLAG", &v).to_string(), plain);
}
