//! Every invalid fixture is rejected with exactly one error, at the field its header names.
//!
//! Each file under `tests/fixtures/invalid/` starts with `# expect: FIELD: MESSAGE` — the
//! problem must be found at that field path with a message containing that text — and holds one
//! problem only, so a rule that stops firing (or fires on the wrong field) fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::{Path, PathBuf};

use lvs_core::manifest::Manifests;
use lvs_core::pool::AddressRange;
use lvs_core::{ClusterSettings, Severity, build};

/// The tests' open address pool, added to fixtures that define none (the Service network
/// 10.96.0.0/16 is set, as the chart's `serviceCIDRs` would).
const OPEN_POOL: &str = include_str!("fixtures/open-pool.yaml");

fn fixtures() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("fixtures folder exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every error found reading and building one file, as `field: message` strings.
fn errors_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let mut manifests = Manifests::default();
    let mut errors: Vec<String> = manifests
        .read("fixture", &text)
        .into_iter()
        .filter(|problem| problem.severity == Severity::Error)
        .map(|problem| {
            if problem.field.is_empty() {
                problem.message
            } else {
                format!("{}: {}", problem.field, problem.message)
            }
        })
        .collect();
    if manifests.pools.is_empty() {
        assert!(manifests.read("open-pool.yaml", OPEN_POOL).is_empty());
    }
    let settings = ClusterSettings {
        service_networks: vec![AddressRange::parse("10.96.0.0/16").unwrap()],
        ..ClusterSettings::default()
    };
    let output = build(manifests.build_input(&settings));
    errors.extend(
        output
            .problems
            .iter()
            .filter(|problem| problem.severity == Severity::Error)
            .map(|problem| problem.describe()),
    );
    errors
}

fn expectation(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    text.lines()
        .find_map(|line| line.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no '# expect:' header", path.display()))
        .to_owned()
}

#[test]
fn there_are_at_least_forty_invalid_fixtures() {
    assert!(fixtures().len() >= 40, "only {} fixtures", fixtures().len());
}

#[test]
fn each_invalid_fixture_fails_with_exactly_its_expected_error() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let expected = expectation(&path);
        let errors = errors_of(&path);
        let matches = errors.len() == 1 && errors[0].contains(&expected);
        if !matches {
            failures.push(format!(
                "{}\n  expected one error containing: {expected}\n  got: {errors:#?}",
                path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_examples_have_no_errors_or_warnings() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut manifests = Manifests::default();
    let mut problems = Vec::new();
    let mut stack = vec![folder];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        } else if path.extension().is_some_and(|extension| extension == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            problems.extend(
                manifests
                    .read(&path.display().to_string(), &text)
                    .into_iter()
                    .map(|p| p.to_string()),
            );
        }
    }
    let output = build(manifests.build_input(&ClusterSettings::default()));
    problems.extend(output.problems.iter().map(ToString::to_string));
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        manifests.virtual_servers.len(),
        8,
        "every example VirtualServer was read"
    );
}
