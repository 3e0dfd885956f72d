//! Status computation on small clusters: the reasons the mock-API scenarios do not reach — no
//! director, a kernel refusal, a director still on an older generation, invalid and mismatched
//! real servers, real servers outside the cluster — and transition times carried forward.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use lvs_api::{LvsNodeConfig, RealServer, VirtualServer};
use lvs_core::object::{Kind, key_of};
use lvs_core::{BuildInput, BuildOutput};
use serde_json::{Value, json};

use super::*;

mod dual_stack;

fn time(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

fn virtual_server(spec: Value) -> VirtualServer {
    let mut base = json!({
        "address": "10.100.0.100", "port": 80,
        "realServers": { "selector": { "matchLabels": { "app": "web" } } },
    });
    base.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "VirtualServer",
        "metadata": { "name": "web", "namespace": "default", "generation": 2 },
        "spec": base,
    }))
    .unwrap()
}

fn real_server(name: &str, spec: Value) -> RealServer {
    serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "RealServer",
        "metadata": { "name": name, "namespace": "default", "generation": 1, "labels": { "app": "web" } },
        "spec": spec,
    }))
    .unwrap()
}

fn node(name: &str, address: &str, role: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": { format!("lvs.operator.io/{role}"): "true" } },
        "status": { "addresses": [{ "type": "InternalIP", "address": address }] },
    }))
    .unwrap()
}

/// A director's report on `default/web`.
fn report(node: &str, service: Value) -> LvsNodeConfig {
    serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "LvsNodeConfig",
        "metadata": { "name": node },
        "spec": { "nodeName": node },
        "status": { "services": [service] },
    }))
    .unwrap()
}

struct Cluster {
    virtual_server: VirtualServer,
    real_servers: Vec<RealServer>,
    output: BuildOutput,
    services: BTreeMap<ObjectKey, Service>,
    reports: AgentReports,
}

fn resolve(
    virtual_server: VirtualServer,
    real_servers: Vec<RealServer>,
    nodes: Vec<Node>,
    reports: &[LvsNodeConfig],
) -> Cluster {
    let configured = BTreeSet::new();
    let pools: Vec<lvs_api::AddressPool> = vec![
        serde_json::from_value(json!({
            "apiVersion": "lvs.operator.io/v1alpha1", "kind": "AddressPool",
            "metadata": { "name": "open" },
            "spec": { "addresses": ["10.100.0.0/24", "fd00:100::/112"], "namespaceSelector": {},
                      "backendNetworks": ["0.0.0.0/0", "192.0.2.0/24", "::/0"] },
        }))
        .unwrap(),
    ];
    let output = lvs_core::build(BuildInput {
        pools: (&pools).into(),
        namespaces: lvs_core::Objects::Slice(&[]),
        settings: &lvs_core::ClusterSettings::default(),
        virtual_servers: std::slice::from_ref(&virtual_server).into(),
        real_servers: (&real_servers).into(),
        nodes: (&nodes).into(),
        configured_vips: Some(&configured),
    });
    let reports = AgentReports::new(reports);
    let key = key_of(Kind::VirtualServer, &virtual_server.metadata);
    let services = output
        .virtual_servers
        .get(&key)
        .filter(|outcome| outcome.accepted)
        .map(|outcome| {
            let service = Service::new(
                &key,
                virtual_server.metadata.generation,
                outcome,
                &output,
                &reports,
            );
            (key.clone(), service)
        })
        .into_iter()
        .collect();
    Cluster {
        virtual_server,
        real_servers,
        output,
        services,
        reports,
    }
}

impl Cluster {
    fn virtual_server_status(&self, previous: Option<&VirtualServerStatus>, now: i64) -> VirtualServerStatus {
        let key = key_of(Kind::VirtualServer, &self.virtual_server.metadata);
        virtual_server_status(
            &self.virtual_server,
            &self.output,
            self.services.get(&key),
            previous,
            &time(now),
        )
    }

