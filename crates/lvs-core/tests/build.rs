//! `build` end to end on manifests: what each node gets for every forwarding method and family,
//! conflicts, role resolution, readiness gating, determinism and sharding.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use lvs_api::{
    ArpMethod, DirectorService, ForwardingMethod, LvsNodeConfigSpec, RealServerVip, SysctlSetting,
    conditions::reasons,
};
use lvs_core::manifest::Manifests;
use lvs_core::object::{Kind, ObjectKey};
use lvs_core::roles::Placement;
use lvs_core::{BuildInput, BuildOutput, ClusterSettings, Severity, build};
use pretty_assertions::assert_eq;

static SETTINGS: std::sync::LazyLock<ClusterSettings> = std::sync::LazyLock::new(ClusterSettings::default);

/// The tests' open address pool, added to manifests that define none.
const OPEN_POOL: &str = include_str!("fixtures/open-pool.yaml");

fn manifests(texts: &[&str]) -> Manifests {
    let mut manifests = Manifests::default();
    for (index, text) in texts.iter().enumerate() {
        let problems = manifests.read(&format!("input-{index}"), text);
        assert!(problems.is_empty(), "{problems:?}");
    }
    if manifests.pools.is_empty() {
        assert!(manifests.read("open-pool.yaml", OPEN_POOL).is_empty());
    }
    manifests
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
    )
    .unwrap()
}

fn run(manifests: &Manifests, configured_vips: Option<&BTreeSet<(String, IpAddr)>>) -> BuildOutput {
    build(BuildInput {
        configured_vips,
        ..manifests.build_input(&SETTINGS)
    })
}

