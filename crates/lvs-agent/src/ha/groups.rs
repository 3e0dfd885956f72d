//! The VIPs of a node's config that need an election: every director service with failover
//! settings, grouped by VIP (the services of one VIP move together).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use lvs_api::{LvsNodeConfigSpec, ResolvedConnectionSync};

use super::election::Settings;

/// One VIP with more than one director (kept across restarts in the failover state file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// Directors, highest priority first.
    pub ranked: Vec<String>,
    /// Each director's heartbeat address.
    pub peers: BTreeMap<String, Option<IpAddr>>,
    /// Heartbeat interval.
    pub interval: Duration,
    /// Intervals of silence after which a peer is dead.
    pub dead_after_count: u32,
    /// Preemption.
    pub preempt: bool,
    /// Preemption delay.
    pub preempt_delay: Duration,
    /// Connection sync.
    pub connection_sync: Option<ResolvedConnectionSync>,
    /// The uplink (probes and announcements), if the spec names one.
    pub interface: Option<String>,
    /// The devices the VIP is held on while active (`desired::vip_devices`; records written
    /// before IPv6 VIPs were held on their uplinks name one `device`).
    #[serde(alias = "device", deserialize_with = "one_or_more")]
    pub devices: Vec<String>,
    /// The VirtualServers on this VIP.
    pub virtual_servers: Vec<String>,
}

impl Group {
    /// Silence after which a peer is dead.
    pub fn dead_after(&self) -> Duration {
        self.interval * self.dead_after_count
    }

    /// The election settings of this group's VIP `address` for `me`.
    pub fn settings(&self, address: IpAddr, me: &str) -> Settings {
        Settings {
            address,
            ranked: self.ranked.clone(),
            me: me.to_owned(),
            dead_after: self.dead_after(),
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            failback_sync: self
                .connection_sync
                .as_ref()
                .map(|sync| Duration::from_secs(u64::from(sync.failback_sync_seconds))),
        }
    }
}

/// A device name or a list of them.
fn one_or_more<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    Ok(match serde::Deserialize::deserialize(deserializer)? {
        OneOrMore::One(device) => vec![device],
        OneOrMore::More(devices) => devices,
    })
}

/// The VIPs of `config` that need an election. The first service (by VirtualServer name) of a
/// VIP gives the settings; the others join it. `uplinks` as for `desired::Inputs`.
pub fn groups(
    config: &LvsNodeConfigSpec,
    uplinks: &BTreeMap<IpAddr, Vec<String>>,
) -> BTreeMap<IpAddr, Group> {
    let mut groups: BTreeMap<IpAddr, Group> = BTreeMap::new();
    for service in &config.director_services {
        let Some((address, failover)) = service.failover() else {
            continue;
        };
        if let Some(group) = groups.get_mut(&address) {
            group.virtual_servers.push(service.virtual_server.clone());
            continue;
        }
        groups.insert(
            address,
            Group {
                ranked: failover.peers.iter().map(|peer| peer.node.clone()).collect(),
                peers: failover
                    .peers
                    .iter()
                    .map(|peer| (peer.node.clone(), peer.address))
                    .collect(),
                interval: Duration::from_millis(u64::from(failover.heartbeat_interval_millis.max(20))),
                dead_after_count: failover.dead_after.max(2),
                preempt: failover.preempt,
                preempt_delay: Duration::from_secs(u64::from(failover.preempt_delay_seconds)),
                connection_sync: failover.connection_sync.clone(),
                interface: service.interface.clone(),
                devices: crate::desired::vip_devices(service, uplinks),
                virtual_servers: vec![service.virtual_server.clone()],
            },
        );
    }
    groups
}
