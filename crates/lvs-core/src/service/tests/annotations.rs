//! Unit tests of the per-Service annotations: persistence, forwarding (NAT and Tunnel straight to
//! the pods), health check and director selection.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use lvs_api::{ForwardingMethod, HealthCheckSpec, HealthCheckType, Protocol, RealServer, Scheduler};
use serde_json::{Value, json};

use super::{addresses, build_with_pool, http_port, node, service, slice, three_nodes, vip};
use crate::service::{Derivation, Derived, ServiceOptions, derive, values};

fn annotate(service: &mut Service, key: &str, value: &str) {
    service
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(format!("lvs.operator.io/{key}"), value.to_owned());
}

/// The Service's annotations parsed (they must all be valid) and the objects derived with them.
fn run_annotated(service: &Service, slices: &[EndpointSlice], nodes: &[Node], vips: &[IpAddr]) -> Derived {
    let (options, errors) = ServiceOptions::parse(service, None);
    assert!(errors.is_empty(), "{errors:?}");
    let slices: Vec<&EndpointSlice> = slices.iter().collect();
    let nodes: Vec<&Node> = nodes.iter().collect();
    derive(Derivation {
        service,
        options: &options,
        slices: &slices,
        nodes: &nodes,
        vips,
    })
}

/// A slice of `address_type` with `ports` and endpoints `(address, node, ready)`.
fn pod_slice(address_type: &str, ports: Value, endpoints: &[(&str, &str, Option<bool>)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, node, ready)| {
            let mut endpoint = json!({ "addresses": [address], "nodeName": node });
            if let Some(ready) = ready {
                endpoint["conditions"] = json!({ "ready": ready });
            }
            endpoint
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": format!("web-{}", address_type.to_lowercase()), "namespace": "shop",
                      "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": address_type,
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

/// A director service's port, protocol and destinations (address, port).
type DirectorServiceSummary = (Option<u16>, Protocol, Vec<(String, u16)>);
/// A RealServer's name, address, port and node.
type TargetSummary = (String, String, Option<u16>, Option<String>);

/// Name, address, port and node of each RealServer.
fn targets(real_servers: &[RealServer]) -> Vec<TargetSummary> {
    real_servers
        .iter()
        .map(|object| {
            (
                object.metadata.name.clone().unwrap_or_default(),
                object.spec.address.clone(),
                object.spec.port,
                object.spec.node.clone(),
            )
        })
        .collect()
}

fn target(name: &str, address: &str, port: u16) -> TargetSummary {
    (name.to_owned(), address.to_owned(), Some(port), None)
}

/// A Service with ports http (80 → 8080 in the slices) and metrics (9100 → 9100), its pods in
/// an IPv4 slice (one not ready, one with an IPv6 address in an IPv4 Service) and an IPv6 slice.
fn two_port_service_and_slices(forwarding: &str) -> (Service, Vec<EndpointSlice>) {
    let ports = json!([
        { "name": "http", "port": 80, "protocol": "TCP" },
        { "name": "metrics", "port": 9100, "protocol": "TCP" },
    ]);
    let mut service = service("Local", ports, &["IPv4"]);
    annotate(&mut service, "forwarding", forwarding);
    let slice_ports = json!([
        { "name": "http", "port": 8080, "protocol": "TCP" },
        { "name": "metrics", "port": 9100, "protocol": "TCP" },
    ]);
    let slices = vec![
        pod_slice(
            "IPv4",
            slice_ports.clone(),
            &[
                ("10.244.1.7", "n1", Some(true)),
                ("10.244.2.9", "n2", None),
                ("10.244.3.4", "n3", Some(false)),
            ],
        ),
        pod_slice("IPv6", slice_ports, &[("fd00:244::7", "n1", Some(true))]),
    ];
    (service, slices)
}

#[test]
fn every_annotation_reaches_the_derived_virtual_server() {
    let mut service = service("Cluster", http_port(), &["IPv4"]);
    annotate(&mut service, "scheduler", "sh");
    annotate(&mut service, "persistence", "600");
    annotate(&mut service, "health-check", "HTTP:8081/healthz");
    annotate(
        &mut service,
        "directors",
        "topology.kubernetes.io/zone=a, rack=r1",
    );
    let derived = run_annotated(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vip());
    let spec = &derived.virtual_servers[0].spec;
    assert_eq!(spec.scheduler, Scheduler::Sh);
    assert_eq!(spec.forwarding.method, ForwardingMethod::DirectRouting);
    assert_eq!(
        spec.persistence
            .as_ref()
            .map(|persistence| persistence.timeout_seconds),
        Some(600)
    );
    let check = spec.health_check.as_ref().unwrap();
    assert_eq!(
        (
            check.check_type,
            check.port,
            check.http.as_ref().map(|http| http.path.as_str())
        ),
        (HealthCheckType::Http, Some(8081), Some("/healthz"))
    );
    assert_eq!(
        spec.directors.node_selector,
        BTreeMap::from([
            ("rack".to_owned(), "r1".to_owned()),
            ("topology.kubernetes.io/zone".to_owned(), "a".to_owned()),
        ])
    );
    assert_eq!(
        addresses(&derived.real_servers),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "direct routing still goes to the nodes"
    );
    assert!(derived.problems.is_empty(), "{:?}", derived.problems);
}

#[test]
fn without_annotations_nothing_changes() {
    let service = service("Cluster", http_port(), &["IPv4"]);
    let derived = run_annotated(&service, &[slice(&[("n1", Some(true))])], &three_nodes(), &vip());
    let spec = &derived.virtual_servers[0].spec;
    assert_eq!(spec.persistence, None);
    assert_eq!(
        spec.health_check.as_ref().map(|check| check.port),
        Some(Some(10256)),
        "kube-proxy's /healthz on the node"
    );
    assert!(spec.directors.node_selector.is_empty());
    assert_eq!(spec.forwarding, lvs_api::ForwardingSpec::default());
}

#[test]
fn each_bad_value_names_its_annotation_and_keeps_the_last_good_one() {
    let mut service = service("Cluster", http_port(), &["IPv4"]);
    annotate(&mut service, "persistence", "300");
    annotate(&mut service, "forwarding", "NAT");
    annotate(&mut service, "health-check", "TCP:8080");
    annotate(&mut service, "directors", "zone=a");
    let (good, errors) = ServiceOptions::parse(&service, None);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(good.persistence, Some(300));
    assert_eq!(good.forwarding, ForwardingMethod::Nat);

    let cases = [
        ("persistence", "0", "from 1 to 31536000"),
        ("persistence", "31536001", "from 1 to 31536000"),
        ("persistence", "5m", "whole number of seconds"),
        ("persistence", "-1", "whole number of seconds"),
        ("forwarding", "nat", "DirectRouting, NAT or Tunnel"),
        ("forwarding", "", "DirectRouting, NAT or Tunnel"),
        ("health-check", "SMTP", "not a health check"),
        ("health-check", "TCP:0", "not a port number"),
        ("health-check", "HTTP:http/", "not a port number"),
        (
            "health-check",
            "TCP/healthz",
            "only HTTP and HTTPS checks take a path",
        ),
        ("health-check", "None:80", "None takes no port"),
        ("health-check", "HTTP/a b", "printable ASCII"),
        ("directors", "zone", "is not key=value"),
        ("directors", "zone=a,", "is not key=value"),
        ("directors", "Zone Name=a", "is not a label key"),
        ("directors", "example.com/=a", "name after the prefix is empty"),
        ("directors", "Example.com/zone=a", "prefix"),
        ("directors", "zone=-a", "not a label value"),
        ("directors", "zone=a,zone=b", "given twice"),
        (
            "directors",
            "a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1",
            "at most 8 labels",
        ),
    ];
    for (key, value, why) in cases {
        let mut bad = service.clone();
        annotate(&mut bad, key, value);
        let (kept, errors) = ServiceOptions::parse(&bad, Some(&good));
        assert_eq!(kept, good, "{key}: {value:?}");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1, "{key}: {value:?}: {messages:?}");
        let named = format!("lvs.operator.io/{key} {value:?} is not valid");
        assert!(
            messages[0].contains(&named) && messages[0].contains(why),
            "{key}: {value:?}: {messages:?}"
        );
    }

    let mut bad = service.clone();
    annotate(&mut bad, "persistence", "0");
    let (fresh, _) = ServiceOptions::parse(&bad, None);
    assert_eq!(fresh.persistence, None, "no last good value: the default");
}

#[test]
fn health_check_grammar() {
    let parsed = |text: &str| values::health_check(text).unwrap();
    let summary = |check: &HealthCheckSpec| {
        (
            check.check_type,
            check.port,
            check.http.as_ref().map(|http| http.path.clone()),
        )
    };
    let path = |path: &str| Some(path.to_owned());
    for (text, expected) in [
        ("None", (HealthCheckType::None, None, None)),
        (" tcp ", (HealthCheckType::Tcp, None, None)),
        ("TCP:5432", (HealthCheckType::Tcp, Some(5432), None)),
        ("HTTP", (HealthCheckType::Http, None, path("/"))),
        (
            "HTTP/healthz?full=1",
            (HealthCheckType::Http, None, path("/healthz?full=1")),
        ),
        (
            "HTTPS:8443/ready",
            (HealthCheckType::Https, Some(8443), path("/ready")),
        ),
        ("DNS:53", (HealthCheckType::Dns, Some(53), None)),
    ] {
        assert_eq!(summary(&parsed(text)), expected, "{text:?}");
    }
    let check = parsed("HTTPS/");
    assert_eq!(check.interval_seconds, 5, "the defaults of a HealthCheckSpec");
    assert!(!check.http.unwrap().verify_certificate);
}

#[test]
fn nat_goes_straight_to_the_ready_pods_of_the_vip_family_on_each_ports_target_port() {
    let (service, slices) = two_port_service_and_slices("NAT");
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(
        targets(&derived.real_servers),
        [
            target("svc-web-http-10-244-1-7", "10.244.1.7", 8080),
            target("svc-web-http-10-244-2-9", "10.244.2.9", 8080),
            target("svc-web-metrics-10-244-1-7", "10.244.1.7", 9100),
            target("svc-web-metrics-10-244-2-9", "10.244.2.9", 9100),
        ],
        "not the nodes, not the pod that is not ready, not the IPv6 pod"
    );
    let spec = &derived.virtual_servers[0].spec;
    assert_eq!(spec.forwarding.method, ForwardingMethod::Nat);
    assert_eq!(
        spec.health_check, None,
        "externalTrafficPolicy Local's check of the nodes does not apply to pods"
    );
    assert!(derived.problems.is_empty(), "{:?}", derived.problems);
}

#[test]
fn pods_of_each_family_serve_a_dual_stack_vip_and_ipv6_names_are_uncompressed() {
    let (mut service, slices) = two_port_service_and_slices("NAT");
    service.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".to_owned(), "IPv6".to_owned()]);
    let vips: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap(), "2001:db8::10".parse().unwrap()];
    let derived = run_annotated(&service, &slices, &three_nodes(), &vips);
    let http: Vec<_> = targets(&derived.real_servers)
        .into_iter()
        .filter(|(name, ..)| name.starts_with("svc-web-http-"))
        .collect();
    assert_eq!(
        http,
        [
            target("svc-web-http-10-244-1-7", "10.244.1.7", 8080),
            target("svc-web-http-10-244-2-9", "10.244.2.9", 8080),
            target("svc-web-http-fd00-244-0-0-0-0-0-7", "fd00:244::7", 8080),
        ]
    );
}