fn service<'a>(output: &'a BuildOutput, node: &str, name: &str) -> &'a DirectorService {
    output.node_configs[node]
        .director_services
        .iter()
        .find(|service| service.virtual_server == name)
        .unwrap_or_else(|| panic!("{node} has no service {name}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vip<'a>(config: &'a LvsNodeConfigSpec, address: &str) -> &'a RealServerVip {
    config
        .real_server_vips
        .iter()
        .find(|vip| vip.address == ip(address))
        .unwrap_or_else(|| panic!("no VIP {address}"))
}

fn sysctl(name: &str, value: &str) -> SysctlSetting {
    SysctlSetting {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn errors(output: &BuildOutput) -> Vec<String> {
    output
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn direct_routing_example_configures_the_director_and_both_real_servers() {
    let input = manifests(&[&example("virtualserver.yaml"), &example("nodes.yaml")]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    assert_eq!(
        output.node_configs.keys().collect::<Vec<_>>(),
        ["director-1", "rs-1", "rs-2"]
    );

    let web = service(&output, "director-1", "default/web");
    assert_eq!(web.address, Some(ip("10.100.0.100")));
    assert_eq!(web.port, Some(80));
    assert_eq!(web.forwarding.method, ForwardingMethod::DirectRouting);
    assert_eq!(web.directors, ["director-1"]);
    let destinations: Vec<_> = web
        .destinations
        .iter()
        .map(|d| (d.address, d.port, d.weight, d.awaiting_node))
        .collect();
    assert_eq!(
        destinations,
        [
            (ip("10.100.0.11"), 80, 1, false),
            (ip("10.100.0.12"), 80, 1, false)
        ]
    );
    assert!(
        output.node_configs["director-1"].sysctls.is_empty(),
        "DR directors need no sysctls"
    );

    for node in ["rs-1", "rs-2"] {
        let config = &output.node_configs[node];
        assert!(config.director_services.is_empty());
        let vip = vip(config, "10.100.0.100");
        assert_eq!(
            (vip.arp_method, vip.device.as_deref()),
            (ArpMethod::Sysctl, Some("lo"))
        );
        assert_eq!(vip.virtual_servers, ["default/web"]);
        assert_eq!(
            config.sysctls,
            [
                sysctl("net/ipv4/conf/all/arp_announce", "2"),
                sysctl("net/ipv4/conf/all/arp_ignore", "1")
            ]
        );
    }
}

#[test]
fn nat_forwards_remaps_ports_and_leaves_real_servers_alone() {
    let output = run(
        &manifests(&[&example("methods/nat.yaml"), &example("nodes.yaml")]),
        None,
    );
    assert_eq!(errors(&output), Vec::<String>::new());
    let nat = service(&output, "director-1", "methods/web-nat");
    assert_eq!(
        nat.destinations
            .iter()
            .map(|d| (d.port, d.weight))
            .collect::<Vec<_>>(),
        [(8080, 1), (8080, 3)]
    );
    assert_eq!(
        nat.fallback.as_ref().map(|f| (f.address, f.port)),
        Some((ip("10.100.0.13"), 8080))
    );
    assert_eq!(
        output.node_configs["director-1"].sysctls,
        [
            sysctl("net/ipv4/ip_forward", "1"),
            sysctl("net/ipv4/vs/conntrack", "1")
        ]
    );
    assert!(
        !output.node_configs.contains_key("rs-1"),
        "NAT real servers need no VIP"
    );
}

#[test]
fn tunnel_real_servers_decapsulate_on_tunl0_with_relaxed_rp_filter() {
    let output = run(
        &manifests(&[&example("methods/tunnel.yaml"), &example("nodes.yaml")]),
        None,
    );
    assert_eq!(errors(&output), Vec::<String>::new());
    let tunnel = service(&output, "director-1", "methods/web-tunnel");
    assert_eq!(
        tunnel
            .persistence
            .as_ref()
            .map(|p| (p.timeout_seconds, p.prefix_length)),
        Some((600, 24))
    );
    let config = &output.node_configs["rs-2"];
    let vip = vip(config, "10.100.0.102");
    assert_eq!(vip.device.as_deref(), Some("tunl0"));
    assert!(vip.tunnel.is_some());
    assert!(
        config
            .sysctls
            .contains(&sysctl("net/ipv4/conf/tunl0/rp_filter", "0"))
    );
    assert!(
        config
            .sysctls
            .contains(&sysctl("net/ipv4/conf/all/rp_filter", "0"))
    );
}

#[test]
fn ipv6_service_uses_prefix_persistence_dummy_device_and_no_arp_sysctls() {
    let output = run(
        &manifests(&[&example("methods/ipv6.yaml"), &example("nodes.yaml")]),
        None,
    );
    assert_eq!(errors(&output), Vec::<String>::new());
    let v6 = service(&output, "director-1", "methods/web-v6");
    assert_eq!(v6.family, lvs_api::AddressFamily::IPv6);
    assert_eq!(v6.persistence.as_ref().map(|p| p.prefix_length), Some(64));
    let weights: Vec<_> = v6
        .destinations
        .iter()
        .map(|d| (d.real_server.as_str(), d.weight))
        .collect();
    assert_eq!(
        weights,
        [("methods/v6-1", 1), ("methods/v6-2", 0)],
        "Draining means weight 0"
    );
    let config = &output.node_configs["rs-1"];
    assert_eq!(vip(config, "fd00:100::100").device.as_deref(), Some("lvs0"));
    assert!(config.sysctls.is_empty(), "IPv6 VIPs need no ARP sysctls");
}

#[test]
fn fwmark_service_marks_its_ports_and_redirect_needs_no_device() {
    let output = run(
        &manifests(&[&example("methods/fwmark.yaml"), &example("nodes.yaml")]),
        None,
    );
    assert_eq!(errors(&output), Vec::<String>::new());
    let shop = service(&output, "director-1", "methods/shop");
    assert_eq!((shop.fwmark, shop.port), (Some(104), None));
    assert_eq!(shop.fwmark_ports, [80, 443]);
    assert!(
        shop.destinations
            .iter()
            .all(|d| d.port == 0 && d.thresholds.upper == 1000)
    );
    let vip = vip(&output.node_configs["rs-1"], "10.100.0.104");
    assert_eq!(
        (vip.arp_method, vip.device.as_deref()),
        (ArpMethod::Redirect, None)
    );
    assert_eq!(vip.ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80, 443]);
    assert!(
        output.node_configs["rs-1"].sysctls.is_empty(),
        "Redirect needs no ARP sysctls"
    );
}

const NODES: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: lb-a, labels: {lvs.operator.io/director: "true", zone: a}}
status: {addresses: [{type: InternalIP, address: 192.0.2.2}]}
---
apiVersion: v1
kind: Node
metadata: {name: lb-b, labels: {lvs.operator.io/director: "true", zone: b}}
status: {addresses: [{type: InternalIP, address: 192.0.2.3}]}
---
apiVersion: v1
kind: Node
metadata: {name: zone-a-no-role, labels: {zone: a}}
status: {addresses: [{type: InternalIP, address: 192.0.2.4}]}
---
apiVersion: v1
kind: Node
metadata: {name: backend-1, labels: {lvs.operator.io/real-server: "true"}}
status: {addresses: [{type: InternalIP, address: 192.0.2.11}]}
---
apiVersion: v1
kind: Node
metadata: {name: backend-unlabelled}
status: {addresses: [{type: InternalIP, address: 192.0.2.12}]}
"#;

fn virtual_server(namespace: &str, name: &str, address: &str, port: u16, extra: &str) -> String {
    format!(
        "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  address: {address}\n  port: {port}\n  realServers: {{selector: {{matchLabels: {{app: shared}}}}}}\n{extra}"
    )
}

fn real_server(namespace: &str, name: &str, address: &str, extra: &str) -> String {
    format!(
        "apiVersion: lvs.operator.io/v1alpha1\nkind: RealServer\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{app: shared}}}}\n\
         spec:\n  address: {address}\n{extra}"
    )
}

#[test]
fn a_real_server_shared_by_two_virtual_servers_serves_both() {
    let input = manifests(&[
        NODES,
        &virtual_server("shop", "http", "198.51.100.1", 80, ""),
        &virtual_server("shop", "https", "198.51.100.1", 443, ""),
        &virtual_server("shop", "admin", "198.51.100.2", 80, ""),
        &real_server("shop", "backend", "192.0.2.11", ""),
    ]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    for name in ["shop/http", "shop/https", "shop/admin"] {
        let destinations = &service(&output, "lb-a", name).destinations;
        assert_eq!(
            destinations
                .iter()
                .map(|d| d.real_server.as_str())
                .collect::<Vec<_>>(),
            ["shop/backend"]
        );
    }
    let backend = &output.real_servers[&ObjectKey::new(Kind::RealServer, "shop", "backend")];
    assert_eq!(backend.virtual_servers.len(), 3);
    assert_eq!(
        backend.placement,
        Some(Placement::Managed("backend-1".to_owned()))
    );
    let config = &output.node_configs["backend-1"];
    assert_eq!(config.real_server_vips.len(), 2, "one entry per VIP");
    let merged = vip(config, "198.51.100.1");
    assert_eq!(merged.ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80, 443]);
    assert_eq!(merged.virtual_servers, ["shop/http", "shop/https"]);
}

#[test]
fn the_older_of_two_conflicting_virtual_servers_wins_across_namespaces() {
    let stamped = |namespace: &str, name: &str, time: &str| {
        virtual_server(namespace, name, "198.51.100.7", 80, "").replace(
            &format!("namespace: {namespace}}}"),
            &format!("namespace: {namespace}, creationTimestamp: \"{time}\"}}"),
        )
    };
    let input = manifests(&[
        NODES,
        &stamped("zzz", "older", "2025-01-01T00:00:00Z"),
        &stamped("aaa", "newer", "2026-01-01T00:00:00Z"),
        &real_server("zzz", "backend", "192.0.2.11", ""),
    ]);
    let output = run(&input, None);
    let newer = &output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "aaa", "newer")];
    assert!(!newer.accepted);
    assert_eq!(newer.reason, lvs_api::conditions::reasons::CONFLICT);
    assert!(
        newer.message.contains("VirtualServer zzz/older"),
        "{}",
        newer.message
    );
    assert!(output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "zzz", "older")].accepted);
    let names: Vec<_> = output.node_configs["lb-a"]
        .director_services
        .iter()
        .map(|s| s.virtual_server.as_str())
        .collect();
    assert_eq!(names, ["zzz/older"], "only the winner is programmed");
    assert_eq!(
        errors(&output).len(),
        1,
        "the loser alone carries the problem: {:?}",
        errors(&output)
    );
}

