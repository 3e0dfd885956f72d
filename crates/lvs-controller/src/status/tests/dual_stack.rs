//! Status of a dual-stack VirtualServer: both VIPs reported (and in the VIP column's string),
//! its director's two services read as one, ready counts over both families.

use super::*;

fn dual_stack() -> VirtualServer {
    let mut object = virtual_server(json!({ "addresses": ["10.100.0.100", "fd00:100::100"] }));
    object.spec.address = None;
    object
}

fn real_servers() -> Vec<RealServer> {
    vec![
        real_server("v4", json!({ "address": "10.100.0.11" })),
        real_server("v6", json!({ "address": "fd00:100::11" })),
    ]
}

/// director-1's report on both services of `default/web`: the IPv4 one programmed, the IPv6
/// one as given.
fn reports(v6_programmed: bool) -> LvsNodeConfig {
    let destination =
        |name: &str| json!({ "realServer": format!("default/{name}"), "weight": 1, "healthy": true });
    serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "LvsNodeConfig",
        "metadata": { "name": "director-1" },
        "spec": { "nodeName": "director-1" },
        "status": { "services": [
            { "virtualServer": "default/web", "generation": 2, "programmed": true, "role": "Active",
              "destinations": [destination("v4")] },
            { "virtualServer": "default/web", "generation": 2, "programmed": v6_programmed, "role": "Active",
              "destinations": [destination("v6")] },
        ] },
    }))
    .unwrap()
}

#[test]
fn both_vips_are_reported_and_both_families_count_as_ready() {
    let nodes = vec![node("director-1", "10.100.0.2", "director")];
    let cluster = resolve(dual_stack(), real_servers(), nodes, &[reports(true)]);
    let status = cluster.virtual_server_status(None, 1);
    assert_eq!(find(&status.conditions, "Accepted").0, "True");
    assert_eq!(status.address.as_deref(), Some("10.100.0.100"));
    assert_eq!(status.address_pool.as_deref(), Some("open"));
    let addresses: Vec<(&str, Option<&str>)> = status
        .addresses
        .iter()
        .map(|entry| (entry.address.as_str(), entry.address_pool.as_deref()))
        .collect();
    assert_eq!(
        addresses,
        [("10.100.0.100", Some("open")), ("fd00:100::100", Some("open"))]
    );
    assert_eq!(status.vip.as_deref(), Some("10.100.0.100,fd00:100::100"));
    assert_eq!(status.ready.as_deref(), Some("2/2"));
    assert_eq!(find(&status.conditions, "Programmed").0, "True");
    assert_eq!(find(&status.conditions, "Ready").0, "True");
    assert_eq!(find(&status.conditions, "Degraded").0, "False");
    assert_eq!(status.active_director.as_deref(), Some("director-1"));
}

#[test]
fn one_family_not_programmed_leaves_the_virtual_server_not_programmed() {
    let nodes = vec![node("director-1", "10.100.0.2", "director")];
    let cluster = resolve(dual_stack(), real_servers(), nodes, &[reports(false)]);
    let status = cluster.virtual_server_status(None, 1);
    assert_eq!(find(&status.conditions, "Programmed").0, "False");
    assert_eq!(status.vip.as_deref(), Some("10.100.0.100,fd00:100::100"));
}

#[test]
fn a_single_stack_virtual_server_shows_its_one_vip() {
    let nodes = vec![node("director-1", "10.100.0.2", "director")];
    let cluster = resolve(virtual_server(json!({})), vec![], nodes, &[]);
    let status = cluster.virtual_server_status(None, 1);
    assert_eq!(status.vip.as_deref(), Some("10.100.0.100"));
    assert_eq!(status.addresses.len(), 1);
}

