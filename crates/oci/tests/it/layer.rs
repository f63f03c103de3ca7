//! Deterministic layers and the layer cache.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use oci::{CacheOutcome, ImageSpec, LayerCache, LayerSpec, assemble};

use crate::support::{run, static_binary, tool};

const MTIME: u64 = 1_700_000_000;

/// Deterministic pseudo-random bytes (an LCG), so the golden digests below do not depend on a
/// compiler or a file on disk.
fn fixed_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Half compressible text, half noise: gzip has real work in both regimes.
            if i % 4096 < 2048 {
                b"rel layer "[i % 10]
            } else {
                (x >> 33) as u8
            }
        })
        .collect()
}

fn image_digest_for(bin: &Path, cache_dir: &Path) -> (oci::Image, CacheOutcome) {
    let cache = LayerCache::new(cache_dir);
    let (layer, outcome) = cache
        .layer(&LayerSpec::binary(bin, "hello", MTIME))
        .unwrap();
    let spec = ImageSpec::new(vec!["/app/hello".into()], MTIME);
    (assemble(None, &[layer], &spec).unwrap(), outcome)
}

#[test]
fn same_binary_from_two_paths_gives_equal_digests() {
    let bin = static_binary();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let a_bin = a.path().join("checkout-one/target/release/hello");
    let b_bin = b.path().join("elsewhere/hello-renamed");
    for p in [&a_bin, &b_bin] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(&bin, p).unwrap();
    }
    // Different file modes and mtimes on the host must not leak into the layer either.
    std::fs::set_permissions(&b_bin, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (one, _) = image_digest_for(&a_bin, &a.path().join("cache"));
    let (two, _) = image_digest_for(&b_bin, &b.path().join("cache"));
    assert_eq!(one.manifest_digest, two.manifest_digest);
    assert_eq!(one.manifest, two.manifest);
    assert_eq!(one.config, two.config);
}

#[test]
fn layer_digest_of_fixed_input_is_pinned() {
    // Guards the gzip determinism trap: a compressor change (another flate2 backend switched on by
    // feature unification, a zlib-rs upgrade) changes these digests and must come with a bump of
    // `oci::layer::COMPRESSOR`.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("payload");
    std::fs::write(&src, fixed_bytes(3 << 20)).unwrap();
    let spec = LayerSpec::binary(&src, "payload", MTIME);
    let layer = oci::build_layer(&spec, &dir.path().join("blobs")).unwrap();
    assert_eq!(
        layer.diff_id.to_string(),
        "sha256:7c822242965141bc07c9da28b30ffb224b1fd0f94c6292d994a3e79d83085659"
    );
    assert_eq!(
        layer.digest.to_string(),
        "sha256:11bdfa56f2ac51ce898c9491d9b40fd1b409992124fcdd2386a1da1c3e03d7cd"
    );
    assert_eq!(
        oci::layer::COMPRESSOR,
        "flate2-1.1.11+zlib-rs-0.6.8+blocks-1MiB-dict-32KiB"
    );
    // The layer was compressed on every core; one thread gives the same bytes.
    let tar = oci::layer::layer_tar(&spec).unwrap();
    for threads in [1, 3] {
        let gz = oci::gzip::compress(&tar, spec.gzip_level, threads).unwrap();
        assert_eq!(oci::Digest::of(&gz), layer.digest, "{threads} thread(s)");
    }
}

#[test]
fn layer_is_a_sorted_tar_with_fixed_owners_modes_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("app.toml");
    std::fs::write(&conf, "port = 8080\n").unwrap();
    let spec = LayerSpec::binary(static_binary(), "hello", MTIME).with_file(
        &conf,
        "/etc/hello/app.toml",
        0o444,
    );
    let layer = oci::build_layer(&spec, &dir.path().join("blobs")).unwrap();
    let gz = std::fs::read(&layer.path).unwrap();
    assert_eq!(
        &gz[..4],
        &[0x1f, 0x8b, 8, 0],
        "gzip magic, deflate, no flags (no name, no comment)"
    );
    assert_eq!(&gz[4..8], &[0, 0, 0, 0], "gzip mtime is zero");
    assert_eq!(gz[9], 255, "gzip OS byte is fixed to 255");
    assert_eq!(layer.size, gz.len() as u64);
    assert_eq!(layer.digest, oci::Digest::of(&gz));
    assert_eq!(
        layer.diff_id,
        oci::Digest::of(&oci::layer::layer_tar(&spec).unwrap())
    );

    let listing = run(Command::new(tool("tar", "tar"))
        .arg("--numeric-owner")
        .arg("-tvzf")
        .arg(&layer.path));
    let lines: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l[5]).collect();
    assert_eq!(
        names,
        [
            "app/",
            "app/hello",
            "etc/",
            "etc/hello/",
            "etc/hello/app.toml"
        ],
        "{listing}"
    );
    for l in &lines {
        assert_eq!(l[1], "0/0", "{listing}");
        assert_eq!(l[3], "2023-11-14", "{listing}");
    }
    assert_eq!(lines[0][0], "drwxr-xr-x");
    assert_eq!(lines[1][0], "-r-xr-xr-x");
    assert_eq!(lines[4][0], "-r--r--r--");
}

