//! IpvsHandle against a real IPVS kernel, in the VM lab: the connection-sync daemons, the
//! version and timeouts, and traffic counters with ZERO, each confirmed by `ipvsadm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ipvs_lab;

use ipvs_lab::{destination, ip, key, lab, run, service};
use lvs_dataplane::ipvs::{DaemonState, SyncDaemon, Timeouts};
use lvs_dataplane::model::{Forwarding, Protocol};

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_sync_daemons_start_list_and_stop() {
    let handle = lab().await;
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ip(&["link", "set", "v0", "up"]);
    ip(&["link", "set", "v1", "up"]);
    let master = SyncDaemon {
        state: DaemonState::Master,
        interface: "v0".into(),
        sync_id: 5,
        max_length: Some(1400),
        multicast_group: Some("239.1.1.1".parse().unwrap()),
        multicast_port: Some(8850),
        multicast_ttl: Some(3),
    };
    let backup = SyncDaemon {
        state: DaemonState::Backup,
        interface: "v1".into(),
        sync_id: 5,
        ..master.clone()
    };
    handle.start_daemon(&master).await.unwrap();
    handle.start_daemon(&backup).await.unwrap();
    assert_eq!(
        sorted_daemons(handle.daemons().await.unwrap()),
        [master.clone(), backup.clone()]
    );
    let listed = run("ipvsadm", &["-Ln", "--daemon"]);
    for expected in [
        "master sync daemon (mcast=v0, syncid=5, maxlen=1400, group=239.1.1.1, port=8850, ttl=3)",
        "backup sync daemon (mcast=v1, syncid=5, maxlen=1400, group=239.1.1.1, port=8850, ttl=3)",
    ] {
        assert!(
            listed.lines().any(|line| line == expected),
            "{expected} not in {listed}"
        );
    }
    assert!(handle.start_daemon(&master).await.unwrap_err().is_exists());

    handle.stop_daemon(DaemonState::Master).await.unwrap();
    assert_eq!(handle.daemons().await.unwrap(), [backup]);
    handle.stop_daemon(DaemonState::Backup).await.unwrap();
    assert!(handle.daemons().await.unwrap().is_empty());
    assert!(run("ipvsadm", &["-Ln", "--daemon"]).trim().is_empty());
    assert!(
        handle
            .stop_daemon(DaemonState::Backup)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // The kernel's defaults, reported back.
    let defaults = SyncDaemon {
        max_length: None,
        multicast_group: None,
        multicast_port: None,
        multicast_ttl: None,
        ..master.clone()
    };
    handle.start_daemon(&defaults).await.unwrap();
    let [running] = handle.daemons().await.unwrap().try_into().unwrap();
    assert_eq!(running.multicast_group, Some("224.0.0.81".parse().unwrap()));
    assert_eq!(
        (running.multicast_port, running.multicast_ttl),
        (Some(8848), Some(1))
    );
    assert_eq!(
        handle.write_count(),
        7,
        "every start and stop sent counts, the two refused ones too"
    );
}

fn sorted_daemons(mut daemons: Vec<SyncDaemon>) -> Vec<SyncDaemon> {
    daemons.sort_by_key(|daemon| daemon.state);
    daemons
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_info_and_timeouts() {
    let handle = lab().await;
    let info = handle.info().await.unwrap();
    let header = run("ipvsadm", &["-Ln"]);
    let expected = format!(
        "IP Virtual Server version {} (size={})",
        info.version(),
        info.connection_table_size
    );
    assert_eq!(header.lines().next(), Some(expected.as_str()));
    assert_eq!(info.version(), "1.2.1");

    let timeouts = handle.timeouts().await.unwrap();
    let shown = |timeouts: Timeouts| {
        format!(
            "Timeout (tcp tcpfin udp): {} {} {}\n",
            timeouts.tcp, timeouts.tcp_fin, timeouts.udp
        )
    };
    assert_eq!(run("ipvsadm", &["-L", "--timeout"]), shown(timeouts));
    let changed = Timeouts {
        tcp: 1000,
        tcp_fin: 60,
        udp: 200,
    };
    handle.set_timeouts(&changed).await.unwrap();
    assert_eq!(handle.timeouts().await.unwrap(), changed);
    assert_eq!(run("ipvsadm", &["-L", "--timeout"]), shown(changed));
    handle
        .set_timeouts(&Timeouts {
            udp: 30,
            ..Timeouts::default()
        })
        .await
        .unwrap();
    assert_eq!(
        handle.timeouts().await.unwrap(),
        Timeouts { udp: 30, ..changed },
        "0 leaves a timeout alone"
    );
    assert_eq!(handle.write_count(), 2);
}

/// Traffic the kernel schedules shows up in the counters, as ipvsadm sees them, and ZERO
/// clears them.
#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_counters_and_zero() {
    let handle = lab().await;
    let vip = key("10.1.0.100", 9999, Protocol::Udp);
    handle.new_service(&service(vip, "rr")).await.unwrap();
    handle
        .new_destination(&vip, &destination("10.1.0.2", 9999, Forwarding::DirectRouting))
        .await
        .unwrap();
    let socket = std::net::UdpSocket::bind("10.1.0.1:0").unwrap();
    for _ in 0..3 {
        socket.send_to(b"hello", "10.1.0.100:9999").unwrap();
    }
    // The kernel folds per-CPU counters into what it reports every 2 seconds.
    let mut stats = Default::default();
    for _ in 0..50 {
        stats = handle.service(&vip).await.unwrap().unwrap().stats;
        if stats.incoming_packets == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!((stats.connections, stats.incoming_packets), (1, 3), "{stats:?}");
    let listed = run("ipvsadm", &["-Ln", "--stats", "--exact"]);
    let line = listed
        .lines()
        .find(|line| line.starts_with("UDP  10.1.0.100:9999"))
        .unwrap();
    let columns: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|column| column.parse().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            stats.connections,
            stats.incoming_packets,
            stats.outgoing_packets,
            stats.incoming_bytes,
            stats.outgoing_bytes
        ]
    );
    let [observed] = handle.destinations(&vip).await.unwrap().try_into().unwrap();
    assert_eq!(observed.stats.incoming_packets, 3);
    assert_eq!(observed.active_connections + observed.inactive_connections, 1);

    handle.zero(Some(&vip)).await.unwrap();
    let zeroed = handle.service(&vip).await.unwrap().unwrap().stats;
    assert_eq!(
        (zeroed.connections, zeroed.incoming_packets, zeroed.incoming_bytes),
        (0, 0, 0)
    );
    handle.zero(None).await.unwrap();
    assert_eq!(handle.write_count(), 2, "ZERO is not a write");
}
