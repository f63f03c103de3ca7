use std::collections::HashMap;

use genesis::{ExposeSecret, OpenError, autoload, seal};

use crate::{
    SECRET_A, SECRET_B, SECRET_C, assert_no_secret_debug, assert_no_secret_display, env, key,
    sample,
};

#[test]
fn autoload_sets_only_absent_names_and_explicit_env_wins() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), 42).unwrap();
    let current: HashMap<&str, &str> = [
        ("API_TOKEN", "explicit-override"),
        ("IDENTITY_SIGNING_KEY_B64", ""),
    ]
    .into();
    let plan = autoload(&text, &k, &env("staging"), |n| {
        current.get(n).map(|v| v.to_string())
    })
    .unwrap();
    let set: Vec<(&str, &str)> = plan
        .set
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose_secret()))
        .collect();
    assert_eq!(set, [("DATABASE_URL", SECRET_A)]);
    // Present but empty still counts as explicitly set.
    assert_eq!(plan.skipped, ["API_TOKEN", "IDENTITY_SIGNING_KEY_B64"]);
    assert_eq!(plan.set_names().collect::<Vec<_>>(), ["DATABASE_URL"]);
    assert_eq!(
        (plan.env.as_str(), plan.sealed_at, plan.key_id),
        ("staging", 42, k.key_id())
    );
    assert_no_secret_debug(&plan);
}

#[test]
fn autoload_with_an_empty_environment_sets_everything() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), 42).unwrap();
    let plan = autoload(&text, &k, &env("staging"), |_| None).unwrap();
    let mut values: Vec<&str> = plan.set.iter().map(|(_, v)| v.expose_secret()).collect();
    values.sort();
    let mut expected = vec![SECRET_A, SECRET_B, SECRET_C];
    expected.sort();
    assert_eq!(values, expected);
    assert!(plan.skipped.is_empty());
}

#[test]
fn autoload_refuses_the_wrong_environment_or_key() {
    let k = key(1);
    let text = seal(&k, &env("staging"), &sample(), 42).unwrap();
    let err = autoload(&text, &k, &env("prod"), |_| None).unwrap_err();
    assert!(matches!(err, OpenError::WrongEnvironment { .. }));
    assert_no_secret_display(&err);
    let err = autoload(&text, &key(2), &env("staging"), |_| None).unwrap_err();
    assert!(matches!(err, OpenError::WrongKey { .. }));
    assert_no_secret_display(&err);
}
