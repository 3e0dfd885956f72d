//! The agent's metrics as OpenMetrics text: exact lines after a few recordings, IPVS snapshots
//! that replace each other, and the real-server health gauge coming and going.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use lvs_agent::metrics::{Metrics, op_kind, service_label};
use lvs_dataplane::Op;
use lvs_dataplane::dataplane::ServiceStats;
use lvs_dataplane::model::{AddressFamily, Protocol, ServiceKey, Stats};

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[track_caller]
fn assert_line(text: &str, line: &str) {
    assert!(lines(text).contains(&line), "missing line\n  {line}\nin\n{text}");
}

#[track_caller]
fn assert_no_line_containing(text: &str, fragment: &str) {
    let found: Vec<&str> = lines(text)
        .into_iter()
        .filter(|line| line.contains(fragment))
        .collect();
    assert!(found.is_empty(), "unexpected lines with {fragment}: {found:#?}");
}

fn web() -> ServiceKey {
    ServiceKey::Address {
        address: "10.0.0.1".parse().unwrap(),
        port: 80,
        protocol: Protocol::Tcp,
    }
}

fn dns() -> ServiceKey {
    ServiceKey::Address {
        address: "2001:db8::53".parse().unwrap(),
        port: 53,
        protocol: Protocol::Udp,
    }
}

fn marked() -> ServiceKey {
    ServiceKey::Fwmark {
        family: AddressFamily::IPv4,
        mark: 104,
    }
}

fn stats(connections: u64, packets: (u64, u64), bytes: (u64, u64)) -> Stats {
    Stats {
        connections,
        incoming_packets: packets.0,
        outgoing_packets: packets.1,
        incoming_bytes: bytes.0,
        outgoing_bytes: bytes.1,
        ..Stats::default()
    }
}

fn address(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn names(key: &ServiceKey) -> Option<String> {
    if *key == web() {
        Some("default/web".to_owned())
    } else if *key == marked() {
        Some("edge/marked".to_owned())
    } else {
        None
    }
}

#[test]
fn info_names_the_node_and_version_and_output_ends_in_eof() {
    let metrics = Metrics::new("director-1");
    let text = metrics.encode();
    assert_line(
        &text,
        &format!(
            "lvs_agent_info{{node=\"director-1\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    );
    assert_line(&text, "# TYPE lvs_agent info");
    assert_eq!(text.lines().last(), Some("# EOF"));
    assert!(text.ends_with("# EOF\n"));
    // Nothing recorded yet: no IPVS or health series.
    assert_no_line_containing(&text, "ipvs_");
    assert_no_line_containing(&text, "real_server_healthy");
}

#[test]
fn reconcile_runs_and_durations() {
    let metrics = Metrics::new("director-1");
    metrics.reconcile_finished(Duration::from_millis(3), true);
    metrics.reconcile_finished(Duration::from_millis(20), true);
    metrics.reconcile_finished(Duration::from_secs(2), false);
    let text = metrics.encode();
    assert_line(&text, "# TYPE lvs_agent_reconcile_runs counter");
    assert_line(&text, "lvs_agent_reconcile_runs_total{result=\"success\"} 2");
    assert_line(&text, "lvs_agent_reconcile_runs_total{result=\"error\"} 1");
    assert_line(&text, "# TYPE lvs_agent_reconcile_duration_seconds histogram");
    assert_line(&text, "# UNIT lvs_agent_reconcile_duration_seconds seconds");
    assert_line(&text, "lvs_agent_reconcile_duration_seconds_count 3");
    assert_line(&text, "lvs_agent_reconcile_duration_seconds_sum 2.023");
    // Buckets are cumulative: 3 ms falls in le=0.004, 20 ms in le=0.032, 2 s in le=2.048.
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"0.002\"} 0",
    );
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"0.004\"} 1",
    );
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"0.032\"} 2",
    );
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"1.024\"} 2",
    );
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"2.048\"} 3",
    );
    assert_line(
        &text,
        "lvs_agent_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3",
    );
}

