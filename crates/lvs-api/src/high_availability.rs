//! Highly available directors: how the directors of a VIP elect the one that holds it (the
//! spec users write), what the controller resolves for each agent, and what agents report.

use std::net::IpAddr;

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
    /// Director node names, most preferred first, up to 16; directors not listed follow in name
    /// order, and names that are not directors of this VirtualServer are ignored. Every director
    /// computes the same order, and the first live, eligible one holds the VIP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    #[x_kube(validation = kube::core::Rule::new(crate::limits::NODE_NAMES).message(crate::limits::NODE_NAME_MESSAGE))]
    pub priority: Vec<String>,
    /// Milliseconds between heartbeats to each peer director, 20–10000 (default 200).
    #[serde(default = "default_heartbeat_interval")]
    #[schemars(range(min = 20, max = 10000))]
    pub heartbeat_interval_millis: u32,
    /// Heartbeat intervals without a word after which a peer counts as dead and a standby may take
    /// the VIP, 2–100 (default 3: 600 ms at the default interval).
    #[serde(default = "default_dead_after")]
    #[schemars(range(min = 2, max = 100))]
    pub dead_after: u32,
    /// Whether a higher-priority director takes the VIP back from a lower one that holds it
    /// (default false: the VIP stays where it is until that director fails or stops being
    /// eligible).
    #[serde(default)]
    pub preempt: bool,
    /// With `preempt`: seconds a higher-priority director must have been eligible (its IPVS
    /// services programmed, uplink up) before it asks for the VIP back, 0–3600 (default 5).
    #[serde(default = "default_preempt_delay")]
    #[schemars(range(max = 3600))]
    pub preempt_delay_seconds: u32,
    /// IPVS connection synchronisation between the directors, so established connections survive a
    /// failover (on by default). A director runs one pair of sync daemons, set up for its first
    /// synced VIP: give VirtualServers on the same directors the same settings.
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

/// The kernel's connection-sync daemons: the active director sends its connection table, the
/// standbys receive it, so connections survive a failover.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSyncSpec {
    /// Whether to run the sync daemons (default true). Without them, established connections break
    /// on failover.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Sync ID shared by the directors of this VIP, 0–255 (default 0); directors ignore sync
    /// messages with another ID, which separates director groups on one network.
    #[serde(default)]
    pub sync_id: u8,
    /// Interface the sync messages (multicast to 224.0.0.81) go out and come in on: 1–15
    /// characters, not `.` or `..`, without `/`, `:`, whitespace or control characters. Default:
    /// `directors.interface`; with neither set, connection sync does not run and the VirtualServer
    /// gets a NoSyncInterface warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[x_kube(validation = kube::core::Rule::new(crate::limits::INTERFACE_NAME).message(crate::limits::INTERFACE_NAME_MESSAGE))]
    pub interface: Option<String>,
    /// With `preempt`: seconds a returning director must have run as a synced backup before it asks
    /// for the VIP back, 0–3600 (default 3), so the connections it takes over are already in its
    /// table.
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

/// A director's role for a VIP, as it reports it (`ServiceStatus.role`, `VipFailoverStatus.role`,
/// `DirectorStatus.role`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
// No schema description of its own: kube hoists an `Option`'s inner schema over the field's, and
// the field's description is the one `kubectl explain` should show.
#[schemars(description = "")]
pub enum FailoverRole {
    /// This director holds the VIP.
    Active,
    /// Another director holds the VIP, or none does.
    Standby,
}

impl FailoverRole {
    /// `Active` or `Standby`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Standby => "Standby",
        }
    }
}

impl std::fmt::Display for FailoverRole {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a director took a VIP over (`FailoverRecord.reason`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum TakeoverReason {
    /// The holder fell silent.
    PeerDead,
    /// The holder is alive but gave the VIP up.
    PeerStandby,
    /// A higher-priority director asked for the VIP back.
    Preempt,
    /// No holder was known.
    Startup,
}

impl TakeoverReason {
    /// The name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeerDead => "PeerDead",
            Self::PeerStandby => "PeerStandby",
            Self::Preempt => "Preempt",
            Self::Startup => "Startup",
        }
    }
}