#[test]
fn roles_come_from_labels_and_selectors_only_narrow() {
    let input = manifests(&[
        NODES,
        &virtual_server(
            "ns",
            "zone-a",
            "198.51.100.3",
            80,
            "  directors: {nodeSelector: {zone: a}}\n",
        ),
        &virtual_server("ns", "everywhere", "198.51.100.4", 80, ""),
        &real_server("ns", "by-address", "192.0.2.11", ""),
        &real_server("ns", "by-name", "203.0.113.5", "  node: backend-1\n"),
        &real_server("ns", "unlabelled", "192.0.2.12", ""),
        &real_server("ns", "external", "203.0.113.9", ""),
    ]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    assert_eq!(
        service(&output, "lb-a", "ns/zone-a").directors,
        ["lb-a"],
        "zone-a-no-role lacks the director label"
    );
    assert_eq!(
        service(&output, "lb-b", "ns/everywhere").directors,
        ["lb-a", "lb-b"]
    );
    assert!(!output.node_configs.contains_key("zone-a-no-role"));
    assert!(
        !output.node_configs.contains_key("backend-unlabelled"),
        "never configure an unlabelled node"
    );
    let placement = |name: &str| {
        output.real_servers[&ObjectKey::new(Kind::RealServer, "ns", name)]
            .placement
            .clone()
    };
    assert_eq!(
        placement("by-address"),
        Some(Placement::Managed("backend-1".into()))
    );
    assert_eq!(placement("by-name"), Some(Placement::Managed("backend-1".into())));
    assert_eq!(
        placement("unlabelled"),
        Some(Placement::UnlabelledNode("backend-unlabelled".into()))
    );
    assert_eq!(placement("external"), Some(Placement::External));
    let warning = output
        .problems
        .iter()
        .find(|p| p.object.name == "unlabelled")
        .expect("a warning");
    assert_eq!(
        (warning.severity, warning.field.as_str()),
        (Severity::Warning, "spec.address")
    );
    assert_eq!(
        service(&output, "lb-a", "ns/everywhere").destinations.len(),
        4,
        "all four still serve"
    );
}

#[test]
fn readiness_gating_holds_back_real_servers_whose_node_has_not_reported() {
    let input = manifests(&[
        NODES,
        &virtual_server("ns", "dr", "198.51.100.5", 80, ""),
        &virtual_server("ns", "nat", "198.51.100.6", 80, "  forwarding: {method: NAT}\n"),
        &real_server("ns", "managed", "192.0.2.11", ""),
        &real_server("ns", "external", "203.0.113.9", ""),
    ]);
    let awaiting = |output: &BuildOutput, name: &str| {
        service(output, "lb-a", name)
            .destinations
            .iter()
            .map(|d| (d.real_server.clone(), d.awaiting_node))
            .collect::<Vec<_>>()
    };
    let none = BTreeSet::new();
    let output = run(&input, Some(&none));
    assert_eq!(
        awaiting(&output, "ns/dr"),
        [("ns/external".into(), false), ("ns/managed".into(), true)]
    );
    assert_eq!(
        awaiting(&output, "ns/nat"),
        [("ns/external".into(), false), ("ns/managed".into(), false)]
    );
    let reported = BTreeSet::from([("backend-1".to_owned(), "198.51.100.5".parse().unwrap())]);
    let output = run(&input, Some(&reported));
    assert_eq!(
        awaiting(&output, "ns/dr"),
        [("ns/external".into(), false), ("ns/managed".into(), false)]
    );
    assert!(
        run(&input, None).node_configs["lb-a"]
            .director_services
            .iter()
            .all(|s| s.destinations.iter().all(|d| !d.awaiting_node))
    );
}

#[test]
fn disabled_real_servers_are_selected_but_not_destinations() {
    let input = manifests(&[
        NODES,
        &virtual_server("ns", "web", "198.51.100.8", 80, ""),
        &real_server("ns", "enabled", "203.0.113.1", ""),
        &real_server("ns", "disabled", "203.0.113.2", "  state: Disabled\n"),
    ]);
    let output = run(&input, None);
    assert_eq!(service(&output, "lb-a", "ns/web").destinations.len(), 1);
    assert_eq!(
        output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "ns", "web")]
            .real_servers
            .len(),
        2
    );
}