#[test]
fn kernel_operations_by_kind_and_result_and_drift_repairs() {
    let metrics = Metrics::new("director-1");
    metrics.kernel_operations(&[
        ("add_service", true),
        ("add_destination", true),
        ("add_destination", true),
        ("add_destination", false),
    ]);
    metrics.kernel_operations(&[("add_service", true), ("set_sysctl", false)]);
    metrics.kernel_operations(&[]);
    metrics.drift_repaired();
    metrics.drift_repaired();
    let text = metrics.encode();
    assert_line(&text, "# TYPE lvs_agent_kernel_operations counter");
    for line in [
        "lvs_agent_kernel_operations_total{kind=\"add_service\",result=\"success\"} 2",
        "lvs_agent_kernel_operations_total{kind=\"add_destination\",result=\"success\"} 2",
        "lvs_agent_kernel_operations_total{kind=\"add_destination\",result=\"error\"} 1",
        "lvs_agent_kernel_operations_total{kind=\"set_sysctl\",result=\"error\"} 1",
        "lvs_agent_drift_repairs_total 2",
    ] {
        assert_line(&text, line);
    }
    assert_no_line_containing(&text, "kind=\"add_service\",result=\"error\"");
}

#[test]
fn op_kinds_follow_ipvsadm_verbs() {
    let key = web();
    assert_eq!(op_kind(&Op::DeleteService(key)), "delete_service");
    assert_eq!(
        op_kind(&Op::DeleteDestination(key, address("10.0.0.11"), 80)),
        "delete_destination"
    );
    assert_eq!(
        op_kind(&Op::RestoreSysctl("net.ipv4.vs.conntrack".to_owned())),
        "restore_sysctl"
    );
    assert_eq!(op_kind(&Op::DeleteNftables), "nft_delete");
    assert_eq!(
        op_kind(&Op::Announce {
            address: address("10.0.0.1"),
            interface: None
        }),
        "announce"
    );
}

#[test]
fn health_checks_count_by_labels_and_time_by_check() {
    let metrics = Metrics::new("director-1");
    metrics.health_check(
        "default/web",
        "default/rs-1",
        "http",
        true,
        Duration::from_millis(1),
    );
    metrics.health_check(
        "default/web",
        "default/rs-1",
        "http",
        true,
        Duration::from_millis(3),
    );
    metrics.health_check(
        "default/web",
        "default/rs-2",
        "http",
        false,
        Duration::from_secs(1),
    );
    metrics.health_check(
        "default/web",
        "default/rs-2",
        "tcp",
        true,
        Duration::from_millis(1),
    );
    let text = metrics.encode();
    for line in [
        "# TYPE lvs_agent_health_checks counter",
        "lvs_agent_health_checks_total{virtual_server=\"default/web\",real_server=\"default/rs-1\",check=\"http\",result=\"success\"} 2",
        "lvs_agent_health_checks_total{virtual_server=\"default/web\",real_server=\"default/rs-2\",check=\"http\",result=\"error\"} 1",
        "lvs_agent_health_checks_total{virtual_server=\"default/web\",real_server=\"default/rs-2\",check=\"tcp\",result=\"success\"} 1",
        "# TYPE lvs_agent_health_check_duration_seconds histogram",
        "lvs_agent_health_check_duration_seconds_count{check=\"http\"} 3",
        "lvs_agent_health_check_duration_seconds_count{check=\"tcp\"} 1",
        "lvs_agent_health_check_duration_seconds_sum{check=\"http\"} 1.004",
        "lvs_agent_health_check_duration_seconds_bucket{le=\"0.001\",check=\"http\"} 1",
        "lvs_agent_health_check_duration_seconds_bucket{le=\"0.004\",check=\"http\"} 2",
        "lvs_agent_health_check_duration_seconds_bucket{le=\"+Inf\",check=\"http\"} 3",
    ] {
        assert_line(&text, line);
    }
}

#[test]
fn health_check_series_go_with_their_real_server() {
    let metrics = Metrics::new("director-1");
    for real_server in ["default/rs-1", "default/rs-2"] {
        metrics.health_check("default/web", real_server, "http", true, Duration::from_millis(1));
        metrics.health_check(
            "default/web",
            real_server,
            "http",
            false,
            Duration::from_millis(1),
        );
    }
    metrics.health_check(
        "default/gone",
        "default/rs-1",
        "tcp",
        true,
        Duration::from_millis(1),
    );
    let keep: BTreeSet<(String, String)> = [("default/web".to_owned(), "default/rs-1".to_owned())]
        .into_iter()
        .collect();
    metrics.retain_real_servers(&keep);
    let text = metrics.encode();
    let checks: Vec<&str> = lines(&text)
        .into_iter()
        .filter(|line| line.starts_with("lvs_agent_health_checks_total{"))
        .collect();
    assert_eq!(
        checks,
        [
            "lvs_agent_health_checks_total{virtual_server=\"default/web\",real_server=\"default/rs-1\",check=\"http\",result=\"error\"} 1",
            "lvs_agent_health_checks_total{virtual_server=\"default/web\",real_server=\"default/rs-1\",check=\"http\",result=\"success\"} 1",
        ],
        "a deleted real server (rs-2) and a deleted virtual server (gone) leave no series"
    );
    // The per-check latency histogram carries no object: it stays.
    assert_line(
        &text,
        "lvs_agent_health_check_duration_seconds_count{check=\"tcp\"} 1",
    );
    metrics.retain_real_servers(&BTreeSet::new());
    assert_no_line_containing(&metrics.encode(), "lvs_agent_health_checks");
}