impl std::fmt::Display for TakeoverReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Failover settings of one VIP as lvs-controller resolved them for its directors' agents.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedHighAvailability {
    /// Every director of the VIP, highest priority first, with the address its heartbeats go to.
    pub peers: Vec<DirectorPeer>,
    /// Milliseconds between heartbeats to each peer.
    pub heartbeat_interval_millis: u32,
    /// Heartbeat intervals of silence after which a peer counts as dead.
    pub dead_after: u32,
    /// Whether a higher-priority director takes the VIP back from a lower one.
    #[serde(default)]
    pub preempt: bool,
    /// Seconds a higher-priority director must have been eligible before it asks for the VIP back.
    #[serde(default)]
    pub preempt_delay_seconds: u32,
    /// Connection sync; absent when it is disabled or no interface is known for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<ResolvedConnectionSync>,
}

/// One director of a failover VIP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorPeer {
    /// Name of the director node.
    pub node: String,
    /// Address its heartbeats go to: the node's first InternalIP of the VIP's family, else its
    /// first InternalIP, else an ExternalIP. Absent when the Node lists none: its peers then cannot
    /// reach it and treat it as down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// Connection sync as resolved for the directors of one VIP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedConnectionSync {
    /// Sync ID of the sync daemons, 0–255.
    pub sync_id: u8,
    /// Interface the sync daemons use: `connectionSync.interface`, else `directors.interface`.
    pub interface: String,
    /// Seconds a returning director must have run as a synced backup before it asks for the VIP
    /// back.
    pub failback_sync_seconds: u32,
}

/// Failover state of one VIP on one director, as that director's agent reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VipFailoverStatus {
    /// The VIP.
    pub address: IpAddr,
    /// Active when this node holds the VIP, Standby otherwise.
    pub role: FailoverRole,
    /// The director holding the VIP as this node sees it: itself when Active, else a live peer that
    /// reports Active; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_director: Option<String>,
    /// Whether this node may hold the VIP: every IPVS service of the VIP is programmed and the
    /// uplink is up. While some director has healthy real servers, one without any is passed over
    /// even when eligible.
    pub eligible: bool,
    /// Why this node does not hold the VIP or gave it up, e.g. not eligible, another director holds
    /// it or has a higher priority, still listening for peers after a start, another host answers
    /// for the VIP, or the agent has no failover key or cannot listen for heartbeats; absent when
    /// there is nothing to explain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Peer directors heard from within the last `deadAfter` heartbeat intervals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers_alive: Vec<String>,
    /// MAC addresses of other hosts that answered ARP (IPv4) or NDP (IPv6) for the VIP at the last
    /// probe, which runs every second while this node is active or holding back. Not empty means
    /// split brain: the DuplicateVIP condition is True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_owners: Vec<String>,
    /// Peer directors of the VIP heard within the last `deadAfter` heartbeat intervals signing
    /// their heartbeats with a key this node does not have: the two cannot hear each other (and
    /// may both hold the VIP). Not empty makes the FailoverKeyMismatch condition True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_mismatch: Vec<PeerKeyMismatch>,
    /// The last time this node took the VIP over since its agent started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
}

/// A peer director heard signing its heartbeats with a key this node does not have.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerKeyMismatch {
    /// The peer's node name.
    pub node: String,
    /// The id of the key it signs with: the first 8 bytes of the key's SHA-256, in hexadecimal
    /// (the agent logs the ids of its own keys at start).
    pub key_id: String,
}

/// One takeover of a VIP by a director.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    /// The director that held the VIP before, if the new holder had heard one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The director that took the VIP.
    pub to: String,
    /// Why: `PeerDead` (the holder fell silent), `PeerStandby` (the holder is alive but gave the
    /// VIP up), `Preempt` (a higher-priority director asked for it back) or `Startup` (no holder
    /// was known).
    pub reason: TakeoverReason,
    /// When the takeover was decided.
    pub detected_at: Time,
    /// When the first gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) went out;
    /// absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_sent_at: Option<Time>,
    /// Milliseconds from the last heartbeat heard from the previous holder to the decision (0
    /// without a previous holder). Filled in at the first announcement.
    pub detection_millis: u64,
    /// Milliseconds from the last heartbeat heard from the previous holder (or from the decision,
    /// without one) to the first announcement. Filled in at the first announcement.
    pub duration_millis: u64,
}

/// The connection-sync daemons on one director.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSyncStatus {
    /// Sync ID the daemons use.
    pub sync_id: u8,
    /// Interface the daemons use.
    pub interface: String,
    /// Whether the master (sending) daemon runs: this node is active for a synced VIP.
    pub master: bool,
    /// Whether the backup (receiving) daemon runs.
    pub backup: bool,
    /// IPVS connection entries this node holds for its failover VIPs (on a standby: the connections
    /// it would take over). Written at full resyncs (every 30 s by default) or with other status
    /// changes, so it may lag.
    pub connections: u64,
}
