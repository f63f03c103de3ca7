//! The OCI image layout writer, checked with skopeo and umoci; base images read from layouts.

use std::path::Path;
use std::process::Command;

use oci::{ImageSpec, LayerCache, LayerSpec, assemble, read_base, write_layout};

use crate::support::{run, static_binary, tool};

const MTIME: u64 = 1_700_000_000;

fn hello_image(cache: &Path) -> oci::Image {
    let (layer, _) = LayerCache::new(cache)
        .layer(&LayerSpec::binary(static_binary(), "hello", MTIME))
        .unwrap();
    let mut spec = ImageSpec::new(vec!["/app/hello".into()], MTIME);
    spec.exposed_ports = vec!["8080/tcp".into()];
    spec.revision = Some("deadbeef".into());
    assemble(None, &[layer], &spec).unwrap()
}

/// `umoci unpack --rootless` the tag into a bundle; returns the bundle's rootfs.
fn unpack(layout: &Path, tag: &str, bundle: &Path) -> std::path::PathBuf {
    run(Command::new(tool("umoci", "umoci"))
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
    bundle.join("rootfs")
}

#[test]
fn skopeo_and_umoci_read_the_layout_and_the_binary_runs() {
    let dir = tempfile::tempdir().unwrap();
    let image = hello_image(&dir.path().join("cache"));
    let layout = dir.path().join("layout");
    let report = write_layout(&layout, &image, "v1").unwrap();
    assert_eq!(
        (report.blobs_written, report.blobs_present, report.replaced),
        (3, 0, None)
    );

    let inspect = run(Command::new(tool("skopeo", "skopeo"))
        .arg("inspect")
        .arg(format!("oci:{}:v1", layout.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], image.manifest_digest.to_string(), "{inspect}");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Labels"]["org.opencontainers.image.revision"], "deadbeef");
    let config = run(Command::new(tool("skopeo", "skopeo"))
        .args(["inspect", "--raw", "--config"])
        .arg(format!("oci:{}:v1", layout.display())));
    assert_eq!(
        config.as_bytes(),
        image.config.as_slice(),
        "skopeo sees our exact config bytes"
    );

    let rootfs = unpack(&layout, "v1", &dir.path().join("bundle"));
    let out = run(&mut Command::new(rootfs.join("app/hello")));
    assert_eq!(out, "hello from rel-oci-fixture\n");
    let umoci_config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bundle/config.json")).unwrap())
            .unwrap();
    assert_eq!(umoci_config["process"]["args"][0], "/app/hello");

    // Writing the same image again stores nothing new; another image under the same tag replaces it.
    let again = write_layout(&layout, &image, "v1").unwrap();
    assert_eq!(
        (again.blobs_written, again.blobs_present, again.replaced),
        (0, 3, None)
    );
    let mut other_spec = ImageSpec::new(vec!["/app/hello".into(), "serve".into()], MTIME);
    other_spec.user = "1000".into();
    let other = assemble(
        None,
        &[oci::Layer {
            diff_id: image.layers[0].diff_id.clone(),
            digest: image.layers[0].descriptor.digest.clone(),
            size: image.layers[0].descriptor.size,
            media_type: image.layers[0].descriptor.media_type.clone(),
            path: image.layers[0].path.clone(),
        }],
        &other_spec,
    )
    .unwrap();
    let replaced = write_layout(&layout, &other, "v1").unwrap();
    assert_eq!(replaced.replaced, Some(image.manifest_digest.clone()));
    assert_eq!(
        oci::layout::resolve_tag(&layout, "v1")
            .unwrap()
            .unwrap()
            .digest,
        other.manifest_digest
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn a_umoci_made_base_image_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let umoci = tool("umoci", "umoci");
    let base = dir.path().join("base");
    run(Command::new(&umoci).args(["init", "--layout"]).arg(&base));
    run(Command::new(&umoci)
        .args(["new", "--image"])
        .arg(format!("{}:latest", base.display())));
    let etc = dir.path().join("etc-src");
    std::fs::create_dir_all(etc.join("etc")).unwrap();
    std::fs::write(etc.join("etc/os-release"), "NAME=base\n").unwrap();
    run(Command::new(&umoci)
        .args(["insert", "--rootless", "--image"])
        .arg(format!("{}:latest", base.display()))
        .arg(etc.join("etc"))
        .arg("/etc"));
    run(Command::new(&umoci)
        .args([
            "config",
            "--config.env",
            "PATH=/bin",
            "--config.env",
            "MODE=base",
            "--image",
        ])
        .arg(format!("{}:latest", base.display())));

    let base_image = read_base(&base, Some("latest")).unwrap();
    assert_eq!(base_image.layers.len(), 1);
    let (layer, _) = LayerCache::new(dir.path().join("cache"))
        .layer(&LayerSpec::binary(static_binary(), "hello", MTIME))
        .unwrap();
    let mut spec = ImageSpec::new(vec!["/app/hello".into()], MTIME);
    spec.env = vec!["MODE=app".into()];
    let image = assemble(Some(&base_image), std::slice::from_ref(&layer), &spec).unwrap();
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        image.layers[0].descriptor.digest,
        base_image.layers[0].descriptor.digest
    );
    assert_eq!(image.layers[1].descriptor.digest, layer.digest);
    let config: oci::spec::ImageConfig = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config.config.env.unwrap(), ["PATH=/bin", "MODE=app"]);

    let layout = dir.path().join("out");
    write_layout(&layout, &image, "app").unwrap();
    let rootfs = unpack(&layout, "app", &dir.path().join("bundle"));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "NAME=base\n"
    );
    assert_eq!(
        run(&mut Command::new(rootfs.join("app/hello"))),
        "hello from rel-oci-fixture\n"
    );

    // A layout with two images needs a name; a wrong name is refused with the layout named.
    write_layout(&layout, &image, "second").unwrap();
    assert!(matches!(
        read_base(&layout, None),
        Err(oci::LayoutError::Ambiguous { .. })
    ));
    let err = read_base(&layout, Some("nope")).unwrap_err();
    assert!(err.to_string().contains("named `nope`"), "{err}");
}