#[test]
fn real_server_health_gauge_is_set_removed_and_retained() {
    let metrics = Metrics::new("director-1");
    metrics.real_server_health("default/web", "default/rs-1", Some(true));
    metrics.real_server_health("default/web", "default/rs-2", Some(false));
    metrics.real_server_health("default/dns", "default/rs-1", Some(true));
    metrics.real_server_health("default/dns", "default/rs-3", Some(true));
    let text = metrics.encode();
    assert_line(&text, "# TYPE lvs_agent_real_server_healthy gauge");
    assert_line(
        &text,
        "lvs_agent_real_server_healthy{virtual_server=\"default/web\",real_server=\"default/rs-1\"} 1",
    );
    assert_line(
        &text,
        "lvs_agent_real_server_healthy{virtual_server=\"default/web\",real_server=\"default/rs-2\"} 0",
    );

    // Flipping changes the value in place.
    metrics.real_server_health("default/web", "default/rs-2", Some(true));
    // None removes the series.
    metrics.real_server_health("default/dns", "default/rs-3", None);
    let text = metrics.encode();
    assert_line(
        &text,
        "lvs_agent_real_server_healthy{virtual_server=\"default/web\",real_server=\"default/rs-2\"} 1",
    );
    assert_no_line_containing(&text, "default/rs-3");

    // Only the pairs still checked remain.
    let keep: BTreeSet<(String, String)> = [
        ("default/web".to_owned(), "default/rs-1".to_owned()),
        ("default/gone".to_owned(), "default/rs-9".to_owned()),
    ]
    .into_iter()
    .collect();
    metrics.retain_real_servers(&keep);
    let text = metrics.encode();
    let healthy: Vec<&str> = lines(&text)
        .into_iter()
        .filter(|line| line.starts_with("lvs_agent_real_server_healthy{"))
        .collect();
    assert_eq!(
        healthy,
        ["lvs_agent_real_server_healthy{virtual_server=\"default/web\",real_server=\"default/rs-1\"} 1"]
    );

    // Nothing left: the family goes too.
    metrics.retain_real_servers(&BTreeSet::new());
    assert_no_line_containing(&metrics.encode(), "real_server_healthy");
}

#[test]
fn service_labels() {
    assert_eq!(service_label(&web()), "10.0.0.1:80/TCP");
    assert_eq!(service_label(&dns()), "[2001:db8::53]:53/UDP");
    assert_eq!(service_label(&marked()), "fwmark:104/IPv4");
    assert_eq!(
        service_label(&ServiceKey::Fwmark {
            family: AddressFamily::IPv6,
            mark: 7
        }),
        "fwmark:7/IPv6"
    );
}

