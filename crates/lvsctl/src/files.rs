//! Reading manifests for a command, and turning every problem into one line that names the
//! file, the object and the field.

use std::path::PathBuf;

use lvs_api::conditions::reasons;
use lvs_core::manifest::{LoadedManifests, Manifests};
use lvs_core::{BuildOutput, Severity};

/// Manifests read from disk, with the problems found reading and building them.
pub(crate) struct Loaded {
    pub(crate) manifests: Manifests,
    pub(crate) read_problems: Vec<lvs_core::manifest::ManifestProblem>,
    pub(crate) output: BuildOutput,
    pub(crate) file_count: usize,
}

/// Reads every YAML file under `paths` and builds the result.
pub(crate) fn load(paths: &[PathBuf], settings: &lvs_core::ClusterSettings) -> anyhow::Result<Loaded> {
    let LoadedManifests {
        manifests,
        problems,
        file_count,
    } = lvs_core::manifest::load_paths(paths).map_err(anyhow::Error::msg)?;
    let output = crate::build_standalone(&manifests, settings);
    Ok(Loaded {
        manifests,
        read_problems: problems,
        output,
        file_count,
    })
}

impl Loaded {
    /// One line per problem, sorted: reading problems and build problems (with their file and,
    /// in brackets, the condition reason the controller would report).
    pub(crate) fn problem_lines(&self) -> Vec<(Severity, String)> {
        let mut lines: Vec<_> = self
            .read_problems
            .iter()
            .map(|problem| match problem.severity {
                Severity::Error => (problem.severity, format!("{problem} [{}]", reasons::INVALID)),
                Severity::Warning => (problem.severity, problem.to_string()),
            })
            .collect();
        for problem in &self.output.problems {
            let source = self
                .manifests
                .sources
                .get(&problem.object)
                .map_or("<unknown file>", String::as_str);
            lines.push((
                problem.severity,
                format!("{source}: {problem} [{}]", problem.reason),
            ));
        }
        lines.sort_by(|left, right| left.1.cmp(&right.1));
        lines
    }
}
