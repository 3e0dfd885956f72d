//! The HTTP endpoints /healthz, /readyz and /metrics (work in progress).