#[test]
fn tunnel_keeps_the_service_port_and_leaves_out_endpoints_on_another_with_a_problem() {
    let (service, slices) = two_port_service_and_slices("Tunnel");
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(
        targets(&derived.real_servers),
        [
            target("svc-web-metrics-10-244-1-7", "10.244.1.7", 9100),
            target("svc-web-metrics-10-244-2-9", "10.244.2.9", 9100),
        ]
    );
    assert_eq!(derived.problems.len(), 1, "{:?}", derived.problems);
    assert!(
        derived.problems[0].starts_with("Service web: port http: Tunnel cannot change ports")
            && derived.problems[0].contains("port 8080"),
        "{:?}",
        derived.problems
    );
}

#[test]
fn a_slice_without_the_ports_name_gives_no_real_servers_for_it() {
    let (service, _) = two_port_service_and_slices("NAT");
    let slices = [pod_slice(
        "IPv4",
        json!([{ "name": "metrics", "port": 9100, "protocol": "TCP" }]),
        &[("10.244.1.7", "n1", Some(true))],
    )];
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(
        targets(&derived.real_servers),
        [target("svc-web-metrics-10-244-1-7", "10.244.1.7", 9100)]
    );
}

#[test]
fn an_unnamed_port_matches_the_unnamed_slice_port() {
    let mut service = service("Cluster", json!([{ "port": 80 }]), &["IPv4"]);
    annotate(&mut service, "forwarding", "NAT");
    let slices = [pod_slice(
        "IPv4",
        json!([{ "name": "", "port": 8080, "protocol": "TCP" }]),
        &[("10.244.1.7", "n1", Some(true))],
    )];
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(
        targets(&derived.real_servers),
        [target("svc-web-80-10-244-1-7", "10.244.1.7", 8080)]
    );
}

