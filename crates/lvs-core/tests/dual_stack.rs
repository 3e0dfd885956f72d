//! `build` of dual-stack VirtualServers: one IPVS service per VIP, each served by the real
//! servers of its family; each VIP admitted (or picked) by a pool of its own; conflicts and
//! failover per VIP; the VirtualServer accepted whole or not at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::net::IpAddr;
use std::path::Path;

use lvs_api::{AddressFamily, DirectorService, conditions::reasons};
use lvs_core::manifest::Manifests;
use lvs_core::object::{Kind, ObjectKey};
use lvs_core::{BuildOutput, ClusterSettings, Severity, build};
use pretty_assertions::assert_eq;

static SETTINGS: std::sync::LazyLock<ClusterSettings> = std::sync::LazyLock::new(ClusterSettings::default);

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
    )
    .unwrap()
}

fn manifests(texts: &[&str]) -> Manifests {
    let mut manifests = Manifests::default();
    for (index, text) in texts.iter().enumerate() {
        let problems = manifests.read(&format!("input-{index}"), text);
        assert!(problems.is_empty(), "{problems:?}");
    }
    manifests
}

fn run(manifests: &Manifests) -> BuildOutput {
    build(manifests.build_input(&SETTINGS))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn errors(output: &BuildOutput) -> Vec<String> {
    output
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

/// The services of `name` on `node`, IPv4 first.
fn services<'a>(output: &'a BuildOutput, node: &str, name: &str) -> Vec<&'a DirectorService> {
    output
        .node_configs
        .get(node)
        .map(|config| {
            config
                .director_services
                .iter()
                .filter(|service| service.virtual_server == name)
                .collect()
        })
        .unwrap_or_default()
}

/// Each service's VIP with its destinations' real servers.
fn served(services: &[&DirectorService]) -> Vec<(String, Vec<String>)> {
    services
        .iter()
        .map(|service| {
            (
                service
                    .address
                    .map(|address| address.to_string())
                    .unwrap_or_default(),
                service
                    .destinations
                    .iter()
                    .map(|destination| destination.real_server.clone())
                    .collect(),
            )
        })
        .collect()
}

fn vips(output: &BuildOutput, node: &str) -> Vec<String> {
    output.node_configs[node]
        .real_server_vips
        .iter()
        .map(|vip| vip.address.to_string())
        .collect()
}

fn key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(Kind::VirtualServer, namespace, name)
}

const NODES: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: lb-a, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: InternalIP, address: 192.0.2.2}, {type: InternalIP, address: "2001:db8::2"}]}
---
apiVersion: v1
kind: Node
metadata: {name: lb-b, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: InternalIP, address: 192.0.2.3}, {type: InternalIP, address: "2001:db8::3"}]}
---
apiVersion: v1
kind: Node
metadata: {name: backend-4, labels: {lvs.operator.io/real-server: "true"}}
status: {addresses: [{type: InternalIP, address: 192.0.2.11}]}
---
apiVersion: v1
kind: Node
metadata: {name: backend-6, labels: {lvs.operator.io/real-server: "true"}}
status: {addresses: [{type: InternalIP, address: "2001:db8::11"}]}
---
apiVersion: lvs.operator.io/v1alpha1
kind: RealServer
metadata: {name: rs-4, namespace: ns, labels: {app: web}}
spec: {address: 192.0.2.11}
---
apiVersion: lvs.operator.io/v1alpha1
kind: RealServer
metadata: {name: rs-6, namespace: ns, labels: {app: web}}
spec: {address: "2001:db8::11"}
"#;

const POOLS: &str = r#"
apiVersion: lvs.operator.io/v1alpha1
kind: AddressPool
metadata: {name: v4}
spec: {addresses: [198.51.100.0/24], namespaceSelector: {}, backendNetworks: [192.0.2.0/24]}
---
apiVersion: lvs.operator.io/v1alpha1
kind: AddressPool
metadata: {name: v6}
spec: {addresses: ["2001:db8:100::/120"], namespaceSelector: {}, backendNetworks: ["2001:db8::/64"]}
"#;

