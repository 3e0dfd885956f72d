//! The failover state as `LvsNodeConfig.status` shows it: the one place the agent's typed
//! records become the API's types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::{FailoverRecord, FailoverRole, PeerKeyMismatch, VipFailoverStatus};

use super::record::{Takeover, VipStatus};
use super::wire::Role;

/// One VIP's failover state for the node's status.
pub fn vip_status(status: &VipStatus) -> VipFailoverStatus {
    VipFailoverStatus {
        address: status.address,
        role: role(status.role),
        active_director: status.active_director.clone(),
        eligible: status.eligible,
        message: status.message.clone(),
        peers_alive: status.peers_alive.clone(),
        duplicate_owners: status.duplicate_owners.clone(),
        key_mismatch: status
            .key_mismatch
            .iter()
            .map(|(node, key_id)| PeerKeyMismatch {
                node: node.clone(),
                key_id: key_id.clone(),
            })
            .collect(),
        last_failover: status.last_failover.as_ref().map(record),
    }
}

fn record(takeover: &Takeover) -> FailoverRecord {
    FailoverRecord {
        from: takeover.from.clone(),
        to: takeover.to.clone(),
        reason: takeover.reason,
        detected_at: time(takeover.detected_at),
        garp_sent_at: takeover.announced_at.map(time),
        detection_millis: millis(takeover.detection),
        duration_millis: millis(takeover.duration),
    }
}

/// The role as status shows it.
pub fn role(role: Role) -> FailoverRole {
    match role {
        Role::Active => FailoverRole::Active,
        Role::Standby => FailoverRole::Standby,
    }
}

fn time(at: std::time::SystemTime) -> Time {
    Time(k8s_openapi::jiff::Timestamp::try_from(at).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
