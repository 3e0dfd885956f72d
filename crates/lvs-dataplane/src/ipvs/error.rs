//! What can go wrong talking to IPVS, with the object concerned in every message.

use std::io;

/// `EEXIST`.
const EEXIST: i32 = 17;
/// `ENOENT`: no such destination, or (NEW/SET_SERVICE) no such scheduler module.
const ENOENT: i32 = 2;
/// `ESRCH`: no such service.
const ESRCH: i32 = 3;

/// An IPVS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The kernel has no generic netlink family `IPVS`, even after `modprobe ip_vs`.
    #[error(
        "the IPVS kernel module is not loaded (no generic netlink family IPVS; modprobe ip_vs: {modprobe})"
    )]
    ModuleNotLoaded {
        /// What trying `modprobe ip_vs` gave.
        modprobe: String,
    },
    /// The kernel could not load the service's scheduler (it answers ENOENT when
    /// `ip_vs_<scheduler>` does not exist, e.g. `twos` before Linux 6.8).
    #[error("{context}: scheduler {scheduler} not available in this kernel (module ip_vs_{scheduler})")]
    SchedulerUnavailable {
        /// The operation, e.g. `creating service TCP 10.0.0.1:80`.
        context: String,
        /// The scheduler asked for.
        scheduler: String,
    },
    /// The kernel refused the request.
    #[error("{context}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The operation, e.g. `creating service TCP 10.0.0.1:80`.
        context: String,
        /// The (positive) errno.
        errno: i32,
    },
    /// The kernel's reply could not be understood.
    #[error("{context}: malformed reply from the kernel: {message}")]
    MalformedReply {
        /// The operation.
        context: String,
        /// What was wrong with it.
        message: String,
    },
    /// The kernel did not answer in time (a lost message, or a wedged kernel).
    #[error("{context}: no reply from the kernel within {seconds} s")]
    NoReply {
        /// The operation.
        context: String,
        /// How long we waited.
        seconds: u64,
    },
    /// The connection task is gone (its runtime shut down).
    #[error("{context}: the netlink connection is closed")]
    ConnectionClosed {
        /// The operation.
        context: String,
    },
    /// The netlink socket could not be opened or used.
    #[error("{context}: {source}")]
    Socket {
        /// The operation.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl IpvsError {
    /// The errno the kernel answered with, if it answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::SchedulerUnavailable { .. } => Some(ENOENT),
            _ => None,
        }
    }

    /// The object already exists (EEXIST): creating a service or destination twice.
    pub fn is_exists(&self) -> bool {
        self.kernel_errno() == Some(EEXIST)
    }

    /// The object does not exist: ESRCH (no such service) or ENOENT (no such destination).
    /// A missing scheduler is [`IpvsError::SchedulerUnavailable`], not this.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kernel_errno(), Some(ENOENT | ESRCH))
    }

    /// Whether the error is [`IpvsError::SchedulerUnavailable`].
    pub fn is_scheduler_unavailable(&self) -> bool {
        matches!(self, Self::SchedulerUnavailable { .. })
    }

    /// Why it failed, without the operation the message opens with (for callers that name the
    /// operation and object themselves).
    pub fn reason(&self) -> String {
        match self {
            Self::ModuleNotLoaded { .. } => self.to_string(),
            Self::SchedulerUnavailable { scheduler, .. } => {
                format!("scheduler {scheduler} not available in this kernel (module ip_vs_{scheduler})")
            }
            Self::Kernel { errno, .. } => io::Error::from_raw_os_error(*errno).to_string(),
            Self::MalformedReply { message, .. } => format!("malformed reply from the kernel: {message}"),
            Self::NoReply { seconds, .. } => format!("no reply from the kernel within {seconds} s"),
            Self::ConnectionClosed { .. } => "the netlink connection is closed".to_owned(),
            Self::Socket { source, .. } => source.to_string(),
        }
    }

    /// The OS error behind a socket failure.
    pub fn os_errno(&self) -> Option<i32> {
        match self {
            Self::Socket { source, .. } => source.raw_os_error(),
            other => other.errno(),
        }
    }

    fn kernel_errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The error for a kernel NACK of the operation `context`. ENOENT from NEW_SERVICE or
    /// SET_SERVICE means the scheduler module could not be loaded (the service commands answer
    /// a missing service with ESRCH, and we never send a persistence engine).
    pub(super) fn from_kernel(context: String, errno: i32, scheduler: Option<&str>) -> Self {
        match scheduler {
            Some(scheduler) if errno == ENOENT => Self::SchedulerUnavailable {
                context,
                scheduler: scheduler.to_owned(),
            },
            _ => Self::Kernel { context, errno },
        }
    }
}