#[test]
fn build_is_deterministic_whatever_the_input_order() {
    let texts = [
        NODES.to_owned(),
        virtual_server("b", "two", "198.51.100.10", 80, ""),
        virtual_server("a", "one", "198.51.100.11", 80, ""),
        real_server("a", "x", "192.0.2.11", ""),
        real_server("b", "why", "203.0.113.3", ""),
    ];
    let forward: Vec<&str> = texts.iter().map(String::as_str).collect();
    let backward: Vec<&str> = texts.iter().rev().map(String::as_str).collect();
    let render = |output: BuildOutput| serde_json::to_string(&output.node_config_objects()).unwrap();
    assert_eq!(
        render(run(&manifests(&forward), None)),
        render(run(&manifests(&backward), None))
    );
}

#[test]
fn large_node_configs_are_sharded_under_the_size_limit() {
    let mut texts = vec![NODES.to_owned(), real_server("big", "backend", "192.0.2.11", "")];
    for index in 0..3000u32 {
        let address = format!(
            "10.{}.{}.{}",
            index / 65536 + 50,
            (index / 256) % 256,
            index % 256
        );
        texts.push(virtual_server(
            "big",
            &format!("svc-{index:04}"),
            &address,
            80,
            "",
        ));
    }
    let input = manifests(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let output = run(&input, None);
    let objects: Vec<_> = output
        .node_config_objects()
        .into_iter()
        .filter(|o| o.spec.node_name == "lb-a")
        .collect();
    assert!(objects.len() > 1, "3000 services must not fit one object");
    assert_eq!(objects[0].metadata.name.as_deref(), Some("lb-a"));
    for (index, object) in objects.iter().enumerate() {
        let bytes = serde_json::to_vec(&object.spec).unwrap().len();
        assert!(
            bytes <= lvs_core::build::DEFAULT_SHARD_BYTES,
            "shard {index} is {bytes} bytes"
        );
        assert_eq!(
            (object.spec.shard.index as usize, object.spec.shard.count as usize),
            (index, objects.len())
        );
        assert_eq!(
            object.metadata.labels.as_ref().unwrap()[lvs_api::labels::NODE_NAME],
            "lb-a"
        );
    }
    let total: usize = objects.iter().map(|o| o.spec.director_services.len()).sum();
    assert_eq!(total, 3000, "every service lands in exactly one shard");
}

#[test]
fn two_directors_get_failover_settings_in_priority_order_with_peer_addresses() {
    let input = manifests(&[
        NODES,
        &virtual_server(
            "ns",
            "ha",
            "198.51.100.5",
            80,
            "  directors:\n    interface: eth0\n    highAvailability: {priority: [lb-b, unknown], preempt: true, connectionSync: {syncId: 7}}\n",
        ),
        &virtual_server("ns", "nosync", "198.51.100.6", 80, ""),
        &virtual_server(
            "ns",
            "single",
            "198.51.100.7",
            80,
            "  directors: {nodeSelector: {zone: a}}\n",
        ),
        &real_server("ns", "backend", "192.0.2.11", ""),
    ]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    let ha = service(&output, "lb-a", "ns/ha")
        .high_availability
        .clone()
        .expect("two directors: failover");
    let peers: Vec<_> = ha
        .peers
        .iter()
        .map(|peer| (peer.node.as_str(), peer.address))
        .collect();
    assert_eq!(
        peers,
        [("lb-b", Some(ip("192.0.2.3"))), ("lb-a", Some(ip("192.0.2.2")))],
        "listed first, then by name; unknown names ignored"
    );
    assert_eq!(
        (ha.heartbeat_interval_millis, ha.dead_after, ha.preempt),
        (200, 3, true)
    );
    let sync = ha.connection_sync.expect("sync on by default");
    assert_eq!((sync.sync_id, sync.interface.as_str()), (7, "eth0"));
    assert_eq!(
        service(&output, "lb-b", "ns/ha").high_availability,
        service(&output, "lb-a", "ns/ha").high_availability,
        "every director gets the same settings"
    );

    let nosync = service(&output, "lb-a", "ns/nosync");
    assert_eq!(
        nosync
            .high_availability
            .as_ref()
            .map(|ha| ha.connection_sync.is_none()),
        Some(true),
        "no interface: no sync"
    );
    assert!(
        output
            .problems
            .iter()
            .any(|problem| problem.severity == Severity::Warning
                && problem.to_string().contains("connection sync needs an interface")),
        "{:?}",
        output.problems
    );
    assert_eq!(
        service(&output, "lb-a", "ns/single").high_availability,
        None,
        "a single director needs no election"
    );
}

/// The failover peers of `virtual_server`'s service on `node`: each director and its heartbeat
/// address.
fn heartbeat_peers(output: &BuildOutput, node: &str, virtual_server: &str) -> Vec<(String, Option<IpAddr>)> {
    service(output, node, virtual_server)
        .high_availability
        .clone()
        .unwrap()
        .peers
        .into_iter()
        .map(|peer| (peer.node, peer.address))
        .collect()
}

#[test]
fn heartbeats_go_to_the_internal_address_not_a_lower_external_one() {
    let nodes = r#"
apiVersion: v1
kind: Node
metadata: {name: lb-a, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: ExternalIP, address: 1.2.3.4}, {type: InternalIP, address: 10.0.0.5}]}
---
apiVersion: v1
kind: Node
metadata: {name: lb-b, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: ExternalIP, address: 1.2.3.5}]}
"#;
    let input = manifests(&[nodes, &virtual_server("ns", "ha", "198.51.100.5", 80, "")]);
    let peers = heartbeat_peers(&run(&input, None), "lb-a", "ns/ha");
    assert_eq!(
        peers,
        [
            ("lb-a".to_owned(), Some(ip("10.0.0.5"))),
            ("lb-b".to_owned(), Some(ip("1.2.3.5"))),
        ],
        "InternalIP first; an ExternalIP only when there is none"
    );
}

