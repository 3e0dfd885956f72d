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