#[test]
fn unchanged_binary_hits_the_cache_and_a_changed_one_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("hello");
    std::fs::copy(static_binary(), &bin).unwrap();
    let cache_dir = dir.path().join("cache");
    let (first, outcome) = image_digest_for(&bin, &cache_dir);
    assert_eq!(outcome, CacheOutcome::Built);
    let blob = &first.layers[0].path;
    let before = std::fs::metadata(blob).unwrap().modified().unwrap();
    let (second, outcome) = image_digest_for(&bin, &cache_dir);
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(
        std::fs::metadata(blob).unwrap().modified().unwrap(),
        before,
        "the blob was not rewritten"
    );

    let mut bytes = std::fs::read(&bin).unwrap();
    bytes.push(0);
    std::fs::write(&bin, bytes).unwrap();
    let (third, outcome) = image_digest_for(&bin, &cache_dir);
    assert_eq!(outcome, CacheOutcome::Built);
    assert_ne!(third.manifest_digest, first.manifest_digest);

    // A cache entry whose blob vanished is rebuilt, not trusted.
    std::fs::remove_file(&third.layers[0].path).unwrap();
    let (fourth, outcome) = image_digest_for(&bin, &cache_dir);
    assert_eq!(outcome, CacheOutcome::Built);
    assert_eq!(fourth.manifest_digest, third.manifest_digest);
}

#[test]
fn mtime_and_level_are_part_of_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("payload");
    std::fs::write(&src, fixed_bytes(1 << 20)).unwrap();
    let cache = LayerCache::new(dir.path().join("cache"));
    let (base, _) = cache.layer(&LayerSpec::binary(&src, "p", MTIME)).unwrap();
    let (later, _) = cache
        .layer(&LayerSpec::binary(&src, "p", MTIME + 1))
        .unwrap();
    let mut level6 = LayerSpec::binary(&src, "p", MTIME);
    level6.gzip_level = 6;
    let (six, outcome) = cache.layer(&level6).unwrap();
    assert_eq!(
        outcome,
        CacheOutcome::Built,
        "another level is another cache key"
    );
    assert_ne!(base.diff_id, later.diff_id);
    assert_eq!(base.diff_id, six.diff_id, "same tar");
    assert_ne!(base.digest, six.digest, "other gzip bytes");
}

