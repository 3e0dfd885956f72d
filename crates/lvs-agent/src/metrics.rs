//! Prometheus metrics of the agent (work in progress).
