//! Drift gate: the checked-in CRDs (in `crds/` and in the chart) must be exactly what the API types
//! generate, and `deploy/lvs-operator.yaml` must carry them. (`e2e/chart/check` compares the rest
//! of `deploy/` with a fresh Helm render.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[test]
fn checked_in_generated_files_match_the_types() {
    let drifted = xtask::drifted(&xtask::repository_root()).expect("generation works");
    assert!(
        drifted.is_empty(),
        "these generated files differ from the API types: {drifted:?}; run `cargo xtask generate` and commit"
    );
}