#[test]
fn heartbeats_of_an_ipv6_vip_go_to_each_directors_primary_address() {
    let nodes = r#"
apiVersion: v1
kind: Node
metadata: {name: lb-a, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: InternalIP, address: 10.0.0.5}, {type: InternalIP, address: "fd00::5"}]}
---
apiVersion: v1
kind: Node
metadata: {name: lb-b, labels: {lvs.operator.io/director: "true"}}
status: {addresses: [{type: InternalIP, address: 10.0.0.6}, {type: InternalIP, address: "fd00::6"}]}
"#;
    let input = manifests(&[nodes, &virtual_server("ns", "ha6", "2001:db8::5", 80, "")]);
    let peers = heartbeat_peers(&run(&input, None), "lb-a", "ns/ha6");
    assert_eq!(
        peers,
        [
            ("lb-a".to_owned(), Some(ip("10.0.0.5"))),
            ("lb-b".to_owned(), Some(ip("10.0.0.6"))),
        ],
        "dual-stack directors: the first InternalIP whatever the VIP's family (what the agent binds by default)"
    );
}

#[test]
fn failover_settings_a_director_does_not_run_are_warned_about() {
    let ha = |extra: &str| format!("  directors:\n    interface: eth0\n    highAvailability: {{{extra}}}\n");
    let input = manifests(&[
        NODES,
        // One VIP, three VirtualServers: the first by name gives the election's settings.
        &virtual_server("ns", "a-web", "198.51.100.5", 80, &ha("preempt: true")),
        &virtual_server("ns", "b-web", "198.51.100.5", 443, &ha("")),
        &virtual_server("ns", "c-web", "198.51.100.5", 8080, &ha("preempt: true")),
        // One pair of sync daemons per director, for the first synced VIP (198.51.100.5: sync ID 0).
        &virtual_server(
            "ns",
            "other-id",
            "198.51.100.6",
            80,
            &ha("connectionSync: {syncId: 2}"),
        ),
        &virtual_server(
            "ns",
            "same-id",
            "198.51.100.7",
            80,
            &ha("connectionSync: {syncId: 0}"),
        ),
        &real_server("ns", "backend", "192.0.2.11", ""),
    ]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    let warned: Vec<(String, &str)> = output
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Warning)
        .map(|problem| (problem.object.qualified_name(), problem.reason))
        .collect();
    assert_eq!(
        warned,
        [
            ("ns/b-web".to_owned(), reasons::FAILOVER_SETTINGS_OVERRIDDEN),
            ("ns/other-id".to_owned(), reasons::CONNECTION_SYNC_OVERRIDDEN),
        ],
        "{:?}",
        output.problems
    );
    let sync = output
        .problems
        .iter()
        .find(|problem| problem.reason == reasons::CONNECTION_SYNC_OVERRIDDEN)
        .unwrap()
        .to_string();
    assert!(
        sync.contains("on lb-a, lb-b: ")
            && sync.contains("VIP 198.51.100.5 of VirtualServer ns/a-web: interface eth0, sync ID 0")
            && sync.contains("interface eth0, sync ID 2 is not run there"),
        "{sync}"
    );
}

