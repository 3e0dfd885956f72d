//! bench-heartbeat — failover heartbeats with 5,000 VIPs shared by two directors: each
//! director's failover state encodes its round (signed, split into datagrams), sends it over
//! loopback UDP from its own address (127.0.0.1, 127.0.0.2) and the other receives, decodes,
//! authenticates and accepts every datagram — the agent's real path, without the timers.
//!
//! Prints `name=value` lines: `heartbeat_bytes=` (the largest datagram), `datagrams=` (per
//! director per interval), `accept_us=` (mean decode + accept per datagram), `encode_us=` (one
//! round), `lost=`. Fails (exit 1) when a datagram is not under 1,400 bytes, one is lost or
//! refused, or a VIP is not heard.
//!
//! Usage: `cargo run --release -p lvs-agent --example bench_heartbeat [VIPS] [ROUNDS]`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure ends it

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant as StdInstant, SystemTime};

use lvs_agent::ha::election::Local;
use lvs_agent::ha::state::FailoverState;
use lvs_agent::ha::wire::{self, HeartbeatKey, HeartbeatKeys};
use lvs_agent::ha::{Group, Now, PassReport};
use lvs_agent::metrics::Metrics;
use tokio::time::Instant;

/// Every datagram must be smaller than this.
const LIMIT: usize = 1_400;

fn group() -> Group {
    Group {
        ranked: vec!["d1".into(), "d2".into()],
        peers: BTreeMap::from([
            ("d1".to_owned(), Some(IpAddr::from([127, 0, 0, 1]))),
            ("d2".to_owned(), Some(IpAddr::from([127, 0, 0, 2]))),
        ]),
        interval: Duration::from_millis(200),
        dead_after_count: 3,
        preempt: false,
        preempt_delay: Duration::ZERO,
        connection_sync: None,
        interface: None,
        devices: vec!["lvs0".into()],
        virtual_servers: vec!["bench/web".into()],
    }
}

fn director(node: &str, vips: &[IpAddr], now: Now) -> FailoverState {
    let mut state = FailoverState::new(
        node,
        if node == "d1" { 1 } else { 2 },
        None,
        Duration::from_secs(30),
        Metrics::new(node),
    );
    let report = PassReport {
        groups: vips.iter().map(|vip| (*vip, group())).collect(),
        local: vips
            .iter()
            .map(|vip| {
                let local = Local {
                    eligible: true,
                    reason: None,
                    healthy: 4,
                    synced_since: None,
                };
                (*vip, local)
            })
            .collect(),
        ..PassReport::default()
    };
    state.report(report, now);
    state
}

#[derive(Default)]
struct Figures {
    largest: usize,
    sent: usize,
    received: usize,
    refused: usize,
    accept: Duration,
    encode: Duration,
}

/// One interval from `sender` to `receiver`: encode and send the round, receive and accept it.
fn exchange(
    sender: &mut FailoverState,
    socket: &UdpSocket,
    receiver: &mut FailoverState,
    inbox: &UdpSocket,
    port: u16,
    keys: &HeartbeatKeys,
    figures: &mut Figures,
) {
    let started = StdInstant::now();
    let datagrams = sender.heartbeats(Instant::now(), port, keys);
    figures.encode += started.elapsed();
    for (target, datagram) in &datagrams {
        figures.largest = figures.largest.max(datagram.len());
        socket.send_to(datagram, target).expect("send");
        figures.sent += 1;
    }
    let mut buffer = vec![0u8; 65_536];
    for _ in 0..datagrams.len() {
        let Ok((length, from)) = inbox.recv_from(&mut buffer) else {
            return; // timed out: the rest is lost
        };
        figures.received += 1;
        let started = StdInstant::now();
        let accepted = wire::decode(&buffer[..length], keys)
            .map_err(|error| error.to_string())
            .and_then(|(heartbeat, key)| {
                receiver
                    .accept(heartbeat, from.ip(), key, Instant::now())
                    .map_err(|rejection| format!("{rejection:?}"))
            });
        figures.accept += started.elapsed();
        if let Err(why) = accepted {
            eprintln!("refused a datagram from {from}: {why}");
            figures.refused += 1;
        }
    }
}

fn main() -> ExitCode {
    let mut arguments = std::env::args().skip(1);
    let count: u32 = arguments
        .next()
        .map_or(5_000, |value| value.parse().expect("VIPS"));
    let rounds: u32 = arguments
        .next()
        .map_or(50, |value| value.parse().expect("ROUNDS"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let vips: Vec<IpAddr> = (0..count)
        .map(|index| IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + index)))
        .collect();
    let now = Now {
        instant: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut d1 = director("d1", &vips, now);
    let mut d2 = director("d2", &vips, now);
    let keys = HeartbeatKeys::single(HeartbeatKey::new(b"a benchmark key, 32 bytes long!!"));
    let one = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = one.local_addr().unwrap().port();
    let two = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 2], port))).expect("bind 127.0.0.2");
    for socket in [&one, &two] {
        socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    }
    let mut figures = Figures::default();
    for _ in 0..rounds {
        exchange(&mut d1, &one, &mut d2, &two, port, &keys, &mut figures);
        exchange(&mut d2, &two, &mut d1, &one, port, &keys, &mut figures);
    }
    let heard = |state: &FailoverState| {
        state
            .status(Instant::now())
            .iter()
            .filter(|vip| vip.peers_alive.len() == 1)
            .count()
    };
    let lost = figures.sent - figures.received;
    let per_interval = figures.sent / (2 * rounds as usize).max(1);
    println!("vips={count}");
    println!("directors=2");
    println!("rounds={rounds}");
    println!("heartbeat_bytes={}", figures.largest);
    println!("datagrams={per_interval}");
    println!(
        "encode_us={:.1}",
        figures.encode.as_secs_f64() * 1e6 / f64::from(2 * rounds)
    );
    println!(
        "accept_us={:.2}",
        figures.accept.as_secs_f64() * 1e6 / figures.received.max(1) as f64
    );
    println!("refused={}", figures.refused);
    println!("lost={lost}");
    let mut failures = Vec::new();
    if figures.largest >= LIMIT {
        failures.push(format!("a datagram of {} bytes (limit {LIMIT})", figures.largest));
    }
    if lost > 0 || figures.refused > 0 {
        failures.push(format!("{lost} datagrams lost, {} refused", figures.refused));
    }
    let (heard_by_d1, heard_by_d2) = (heard(&d1), heard(&d2));
    if heard_by_d1 != vips.len() || heard_by_d2 != vips.len() {
        failures.push(format!(
            "VIPs heard: d1 {heard_by_d1}, d2 {heard_by_d2} of {}",
            vips.len()
        ));
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("bench-heartbeat failed: {}", failures.join("; "));
        ExitCode::FAILURE
    }
}