/// A dual-stack VirtualServer whose VIPs come from pools with different directors: the IPv4 one
/// directed by director-a, the IPv6 one by director-b.
fn split_directors() -> (VirtualServer, Vec<RealServer>, BuildOutput) {
    let pool = |name: &str, range: &str, zone: &str| -> lvs_api::AddressPool {
        serde_json::from_value(json!({
            "apiVersion": "lvs.operator.io/v1alpha1", "kind": "AddressPool",
            "metadata": { "name": name },
            "spec": { "addresses": [range], "namespaceSelector": {},
                      "directors": { "nodeSelector": { "zone": zone } },
                      "backendNetworks": ["0.0.0.0/0", "::/0"] },
        }))
        .unwrap()
    };
    let director = |name: &str, address: &str, zone: &str| -> Node {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "labels": { "lvs.operator.io/director": "true", "zone": zone } },
            "status": { "addresses": [{ "type": "InternalIP", "address": address }] },
        }))
        .unwrap()
    };
    let pools = vec![
        pool("v4", "10.100.0.0/24", "a"),
        pool("v6", "fd00:100::/112", "b"),
    ];
    let nodes = vec![
        director("director-a", "10.100.0.2", "a"),
        director("director-b", "10.100.0.3", "b"),
    ];
    let object = dual_stack();
    let real_servers = real_servers();
    let output = lvs_core::build(BuildInput {
        pools: (&pools).into(),
        namespaces: lvs_core::Objects::Slice(&[]),
        settings: &lvs_core::ClusterSettings::default(),
        virtual_servers: std::slice::from_ref(&object).into(),
        real_servers: (&real_servers).into(),
        nodes: (&nodes).into(),
        configured_vips: None,
    });
    (object, real_servers, output)
}

#[test]
fn vips_with_different_directors_are_all_resolved_and_all_count_as_ready() {
    let (object, _, output) = split_directors();
    let key = key_of(Kind::VirtualServer, &object.metadata);
    let outcome = &output.virtual_servers[&key];
    assert_eq!(outcome.directors, ["director-a", "director-b"]);
    let report = |node: &str, name: &str| -> LvsNodeConfig {
        serde_json::from_value(json!({
            "apiVersion": "lvs.operator.io/v1alpha1", "kind": "LvsNodeConfig",
            "metadata": { "name": node }, "spec": { "nodeName": node },
            "status": { "services": [
                { "virtualServer": "default/web", "generation": 2, "programmed": true, "role": "Active",
                  "destinations": [{ "realServer": format!("default/{name}"), "weight": 1, "healthy": true }] },
            ] },
        }))
        .unwrap()
    };
    let reports = AgentReports::new(&[report("director-a", "v4"), report("director-b", "v6")]);
    let service = Service::new(&key, Some(2), outcome, &output, &reports);
    let resolved: Vec<String> = service
        .resolved
        .iter()
        .map(|resolved| resolved.address.unwrap().to_string())
        .collect();
    assert_eq!(resolved, ["10.100.0.100", "fd00:100::100"]);
    let status = virtual_server_status(&object, &output, Some(&service), None, &time(1));
    assert_eq!(status.ready.as_deref(), Some("2/2"));
    assert_eq!(find(&status.conditions, "Degraded").0, "False");
    assert_eq!(status.active_director.as_deref(), Some("director-a"));
}

#[test]
fn a_real_server_waits_only_for_the_vip_of_its_own_family() {
    // rs-1 holds a real server of each family, so it gets both VIPs; only the IPv4 one is
    // configured yet.
    let rs_node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": "rs-1", "labels": { "lvs.operator.io/real-server": "true" } },
        "status": { "addresses": [{ "type": "InternalIP", "address": "10.100.0.11" },
                                  { "type": "InternalIP", "address": "fd00:100::11" }] },
    }))
    .unwrap();
    let vips: LvsNodeConfig = serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "LvsNodeConfig",
        "metadata": { "name": "rs-1" }, "spec": { "nodeName": "rs-1" },
        "status": { "realServerVips": [{ "address": "10.100.0.100", "configured": true }] },
    }))
    .unwrap();
    let nodes = vec![node("director-1", "10.100.0.2", "director"), rs_node];
    let cluster = resolve(dual_stack(), real_servers(), nodes, &[reports(true), vips]);
    assert_eq!(
        cluster.output.node_configs["rs-1"]
            .real_server_vips
            .iter()
            .map(|vip| vip.address.to_string())
            .collect::<Vec<_>>(),
        ["10.100.0.100", "fd00:100::100"]
    );
    let v4 = cluster.real_server_status("v4");
    let (state, _, message) = find(&v4.conditions, "Configured");
    assert_eq!(state, "True", "{message}");
    assert_eq!(message, "node rs-1 accepts 10.100.0.100");
    let v6 = cluster.real_server_status("v6");
    let (state, reason, message) = find(&v6.conditions, "Configured");
    assert_eq!((state, reason), ("False", "Pending"), "{message}");
    assert!(message.ends_with("configure fd00:100::100"), "{message}");
}