fn pool(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: lvs.operator.io/v1alpha1\nkind: AddressPool\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn warnings(output: &BuildOutput) -> Vec<String> {
    output
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Warning)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_pool_narrows_the_directors_and_the_real_server_nodes_of_its_vips() {
    let input = manifests(&[
        NODES,
        &pool(
            "zone-a",
            "  addresses: [198.51.100.0/28]\n  namespaceSelector: {}\n  directors: {nodeSelector: {zone: a}}\n  \
             backendNetworks: [192.0.2.0/24]\n  realServerNodes: {nodeSelector: {rack: r1}}\n",
        ),
        &virtual_server("ns", "web", "198.51.100.3", 80, ""),
        &real_server("ns", "on-node", "192.0.2.11", ""),
    ]);
    let output = run(&input, None);
    assert_eq!(errors(&output), Vec::<String>::new());
    assert_eq!(
        service(&output, "lb-a", "ns/web").directors,
        ["lb-a"],
        "lb-b is not in zone a"
    );
    assert!(!output.node_configs.contains_key("lb-b"));
    assert!(
        !output.node_configs.contains_key("backend-1"),
        "backend-1 lacks rack=r1, so the pool's VIP is not put on it"
    );
    assert!(
        warnings(&output)
            .iter()
            .any(|warning| warning
                .contains("does not match realServerNodes.nodeSelector of AddressPool zone-a")),
        "{:#?}",
        warnings(&output)
    );
    let outcome = &output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "ns", "web")];
    assert_eq!(
        (outcome.address, outcome.pool.as_deref()),
        (Some(ip("198.51.100.3")), Some("zone-a"))
    );
    assert_eq!(output.pools["zone-a"].allocated.len(), 1);
    assert_eq!(output.pools["zone-a"].total, 16);
}