#[test]
fn an_explicit_health_check_replaces_the_local_default_and_needs_a_port_on_udp() {
    let ports = json!([
        { "name": "dns-tcp", "port": 53, "protocol": "TCP" },
        { "name": "dns", "port": 53, "protocol": "UDP" },
    ]);
    let mut service = service("Local", ports, &["IPv4"]);
    let slices = [slice(&[("n1", Some(true))])];
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    let check_port = |derived: &Derived, index: usize| {
        derived.virtual_servers[index]
            .spec
            .health_check
            .as_ref()
            .map(|check| (check.check_type, check.port))
    };
    assert_eq!(
        check_port(&derived, 1),
        Some((HealthCheckType::Http, Some(32000)))
    );

    annotate(&mut service, "health-check", "None");
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(check_port(&derived, 0), Some((HealthCheckType::None, None)));

    annotate(&mut service, "health-check", "TCP");
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(check_port(&derived, 0), Some((HealthCheckType::Tcp, None)));
    assert_eq!(
        check_port(&derived, 1),
        None,
        "a UDP port has no TCP port to lend"
    );
    assert_eq!(derived.problems.len(), 1, "{:?}", derived.problems);
    assert!(derived.problems[0].contains("port dns: a TCP health check of a UDP port needs a port"));

    annotate(&mut service, "health-check", "TCP:53");
    let derived = run_annotated(&service, &slices, &three_nodes(), &vip());
    assert_eq!(check_port(&derived, 1), Some((HealthCheckType::Tcp, Some(53))));
    assert!(derived.problems.is_empty());
}

