//! Highly available directors: an election per VIP among its directors over authenticated
//! UDP heartbeats (never through the API server), takeover with gratuitous ARP, connection
//! sync, split-brain detection by probing who answers for each VIP, and restarts of the agent
//! that never move a VIP.

pub mod api;
pub mod desired;
pub mod detector;
pub mod election;
pub mod groups;
pub mod metrics;
pub mod peers;
pub mod record;
pub mod restart;
pub mod runner;
pub mod state;
pub mod wire;

pub use groups::{Group, groups};
pub use record::{Now, VipStatus};
pub use restart::RestartStore;
pub use runner::{Failover, Options, Prober, UplinkCheck};
pub use state::{PassReport, Roles};

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lvs_dataplane::Dataplane;

use crate::metrics::Metrics;

/// How the agent's failover service is set up.
pub struct Settings {
    /// UDP port of the heartbeats.
    pub port: u16,
    /// The address heartbeats are received on and sent from (the agent's
    /// `--failover-address`; default the node's address, else `0.0.0.0`: every address of both
    /// families).
    pub bind: IpAddr,
    /// The shared key, and during a rotation the previous one (None: never take a shared VIP).
    pub key: Option<wire::HeartbeatKeys>,
    /// Where the state for restarts is kept.
    pub restart_store: RestartStore,
    /// How long a peer that said it is restarting keeps its role without heartbeats.
    pub restart_hold: Duration,
}

/// Starts the failover service for `node` with probes and uplink checks through `dataplane`,
/// resuming the roles of a previous run for the VIPs still on our device.
pub async fn start<D: Dataplane>(
    dataplane: Arc<D>,
    node: &str,
    settings: Settings,
    metrics: Arc<Metrics>,
) -> Failover {
    let in_kernel: BTreeSet<IpAddr> = match dataplane.observe_vips().await {
        Ok(vips) => vips.addresses.iter().map(|vip| vip.address).collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot read this node's VIPs at start; a VIP it holds may move");
            BTreeSet::new()
        }
    };
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
        port: settings.port,
        bind: settings.bind,
        key: settings.key,
        prober,
        uplink,
        restart_store: settings.restart_store,
        in_kernel,
        restart_hold: settings.restart_hold,
    };
    Failover::start(options, metrics).await
}

/// Resolves when a failover role changes; never without a failover service.
pub async fn role_changed(roles: Option<&mut tokio::sync::watch::Receiver<Roles>>) {
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
