//! IpvsHandle against a real IPVS kernel, in the VM lab (`LAB_TEST_FILTER=ipvs e2e/lab/run
//! kernel-tests`): services of every protocol and family, every scheduler, every forwarding
//! method, persistence, thresholds, errors and single-write edits. Each test runs alone in a
//! fresh network namespace, reads back what it created, and has `ipvsadm` (an independent
//! implementation) confirm what the kernel holds. Daemons, timeouts and counters are in
//! `ipvs_kernel_state.rs`, bulk programming in `ipvs_kernel_bulk.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ipvs_lab;

use std::net::IpAddr;

use ipvs_lab::{
    destination, destinations_sorted, ipvsadm_rules, key, lab, run, service, services_sorted, sorted,
};
use lvs_dataplane::ipvs::{IpvsError, IpvsRequest};
use lvs_dataplane::model::{
    AddressFamily, Destination, Forwarding, Persistence, Protocol, Service, ServiceFlags, ServiceKey,
    TunnelChecksum, TunnelType,
};

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_services_of_every_protocol_and_family_and_fwmark() {
    let handle = lab().await;
    let desired = vec![
        service(key("10.0.0.1", 80, Protocol::Tcp), "wlc"),
        service(key("10.0.0.1", 53, Protocol::Udp), "wlc"),
        service(key("10.0.0.1", 9, Protocol::Sctp), "wlc"),
        service(key("10.0.0.2", 0, Protocol::Tcp), "wlc"),
        service(key("fd00::1", 443, Protocol::Tcp), "wlc"),
        service(key("fd00::1", 53, Protocol::Udp), "wlc"),
        service(key("fd00::1", 9, Protocol::Sctp), "wlc"),
        service(
            ServiceKey::Fwmark {
                family: AddressFamily::IPv4,
                mark: 7,
            },
            "wlc",
        ),
        service(
            ServiceKey::Fwmark {
                family: AddressFamily::IPv6,
                mark: 8,
            },
            "wlc",
        ),
    ];
    for service in &desired {
        handle.new_service(service).await.unwrap();
        assert_eq!(
            handle.service(&service.key).await.unwrap().unwrap().service,
            *service
        );
    }
    assert_eq!(services_sorted(&handle).await, sorted(desired));
    let expected = [
        "-A -t 10.0.0.1:80 -s wlc",
        "-A -u 10.0.0.1:53 -s wlc",
        "-A --sctp-service 10.0.0.1:9 -s wlc",
        "-A -t 10.0.0.2:0 -s wlc",
        "-A -t [fd00::1]:443 -s wlc",
        "-A -u [fd00::1]:53 -s wlc",
        "-A --sctp-service [fd00::1]:9 -s wlc",
        "-A -f 7 -s wlc",
        "-A -f 8 -6 -s wlc",
    ];
    assert_eq!(
        sorted(ipvsadm_rules()),
        sorted(expected.map(String::from).to_vec())
    );
}

