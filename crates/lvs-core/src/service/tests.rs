//! Unit tests of the Service derivation and its options.

mod annotations;

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use lvs_api::{Protocol, RealServer, Scheduler};
use serde_json::{Value, json};

use super::{Derivation, Derived, ServiceClass, ServiceOptions, derive};

fn service(policy: &str, ports: Value, families: &[&str]) -> Service {
    serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "shop", "uid": "uid-web",
                      "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": {
            "type": "LoadBalancer", "loadBalancerClass": "lvs.operator.io/ipvs",
            "externalTrafficPolicy": policy, "healthCheckNodePort": 32000,
            "ipFamilies": families, "ports": ports,
        },
    }))
    .unwrap()
}

fn http_port() -> Value {
    json!([{ "name": "http", "port": 80, "protocol": "TCP" }])
}

fn node(name: &str, addresses: &[&str], ready: bool) -> Node {
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|address| json!({ "type": "InternalIP", "address": address }))
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "status": { "addresses": addresses,
                    "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
    }))
    .unwrap()
}

/// A slice with endpoints `(node, ready)`.
fn slice(endpoints: &[(&str, Option<bool>)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(node, ready)| {
            let mut endpoint = json!({ "addresses": ["10.244.0.5"], "nodeName": node });
            if let Some(ready) = ready {
                endpoint["conditions"] = json!({ "ready": ready });
            }
            endpoint
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": "web-abcde", "namespace": "shop",
                      "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": "IPv4",
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn three_nodes() -> Vec<Node> {
    vec![
        node("n1", &["10.0.0.1", "fd00::1"], true),
        node("n2", &["10.0.0.2"], true),
        node("n3", &["10.0.0.3"], true),
    ]
}

fn run(service: &Service, slices: &[EndpointSlice], nodes: &[Node], vips: &[IpAddr]) -> Derived {
    let slices: Vec<&EndpointSlice> = slices.iter().collect();
    let nodes: Vec<&Node> = nodes.iter().collect();
    derive(Derivation {
        service,
        options: &ServiceOptions::default(),
        slices: &slices,
        nodes: &nodes,
        vips,
    })
}

/// The build of `derived` on `nodes`, with one AddressPool `shop` (192.0.2.10-20) admitting the
/// Service's namespace.
fn build_with_pool(derived: &Derived, nodes: &[Node]) -> crate::BuildOutput {
    let pools: Vec<lvs_api::AddressPool> = vec![
        serde_json::from_value(json!({
            "apiVersion": "lvs.operator.io/v1alpha1", "kind": "AddressPool",
            "metadata": { "name": "shop" },
            "spec": { "addresses": ["192.0.2.10-192.0.2.20"], "namespaces": ["shop"] },
        }))
        .unwrap(),
    ];
    crate::build(crate::BuildInput {
        pools: (&pools).into(),
        namespaces: crate::Objects::Slice(&[]),
        settings: &crate::ClusterSettings::default(),
        virtual_servers: (&derived.virtual_servers).into(),
        real_servers: (&derived.real_servers).into(),
        nodes: nodes.into(),
        configured_vips: None,
    })
}

fn addresses(real_servers: &[RealServer]) -> Vec<String> {
    real_servers
        .iter()
        .map(|real_server| real_server.spec.address.clone())
        .collect()
}

/// A VirtualServer's name, port, protocol and address.
type PortSummary = (Option<String>, Option<u16>, Protocol, Option<String>);

fn vip() -> Vec<IpAddr> {
    vec!["192.0.2.10".parse().unwrap()]
}

#[test]
fn cluster_policy_makes_every_ready_node_a_real_server_once_an_endpoint_is_ready() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vip());
    assert_eq!(
        addresses(&derived.real_servers),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    let virtual_server = &derived.virtual_servers[0];
    assert_eq!(virtual_server.metadata.name.as_deref(), Some("svc-web-http"));
    assert_eq!(virtual_server.spec.address.as_deref(), Some("192.0.2.10"));
    let check = virtual_server.spec.health_check.as_ref().unwrap();
    assert_eq!(
        (
            check.check_type,
            check.port,
            check.http.as_ref().map(|http| http.path.as_str())
        ),
        (lvs_api::HealthCheckType::Http, Some(10256), Some("/healthz")),
        "kube-proxy's health on the node: nothing listens on a node's address at the Service port"
    );
    let real_server = &derived.real_servers[0];
    assert_eq!(real_server.metadata.name.as_deref(), Some("svc-web-http-n1"));
    assert_eq!(real_server.spec.port, Some(80));
    assert_eq!(real_server.spec.node.as_deref(), Some("n1"));
    assert_eq!(
        real_server.metadata.owner_references.as_ref().unwrap()[0].uid,
        "uid-web"
    );
}

#[test]
fn local_policy_keeps_only_nodes_with_a_ready_endpoint_checked_through_the_health_check_node_port() {
    let service = service("Local", http_port(), &["IPv4"]);
    let slices = [slice(&[("n2", Some(true)), ("n3", Some(false))])];
    let derived = run(&service, &slices, &three_nodes(), &vip());
    assert_eq!(addresses(&derived.real_servers), ["10.0.0.2"]);
    let check = derived.virtual_servers[0].spec.health_check.as_ref().unwrap();
    assert_eq!(check.port, Some(32000));
    assert_eq!(check.http.as_ref().unwrap().path, "/");
}

#[test]
fn endpoints_not_ready_give_no_real_servers_and_an_unknown_readiness_counts_as_ready() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let derived = run(&service, &[slice(&[("n1", Some(false))])], &three_nodes(), &vip());
    assert!(derived.real_servers.is_empty());
    assert_eq!(derived.virtual_servers.len(), 1, "the VIP stays allocated");
    let derived = run(&service, &[slice(&[("n1", None)])], &three_nodes(), &vip());
    assert_eq!(derived.real_servers.len(), 3);
}

#[test]
fn nodes_not_ready_directors_and_excluded_nodes_are_not_real_servers() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let mut nodes = three_nodes();
    nodes[0] = node("n1", &["10.0.0.1"], false);
    nodes[1]
        .metadata
        .labels
        .get_or_insert_default()
        .insert("lvs.operator.io/director".to_owned(), "true".to_owned());
    nodes[2].metadata.labels.get_or_insert_default().insert(
        "node.kubernetes.io/exclude-from-external-load-balancers".to_owned(),
        String::new(),
    );
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &nodes, &vip());
    assert!(derived.real_servers.is_empty());
}