fn virtual_server(name: &str, vips: &str) -> String {
    format!(
        "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata: {{name: {name}, namespace: ns}}\n\
         spec:\n{vips}  port: 80\n  realServers: {{selector: {{matchLabels: {{app: web}}}}}}\n"
    )
}

#[test]
fn the_example_programs_one_service_per_family_and_each_vip_on_its_real_servers() {
    let output = run(&manifests(&[
        &example("nodes.yaml"),
        &example("pool.yaml"),
        &example("methods/dual-stack.yaml"),
    ]));
    assert_eq!(errors(&output), Vec::<String>::new());
    let director = services(&output, "director-1", "methods/web-dual");
    assert_eq!(
        served(&director),
        [
            (
                "10.100.0.107".to_owned(),
                vec!["methods/rs-v4-1".to_owned(), "methods/rs-v4-2".to_owned()]
            ),
            (
                "fd00:100::107".to_owned(),
                vec!["methods/rs-v6-1".to_owned(), "methods/rs-v6-2".to_owned()]
            ),
        ]
    );
    assert_eq!(director[0].family, AddressFamily::IPv4);
    assert_eq!(director[1].family, AddressFamily::IPv6);
    for node in ["rs-1", "rs-2"] {
        assert_eq!(vips(&output, node), ["10.100.0.107", "fd00:100::107"], "{node}");
    }
    let outcome = &output.virtual_servers[&key("methods", "web-dual")];
    assert!(outcome.accepted);
    assert_eq!(outcome.address, Some(ip("10.100.0.107")));
    assert_eq!(
        outcome.addresses,
        [
            (ip("10.100.0.107"), "lab".to_owned()),
            (ip("fd00:100::107"), "lab".to_owned())
        ]
    );
    assert_eq!(outcome.real_servers.len(), 4, "both families' real servers count");
    assert_eq!(outcome.directors, ["director-1"]);
}

#[test]
fn each_family_is_picked_from_a_pool_of_its_own_and_served_by_its_own_real_servers() {
    let output = run(&manifests(&[
        NODES,
        POOLS,
        &virtual_server("web", "  families: [IPv6, IPv4]\n"),
    ]));
    assert_eq!(errors(&output), Vec::<String>::new());
    let outcome = &output.virtual_servers[&key("ns", "web")];
    let pools: Vec<&str> = outcome.addresses.iter().map(|(_, pool)| pool.as_str()).collect();
    assert_eq!(pools, ["v4", "v6"]);
    let families: Vec<bool> = outcome
        .addresses
        .iter()
        .map(|(address, _)| address.is_ipv6())
        .collect();
    assert_eq!(families, [false, true], "IPv4 first");
    let director = services(&output, "lb-a", "ns/web");
    let destinations: Vec<Vec<String>> = served(&director).into_iter().map(|(_, real)| real).collect();
    assert_eq!(
        destinations,
        [vec!["ns/rs-4".to_owned()], vec!["ns/rs-6".to_owned()]]
    );
    // Each real-server node holds only the VIP of its family.
    assert_eq!(vips(&output, "backend-4"), [outcome.addresses[0].0.to_string()]);
    assert_eq!(vips(&output, "backend-6"), [outcome.addresses[1].0.to_string()]);
    assert_eq!(output.pools["v4"].allocated.len(), 1);
    assert_eq!(output.pools["v6"].allocated.len(), 1);
}

#[test]
fn a_single_stack_virtual_server_still_refuses_a_real_server_of_the_other_family() {
    let output = run(&manifests(&[
        NODES,
        POOLS,
        &virtual_server("web", "  address: 198.51.100.7\n"),
    ]));
    let refused: Vec<String> = errors(&output);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("ns/rs-6"), "{refused:?}");
    assert_eq!(served(&services(&output, "lb-a", "ns/web")).len(), 1);
}

