//! The health monitor end to end against servers on 127.0.0.1: rise and fall with real outages,
//! the watch channel, bounded concurrency counted at the server, which targets exist, and the
//! scheduler stopping with the last handle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lvs_agent::health::{Concurrency, Health, HealthMonitor, ProbeObserver, ProbeOutcome};
use lvs_api::{
    Destination, DirectorService, HealthCheckSpec, HealthCheckType, RealServerState, ThresholdsSpec,
};
use pretty_assertions::assert_eq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const VS: &str = "default/web";

fn check(check_type: HealthCheckType, rise: u32, fall: u32) -> HealthCheckSpec {
    HealthCheckSpec {
        check_type,
        interval_seconds: 1,
        timeout_seconds: 1,
        rise,
        fall,
        ..HealthCheckSpec::default()
    }
}

fn destination(real_server: &str, port: u16, state: RealServerState) -> Destination {
    Destination {
        real_server: real_server.to_owned(),
        address: "127.0.0.1".parse().unwrap(),
        port,
        weight: 1,
        thresholds: ThresholdsSpec::default(),
        state,
        awaiting_node: false,
    }
}

fn service(
    virtual_server: &str,
    health_check: HealthCheckSpec,
    destinations: Vec<Destination>,
) -> DirectorService {
    DirectorService {
        virtual_server: virtual_server.to_owned(),
        health_check,
        destinations,
        ..DirectorService::default()
    }
}

/// Remembers every probe result.
#[derive(Default)]
struct Recorder {
    probes: Mutex<Vec<(String, String, HealthCheckType, bool)>>,
}

impl ProbeObserver for Recorder {
    fn probed(
        &self,
        virtual_server: &str,
        real_server: &str,
        check: HealthCheckType,
        outcome: &ProbeOutcome,
    ) {
        self.probes.lock().unwrap().push((
            virtual_server.to_owned(),
            real_server.to_owned(),
            check,
            outcome.success,
        ));
    }
}

/// A TCP server that accepts and counts connections until its task is aborted (which closes
/// the listener).
fn tcp_server(listener: TcpListener, accepted: Arc<AtomicUsize>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    })
}

/// Waits, on the monitor's watch channel, until `real_server` has `health`; returns how long
/// that took.
async fn wait_for(
    monitor: &HealthMonitor,
    changes: &mut watch::Receiver<u64>,
    real_server: &str,
    health: Health,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, async {
        while monitor.health(VS, real_server) != health {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{real_server} not {health:?} within {limit:?}: {:?}",
            monitor.status(VS, real_server)
        )
    });
    started.elapsed()
}

#[tokio::test]
async fn a_stopped_server_falls_and_a_restarted_one_rises() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = tcp_server(listener, Arc::clone(&accepted));
    let recorder = Arc::new(Recorder::default());
    let monitor = HealthMonitor::new(4, recorder.clone());
    let mut changes = monitor.subscribe();
    let services = [service(
        VS,
        check(HealthCheckType::Tcp, 2, 2),
        vec![destination("default/rs-1", port, RealServerState::Active)],
    )];
    monitor.set_targets(&services);
    assert_eq!(monitor.health(VS, "default/rs-1"), Health::Unknown);

    // The first success makes it healthy at once.
    let took = wait_for(
        &monitor,
        &mut changes,
        "default/rs-1",
        Health::Healthy,
        Duration::from_secs(1),
    )
    .await;
    assert!(took < Duration::from_millis(500), "first probe took {took:?}");
    let before = *changes.borrow_and_update();

    // Two refused connections, a second apart, make it unhealthy.
    server.abort();
    let _ = server.await;
    let took = wait_for(
        &monitor,
        &mut changes,
        "default/rs-1",
        Health::Unhealthy,
        Duration::from_secs(4),
    )
    .await;
    assert!(
        took > Duration::from_millis(900),
        "fell after one failure: {took:?}"
    );
    assert_ne!(*changes.borrow(), before, "the watch channel bumps");
    let status = monitor.status(VS, "default/rs-1").unwrap();
    assert_eq!(status.healthy, Some(false));
    assert_eq!(status.consecutive_failures, 2);
    assert_eq!(
        status.last_failure.as_deref(),
        Some(format!("connect 127.0.0.1:{port}: connection refused").as_str())
    );
    assert!(status.last_check_millis.is_some() && status.latency.is_some());

    // Back on the same port: two successes make it healthy again.
    let listener = TcpListener::bind((LOCALHOST, port)).await.unwrap();
    let _server = tcp_server(listener, Arc::clone(&accepted));
    let took = wait_for(
        &monitor,
        &mut changes,
        "default/rs-1",
        Health::Healthy,
        Duration::from_secs(4),
    )
    .await;
    assert!(
        took > Duration::from_millis(900),
        "rose after one success: {took:?}"
    );
    let status = monitor.status(VS, "default/rs-1").unwrap();
    assert_eq!(status.healthy, Some(true));
    assert_eq!(status.consecutive_successes, 2);
    assert_eq!(status.consecutive_failures, 0);

    let probes = recorder.probes.lock().unwrap().clone();
    assert!(probes.len() >= 5, "{probes:?}");
    assert!(
        probes
            .iter()
            .all(|(vs, rs, check, _)| vs == VS && rs == "default/rs-1" && *check == HealthCheckType::Tcp)
    );
    assert_eq!(probes.iter().filter(|probe| !probe.3).count(), 2);
}

