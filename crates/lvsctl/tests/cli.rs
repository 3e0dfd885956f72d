//! The `lvsctl` binary as a user runs it: exit codes and one specific line per problem.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lvsctl(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsctl"))
        .args(arguments)
        .current_dir(repository())
        .output()
        .expect("lvsctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_accepts_the_examples() {
    let output = lvsctl(&["validate", "-f", "examples/"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output), "", "no problem lines for valid examples");
}

/// Each fixture on its own, with the tests' open pool when it brings no pool of its own (as
/// `invalid_fixtures.rs` reads them): exit 1 and exactly one error line, naming the file, the
/// field, the expected message and, in brackets, the reason.
#[test]
fn validate_prints_one_error_line_per_bad_fixture_and_fails() {
    let folder = "crates/lvs-core/tests/fixtures/invalid";
    let open_pool = "crates/lvs-core/tests/fixtures/open-pool.yaml";
    let mut files: Vec<String> = std::fs::read_dir(repository().join(folder))
        .unwrap()
        .map(|entry| format!("{folder}/{}", entry.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= 90, "only {} fixtures", files.len());
    for file in &files {
        let text = std::fs::read_to_string(repository().join(file)).unwrap();
        let expected = text
            .lines()
            .find_map(|line| line.strip_prefix("# expect: ").map(str::to_owned))
            .unwrap();
        // The Service network the fixtures assume, as the chart's serviceCIDRs would set it.
        let mut arguments = vec!["validate", "--service-cidr", "10.96.0.0/16", "-f", file.as_str()];
        if !text.contains("kind: \"AddressPool\"") {
            arguments.extend(["-f", open_pool]);
        }
        let output = lvsctl(&arguments);
        assert_eq!(output.status.code(), Some(1), "{file}");
        let text = stdout(&output);
        let errors: Vec<&str> = text
            .lines()
            .filter(|line| !line.contains(": warning: "))
            .collect();
        assert_eq!(errors.len(), 1, "{file}: {errors:#?}");
        assert!(
            errors[0].starts_with(&format!("{file}: ")),
            "{file}: {}",
            errors[0]
        );
        assert!(
            errors[0].contains(&expected),
            "{file}: expected {expected:?} in {:?}",
            errors[0]
        );
        let reason = errors[0].rsplit_once(" [").map(|(_, reason)| reason);
        assert!(
            reason.is_some_and(|reason| reason.ends_with(']') && reason.len() > 2),
            "{file}: no [Reason] in {:?}",
            errors[0]
        );
    }
}

#[test]
fn build_prints_the_node_configs_the_controller_would_write() {
    let output = lvsctl(&["build", "-f", "examples/", "--node", "director-1"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = stdout(&output);
    let objects: Vec<lvs_api::LvsNodeConfig> =
        serde_saphyr::from_multiple(&text).expect("valid YAML of LvsNodeConfig");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].metadata.name.as_deref(), Some("director-1"));
    assert_eq!(
        objects[0].spec.director_services.len(),
        9,
        "one per example VirtualServer, two for the dual-stack one"
    );
}

#[test]
fn a_missing_path_is_a_clear_usage_error() {
    let output = lvsctl(&["validate", "-f", "does/not/exist.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read does/not/exist.yaml"), "{stderr}");
}
