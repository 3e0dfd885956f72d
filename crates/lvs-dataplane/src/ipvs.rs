//! IPVS over generic netlink (placeholder until the module lands).