#[test]
fn a_node_without_an_internal_ip_of_the_family_is_left_out_of_that_family() {
    let service = service("Cluster", http_port(), &["IPv6"]);
    let vips = ["2001:db8::10".parse().unwrap()];
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vips);
    assert_eq!(addresses(&derived.real_servers), ["fd00::1"]);
    assert_eq!(
        derived.real_servers[0].metadata.name.as_deref(),
        Some("svc-web-http-n1-v6")
    );
    assert_eq!(
        derived.virtual_servers[0].spec.address.as_deref(),
        Some("2001:db8::10")
    );
}

#[test]
fn every_port_of_three_protocols_gets_a_virtual_server_on_the_one_vip() {
    let ports = json!([
        { "name": "dns-tcp", "port": 53, "protocol": "TCP" },
        { "name": "dns", "port": 53, "protocol": "UDP" },
        { "port": 3868, "protocol": "SCTP" },
    ]);
    let service = service("Cluster", ports, &["IPv4"]);
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vip());
    let summary: Vec<PortSummary> = derived
        .virtual_servers
        .iter()
        .map(|object| {
            (
                object.metadata.name.clone(),
                object.spec.port,
                object.spec.protocol,
                object.spec.address.clone(),
            )
        })
        .collect();
    let vip = Some("192.0.2.10".to_owned());
    assert_eq!(
        summary,
        [
            (
                Some("svc-web-dns-tcp".to_owned()),
                Some(53),
                Protocol::Tcp,
                vip.clone()
            ),
            (
                Some("svc-web-dns".to_owned()),
                Some(53),
                Protocol::Udp,
                vip.clone()
            ),
            (Some("svc-web-3868".to_owned()), Some(3868), Protocol::Sctp, vip),
        ]
    );
    assert_eq!(
        derived.real_servers.len(),
        9,
        "three nodes on each of three ports"
    );
    assert!(derived.problems.is_empty());
}

#[test]
fn without_a_vip_only_the_first_port_is_derived_so_the_build_picks_one_vip_for_all() {
    let ports = json!([{ "name": "a", "port": 80 }, { "name": "b", "port": 443 }]);
    let service = service("Cluster", ports, &["IPv4", "IPv6"]);
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vip());
    assert_eq!(
        derived.virtual_servers.len(),
        1,
        "the IPv6 VIP is still to be picked"
    );
    let first = &derived.virtual_servers[0].spec;
    assert_eq!(first.address.as_deref(), Some("192.0.2.10"));
    assert_eq!(first.families.as_ref().map(Vec::len), Some(2));
    let vips: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap(), "2001:db8::10".parse().unwrap()];
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vips);
    assert_eq!(derived.virtual_servers.len(), 2);
    assert_eq!(
        derived.virtual_servers[1].spec.addresses.as_deref(),
        Some(&["192.0.2.10".to_owned(), "2001:db8::10".to_owned()][..])
    );
}