#[tokio::test]
async fn never_more_probes_in_flight_than_allowed() {
    // An HTTP server that takes 300 ms per request and counts requests in progress.
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let current = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    {
        let (current, most, total) = (Arc::clone(&current), Arc::clone(&most), Arc::clone(&total));
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
                let current = Arc::clone(&current);
                tokio::spawn(async move {
                    let mut buffer = [0; 1024];
                    let _ = stream.read(&mut buffer).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    // Done before answering: the probe is still in flight until it reads this.
                    current.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
    }
    let mut slow = check(HealthCheckType::Http, 2, 2);
    slow.interval_seconds = 10;
    slow.timeout_seconds = 2;
    let real_servers: Vec<String> = (0..10).map(|index| format!("default/rs-{index}")).collect();
    let destinations = real_servers
        .iter()
        .map(|real_server| destination(real_server, port, RealServerState::Active))
        .collect();
    let monitor = HealthMonitor::new(2, Arc::new(()));
    monitor.set_targets(&[service(VS, slow, destinations)]);

    let started = Instant::now();
    let mut changes = monitor.subscribe();
    for real_server in &real_servers {
        wait_for(
            &monitor,
            &mut changes,
            real_server,
            Health::Healthy,
            Duration::from_secs(4),
        )
        .await;
    }
    let took = started.elapsed();
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "at most two at a time, and two at once"
    );
    assert_eq!(total.load(Ordering::SeqCst), 10, "each target once");
    assert!(
        took >= Duration::from_millis(1400),
        "10 probes of 300 ms, two at a time: {took:?}"
    );
}

/// An HTTP server that accepts, reads the request and never answers: every check of it runs
/// into its timeout. Counts the requests it holds.
fn silent_http_server(listener: TcpListener, held: Arc<AtomicUsize>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut streams = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.fetch_add(1, Ordering::SeqCst);
            streams.push(stream);
        }
    })
}