#[test]
fn bad_layer_paths_are_refused() {
    let bin = static_binary();
    for dest in ["relative/x", "/", "/a/../b", "/a//b", "/dir/"] {
        let spec = LayerSpec {
            files: vec![oci::LayerFile {
                source: bin.clone(),
                dest: dest.into(),
                mode: 0o555,
            }],
            mtime: 0,
            gzip_level: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = oci::build_layer(&spec, dir.path()).unwrap_err();
        assert!(err.to_string().contains(dest), "{err}");
    }
    let spec = LayerSpec::binary(&bin, "x", 0).with_file(&bin, "/app/x", 0o555);
    assert!(matches!(
        oci::build_layer(&spec, tempfile::tempdir().unwrap().path()),
        Err(oci::LayerError::DuplicateDest(_))
    ));
}

#[test]
fn image_config_and_manifest_are_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("payload");
    std::fs::write(&src, b"#!/bin/true\n").unwrap();
    let layer = oci::build_layer(&LayerSpec::binary(&src, "svc", 0), dir.path()).unwrap();
    let mut spec = ImageSpec::new(vec!["/app/svc".into()], 86_400);
    spec.env = vec!["RUST_LOG=info".into()];
    spec.exposed_ports = vec!["8080/tcp".into()];
    spec.source = Some("https://example.test/rel".into());
    spec.revision = Some("0123abc".into());
    spec.version = Some("0.4.0".into());
    let image = assemble(None, std::slice::from_ref(&layer), &spec).unwrap();
    let config = String::from_utf8(image.config.clone()).unwrap();
    assert_eq!(
        config,
        format!(
            concat!(
                r#"{{"architecture":"amd64","config":{{"Entrypoint":["/app/svc"],"Env":["RUST_LOG=info"],"ExposedPorts":{{"8080/tcp":{{}}}},"#,
                r#""Labels":{{"org.opencontainers.image.created":"1970-01-02T00:00:00Z","org.opencontainers.image.revision":"0123abc","#,
                r#""org.opencontainers.image.source":"https://example.test/rel","org.opencontainers.image.version":"0.4.0"}},"User":"65532"}},"#,
                r#""created":"1970-01-02T00:00:00Z","history":[{{"created":"1970-01-02T00:00:00Z","created_by":"rel build"}}],"#,
                r#""os":"linux","rootfs":{{"diff_ids":["{}"],"type":"layers"}}}}"#
            ),
            layer.diff_id
        )
    );
    let manifest = String::from_utf8(image.manifest.clone()).unwrap();
    assert_eq!(
        manifest,
        format!(
            r#"{{"config":{{"digest":"{}","mediaType":"application/vnd.oci.image.config.v1+json","size":{}}},"layers":[{{"digest":"{}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{}}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#,
            image.config_digest,
            image.config.len(),
            layer.digest,
            layer.size
        )
    );
    assert_eq!(image.manifest_digest, oci::Digest::of(manifest.as_bytes()));
    assert!(matches!(
        assemble(
            None,
            std::slice::from_ref(&layer),
            &ImageSpec {
                exposed_ports: vec!["http".into()],
                ..spec.clone()
            }
        ),
        Err(oci::ImageError::BadPort(_))
    ));
}

#[test]
fn a_stamp_answers_for_an_unchanged_file_and_any_write_voids_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("hello");
    std::fs::copy(static_binary(), &bin).unwrap();
    let spec = LayerSpec::binary(&bin, "hello", MTIME);

    // By default a file changed in the last seconds is not vouched for: it is hashed every
    // time, though its stamp says a hit is likely.
    let careful = LayerCache::new(dir.path().join("cache"));
    assert!(!careful.likely_unchanged(&spec), "no key was computed yet");
    let (first, outcome) = careful.layer(&spec).unwrap();
    assert_eq!(outcome, CacheOutcome::Built);
    let (_, outcome) = careful.layer(&spec).unwrap();
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_eq!(
        careful.stamped(&spec).unwrap(),
        None,
        "a fresh file is not vouched for"
    );
    assert!(
        careful.likely_unchanged(&spec),
        "but it is likely unchanged"
    );

    // With no racy window (the file counts as old), the key pass leaves a stamp ...
    let cache = LayerCache::new(dir.path().join("cache")).with_racy_window(Duration::ZERO);
    let (second, outcome) = cache.layer(&spec).unwrap();
    assert_eq!((outcome, &second), (CacheOutcome::Hit, &first));
    assert_eq!(cache.stamped(&spec).unwrap().as_ref(), Some(&first));
    // ... for this spec only: another mtime, level or destination is another layer.
    let mut other = LayerSpec::binary(&bin, "hello", MTIME + 1);
    assert_eq!(cache.stamped(&other).unwrap(), None);
    other = LayerSpec::binary(&bin, "other", MTIME);
    assert_eq!(cache.stamped(&other).unwrap(), None);

    // Same size, other bytes, the old modification time put back: the change time still moved,
    // so the stamp no longer answers and the new bytes are built.
    let modified = std::fs::metadata(&bin).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&bin).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&bin, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&bin)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(
        cache.stamped(&spec).unwrap(),
        None,
        "a rewrite voids the stamp"
    );
    assert!(!cache.likely_unchanged(&spec));
    let (third, outcome) = cache.layer(&spec).unwrap();
    assert_eq!(outcome, CacheOutcome::Built);
    assert_ne!(third.digest, first.digest);
    assert_eq!(cache.stamped(&spec).unwrap().as_ref(), Some(&third));

    // A stamp whose layer blob is gone is not trusted either.
    std::fs::remove_file(&third.path).unwrap();
    assert_eq!(cache.stamped(&spec).unwrap(), None);
    // Nor is a corrupt stamp.
    for entry in std::fs::read_dir(dir.path().join("cache/stamps")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"{not json").unwrap();
    }
    assert_eq!(cache.stamped(&spec).unwrap(), None);
    let (again, outcome) = cache.layer(&spec).unwrap();
    assert_eq!((outcome, again.digest), (CacheOutcome::Built, third.digest));
}
