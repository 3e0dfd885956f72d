//! Drift gate: the checked-in CRDs must be exactly what the API types generate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[test]
fn checked_in_generated_files_match_the_types() {
    let drifted = xtask::drifted(&xtask::repository_root()).expect("generation works");
    assert!(
        drifted.is_empty(),
        "these generated files differ from the API types: {drifted:?}; run `cargo xtask crdgen` and commit"
    );
}
