//! `lvs-agent` as a library: the parts of the node agent, so the binary stays thin and the
//! integration tests drive the same code (reconcile against a fake dataplane, Kubernetes mode
//! against a mock API server).

pub mod health;
pub mod metrics;
pub mod node_config;
pub mod reconcile;
pub mod server;
