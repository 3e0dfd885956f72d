//! Health checks of real servers, run by directors: probes (TCP, HTTP, HTTPS, DNS), the rise/fall
//! state machine, and the monitor that schedules probes and tells the dataplane what is healthy.

mod dns;
mod http;
pub mod monitor;
pub mod probe;
pub mod state;
mod tls;

pub use crate::desired::Health;
pub use monitor::{Concurrency, HealthMonitor, ProbeObserver, TargetStatus};
pub use probe::{ProbeError, ProbeOutcome, ProbeTarget, probe};
pub use state::{TargetState, Thresholds, Transition};
