//! `LvsNodeConfig` on the wire: addresses, roles and takeover reasons are typed, so a bad value
//! is rejected when the object is read (naming the field), and a good object reads and writes back
//! exactly as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use lvs_api::{FailoverRole, LvsNodeConfig, TakeoverReason};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// A node config in the form lvs-controller and lvs-agent write it, with every typed field.
fn node_config() -> Value {
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "LvsNodeConfig",
        "metadata": {"name": "director-1"},
        "spec": {
            "nodeName": "director-1",
            "shard": {"index": 0, "count": 1},
            "directorServices": [{
                "virtualServer": "default/web",
                "generation": 3,
                "address": "10.100.0.100",
                "port": 80,
                "protocol": "TCP",
                "family": "IPv4",
                "scheduler": "wlc",
                "onePacket": false,
                "forwarding": {"method": "NAT"},
                "vipPlacement": "Dummy",
                "healthCheck": {
                    "type": "TCP",
                    "intervalSeconds": 5,
                    "timeoutSeconds": 3,
                    "rise": 2,
                    "fall": 3
                },
                "onFailure": "Quiescent",
                "fallback": {"address": "10.100.0.13", "port": 8080},
                "directors": ["director-1", "director-2"],
                "highAvailability": {
                    "peers": [
                        {"node": "director-1", "address": "192.0.2.1"},
                        {"node": "director-2", "address": "2001:db8::2"},
                        {"node": "director-3"}
                    ],
                    "heartbeatIntervalMillis": 200,
                    "deadAfter": 3,
                    "preempt": false,
                    "preemptDelaySeconds": 5
                },
                "destinations": [{
                    "realServer": "default/web-1",
                    "address": "10.100.0.11",
                    "port": 8080,
                    "weight": 1,
                    "thresholds": {"upper": 0, "lower": 0},
                    "state": "Active",
                    "awaitingNode": false
                }]
            }],
            "realServerVips": [{
                "address": "fd00:100::100",
                "arpMethod": "Sysctl",
                "device": "lo",
                "virtualServers": ["default/web6"]
            }]
        },
        "status": {
            "services": [{
                "virtualServer": "default/web",
                "programmed": true,
                "role": "Standby"
            }],
            "realServerVips": [{"address": "fd00:100::100", "configured": true}],
            "failover": [{
                "address": "10.100.0.100",
                "role": "Active",
                "activeDirector": "director-1",
                "eligible": true,
                "lastFailover": {
                    "to": "director-1",
                    "reason": "PeerDead",
                    "detectedAt": "2026-12-01T10:00:00Z",
                    "detectionMillis": 612,
                    "durationMillis": 640
                }
            }],
            "driftRepairs": 0
        }
    })
}

fn read(value: &Value) -> Result<LvsNodeConfig, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(value)
}

#[test]
fn a_valid_node_config_round_trips_unchanged() {
    let original = node_config();
    let config = read(&original).expect("a valid node config");

    let service = &config.spec.director_services[0];
    assert_eq!(service.address, Some("10.100.0.100".parse().unwrap()));
    let peers = &service.high_availability.as_ref().unwrap().peers;
    assert_eq!(peers[1].address, Some("2001:db8::2".parse().unwrap()));
    assert_eq!(peers[2].address, None);
    let status = config.status.as_ref().unwrap();
    assert_eq!(status.services[0].role, Some(FailoverRole::Standby));
    assert_eq!(status.failover[0].role, FailoverRole::Active);
    assert_eq!(
        status.failover[0].last_failover.as_ref().unwrap().reason,
        TakeoverReason::PeerDead
    );

    assert_eq!(serde_json::to_value(&config).unwrap(), original);
}

#[test]
fn an_invalid_address_role_or_reason_is_rejected_naming_the_field() {
    let cases = [
        (
            "/spec/directorServices/0/address",
            json!("10.100.0.300"),
            "spec.directorServices[0].address",
        ),
        (
            "/spec/directorServices/0/destinations/0/address",
            json!("web-1.example"),
            "spec.directorServices[0].destinations[0].address",
        ),
        (
            "/spec/directorServices/0/fallback/address",
            json!("10.100.0.13:8080"),
            "spec.directorServices[0].fallback.address",
        ),
        (
            "/spec/directorServices/0/highAvailability/peers/1/address",
            json!(""),
            "spec.directorServices[0].highAvailability.peers[1].address",
        ),
        (
            "/spec/realServerVips/0/address",
            json!("fd00:100::100/128"),
            "spec.realServerVips[0].address",
        ),
        (
            "/status/realServerVips/0/address",
            json!(" fd00:100::100"),
            "status.realServerVips[0].address",
        ),
        (
            "/status/failover/0/address",
            json!(10),
            "status.failover[0].address",
        ),
        (
            "/status/failover/0/role",
            json!("active"),
            "status.failover[0].role",
        ),
        (
            "/status/services/0/role",
            json!("Leader"),
            "status.services[0].role",
        ),
        (
            "/status/failover/0/lastFailover/reason",
            json!("the holder fell silent"),
            "status.failover[0].lastFailover.reason",
        ),
    ];
    for (pointer, bad, field) in cases {
        let mut object = node_config();
        *object.pointer_mut(pointer).unwrap() = bad.clone();
        let error = read(&object).expect_err(&format!("{field} = {bad} must be rejected"));
        assert_eq!(error.path().to_string(), field, "{error}");
        assert!(error.to_string().starts_with(&format!("{field}: ")), "{error}");
    }
}
