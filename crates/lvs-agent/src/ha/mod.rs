//! Highly available directors: an election per VIP among its directors over authenticated
//! UDP heartbeats (never through the API server), takeover with gratuitous ARP, connection
//! sync, and split-brain detection by probing who answers for each VIP.

pub mod desired;
pub mod election;
pub mod groups;
pub mod metrics;
pub mod runner;
pub mod wire;

pub use groups::{Group, groups};
pub use runner::{Failover, Options, Prober, UplinkCheck};

use std::sync::Arc;

use lvs_dataplane::Dataplane;

use crate::metrics::Metrics;

/// Starts the failover service for `node` with probes and uplink checks through `dataplane`.
pub async fn start<D: Dataplane>(
    dataplane: Arc<D>,
    node: &str,
    port: u16,
    key: Option<wire::HeartbeatKey>,
    metrics: Arc<Metrics>,
) -> Failover {
    let probing = Arc::clone(&dataplane);
    let prober: Prober = Arc::new(move |address, interface| {
        let dataplane = Arc::clone(&probing);
        Box::pin(async move {
            dataplane
                .vip_claimants(address, interface.as_deref(), runner::PROBE_WAIT)
                .await
                .map(|macs| macs.iter().map(|mac| format_mac(*mac)).collect())
                .map_err(|error| error.to_string())
        })
    });
    let uplink: UplinkCheck = Arc::new(move |address, interface| {
        let dataplane = Arc::clone(&dataplane);
        Box::pin(async move {
            let what = interface
                .clone()
                .unwrap_or_else(|| format!("the uplink of {address}"));
            match dataplane.uplink_up(address, interface.as_deref()).await {
                Ok(true) => None,
                Ok(false) => Some(format!("{what} is down")),
                Err(error) => Some(format!("{what}: {error}")),
            }
        })
    });
    let options = Options {
        node: node.to_owned(),
        port,
        bind: std::net::IpAddr::from([0, 0, 0, 0]),
        key,
        prober,
        uplink,
    };
    Failover::start(options, metrics).await
}

/// Resolves when a failover role changes; never without a failover service.
pub async fn role_changed(roles: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    match roles {
        Some(roles) => {
            if roles.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// `02:00:0a:64:00:02`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