#[test]
fn ipvs_stats_are_exposed_and_each_snapshot_replaces_the_last() {
    let metrics = Metrics::new("director-1");
    metrics.ipvs_stats(
        &[
            ServiceStats {
                key: web(),
                totals: stats(30, (300, 200), (30_000, 90_000)),
                destinations: vec![
                    (
                        address("10.0.0.11"),
                        80,
                        stats(20, (200, 150), (20_000, 60_000)),
                        5,
                        2,
                    ),
                    (
                        address("10.0.0.12"),
                        8080,
                        stats(10, (100, 50), (10_000, 30_000)),
                        1,
                        0,
                    ),
                ],
            },
            ServiceStats {
                key: marked(),
                totals: stats(4, (40, 0), (4_000, 0)),
                destinations: vec![],
            },
            ServiceStats {
                key: dns(),
                totals: stats(7, (7, 7), (700, 1_400)),
                destinations: vec![(address("2001:db8::11"), 53, stats(7, (7, 7), (700, 1_400)), 0, 7)],
            },
        ],
        &names,
    );
    let text = metrics.encode();
    for line in [
        "# TYPE lvs_agent_ipvs_service_connections counter",
        "lvs_agent_ipvs_service_connections_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\"} 30",
        "lvs_agent_ipvs_service_connections_total{service=\"fwmark:104/IPv4\",virtual_server=\"edge/marked\"} 4",
        "lvs_agent_ipvs_service_connections_total{service=\"[2001:db8::53]:53/UDP\",virtual_server=\"\"} 7",
        "lvs_agent_ipvs_service_packets_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",direction=\"in\"} 300",
        "lvs_agent_ipvs_service_packets_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",direction=\"out\"} 200",
        "lvs_agent_ipvs_service_bytes_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",direction=\"in\"} 30000",
        "lvs_agent_ipvs_service_bytes_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",direction=\"out\"} 90000",
        "# TYPE lvs_agent_ipvs_destination_connections counter",
        "lvs_agent_ipvs_destination_connections_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\"} 20",
        "lvs_agent_ipvs_destination_connections_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.12:8080\"} 10",
        "lvs_agent_ipvs_destination_packets_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\",direction=\"in\"} 200",
        "lvs_agent_ipvs_destination_packets_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\",direction=\"out\"} 150",
        "lvs_agent_ipvs_destination_bytes_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.12:8080\",direction=\"out\"} 30000",
        "lvs_agent_ipvs_destination_bytes_total{service=\"[2001:db8::53]:53/UDP\",virtual_server=\"\",destination=\"[2001:db8::11]:53\",direction=\"in\"} 700",
        "# TYPE lvs_agent_ipvs_destination_active_connections gauge",
        "lvs_agent_ipvs_destination_active_connections{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\"} 5",
        "# TYPE lvs_agent_ipvs_destination_inactive_connections gauge",
        "lvs_agent_ipvs_destination_inactive_connections{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\"} 2",
        "lvs_agent_ipvs_destination_inactive_connections{service=\"[2001:db8::53]:53/UDP\",virtual_server=\"\",destination=\"[2001:db8::11]:53\"} 7",
    ] {
        assert_line(&text, line);
    }
    // Each family is declared once.
    assert_eq!(
        lines(&text)
            .iter()
            .filter(|line| **line == "# TYPE lvs_agent_ipvs_destination_packets counter")
            .count(),
        1
    );

    // The next read: web grew and lost 10.0.0.12, the fwmark and DNS services are gone.
    metrics.ipvs_stats(
        &[ServiceStats {
            key: web(),
            totals: stats(31, (310, 210), (31_000, 91_000)),
            destinations: vec![(
                address("10.0.0.11"),
                80,
                stats(21, (210, 160), (21_000, 61_000)),
                4,
                3,
            )],
        }],
        &names,
    );
    let text = metrics.encode();
    assert_line(
        &text,
        "lvs_agent_ipvs_service_connections_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\"} 31",
    );
    assert_line(
        &text,
        "lvs_agent_ipvs_destination_active_connections{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\",destination=\"10.0.0.11:80\"} 4",
    );
    assert!(!lines(&text).contains(
        &"lvs_agent_ipvs_service_connections_total{service=\"10.0.0.1:80/TCP\",virtual_server=\"default/web\"} 30"
    ));
    assert_no_line_containing(&text, "fwmark:104");
    assert_no_line_containing(&text, "2001:db8");
    assert_no_line_containing(&text, "10.0.0.12");
    let service_lines = lines(&text)
        .into_iter()
        .filter(|line| line.starts_with("lvs_agent_ipvs_service_connections_total"))
        .count();
    assert_eq!(service_lines, 1);

    // Services but no destinations: no destination families at all.
    metrics.ipvs_stats(
        &[ServiceStats {
            key: marked(),
            totals: Stats::default(),
            destinations: vec![],
        }],
        &names,
    );
    let text = metrics.encode();
    assert_line(
        &text,
        "lvs_agent_ipvs_service_connections_total{service=\"fwmark:104/IPv4\",virtual_server=\"edge/marked\"} 0",
    );
    assert_no_line_containing(&text, "ipvs_destination");

    // An empty read (no services left): every IPVS series and family vanishes.
    metrics.ipvs_stats(&[], &names);
    let text = metrics.encode();
    assert_no_line_containing(&text, "ipvs_");
    assert_eq!(text.lines().last(), Some("# EOF"));
}

#[test]
fn metrics_are_shared_between_threads() {
    let metrics = Metrics::new("director-1");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let metrics = std::sync::Arc::clone(&metrics);
            std::thread::spawn(move || {
                for _ in 0..250 {
                    metrics.reconcile_finished(Duration::from_millis(1), true);
                    metrics.drift_repaired();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let text = metrics.encode();
    assert_line(&text, "lvs_agent_reconcile_runs_total{result=\"success\"} 1000");
    assert_line(&text, "lvs_agent_drift_repairs_total 1000");
}
