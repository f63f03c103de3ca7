//! Tests of the genesis crate's public API. Every test also checks that no secret value shows in
//! any error's or value's `Display`/`Debug`.

mod autoload;
mod diff;
mod dotenv;
mod envelope;
mod key;
mod random_inputs;

use genesis::{Entries, EntryName, EnvName, MasterKey, SecretString};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub const SECRET_A: &str = "s3cr3t-alpha-value-7f1c";
pub const SECRET_B: &str = "hunter2-bravo-value-99ab";
pub const SECRET_C: &str = "charlie-value-0d0d-zz";

pub fn key(seed: u64) -> MasterKey {
    MasterKey::generate_with(&mut StdRng::seed_from_u64(seed)).unwrap()
}

pub fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

pub fn entries(pairs: &[(&str, &str)]) -> Entries {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                EntryName::new(n).unwrap(),
                SecretString::from((*v).to_owned()),
            )
        })
        .collect()
}

pub fn sample() -> Entries {
    entries(&[
        ("DATABASE_URL", SECRET_A),
        ("API_TOKEN", SECRET_B),
        ("IDENTITY_SIGNING_KEY_B64", SECRET_C),
    ])
}

/// Every secret used in the tests, including the base64 text of the test keys.
pub fn all_secrets() -> Vec<String> {
    use genesis::ExposeSecret;
    let mut v: Vec<String> = [SECRET_A, SECRET_B, SECRET_C]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for seed in 0..4 {
        v.push(key(seed).to_base64().expose_secret().to_owned());
    }
    v
}

/// Fail if `Display` or `Debug` of `x` shows any secret.
#[track_caller]
pub fn assert_no_secret_display<T: std::fmt::Display + std::fmt::Debug>(x: &T) {
    let shown = format!("{x} {x:?} {x:#?}");
    for s in all_secrets() {
        assert!(
            !shown.contains(&s),
            "a secret value leaked into output: {shown}"
        );
    }
}

/// Fail if `Debug` of `x` shows any secret.
#[track_caller]
pub fn assert_no_secret_debug<T: std::fmt::Debug>(x: &T) {
    let shown = format!("{x:?} {x:#?}");
    for s in all_secrets() {
        assert!(
            !shown.contains(&s),
            "a secret value leaked into output: {shown}"
        );
    }
}
