//! What `lvs-agent` and `lvs-controller` share around their work, kept in one place: logging
//! set-up, the async runtime and the exit status, shutdown on Ctrl-C or SIGTERM, retry delays,
//! metric helpers, a thread's scheduling priority, and the HTTP endpoints `/healthz`, `/readyz`
//! and `/metrics`. No Kubernetes and no kernel state here.

pub mod backoff;
pub mod endpoints;
pub mod metrics;

use std::process::ExitCode;

use clap::ValueEnum;

pub use endpoints::{OPENMETRICS_CONTENT_TYPE, serve};

/// Log format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Sets the nice value (-20, most favoured, to 19) of the calling thread alone — Linux keeps it
/// per thread, and threads this one starts afterwards inherit it. A value below the current one
/// needs `CAP_SYS_NICE` (EACCES or EPERM without it).
pub fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice).map_err(std::io::Error::from)
}

/// Runs `work` on a two-thread runtime; an error is printed as `program: error` and exits 2.
pub fn block_on(program: &str, work: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{program}: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(work) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{program}: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what the kubelet sends).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Sleeps until `deadline`; never resolves without one (a `select!` branch that is off).
pub async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use rustix::process::getpriority_process;
    use rustix::thread::gettid;

    #[test]
    fn a_threads_nice_value_is_its_own() {
        // `None` (who = 0) is the calling thread on Linux.
        let before = getpriority_process(None).expect("this thread's nice value");
        let parent = gettid();
        // A less favoured value needs no privilege.
        let (own, parents) = std::thread::spawn(move || {
            super::set_thread_nice(before + 5).expect("raising the nice value");
            (
                getpriority_process(Some(gettid())).expect("the new thread's nice value"),
                getpriority_process(Some(parent)).expect("the spawning thread's nice value"),
            )
        })
        .join()
        .expect("the thread");
        assert_eq!(own, before + 5, "the thread's own value");
        assert_eq!(parents, before, "the thread that started it keeps its value");
    }
}