#[test]
fn objects_derived_with_every_annotation_pass_validation_and_build_onto_the_selected_director() {
    let (mut service, slices) = two_port_service_and_slices("NAT");
    service.spec.as_mut().unwrap().ports.as_mut().unwrap()[1].protocol = Some("UDP".to_owned());
    let mut slices = slices;
    for slice in &mut slices {
        slice.ports.as_mut().unwrap()[1].protocol = Some("UDP".to_owned());
    }
    annotate(&mut service, "scheduler", "mh");
    annotate(&mut service, "persistence", "31536000");
    annotate(&mut service, "health-check", "HTTPS:8443/ready");
    annotate(&mut service, "directors", "example.com/zone=a");
    annotate(&mut service, "address", "192.0.2.10");
    annotate(&mut service, "address-pool", "shop");
    let mut nodes = three_nodes();
    for (name, zone, address) in [("d1", "b", "10.0.0.8"), ("d2", "a", "10.0.0.9")] {
        let mut director = node(name, &[address], true);
        director.metadata.labels = Some(BTreeMap::from([
            ("lvs.operator.io/director".to_owned(), "true".to_owned()),
            ("example.com/zone".to_owned(), zone.to_owned()),
        ]));
        nodes.push(director);
    }
    let (options, _) = ServiceOptions::parse(&service, None);
    let derived = run_annotated(&service, &slices, &nodes, &options.addresses);
    assert_eq!(derived.virtual_servers.len(), 2);
    assert_eq!(derived.real_servers.len(), 4);
    for object in &derived.virtual_servers {
        if let Err(problems) = crate::validate::virtual_server(object) {
            panic!("{problems:?}");
        }
    }
    for object in &derived.real_servers {
        if let Err(problems) = crate::validate::real_server(object) {
            panic!("{problems:?}");
        }
    }

    let output = build_with_pool(&derived, &nodes);
    assert!(!output.has_errors(), "{:?}", output.problems);
    for outcome in output.virtual_servers.values() {
        assert!(outcome.accepted, "{outcome:?}");
        assert_eq!(outcome.directors, ["d2"], "only the director in zone a");
    }
    let services = &output.node_configs["d2"].director_services;
    let summary: Vec<DirectorServiceSummary> = services
        .iter()
        .map(|service| {
            let destinations = service
                .destinations
                .iter()
                .map(|destination| (destination.address.to_string(), destination.port))
                .collect();
            (service.port, service.protocol, destinations)
        })
        .collect();
    let pods = |port| vec![("10.244.1.7".to_owned(), port), ("10.244.2.9".to_owned(), port)];
    assert_eq!(
        summary,
        [
            (Some(80), Protocol::Tcp, pods(8080)),
            (Some(9100), Protocol::Udp, pods(9100)),
        ]
    );
    assert_eq!(
        services[0]
            .persistence
            .as_ref()
            .map(|persistence| persistence.timeout_seconds),
        Some(31_536_000)
    );
    assert_eq!(services[0].health_check.check_type, HealthCheckType::Https);
    assert!(
        ["n1", "n2", "n3"]
            .iter()
            .all(|name| !output.node_configs.contains_key(*name)),
        "NAT needs nothing of the pods' nodes"
    );
}
