//! Reading folders: a mounted ConfigMap's files once each, no loop through a link to a parent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use lvs_core::Severity;
use lvs_core::manifest::load_paths;

const POOL: &str = "apiVersion: lvs.operator.io/v1alpha1\nkind: AddressPool\nmetadata: {name: NAME}\n\
                    spec: {addresses: [10.0.0.0/24], namespaceSelector: {}}\n";

fn folder(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lvs-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

#[test]
fn a_configmap_mount_is_read_once_and_a_link_to_a_parent_does_not_loop() {
    let root = folder("configmap");
    // The layout kubelet makes for a ConfigMap volume.
    std::fs::create_dir(root.join("..2026_12_03_10_00_00.123")).unwrap();
    std::fs::write(
        root.join("..2026_12_03_10_00_00.123/pool.yaml"),
        POOL.replace("NAME", "mounted"),
    )
    .unwrap();
    symlink("..2026_12_03_10_00_00.123", root.join("..data")).unwrap();
    symlink("..data/pool.yaml", root.join("pool.yaml")).unwrap();
    // A plain subfolder, and two links back up that would loop if followed.
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/other.yaml"), POOL.replace("NAME", "sub")).unwrap();
    symlink(".", root.join("loop")).unwrap();
    symlink("..", root.join("sub/up")).unwrap();

    let loaded = load_paths(std::slice::from_ref(&root)).unwrap();
    let names: Vec<_> = loaded
        .manifests
        .pools
        .iter()
        .map(|pool| pool.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        ["mounted", "sub"],
        "each file once, through its top-level link"
    );
    assert_eq!(loaded.file_count, 2);
    let errors: Vec<_> = loaded
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut warned: Vec<_> = loaded
        .problems
        .iter()
        .map(|problem| problem.source.clone())
        .collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            root.join("loop").display().to_string(),
            root.join("sub/up").display().to_string()
        ],
        "each symlinked folder is named in a warning"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
