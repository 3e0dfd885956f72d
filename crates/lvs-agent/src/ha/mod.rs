//! Highly available directors: an election per VIP among its directors over authenticated
//! UDP heartbeats (never through the API server), takeover with gratuitous ARP, connection
//! sync, and split-brain detection by probing who answers for each VIP.

pub mod election;
pub mod wire;