#[tokio::test]
async fn one_virtual_server_s_slow_targets_do_not_delay_another_s_checks() {
    let slow_listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let slow_port = slow_listener.local_addr().unwrap().port();
    let held = Arc::new(AtomicUsize::new(0));
    let _slow = silent_http_server(slow_listener, Arc::clone(&held));
    let fast_listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let fast_port = fast_listener.local_addr().unwrap().port();
    let _fast = tcp_server(fast_listener, Arc::new(AtomicUsize::new(0)));

    let mut slow = check(HealthCheckType::Http, 1, 1);
    slow.interval_seconds = 10;
    slow.timeout_seconds = 10;
    let tenant_a: Vec<Destination> = (0..10)
        .map(|index| destination(&format!("a/rs-{index}"), slow_port, RealServerState::Active))
        .collect();
    let monitor = HealthMonitor::with_concurrency(
        Concurrency {
            total: 4,
            per_virtual_server: 2,
        },
        Arc::new(()),
    );
    let a = service("a/web", slow, tenant_a);
    monitor.set_targets(std::slice::from_ref(&a));
    // Tenant a's checks hang: wait until it holds all the slots it may.
    tokio::time::timeout(Duration::from_secs(2), async {
        while held.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("tenant a's first checks start");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(held.load(Ordering::SeqCst), 2, "tenant a runs at most its share");

    // Tenant b's target is checked at once, not after tenant a's timeouts.
    let b = service(
        "b/web",
        check(HealthCheckType::Tcp, 1, 1),
        vec![destination("b/rs-1", fast_port, RealServerState::Active)],
    );
    monitor.set_targets(&[a, b]);
    let mut changes = monitor.subscribe();
    tokio::time::timeout(Duration::from_secs(5), async {
        while monitor.health("b/web", "b/rs-1") != Health::Healthy {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("tenant b never checked: {:?}", monitor.status("b/web", "b/rs-1")));
    assert_eq!(
        monitor.health("a/web", "a/rs-0"),
        Health::Unknown,
        "tenant b went first although tenant a's checks were due earlier and are still running"
    );
}

#[tokio::test]
async fn targets_follow_the_config() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tcp_server(listener, Arc::new(AtomicUsize::new(0)));
    let monitor = HealthMonitor::new(4, Arc::new(()));
    let mut changes = monitor.subscribe();
    let tcp = check(HealthCheckType::Tcp, 2, 2);
    let destinations = vec![
        destination("default/rs-1", port, RealServerState::Active),
        destination("default/rs-2", port, RealServerState::Draining),
        destination("default/rs-3", port, RealServerState::Disabled),
    ];
    let unchecked = service(
        "default/udp",
        check(HealthCheckType::None, 2, 2),
        vec![destination("default/rs-1", port, RealServerState::Active)],
    );
    let config = [service(VS, tcp.clone(), destinations.clone()), unchecked];
    monitor.set_targets(&config);
    assert!(monitor.status(VS, "default/rs-1").is_some());
    assert_eq!(monitor.status(VS, "default/rs-2"), None, "draining is not probed");
    assert_eq!(monitor.status(VS, "default/rs-3"), None, "disabled is not probed");
    assert_eq!(
        monitor.status("default/udp", "default/rs-1"),
        None,
        "check type None"
    );
    assert_eq!(monitor.health("default/udp", "default/rs-1"), Health::Unknown);
    wait_for(
        &monitor,
        &mut changes,
        "default/rs-1",
        Health::Healthy,
        Duration::from_secs(1),
    )
    .await;
    let status = monitor.status(VS, "default/rs-1").unwrap();

    // The same settings again: state and schedule are kept.
    monitor.set_targets(&config);
    assert_eq!(monitor.status(VS, "default/rs-1"), Some(status));

    // Another port: a new target, back to Unknown (and a bump, health was known).
    let seen = *changes.borrow_and_update();
    let mut moved = destinations;
    moved[0].port = port.wrapping_add(1).max(1);
    monitor.set_targets(&[service(VS, tcp, moved)]);
    assert_eq!(monitor.health(VS, "default/rs-1"), Health::Unknown);
    assert_eq!(
        monitor.status(VS, "default/rs-1").unwrap().last_check_millis,
        None
    );
    assert_ne!(*changes.borrow_and_update(), seen);

    // Gone from the config: not probed any more.
    monitor.set_targets(&[]);
    assert_eq!(monitor.status(VS, "default/rs-1"), None);
    assert_eq!(monitor.health(VS, "default/rs-1"), Health::Unknown);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_probing() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let _server = tcp_server(listener, Arc::clone(&accepted));
    let monitor = HealthMonitor::new(1, Arc::new(()));
    let clone = monitor.clone();
    let mut changes = monitor.subscribe();
    monitor.set_targets(&[service(
        VS,
        check(HealthCheckType::Tcp, 1, 1),
        vec![destination("default/rs-1", port, RealServerState::Active)],
    )]);
    wait_for(
        &monitor,
        &mut changes,
        "default/rs-1",
        Health::Healthy,
        Duration::from_secs(1),
    )
    .await;
    drop(monitor);
    assert_eq!(
        clone.health(VS, "default/rs-1"),
        Health::Healthy,
        "a clone keeps it alive"
    );
    drop(clone);
    let closed = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "the scheduler stopped and closed the channel"
    );
    let probes = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        probes,
        "no probes after the drop"
    );
}
