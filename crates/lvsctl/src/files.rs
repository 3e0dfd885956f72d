//! Finding and reading manifest files, and turning every problem into one line that names the
//! file, the object and the field.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lvs_core::manifest::Manifests;
use lvs_core::{BuildOutput, Severity};

/// Manifests read from disk, with the problems found reading and building them.
pub(crate) struct Loaded {
    pub(crate) manifests: Manifests,
    pub(crate) read_problems: Vec<lvs_core::manifest::ManifestProblem>,
    pub(crate) output: BuildOutput,
    pub(crate) file_count: usize,
}

/// Reads every YAML file under `paths` and builds the result.
pub(crate) fn load(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let mut manifests = Manifests::default();
    let mut read_problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        read_problems.extend(manifests.read(&file.display().to_string(), &text));
    }
    let output = crate::build_standalone(&manifests);
    Ok(Loaded {
        manifests,
        read_problems,
        output,
        file_count: files.len(),
    })
}

impl Loaded {
    /// One line per problem, reading problems first, then build problems (with their file).
    pub(crate) fn problem_lines(&self) -> Vec<(Severity, String)> {
        let mut lines: Vec<_> = self
            .read_problems
            .iter()
            .map(|problem| (problem.severity, problem.to_string()))
            .collect();
        for problem in &self.output.problems {
            let source = self
                .manifests
                .sources
                .get(&problem.object)
                .map_or("<unknown file>", String::as_str);
            lines.push((problem.severity, format!("{source}: {problem}")));
        }
        lines.sort_by(|left, right| left.1.cmp(&right.1));
        lines
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("listing {}", path.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if matches!(
            entry.extension().and_then(|extension| extension.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(entry);
        }
    }
    Ok(())
}