#[test]
fn namespace_labels_admit_through_the_selector_only() {
    let namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tenant: blue}}\n---\n\
                      apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: {tenant: red}}\n";
    let input = manifests(&[
        NODES,
        namespaces,
        &pool(
            "blue",
            "  addresses: [198.51.100.0/28]\n  namespaceSelector: {matchLabels: {tenant: blue}}\n  backendNetworks: [192.0.2.0/24]\n",
        ),
        &virtual_server("shop", "web", "198.51.100.3", 80, ""),
        &virtual_server("other", "web", "198.51.100.4", 80, ""),
    ]);
    let output = run(&input, None);
    let refused = &output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "other", "web")];
    assert!(!refused.accepted);
    assert_eq!(refused.reason, reasons::NO_ADDRESS_POOL);
    assert!(output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "shop", "web")].accepted);
    assert_eq!(output.pools["blue"].namespaces, "selector(tenant=blue)");
}

#[test]
fn overlapping_pools_are_reported_on_both() {
    let input = manifests(&[
        NODES,
        &pool("a", "  addresses: [198.51.100.0/28]\n  namespaces: [nx]\n"),
        &pool(
            "b",
            "  addresses: [198.51.100.8-198.51.100.20]\n  namespaces: [ny]\n",
        ),
        &pool("c", "  addresses: [198.51.100.64/28]\n  namespaces: [nz]\n"),
    ]);
    let output = run(&input, None);
    assert_eq!(output.pools["a"].overlaps, ["b"]);
    assert_eq!(output.pools["b"].overlaps, ["a"]);
    assert!(output.pools["c"].overlaps.is_empty());
    assert_eq!(
        warnings(&output)
            .iter()
            .filter(|warning| warning.contains("shares addresses"))
            .count(),
        2
    );
}

