use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use secret_store::{
    ExposeSecret, FileStore, SecretName, SecretStore, SecretString, StoreError, VersionId,
};

use crate::{SECRETS, assert_no_secret, assert_no_secret_debug};

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[test]
fn file_store_keeps_every_version_in_sortable_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("store")).unwrap();
    let n = name("rel-genesis-staging");
    let values = [SECRETS[0], SECRETS[1], "third"];
    let ids: Vec<VersionId> = values
        .iter()
        .map(|v| store.put(&n, &secret(v)).unwrap())
        .collect();
    assert_eq!(ids[0].as_str(), "00000000000000000001");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids sort in creation order");
    let latest = store.get(&n, None).unwrap();
    assert_eq!(
        (latest.version.clone(), latest.value.expose_secret()),
        (ids[2].clone(), "third")
    );
    for (id, v) in ids.iter().zip(values) {
        assert_eq!(store.get(&n, Some(id)).unwrap().value.expose_secret(), v);
    }
    let listed: Vec<VersionId> = store
        .versions(&n)
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, ids);
    assert!(
        store
            .versions(&n)
            .unwrap()
            .iter()
            .all(|v| v.created.is_some())
    );
    assert_no_secret_debug(&store.get(&n, Some(&ids[0])).unwrap());
    assert_no_secret_debug(&store);
}

#[test]
fn file_store_files_are_0600_and_directories_0700() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FileStore::new(&root).unwrap();
    let n = name("rel-master-key");
    let id = store.put(&n, &secret(SECRETS[1])).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("rel-master-key").join(id.as_str())), 0o600);
    assert_eq!(mode(&root.join("rel-master-key")), 0o700);
    assert_eq!(mode(&root), 0o700);
}

#[test]
fn file_store_writes_are_atomic_and_concurrent_writers_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()).unwrap());
    let n = name("busy");
    // A stray temp file from a crashed writer and a junk file are not versions.
    store.put(&n, &secret("seed")).unwrap();
    std::fs::write(dir.path().join("busy/.tmp-999-0"), "half-writ").unwrap();
    std::fs::write(dir.path().join("busy/notes.txt"), "junk").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let n = n.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        store
                            .put(&n, &secret(&format!("value-{t}-{i}-{}", "x".repeat(4096))))
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: BTreeSet<VersionId> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(ids.len(), 40, "every put got its own version");
    let versions = store.versions(&n).unwrap();
    assert_eq!(versions.len(), 41);
    assert_eq!(
        versions.last().unwrap().version.as_str(),
        "00000000000000000041"
    );
    for v in &versions[1..] {
        let value = store.get(&n, Some(&v.version)).unwrap().value;
        let s = value.expose_secret();
        assert!(
            s.starts_with("value-") && s.ends_with(&"x".repeat(4096)),
            "a version is complete"
        );
    }
    // No temp file of ours is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("busy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.starts_with(".tmp-") && f != ".tmp-999-0")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn file_store_missing_secrets_and_versions_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let n = name("absent");
    let err = store.get(&n, None).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("absent"));
    assert!(store.versions(&n).unwrap().is_empty());
    store.put(&n, &secret(SECRETS[0])).unwrap();
    let err = store
        .get(&n, Some(&VersionId::new("00000000000000000009").unwrap()))
        .unwrap_err();
    assert!(
        err.to_string().contains("version 00000000000000000009"),
        "{err}"
    );
    assert_no_secret(&err);
    let err = store
        .get(&n, Some(&VersionId::new("abc").unwrap()))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

#[test]
fn invalid_names_and_oversized_values_are_refused_before_writing() {
    for bad in [
        "",
        "has_underscore",
        "../escape",
        "a/b",
        "dot.ted",
        "spa ce",
        &"a".repeat(128),
    ] {
        let err = SecretName::new(bad).unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{bad:?}");
        assert_no_secret(&err);
    }
    assert!(VersionId::new("../x").is_err());
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let n = name("big");
    let big = SecretString::from(format!("{}{}", SECRETS[0], "y".repeat(25 * 1024)));
    let err = store.put(&n, &big).unwrap_err();
    assert!(
        matches!(err, StoreError::ValueTooLarge { len, max: 25600, .. } if len == 25 * 1024 + SECRETS[0].len()),
        "{err:?}"
    );
    assert!(err.to_string().contains("25 KB"));
    assert_no_secret(&err);
    assert!(!dir.path().join("big").exists(), "nothing written");
    // Exactly at the limit is fine.
    store
        .put(&n, &SecretString::from("z".repeat(25 * 1024)))
        .unwrap();
}
