//! Running the `nft` program once: arguments, optional input on its stdin, its stdout back, and
//! errors that say which part failed — the program missing or not startable, our pipe to it, or
//! its exit status with what it wrote to stderr.

use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncWriteExt;

/// Why a run of `nft` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program is not there (ENOENT when starting it).
    #[error("cannot run {binary}: not found (is nftables installed?)")]
    Missing {
        /// The program as configured.
        binary: String,
    },
    /// The program could not be started, or our pipes to it failed.
    #[error("{doing} {binary}: {error}")]
    Io {
        /// The program as configured.
        binary: String,
        /// What we were doing: "cannot run", "writing to", "waiting for".
        doing: &'static str,
        /// The OS error.
        error: std::io::Error,
    },
    /// The program ran and failed.
    #[error("{binary} {arguments} failed ({status}): {stderr}")]
    Exit {
        /// The program as configured.
        binary: String,
        /// Its arguments, joined by spaces.
        arguments: String,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
}

impl RunError {
    /// The OS error number behind the failure, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Missing { .. } => Some(2),
            Self::Io { error, .. } => error.raw_os_error(),
            Self::Exit { .. } => None,
        }
    }
}

/// Runs `binary` with `arguments`, writing `input` (if any) to its stdin, and returns its stdout.
/// A failed exit wins over a failed write: nft stops reading when it rejects its input, and its
/// stderr says why.
pub async fn run(binary: &str, arguments: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, RunError> {
    let io = |doing, error| RunError::Io {
        binary: binary.to_owned(),
        doing,
        error,
    };
    let mut child = tokio::process::Command::new(binary)
        .args(arguments)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => RunError::Missing {
                binary: binary.to_owned(),
            },
            _ => io("cannot run", error),
        })?;
    let mut written = Ok(());
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Dropping stdin at the end of this block closes it: nft reads to the end first.
        written = stdin.write_all(input).await;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| io("waiting for", error))?;
    if !output.status.success() {
        return Err(RunError::Exit {
            binary: binary.to_owned(),
            arguments: arguments.join(" "),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    written.map_err(|error| io("writing to", error))?;
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let error = run("/nonexistent/nft", &["-j", "list", "tables"], None)
            .await
            .unwrap_err();
        assert!(matches!(error, RunError::Missing { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "cannot run /nonexistent/nft: not found (is nftables installed?)"
        );
    }

    #[tokio::test]
    async fn a_failure_carries_the_exit_status_and_stderr() {
        let error = run(
            "sh",
            &["-c", "cat >/dev/null; echo refused >&2; exit 3"],
            Some(b"{}"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "sh -c cat >/dev/null; echo refused >&2; exit 3 failed (exit status: 3): refused"
        );
    }

    #[tokio::test]
    async fn stdout_comes_back_and_stdin_is_read_to_the_end() {
        let stdout = run("sh", &["-c", "wc -c"], Some(b"12345")).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&stdout).trim(), "5");
    }
}