#[test]
fn derived_objects_change_version_exactly_when_their_content_does() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let slices = [slice(&[("n1", Some(true))])];
    let one = run(&service, &slices, &three_nodes(), &vip());
    let again = run(&service, &slices, &three_nodes(), &vip());
    assert_eq!(one, again);
    let other = run(
        &service,
        &slices,
        &three_nodes(),
        &["192.0.2.11".parse().unwrap()],
    );
    assert_ne!(
        one.virtual_servers[0].metadata.resource_version,
        other.virtual_servers[0].metadata.resource_version
    );
}

#[test]
fn only_load_balancers_of_our_class_are_ours_and_classless_ones_only_when_configured() {
    let ours = service("Cluster", http_port(), &["IPv4"]);
    let mut other = ours.clone();
    other.spec.as_mut().unwrap().load_balancer_class = Some("metallb.io/metallb".to_owned());
    let mut classless = ours.clone();
    classless.spec.as_mut().unwrap().load_balancer_class = None;
    let mut cluster_ip = ours.clone();
    cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".to_owned());
    let strict = ServiceClass::default();
    let default = ServiceClass { default_class: true };
    assert!(strict.is_ours(&ours) && default.is_ours(&ours));
    assert!(!strict.is_ours(&other) && !default.is_ours(&other));
    assert!(!strict.is_ours(&classless) && default.is_ours(&classless));
    assert!(!strict.is_ours(&cluster_ip) && !default.is_ours(&cluster_ip));
}

#[test]
fn a_bad_annotation_is_reported_by_name_and_value_and_the_last_good_setting_stays() {
    let mut service = service("Cluster", http_port(), &["IPv4"]);
    let annotate = |service: &mut Service, key: &str, value: &str| {
        service
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(key.to_owned(), value.to_owned());
    };
    annotate(&mut service, "lvs.operator.io/scheduler", "mh");
    annotate(&mut service, "lvs.operator.io/address-pool", "tenant-a");
    let (good, errors) = ServiceOptions::parse(&service, None);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(good.scheduler, Scheduler::Mh);
    assert_eq!(good.address_pool.as_deref(), Some("tenant-a"));

    annotate(&mut service, "lvs.operator.io/scheduler", "fastest");
    annotate(&mut service, "lvs.operator.io/address-pool", "Tenant_A");
    annotate(&mut service, "lvs.operator.io/address", "192.0.2.1,192.0.2.2");
    let (kept, errors) = ServiceOptions::parse(&service, Some(&good));
    assert_eq!(kept, good);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].contains("lvs.operator.io/scheduler \"fastest\""),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("lvs.operator.io/address-pool \"Tenant_A\""),
        "{messages:?}"
    );
    assert!(messages[2].contains("one address per family"), "{messages:?}");

    let (fresh, _) = ServiceOptions::parse(&service, None);
    assert_eq!(fresh.scheduler, Scheduler::Wlc, "no last good value: the default");
}

#[test]
fn the_asked_address_comes_from_the_annotation_else_load_balancer_ip() {
    let mut service = service("Cluster", http_port(), &["IPv4"]);
    service.spec.as_mut().unwrap().load_balancer_ip = Some("192.0.2.7".to_owned());
    let (options, _) = ServiceOptions::parse(&service, None);
    assert_eq!(options.addresses, ["192.0.2.7".parse::<IpAddr>().unwrap()]);
    service.metadata.annotations.get_or_insert_default().insert(
        "lvs.operator.io/address".to_owned(),
        "2001:db8::1, 192.0.2.8".to_owned(),
    );
    let (options, errors) = ServiceOptions::parse(&service, None);
    assert!(errors.is_empty());
    assert_eq!(
        options.addresses,
        [
            "192.0.2.8".parse::<IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
}

#[test]
fn derived_objects_build_into_a_director_service_and_unlabelled_real_server_nodes() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let mut nodes = three_nodes();
    let mut director = node("d1", &["10.0.0.9"], true);
    director
        .metadata
        .labels
        .get_or_insert_default()
        .insert("lvs.operator.io/director".to_owned(), "true".to_owned());
    nodes.push(director);
    let derived = run(&service, &[slice(&[("n1", Some(true))])], &nodes, &[]);
    assert_eq!(derived.virtual_servers.len(), 1);
    assert_eq!(
        derived.virtual_servers[0].spec.address, None,
        "picked by the build"
    );
    let output = build_with_pool(&derived, &nodes);
    let outcome = output.virtual_servers.values().next().unwrap();
    assert!(outcome.accepted, "{outcome:?} {:?}", output.problems);
    let vip = outcome.address.unwrap();
    assert_eq!(output.node_configs["d1"].director_services.len(), 1);
    for name in ["n1", "n2", "n3"] {
        let vips: Vec<IpAddr> = output.node_configs[name]
            .real_server_vips
            .iter()
            .map(|entry| entry.address)
            .collect();
        assert_eq!(vips, [vip], "node {name} accepts the VIP without a role label");
    }
}