    fn real_server_status(&self, name: &str) -> RealServerStatus {
        let object = self
            .real_servers
            .iter()
            .find(|object| object.metadata.name.as_deref() == Some(name))
            .unwrap();
        real_server_status(
            object,
            &self.output,
            &self.services,
            &self.reports,
            None,
            &time(1),
        )
    }
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> (&'a str, &'a str, &'a str) {
    let condition = conditions
        .iter()
        .find(|condition| condition.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {conditions:?}"));
    (&condition.status, &condition.reason, &condition.message)
}

fn directors() -> Vec<Node> {
    vec![
        node("director-1", "10.100.0.2", "director"),
        node("director-2", "10.100.0.3", "director"),
    ]
}

#[test]
fn without_a_director_node_nothing_programs_the_service() {
    let cluster = resolve(virtual_server(json!({})), vec![], vec![], &[]);
    let status = cluster.virtual_server_status(None, 1);
    assert_eq!(find(&status.conditions, "Accepted").0, "True");
    let (state, reason, message) = find(&status.conditions, "Programmed");
    assert_eq!((state, reason), ("False", "NoDirectors"));
    assert!(message.contains("lvs.operator.io/director=true"), "{message}");
    assert_eq!(find(&status.conditions, "Ready").1, "NoDirectors");
    assert_eq!(status.ready.as_deref(), Some("0/0"));
    assert_eq!(status.observed_generation, Some(2));
}

#[test]
fn a_foreign_ipvs_service_on_a_director_is_its_own_reason() {
    let refused = report(
        "director-1",
        json!({ "virtualServer": "default/web", "generation": 2, "programmed": false, "role": "Active",
                "message": "an IPVS service TCP 10.100.0.100:80 exists that lvs-operator did not create; left alone",
                "reason": "ForeignService" }),
    );
    let odd = report(
        "director-2",
        json!({ "virtualServer": "default/web", "generation": 2, "programmed": false, "role": "Active",
                "message": "refused", "reason": "SomethingNew" }),
    );
    let cluster = resolve(virtual_server(json!({})), vec![], directors(), &[refused]);
    let status = cluster.virtual_server_status(None, 1);
    let (state, reason, message) = find(&status.conditions, "Programmed");
    assert_eq!((state, reason), ("False", "ForeignService"));
    assert_eq!(
        message,
        "0/2 directors; director-1: an IPVS service TCP 10.100.0.100:80 exists that lvs-operator did not create; left alone"
    );
    let cluster = resolve(virtual_server(json!({})), vec![], directors(), &[odd]);
    let status = cluster.virtual_server_status(None, 1);
    let (_, reason, _) = find(&status.conditions, "Programmed");
    assert_eq!(
        reason, "KernelError",
        "a reason the controller does not know is not passed on"
    );
}

#[test]
fn a_kernel_refusal_on_one_director_and_an_old_generation_on_the_other() {
    let refused = report(
        "director-1",
        json!({ "virtualServer": "default/web", "generation": 2, "programmed": false, "role": "Active",
                "message": "the kernel has no scheduler twos" }),
    );
    let old = report(
        "director-2",
        json!({ "virtualServer": "default/web", "generation": 1, "programmed": true, "role": "Active",
                "destinations": [{ "realServer": "default/web-1", "healthy": true, "weight": 1 }] }),
    );
    let cluster = resolve(
        virtual_server(json!({ "scheduler": "twos" })),
        vec![real_server("web-1", json!({ "address": "192.0.2.1" }))],
        directors(),
        &[refused, old],
    );
    let status = cluster.virtual_server_status(None, 1);
    let (state, reason, message) = find(&status.conditions, "Programmed");
    assert_eq!((state, reason), ("False", "KernelError"));
    assert_eq!(
        message,
        "0/2 directors; director-1: the kernel has no scheduler twos"
    );
    assert_eq!(
        status.active_director, None,
        "a director on generation 1 does not serve generation 2"
    );
    assert_eq!(find(&status.conditions, "Ready").1, "Pending");
    assert_eq!(find(&status.conditions, "Degraded").0, "True");
    assert_eq!(
        find(&cluster.real_server_status("web-1").conditions, "Healthy"),
        (
            "Unknown",
            "Pending",
            "no health-check result yet (or health checking is off)"
        )
    );
}

#[test]
fn no_healthy_real_server_means_not_ready_and_says_the_fallback_answers() {
    let serving = report(
        "director-1",
        json!({ "virtualServer": "default/web", "generation": 2, "programmed": true, "role": "Active",
                "destinations": [{ "realServer": "default/web-1", "healthy": false, "weight": 0,
                                   "lastFailure": "HTTP 503" }] }),
    );
    let cluster = resolve(
        virtual_server(json!({ "fallback": { "address": "192.0.2.99" } })),
        vec![real_server("web-1", json!({ "address": "192.0.2.1" }))],
        vec![node("director-1", "10.100.0.2", "director")],
        &[serving],
    );
    let status = cluster.virtual_server_status(None, 1);
    let (state, reason, message) = find(&status.conditions, "Ready");
    assert_eq!((state, reason), ("False", "NoHealthyRealServers"));
    assert!(message.ends_with("the fallback server answers"), "{message}");
    assert_eq!(find(&status.conditions, "Programmed").0, "True");
    let real_server = cluster.real_server_status("web-1");
    let (state, reason, message) = find(&real_server.conditions, "Healthy");
    assert_eq!((state, reason), ("False", "CheckFailed"));
    assert_eq!(
        message,
        "failing its checks from director-1 for default/web: HTTP 503"
    );
    let (state, reason, _) = find(&real_server.conditions, "Configured");
    assert_eq!(
        (state, reason),
        ("Unknown", "Unmanaged"),
        "192.0.2.1 is no node of ours"
    );
    assert_eq!(real_server.node, None);
}

#[test]
fn invalid_and_mismatched_real_servers_are_not_configured() {
    let cluster = resolve(
        virtual_server(json!({})),
        vec![
            real_server("bad", json!({ "address": "not-an-ip" })),
            real_server("remapped", json!({ "address": "192.0.2.2", "port": 8080 })),
        ],
        vec![node("director-1", "10.100.0.2", "director")],
        &[],
    );
    let bad = cluster.real_server_status("bad");
    let (state, reason, _) = find(&bad.conditions, "Configured");
    assert_eq!((state, reason), ("False", "Invalid"));
    let remapped = cluster.real_server_status("remapped");
    let (state, reason, message) = find(&remapped.conditions, "Configured");
    assert_eq!((state, reason), ("False", "PortRemapNotAllowed"));
    assert!(message.starts_with("spec.port: 8080"), "{message}");
    assert!(remapped.virtual_servers.is_empty());
    assert!(
        remapped
            .conditions
            .iter()
            .all(|condition| condition.type_ != "Healthy"),
        "no VirtualServer uses it, so there is no health to report"
    );
    assert_eq!(
        cluster.virtual_server_status(None, 1).ready.as_deref(),
        Some("0/0")
    );
}

#[test]
fn transition_times_are_carried_forward_and_equal_statuses_compare_equal() {
    let cluster = resolve(virtual_server(json!({})), vec![], vec![], &[]);
    let first = cluster.virtual_server_status(None, 100);
    let second = cluster.virtual_server_status(Some(&first), 200);
    assert!(same_virtual_server_status(&first, &second));
    assert!(
        second
            .conditions
            .iter()
            .all(|condition| condition.last_transition_time == time(100))
    );
    let mut older = first;
    older.observed_generation = Some(1);
    assert!(!same_virtual_server_status(&older, &second));
}

/// A director's report with failover state for 10.100.0.100.
fn failover_report(node: &str, role: &str, failover: Value) -> LvsNodeConfig {
    let mut config = report(
        node,
        json!({ "virtualServer": "default/web", "generation": 2, "programmed": true, "role": role,
                "destinations": [{ "realServer": "default/web-1", "healthy": true, "weight": 1 }] }),
    );
    let mut entry = json!({ "address": "10.100.0.100", "role": role, "eligible": true });
    entry
        .as_object_mut()
        .unwrap()
        .extend(failover.as_object().unwrap().clone());
    config.status.as_mut().unwrap().failover = vec![serde_json::from_value(entry).unwrap()];
    config
}

#[test]
fn failover_directors_report_the_active_one_the_last_takeover_and_a_duplicate_vip() {
    let takeover = |from: &str, to: &str, second: i64| {
        json!({ "from": from, "to": to, "reason": "PeerDead",
                "detectedAt": format!("1970-01-01T00:00:{second:02}Z"),
                "detectionMillis": 600, "durationMillis": 640 })
    };
    let active = failover_report(
        "director-2",
        "Active",
        json!({ "lastFailover": takeover("director-1", "director-2", 20) }),
    );
    let standby = failover_report(
        "director-1",
        "Standby",
        json!({ "duplicateOwners": ["02:00:0a:64:00:03"],
                "lastFailover": takeover("director-2", "director-1", 10) }),
    );
    let cluster = resolve(
        virtual_server(json!({})),
        vec![real_server("web-1", json!({ "address": "192.0.2.1" }))],
        directors(),
        &[standby, active],
    );
    let status = cluster.virtual_server_status(None, 1);
    assert_eq!(status.active_director.as_deref(), Some("director-2"));
    let roles: Vec<_> = status
        .directors
        .iter()
        .map(|director| (director.node.as_str(), director.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("director-1", Some(FailoverRole::Standby)),
            ("director-2", Some(FailoverRole::Active))
        ]
    );
    let last = status.last_failover.expect("the newest takeover");
    assert_eq!(
        (last.from.as_deref(), last.to.as_str()),
        (Some("director-1"), "director-2")
    );
    let (state, reason, message) = find(&status.conditions, "DuplicateVIP");
    assert_eq!((state, reason), ("True", "AnsweredElsewhere"));
    assert_eq!(
        message,
        "another host answers ARP/NDP for the VIP: director-1 sees 02:00:0a:64:00:03"
    );

    let single = resolve(
        virtual_server(json!({})),
        vec![],
        vec![node("director-1", "10.100.0.2", "director")],
        &[],
    );
    assert!(
        single
            .virtual_server_status(None, 1)
            .conditions
            .iter()
            .all(|condition| condition.type_ != "DuplicateVIP"),
        "no failover, no DuplicateVIP condition"
    );
}

#[test]
fn a_director_hearing_its_peer_under_another_key_makes_failover_key_mismatch_true() {
    let active = failover_report("director-2", "Active", json!({}));
    let standby = failover_report(
        "director-1",
        "Standby",
        json!({ "keyMismatch": [{ "node": "director-2", "keyId": "0123456789abcdef" }] }),
    );
    let cluster = resolve(
        virtual_server(json!({})),
        vec![real_server("web-1", json!({ "address": "192.0.2.1" }))],
        directors(),
        &[standby, active.clone()],
    );
    let status = cluster.virtual_server_status(None, 1);
    let (state, reason, message) = find(&status.conditions, "FailoverKeyMismatch");
    assert_eq!((state, reason), ("True", "PeerUsesAnotherKey"));
    assert!(
        message.contains("director-1 hears director-2 under key id 0123456789abcdef"),
        "{message}"
    );
    let agreeing = failover_report("director-1", "Standby", json!({}));
    let cluster = resolve(
        virtual_server(json!({})),
        vec![real_server("web-1", json!({ "address": "192.0.2.1" }))],
        directors(),
        &[agreeing, active],
    );
    let status = cluster.virtual_server_status(None, 1);
    let (state, reason, _) = find(&status.conditions, "FailoverKeyMismatch");
    assert_eq!((state, reason), ("False", "KeysMatch"));
}
