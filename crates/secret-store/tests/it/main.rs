//! Tests of the secret stores: the file store for real, Key Vault against an in-test server that
//! speaks its REST shape. Every test checks that no secret value or token shows in any error's
//! or value's `Display`/`Debug`.

mod azure;
mod file;
mod server;

/// Secret values and credentials used by the tests; none may ever appear in output.
pub const SECRETS: &[&str] = &[
    "genesis-envelope-value-8c1d",
    "master-key-value-2b7e",
    "cs-secret-value-91f0",
    "federated-jwt-value-5a5a",
    "id-header-value-77c3",
    "kv-token-",
];

#[track_caller]
pub fn assert_no_secret<T: std::fmt::Display + std::fmt::Debug>(x: &T) {
    let shown = format!("{x} {x:?} {x:#?}");
    for s in SECRETS {
        assert!(!shown.contains(s), "a secret leaked into output: {shown}");
    }
}

#[track_caller]
pub fn assert_no_secret_debug<T: std::fmt::Debug>(x: &T) {
    let shown = format!("{x:?} {x:#?}");
    for s in SECRETS {
        assert!(!shown.contains(s), "a secret leaked into output: {shown}");
    }
}
