//! Highly available directors: how the directors of a VIP elect the one that holds it (the
//! spec users write), what the controller resolves for each agent, and what agents report.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Failover among the directors of a VIP. Used only when more than one director serves it: the
/// directors exchange authenticated heartbeats over UDP (never through the API server), the
/// highest-priority healthy director holds the VIP, and a standby takes it over within
/// `heartbeatIntervalMillis × deadAfter` of the active one going silent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HighAvailabilitySpec {
    /// Director node names, most preferred first. Directors not listed follow, by name. Every
    /// director computes the same order, so they agree on who should hold the VIP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// Time between heartbeats to each peer, in milliseconds (default 200).
    #[serde(default = "default_heartbeat_interval")]
    #[schemars(range(min = 20, max = 10000))]
    pub heartbeat_interval_millis: u32,
    /// A peer is dead after this many heartbeat intervals without a word (default 3).
    #[serde(default = "default_dead_after")]
    #[schemars(range(min = 2, max = 100))]
    pub dead_after: u32,
    /// Whether a director with a higher priority takes the VIP back from a lower one that holds
    /// it (default false: the VIP stays where it is until that director fails).
    #[serde(default)]
    pub preempt: bool,
    /// With `preempt`: how long a returning director must have been up and healthy before it
    /// takes the VIP back (default 5 s).
    #[serde(default = "default_preempt_delay")]
    #[schemars(range(max = 3600))]
    pub preempt_delay_seconds: u32,
    /// IPVS connection synchronisation between the directors.
    #[serde(default)]
    pub connection_sync: ConnectionSyncSpec,
}

impl Default for HighAvailabilitySpec {
    fn default() -> Self {
        Self {
            priority: Vec::new(),
            heartbeat_interval_millis: default_heartbeat_interval(),
            dead_after: default_dead_after(),
            preempt: false,
            preempt_delay_seconds: default_preempt_delay(),
            connection_sync: ConnectionSyncSpec::default(),
        }
    }
}

fn default_heartbeat_interval() -> u32 {
    200
}

fn default_dead_after() -> u32 {
    3
}

fn default_preempt_delay() -> u32 {
    5
}

/// The kernel's connection-sync daemon: the active director sends its connection table, the
/// standbys receive it, so connections survive a failover.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSyncSpec {
    /// Whether to run it (default true).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Sync ID shared by the directors of this VIP (0–255, default 0); it separates clusters on
    /// one network.
    #[serde(default)]
    pub sync_id: u8,
    /// Interface the sync messages (multicast 224.0.0.81) use. Default: `directors.interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[x_kube(validation = kube::core::Rule::new("!self.contains('/') && self != '.' && self != '..'").message("must be a network interface name"))]
    pub interface: Option<String>,
    /// A returning director must have received connections as a backup for this long before it
    /// may take the VIP back (default 3 s), so the connections it would inherit are there.
    #[serde(default = "default_failback_sync")]
    #[schemars(range(max = 3600))]
    pub failback_sync_seconds: u32,
}

impl Default for ConnectionSyncSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            sync_id: 0,
            interface: None,
            failback_sync_seconds: default_failback_sync(),
        }
    }
}

fn enabled() -> bool {
    true
}

fn default_failback_sync() -> u32 {
    3
}

/// The role a director reports for a VIP it holds (`ServiceStatus.role`,
/// `VipFailoverStatus.role`).
pub const ACTIVE: &str = "Active";
/// The role a director reports for a VIP another director holds.
pub const STANDBY: &str = "Standby";

/// Failover settings as the controller resolved them for the agents of one VIP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedHighAvailability {
    /// Every director of the VIP, highest priority first, with the address heartbeats go to.
    pub peers: Vec<DirectorPeer>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_interval_millis: u32,
    /// Intervals of silence after which a peer is dead.
    pub dead_after: u32,
    /// Whether a higher-priority director takes the VIP back.
    #[serde(default)]
    pub preempt: bool,
    /// Seconds a returning director waits before taking the VIP back.
    #[serde(default)]
    pub preempt_delay_seconds: u32,
    /// Connection sync, when enabled and an interface is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<ResolvedConnectionSync>,
}

/// One director of a VIP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorPeer {
    /// Node name.
    pub node: String,
    /// The node's address (absent when the Node lists none: heartbeats cannot reach it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Connection sync as resolved.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedConnectionSync {
    /// Sync ID.
    pub sync_id: u8,
    /// Interface.
    pub interface: String,
    /// Seconds a returning director must have been a synced backup before taking the VIP back.
    pub failback_sync_seconds: u32,
}

/// Failover state of one VIP on one director, as its agent reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VipFailoverStatus {
    /// The VIP.
    pub address: String,
    /// Active (this node holds the VIP) or Standby.
    pub role: String,
    /// The director holding the VIP as this node sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_director: Option<String>,
    /// Whether this node may hold the VIP (IPVS programmed, uplink up, real servers healthy).
    pub eligible: bool,
    /// Why not eligible, or held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Peers heard from within the dead interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers_alive: Vec<String>,
    /// MAC addresses of other hosts that answered ARP/NDP for the VIP at the last probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_owners: Vec<String>,
    /// The last time this node took the VIP over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
}

/// One takeover of a VIP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    /// The director that held the VIP before, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The director that took it.
    pub to: String,
    /// Why: `PeerDead`, `PeerStandby`, `Preempt`, `Startup`.
    pub reason: String,
    /// When the takeover was decided.
    pub detected_at: Time,
    /// When the first gratuitous ARP / unsolicited NA went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_sent_at: Option<Time>,
    /// From the last heartbeat heard from the previous holder to the decision, in
    /// milliseconds (0 without a previous holder).
    pub detection_millis: u64,
    /// From the last heartbeat heard from the previous holder (or the decision, if none) to
    /// the first announcement, in milliseconds.
    pub duration_millis: u64,
}

/// The connection-sync daemons on one director.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSyncStatus {
    /// Sync ID.
    pub sync_id: u8,
    /// Interface.
    pub interface: String,
    /// The master daemon (sending) runs: this node is active for a synced VIP.
    pub master: bool,
    /// The backup daemon (receiving) runs.
    pub backup: bool,
    /// IPVS connection entries this node holds for its failover VIPs (on a standby: the
    /// connections it would take over).
    pub connections: u64,
}