/// Every scheduler of the lab kernel, loaded on demand by the kernel itself, with the flags
/// each understands; `twos` (Linux 6.8+) is missing and says so.
#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_every_scheduler_with_its_flags() {
    let handle = lab().await;
    let schedulers = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ];
    let mut desired = Vec::new();
    let mut expected = Vec::new();
    for (index, scheduler) in schedulers.iter().enumerate() {
        let both = ServiceFlags {
            sched_fallback: true,
            sched_port: true,
            ..Default::default()
        };
        let (flags, shown) = match *scheduler {
            "sh" | "mh" => (both, format!(" -b {scheduler}-fallback,{scheduler}-port")),
            "rr" => (
                ServiceFlags {
                    sched_3: true,
                    ..Default::default()
                },
                " -b flag-3".to_owned(),
            ),
            "wrr" => (
                ServiceFlags {
                    one_packet: true,
                    ..Default::default()
                },
                " -o".to_owned(),
            ),
            _ => (ServiceFlags::default(), String::new()),
        };
        let address = format!("10.0.{index}.1");
        let service = Service {
            flags,
            ..service(key(&address, 53, Protocol::Udp), scheduler)
        };
        handle
            .new_service(&service)
            .await
            .unwrap_or_else(|error| panic!("{scheduler}: {error}"));
        expected.push(format!("-A -u {address}:53 -s {scheduler}{shown}"));
        desired.push(service);
    }
    assert_eq!(services_sorted(&handle).await, sorted(desired));
    assert_eq!(sorted(ipvsadm_rules()), sorted(expected));

    let twos = service(key("10.0.99.1", 80, Protocol::Tcp), "twos");
    let error = handle.new_service(&twos).await.unwrap_err();
    assert!(
        matches!(&error, IpvsError::SchedulerUnavailable { scheduler, .. } if scheduler == "twos"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "creating service TCP 10.0.99.1:80: scheduler twos not available in this kernel (module ip_vs_twos)"
    );
    let edit = Service {
        scheduler: "twos".into(),
        ..service(key("10.0.0.1", 53, Protocol::Udp), "rr")
    };
    assert!(
        handle
            .set_service(&edit)
            .await
            .unwrap_err()
            .is_scheduler_unavailable()
    );
    assert!(handle.service(&twos.key).await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_forwarding_methods_and_tunnel_types() {
    let handle = lab().await;
    let ipv4 = key("10.0.0.1", 80, Protocol::Tcp);
    let ipv6 = key("fd00::1", 80, Protocol::Tcp);
    let tunnel = |kind, port, checksum| Forwarding::Tunnel { kind, port, checksum };
    let ipv4_destinations = vec![
        destination("10.1.0.2", 80, Forwarding::DirectRouting),
        destination("10.1.0.3", 8080, Forwarding::Nat),
        destination("10.1.0.4", 80, tunnel(TunnelType::Ipip, 0, TunnelChecksum::None)),
        destination(
            "10.1.0.5",
            80,
            tunnel(TunnelType::Gue, 6080, TunnelChecksum::Checksum),
        ),
        destination(
            "10.1.0.6",
            80,
            tunnel(TunnelType::Gre, 0, TunnelChecksum::RemoteChecksum),
        ),
        destination("fd00:1::9", 80, tunnel(TunnelType::Ipip, 0, TunnelChecksum::None)),
    ];
    let ipv6_destinations = vec![
        destination("fd00:1::2", 80, Forwarding::DirectRouting),
        destination("fd00:1::3", 8080, Forwarding::Nat),
        destination(
            "fd00:1::4",
            80,
            tunnel(TunnelType::Gue, 5555, TunnelChecksum::None),
        ),
    ];
    let mut requests = vec![
        IpvsRequest::NewService(service(ipv4, "rr")),
        IpvsRequest::NewService(service(ipv6, "rr")),
    ];
    for (key, destinations) in [(ipv4, &ipv4_destinations), (ipv6, &ipv6_destinations)] {
        requests.extend(
            destinations
                .iter()
                .map(|destination| IpvsRequest::NewDestination {
                    service: key,
                    destination: destination.clone(),
                }),
        );
    }
    for result in handle.apply_all(requests).await {
        result.unwrap();
    }
    assert_eq!(
        destinations_sorted(&handle, &ipv4).await,
        sorted(ipv4_destinations)
    );
    assert_eq!(
        destinations_sorted(&handle, &ipv6).await,
        sorted(ipv6_destinations)
    );
    let expected = [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 1",
        "-a -t 10.0.0.1:80 -r 10.1.0.3:8080 -m -w 1",
        "-a -t 10.0.0.1:80 -r 10.1.0.4:80 -i -w 1 --tun-type ipip",
        "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 10.0.0.1:80 -r 10.1.0.6:80 -i -w 1 --tun-type gre --tun-remcsum",
        "-a -t 10.0.0.1:80 -r [fd00:1::9]:80 -i -w 1 --tun-type ipip",
        "-A -t [fd00::1]:80 -s rr",
        "-a -t [fd00::1]:80 -r [fd00:1::2]:80 -g -w 1",
        "-a -t [fd00::1]:80 -r [fd00:1::3]:8080 -m -w 1",
        "-a -t [fd00::1]:80 -r [fd00:1::4]:80 -i -w 1 --tun-type gue --tun-port 5555 --tun-nocsum",
    ];
    assert_eq!(
        sorted(ipvsadm_rules()),
        sorted(expected.map(String::from).to_vec())
    );
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_persistence_netmasks_and_thresholds() {
    let handle = lab().await;
    let ipv4 = Service {
        persistence: Some(Persistence {
            timeout: 300,
            prefix_length: 24,
        }),
        ..service(key("10.0.0.1", 80, Protocol::Tcp), "wrr")
    };
    let ipv6 = Service {
        persistence: Some(Persistence {
            timeout: 60,
            prefix_length: 64,
        }),
        ..service(key("fd00::1", 443, Protocol::Tcp), "wrr")
    };
    let fwmark = Service {
        persistence: Some(Persistence {
            timeout: 1800,
            prefix_length: 32,
        }),
        ..service(
            ServiceKey::Fwmark {
                family: AddressFamily::IPv4,
                mark: 3,
            },
            "lc",
        )
    };
    let limited = Destination {
        upper_threshold: 100,
        lower_threshold: 10,
        ..destination("10.1.0.2", 80, Forwarding::DirectRouting)
    };
    for service in [&ipv4, &ipv6, &fwmark] {
        handle.new_service(service).await.unwrap();
    }
    handle.new_destination(&ipv4.key, &limited).await.unwrap();
    assert_eq!(
        services_sorted(&handle).await,
        sorted(vec![ipv4.clone(), ipv6, fwmark])
    );
    assert_eq!(destinations_sorted(&handle, &ipv4.key).await, [limited]);
    let rules = ipvsadm_rules();
    for expected in [
        "-A -t 10.0.0.1:80 -s wrr -p 300 -M 255.255.255.0",
        "-A -t [fd00::1]:443 -s wrr -p 60 -M 64",
        "-A -f 3 -s lc -p 1800",
    ] {
        assert!(
            rules.iter().any(|rule| rule == expected),
            "{expected} not in {rules:#?}"
        );
    }
    let thresholds = run("ipvsadm", &["-Ln", "--thresholds"]);
    let line = thresholds
        .lines()
        .find(|line| line.contains("10.1.0.2:80"))
        .unwrap();
    let columns: Vec<_> = line.split_whitespace().collect();
    assert_eq!(
        columns[2..4],
        ["100", "10"],
        "Uthreshold Lthreshold in {thresholds}"
    );
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_errors_name_exists_and_not_found() {
    let handle = lab().await;
    let web = service(key("10.0.0.1", 80, Protocol::Tcp), "rr");
    let real = destination("10.1.0.2", 80, Forwarding::DirectRouting);
    handle.new_service(&web).await.unwrap();
    handle.new_destination(&web.key, &real).await.unwrap();

    let twice = handle.new_service(&web).await.unwrap_err();
    assert!(twice.is_exists() && twice.errno() == Some(17), "{twice:?}");
    assert!(
        twice
            .to_string()
            .starts_with("creating service TCP 10.0.0.1:80: "),
        "{twice}"
    );
    assert!(
        handle
            .new_destination(&web.key, &real)
            .await
            .unwrap_err()
            .is_exists()
    );

    let missing = key("10.0.0.9", 80, Protocol::Tcp);
    let gone = handle.delete_service(&missing).await.unwrap_err();
    assert!(gone.is_not_found() && gone.errno() == Some(3), "{gone:?}");
    assert!(
        handle
            .set_service(&service(missing, "rr"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        handle
            .new_destination(&missing, &real)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let address: IpAddr = "10.1.0.9".parse().unwrap();
    let no_destination = handle
        .delete_destination(&web.key, address, 80)
        .await
        .unwrap_err();
    assert!(
        no_destination.is_not_found() && no_destination.errno() == Some(2),
        "{no_destination:?}"
    );
    assert_eq!(
        no_destination.to_string(),
        "deleting destination 10.1.0.9:80 of service TCP 10.0.0.1:80: No such file or directory (os error 2)"
    );
    let edit_missing = destination("10.1.0.9", 80, Forwarding::DirectRouting);
    assert!(
        handle
            .set_destination(&web.key, &edit_missing)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(handle.service(&missing).await.unwrap().is_none());
    assert!(handle.destinations(&missing).await.unwrap().is_empty());

    // A batch goes on past a failure, one result per request, in order.
    let results = handle
        .apply_all([
            IpvsRequest::NewService(web.clone()),
            IpvsRequest::NewService(service(key("10.0.0.2", 80, Protocol::Tcp), "rr")),
            IpvsRequest::DeleteService(missing),
        ])
        .await;
    assert!(results[0].as_ref().unwrap_err().is_exists());
    assert!(results[1].is_ok());
    assert!(results[2].as_ref().unwrap_err().is_not_found());
    assert_eq!(ipvsadm_rules().len(), 3, "two services and a destination");
}

/// Changing one weight is one netlink write; editing a service is one too.
#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_edits_are_single_writes() {
    let handle = lab().await;
    let web = service(key("10.0.0.1", 80, Protocol::Tcp), "wrr");
    let mut real = destination("10.1.0.2", 80, Forwarding::DirectRouting);
    handle.new_service(&web).await.unwrap();
    handle.new_destination(&web.key, &real).await.unwrap();
    assert_eq!(handle.write_count(), 2);

    real.weight = 5;
    let before = handle.write_count();
    handle.set_destination(&web.key, &real).await.unwrap();
    assert_eq!(handle.write_count() - before, 1);
    assert_eq!(destinations_sorted(&handle, &web.key).await, [real.clone()]);
    assert!(ipvsadm_rules().contains(&"-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 5".to_owned()));

    let edited = Service {
        scheduler: "sh".into(),
        flags: ServiceFlags {
            sched_port: true,
            ..Default::default()
        },
        persistence: Some(Persistence {
            timeout: 120,
            prefix_length: 32,
        }),
        ..web.clone()
    };
    let before = handle.write_count();
    handle.set_service(&edited).await.unwrap();
    assert_eq!(handle.write_count() - before, 1);
    assert_eq!(services_sorted(&handle).await, std::slice::from_ref(&edited));
    assert!(ipvsadm_rules().contains(&"-A -t 10.0.0.1:80 -s sh -p 120 -b sh-port".to_owned()));
    // Back to no persistence and no flags: the mask clears what we set.
    handle.set_service(&web).await.unwrap();
    assert_eq!(services_sorted(&handle).await, std::slice::from_ref(&web));

    let before = handle.write_count();
    let _ = handle.services().await.unwrap();
    let _ = handle.destinations(&web.key).await.unwrap();
    let _ = handle.info().await.unwrap();
    assert_eq!(handle.write_count(), before, "reads are not writes");

    handle
        .delete_destination(&web.key, real.address, real.port)
        .await
        .unwrap();
    assert!(handle.destinations(&web.key).await.unwrap().is_empty());
    handle.delete_service(&web.key).await.unwrap();
    assert!(handle.services().await.unwrap().is_empty());
    assert!(ipvsadm_rules().is_empty());
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_dumps_from_clones_at_once_all_succeed() {
    // One netlink socket runs one dump at a time (the kernel answers a second with EBUSY): the
    // agent's metrics refresh, drift check and reconcile pass read through clones of one handle.
    const SERVICES: usize = 1000;
    let handle = lab().await;
    let services: Vec<Service> = (1..=SERVICES)
        .map(|port| service(key("10.0.0.1", u16::try_from(port).unwrap(), Protocol::Tcp), "rr"))
        .collect();
    for service in &services {
        handle.new_service(service).await.unwrap();
    }
    let web = key("10.0.0.1", 1, Protocol::Tcp);
    let clones: Vec<_> = (0..8).map(|_| handle.clone()).collect();
    for round in 0..10 {
        let reads = futures::future::join_all(clones.iter().map(|clone| clone.services())).await;
        for read in reads {
            let read = read.unwrap_or_else(|error| panic!("round {round}: {error}"));
            assert_eq!(read.len(), SERVICES, "round {round}");
        }
        let (all, one) = tokio::join!(handle.services(), clones[0].destinations(&web));
        all.unwrap_or_else(|error| panic!("round {round}: {error}"));
        one.unwrap_or_else(|error| panic!("round {round}: {error}"));
    }
    // A dump asked and then left unpolled (the agent's drift check keeps one across its
    // select! loop) holds nothing up: another read completes, and so does the first after it.
    let mut suspended = Box::pin(clones[1].services());
    let _ = futures::poll!(&mut suspended);
    let other = tokio::time::timeout(std::time::Duration::from_secs(10), handle.services())
        .await
        .expect("a read is not held up by a suspended dump");
    assert_eq!(other.unwrap().len(), SERVICES);
    assert_eq!(suspended.await.unwrap().len(), SERVICES);
}