#[test]
fn picked_addresses_stay_put_when_other_objects_come_and_go() {
    let picked = |names: &[&str]| {
        let texts: Vec<String> = names
            .iter()
            .map(|name| {
                format!(
                    "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata: {{name: {name}, namespace: ns}}\n\
                     spec:\n  port: 80\n  realServers: {{selector: {{matchLabels: {{app: shared}}}}}}\n"
                )
            })
            .collect();
        let mut all = vec![NODES];
        all.extend(texts.iter().map(String::as_str));
        let output = run(&manifests(&all), None);
        assert_eq!(errors(&output), Vec::<String>::new());
        output
            .virtual_servers
            .iter()
            .map(|(key, outcome)| (key.name.clone(), outcome.address.unwrap()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = picked(&["web", "api"]);
    let after = picked(&["aaa-new", "web", "api", "zzz-new"]);
    assert_eq!(before["web"], after["web"]);
    assert_eq!(before["api"], after["api"]);
    let distinct: BTreeSet<IpAddr> = after.values().copied().collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn another_namespace_cannot_fence_off_a_pools_addresses_by_asking_for_them() {
    let vs_without_address = "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata: {name: web, namespace: owner}\n\
                              spec:\n  port: 80\n  realServers: {selector: {matchLabels: {app: shared}}}\n";
    let input = manifests(&[
        NODES,
        &pool("single", "  addresses: [198.51.100.5]\n  namespaces: [owner]\n"),
        &virtual_server("intruder", "squat", "198.51.100.5", 80, ""),
        vs_without_address,
    ]);
    let output = run(&input, None);
    let squat = &output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "intruder", "squat")];
    assert_eq!((squat.accepted, squat.reason), (false, reasons::NO_ADDRESS_POOL));
    let owner = &output.virtual_servers[&ObjectKey::new(Kind::VirtualServer, "owner", "web")];
    assert!(owner.accepted, "{owner:?}");
    assert_eq!(owner.address, Some(ip("198.51.100.5")));
}