#[test]
fn a_conflict_on_one_vip_refuses_the_whole_dual_stack_virtual_server() {
    let older = "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\n\
                 metadata: {name: older, namespace: ns, creationTimestamp: '2026-01-01T00:00:00Z'}\n\
                 spec:\n  address: '2001:db8:100::7'\n  port: 80\n  realServers: {selector: {matchLabels: {app: web}}}\n";
    let newer = "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\n\
                 metadata: {name: newer, namespace: ns, creationTimestamp: '2026-02-01T00:00:00Z'}\n\
                 spec:\n  addresses: [198.51.100.7, '2001:db8:100::7']\n  port: 80\n  realServers: {selector: {matchLabels: {app: web}}}\n";
    let output = run(&manifests(&[NODES, POOLS, older, newer]));
    let outcome = &output.virtual_servers[&key("ns", "newer")];
    assert!(!outcome.accepted);
    assert_eq!(outcome.reason, reasons::CONFLICT);
    assert!(
        outcome.message.contains("[2001:db8:100::7]:80/TCP"),
        "{}",
        outcome.message
    );
    assert!(
        services(&output, "lb-a", "ns/newer").is_empty(),
        "not even its IPv4 VIP"
    );
    assert!(output.virtual_servers[&key("ns", "older")].accepted);
    // Its IPv4 VIP is free again: another VirtualServer may take it.
    let output = run(&manifests(&[
        NODES,
        POOLS,
        older,
        newer,
        &virtual_server("third", "  address: 198.51.100.7\n"),
    ]));
    assert!(output.virtual_servers[&key("ns", "third")].accepted);
}

#[test]
fn a_vip_in_no_pool_refuses_the_whole_dual_stack_virtual_server() {
    let output = run(&manifests(&[
        NODES,
        POOLS,
        &virtual_server("web", "  addresses: [198.51.100.7, '2001:db8:200::7']\n"),
    ]));
    let outcome = &output.virtual_servers[&key("ns", "web")];
    assert!(!outcome.accepted);
    assert_eq!(outcome.reason, reasons::ADDRESS_NOT_IN_POOL);
    assert!(output.node_configs.is_empty(), "{:?}", output.node_configs.keys());
}

#[test]
fn each_vip_elects_its_director_with_heartbeats_between_the_primary_addresses() {
    let output = run(&manifests(&[
        NODES,
        POOLS,
        &virtual_server("web", "  addresses: [198.51.100.7, '2001:db8:100::7']\n"),
    ]));
    assert_eq!(errors(&output), Vec::<String>::new());
    let director = services(&output, "lb-a", "ns/web");
    let peers: Vec<Vec<String>> = director
        .iter()
        .map(|service| {
            let failover = service.high_availability.as_ref().unwrap();
            failover
                .peers
                .iter()
                .map(|peer| peer.address.unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        peers,
        [
            vec!["192.0.2.2".to_owned(), "192.0.2.3".to_owned()],
            vec!["192.0.2.2".to_owned(), "192.0.2.3".to_owned()]
        ],
        "an election per VIP, each between the directors' first InternalIPs (what the agents bind)"
    );
    assert_eq!(
        output.virtual_servers[&key("ns", "web")].directors,
        ["lb-a", "lb-b"]
    );
}

#[test]
fn dual_stack_persistence_gives_each_family_its_own_mask() {
    let output = run(&manifests(&[
        NODES,
        POOLS,
        &virtual_server(
            "web",
            "  families: [IPv4, IPv6]\n  persistence: {netmask: 255.255.255.0, prefixLength: 64}\n",
        ),
    ]));
    assert_eq!(errors(&output), Vec::<String>::new());
    let prefixes: Vec<Option<u8>> = services(&output, "lb-a", "ns/web")
        .iter()
        .map(|service| {
            service
                .persistence
                .as_ref()
                .map(|persistence| persistence.prefix_length)
        })
        .collect();
    assert_eq!(prefixes, [Some(24), Some(64)]);
}
