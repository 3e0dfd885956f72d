//! Our nftables tables against the host's real `nft`, in a private network namespace: the JSON
//! we write is accepted, a replace is idempotent, a delete removes both tables, and nft's
//! refusals come back with its exit status and message; a masked mark leaves a real packet's other
//! mark bits alone; the input guard lets real packets to a VIP through only on its declared
//! services and heartbeats only from peers, each under its rate. Needs root, `unshare`, `nft`
//! and iproute2's `ip`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ipvs_lab;
mod netns;

use std::time::{Duration, Instant};

use ipvs_lab::{ip, run};

use lvs_dataplane::dataplane::Operation;
use lvs_dataplane::linux::nft;
use lvs_dataplane::model::{ArpGuard, HeartbeatGuard, MarkRule, NftRules, PortMatch, Protocol};

/// One rule of every kind: an ARP guard with its rewrite, a neighbour guard, untracked director
/// services, a redirect, a masquerade, marks (one
/// on the low byte of the packet mark, one on the whole mark), and the input guard (IPv4 and
/// IPv6 VIPs, a port-0 service, heartbeat peers of both families).
fn rules() -> NftRules {
    let port_match = |address: &str, protocol, port| PortMatch {
        address: address.parse().unwrap(),
        protocol,
        port,
    };
    NftRules {
        arp_guards: vec![ArpGuard {
            vip: "10.0.0.1".parse().unwrap(),
            real_address: Some("10.0.0.11".parse().unwrap()),
        }],
        redirects: vec![port_match("2001:db8::2", Protocol::Udp, 53)],
        masquerade: vec![port_match("10.0.1.1", Protocol::Tcp, 8080)],
        nd_guards: vec!["2001:db8::5".parse().unwrap()],
        untracked: vec![
            port_match("10.0.0.1", Protocol::Tcp, 80),
            port_match("2001:db8::1", Protocol::Sctp, 0),
        ],
        marks: vec![
            MarkRule {
                address: "10.0.0.3".parse().unwrap(),
                protocol: Protocol::Tcp,
                ports: vec![80, 443],
                mark: 104,
                mask: 0xff,
            },
            MarkRule {
                address: "10.0.0.4".parse().unwrap(),
                protocol: Protocol::Sctp,
                ports: vec![],
                mark: 105,
                mask: u32::MAX,
            },
        ],
        ..guard()
    }
}

/// The input guard alone: VIPs 10.0.0.1 (UDP 53, TCP 80, every SCTP port) and 2001:db8::1 (TCP
/// 443); heartbeats on 9751 from 10.0.0.3 and fd00::3, 10 a second each.
fn guard() -> NftRules {
    let service = |address: &str, protocol, port| PortMatch {
        address: address.parse().unwrap(),
        protocol,
        port,
    };
    NftRules {
        guarded_vips: vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
        guarded_services: vec![
            service("10.0.0.1", Protocol::Udp, 53),
            service("10.0.0.1", Protocol::Tcp, 80),
            service("10.0.0.1", Protocol::Sctp, 0),
            service("2001:db8::1", Protocol::Tcp, 443),
        ],
        heartbeats: Some(HeartbeatGuard {
            port: 9751,
            peers: vec!["10.0.0.3".parse().unwrap(), "fd00::3".parse().unwrap()],
            rate_per_second: 10,
        }),
        ..NftRules::default()
    }
}

#[tokio::test]
async fn nft_takes_our_tables_replaces_them_in_place_and_deletes_them() {
    if !netns::in_private_network("nft_takes_our_tables_replaces_them_in_place_and_deletes_them") {
        return;
    }
    assert_eq!(
        nft::fingerprint("nft").await.unwrap(),
        None,
        "a new namespace is empty"
    );
    nft::apply("nft", &nft::replace_batch(&rules()), Operation::Update)
        .await
        .unwrap();
    let first = nft::fingerprint("nft").await.unwrap().expect("our tables");
    for needle in [
        r#""family":"arp""#,
        r#""family":"inet""#,
        r#""masquerade""#,
        r#""redirect""#,
    ] {
        assert!(first.contains(needle), "missing {needle} in {first}");
    }
    nft::apply("nft", &nft::replace_batch(&rules()), Operation::Update)
        .await
        .unwrap();
    let listed = run("nft", &["list", "table", "inet", nft::TABLE]);
    for line in [
        // ~0xff | 0x68: nft folds our mark into the and-mask it lists; the value is the same.
        "ip daddr 10.0.0.3 tcp dport { 80, 443 } meta mark set meta mark & 0xffffff68 | 0x00000068",
        "ip daddr 10.0.0.4 meta l4proto sctp meta mark set 0x00000069",
        "ip daddr . meta l4proto . th dport @service4 accept",
        "ip6 daddr . meta l4proto @protocol6 accept",
        "udp dport 9751 ip saddr @peer4 update @heartbeat4 { ip saddr limit rate over 10/second burst 10 packets } drop",
        "udp dport 9751 drop",
        "ip daddr @vip4 drop",
        "ip6 daddr @vip6 drop",
        "elements = { 10.0.0.1 . sctp }",
        "10.0.0.1 . tcp . 80 }",
    ] {
        assert!(listed.contains(line), "missing {line} in {listed}");
    }
    assert!(
        !listed.contains("ct state"),
        "no rule starts connection tracking: {listed}"
    );
    let second = nft::fingerprint("nft").await.unwrap().expect("our tables");
    assert_eq!(
        first, second,
        "replacing with the same rules changes nothing but handles"
    );

    nft::apply("nft", &nft::delete_batch(), Operation::Delete)
        .await
        .unwrap();
    assert_eq!(nft::fingerprint("nft").await.unwrap(), None);
    nft::apply("nft", &nft::delete_batch(), Operation::Delete)
        .await
        .expect("deleting tables that are gone is not an error");
}

#[tokio::test]
async fn a_refusal_and_a_missing_program_say_so() {
    if !netns::in_private_network("a_refusal_and_a_missing_program_say_so") {
        return;
    }
    // A masquerade in an ARP table is not something nft accepts.
    let mut bad = nft::replace_batch(&rules());
    let nft::json::Command::Add(nft::json::Object::Rule(rule)) = bad.nftables.last_mut().unwrap() else {
        panic!("the batch ends with a rule");
    };
    rule.family = nft::json::Family::Arp;
    rule.chain = "input";
    let error = nft::apply("nft", &bad, Operation::Update)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("nft -j -f /proc/self/fd/0 failed (exit status: 1): ") && error.contains("Error: "),
        "the exit status and nft's own message: {error}"
    );
    assert_eq!(
        nft::fingerprint("nft").await.unwrap(),
        None,
        "one transaction: nothing of the batch stays"
    );

    let error = nft::fingerprint("/nonexistent/nft")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot run /nonexistent/nft: not found"),
        "{error}"
    );
}

/// The packets the rule commented `comment` of table `inet observe` (any chain) counted.
fn counted(comment: &str) -> u64 {
    let listing: serde_json::Value =
        serde_json::from_str(&run("nft", &["-j", "list", "table", "inet", "observe"])).unwrap();
    let rule = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|object| object.get("rule"))
        .find(|rule| rule["comment"] == comment)
        .unwrap_or_else(|| panic!("no rule {comment} in {listing}"));
    rule["expr"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|statement| statement["counter"]["packets"].as_u64())
        .unwrap_or_else(|| panic!("no counter in {rule}"))
}

#[tokio::test]
async fn a_masked_mark_leaves_the_other_bits_of_a_real_packet_alone() {
    if !netns::in_private_network("a_masked_mark_leaves_the_other_bits_of_a_real_packet_alone") {
        return;
    }
    // Datagrams to a local address loop back through lo and so through the prerouting hook.
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "10.0.0.3/32", "dev", "lo"]);
    // Another program's table marks the packets first (kube-proxy's masquerade bit) ...
    run("nft", &["add", "table", "inet", "foreign"]);
    run(
        "nft",
        &["add chain inet foreign prerouting { type filter hook prerouting priority -200; policy accept; }"],
    );
    run(
        "nft",
        &["add rule inet foreign prerouting ip daddr 10.0.0.3 meta mark set meta mark or 0x4000"],
    );
    // ... and a later chain counts the marks our rules left.
    run("nft", &["add", "table", "inet", "observe"]);
    run(
        "nft",
        &["add chain inet observe prerouting { type filter hook prerouting priority -100; policy accept; }"],
    );
    for (port, mark, comment) in [
        (80, "0x4068", "masked"),
        (80, "0x68", "masked-foreign-bit-lost"),
        (81, "0x69", "whole"),
    ] {
        run(
            "nft",
            &[&format!(
                "add rule inet observe prerouting ip daddr 10.0.0.3 udp dport {port} meta mark {mark} counter comment {comment}"
            )],
        );
    }
    let mark = |port, mark, mask| MarkRule {
        address: "10.0.0.3".parse().unwrap(),
        protocol: Protocol::Udp,
        ports: vec![port],
        mark,
        mask,
    };
    let rules = NftRules {
        marks: vec![mark(80, 0x68, 0xff), mark(81, 0x69, u32::MAX)],
        ..Default::default()
    };
    nft::apply("nft", &nft::replace_batch(&rules), Operation::Update)
        .await
        .unwrap();

    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.send_to(b"masked", "10.0.0.3:80").unwrap();
    socket.send_to(b"whole", "10.0.0.3:81").unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while counted("masked") + counted("masked-foreign-bit-lost") + counted("whole") < 2
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (
            counted("masked"),
            counted("masked-foreign-bit-lost"),
            counted("whole")
        ),
        (1, 0, 1),
        "mask 0xff: 0x4000 kept and 0x68 added; the whole mark: 0x69 alone\n{}",
        run("nft", &["list", "ruleset"])
    );
}

#[tokio::test]
async fn the_input_guard_admits_declared_services_and_peers_only() {
    if !netns::in_private_network("the_input_guard_admits_declared_services_and_peers_only") {
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    // 10.0.0.1 a VIP, 10.0.0.2 the node's own address, 10.0.0.3 a peer, 10.0.0.4 a stranger.
    for address in ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32"] {
        ip(&["addr", "add", address, "dev", "lo"]);
    }
    nft::apply("nft", &nft::replace_batch(&guard()), Operation::Update)
        .await
        .unwrap();
    // A later input chain counts what our guard let through.
    run("nft", &["add", "table", "inet", "observe"]);
    run(
        "nft",
        &["add chain inet observe input { type filter hook input priority 10; policy accept; }"],
    );
    for (matching, comment) in [
        ("ip daddr 10.0.0.1 udp dport 53", "declared"),
        ("ip daddr 10.0.0.1 udp dport 5353", "undeclared"),
        ("ip daddr 10.0.0.2 udp dport 5353", "node"),
        ("ip saddr 10.0.0.3 udp dport 9751", "peer"),
        ("ip saddr 10.0.0.4 udp dport 9751", "stranger"),
    ] {
        run(
            "nft",
            &[&format!(
                "add rule inet observe input {matching} counter comment {comment}"
            )],
        );
    }
    let listed_before = nft::fingerprint("nft").await.unwrap();

    let send = |from: &str, to: &str, count: usize| {
        let socket = std::net::UdpSocket::bind(format!("{from}:0")).unwrap();
        for _ in 0..count {
            socket.send_to(b"x", to).unwrap();
        }
    };
    send("10.0.0.2", "10.0.0.1:53", 1);
    send("10.0.0.2", "10.0.0.1:5353", 1);
    send("10.0.0.1", "10.0.0.2:5353", 1);
    send("10.0.0.3", "10.0.0.2:9751", 100);
    send("10.0.0.4", "10.0.0.2:9751", 5);
    send("10.0.0.4", "10.0.0.1:9751", 5);
    let deadline = Instant::now() + Duration::from_secs(2);
    while (counted("declared") + counted("node") < 2 || counted("peer") < 10) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peer = counted("peer");
    assert_eq!(
        (
            counted("declared"),
            counted("undeclared"),
            counted("node"),
            counted("stranger"),
        ),
        (1, 0, 1, 0),
        "declared VIP port through, undeclared VIP port dropped, the node's own address untouched, no heartbeat from a stranger\n{}",
        run("nft", &["list", "ruleset"])
    );
    assert!(
        (10..100).contains(&peer),
        "the peer's burst of 10 passes, most of 100 back-to-back datagrams do not: {peer}"
    );
    assert_eq!(
        nft::fingerprint("nft").await.unwrap(),
        listed_before,
        "the per-peer rate state the packets left is not drift"
    );
}

#[tokio::test]
async fn the_neighbour_guard_drops_solicitations_for_its_vip_only() {
    if !netns::in_private_network("the_neighbour_guard_drops_solicitations_for_its_vip_only") {
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    // A later chain counts the solicitations our guard let through, per target.
    run("nft", &["add", "table", "inet", "observe"]);
    run(
        "nft",
        &["add chain inet observe prerouting { type filter hook prerouting priority -100; policy accept; }"],
    );
    for (target, comment) in [("fd00:100::100", "guarded"), ("fd00:100::101", "other")] {
        let bits = format!(
            "{:#034x}",
            u128::from(target.parse::<std::net::Ipv6Addr>().unwrap())
        );
        run(
            "nft",
            &[&format!(
                "add rule inet observe prerouting icmpv6 type nd-neighbor-solicit @th,64,128 {bits} counter comment {comment}"
            )],
        );
    }
    let rules = NftRules {
        nd_guards: vec!["fd00:100::100".parse().unwrap()],
        ..Default::default()
    };
    nft::apply("nft", &nft::replace_batch(&rules), Operation::Update)
        .await
        .unwrap();

    // Real solicitations (the duplicate probe's frames).
    let frames = ["fd00:100::100", "fd00:100::101"].map(|target| {
        lvs_dataplane::linux::probe::neighbour_solicitation_probe([2, 0, 0, 0, 0, 1], target.parse().unwrap())
    });
    loop_back_until_counted(&frames, "other").await;
    assert_eq!(
        (counted("guarded"), counted("other")),
        (0, 1),
        "the VIP's solicitation dropped before anything else sees it, the other one not\n{}",
        run("nft", &["list", "ruleset"])
    );
}

/// An Ethernet frame with one IPv4 UDP datagram from 10.0.0.9:4000 to `destination`:`port`
/// (UDP checksum 0: none, which IPv4 allows).
fn udp_frame(destination: [u8; 4], port: u16) -> Vec<u8> {
    let payload = b"ping";
    let udp_length = 8 + payload.len();
    let total = 20 + udp_length;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 9];
    ip.extend_from_slice(&destination);
    ip[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
    let sum = ip
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !u16::try_from((folded & 0xffff) + (folded >> 16)).unwrap();
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = vec![0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&4000u16.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&u16::try_from(udp_length).unwrap().to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn an_untracked_director_service_never_meets_another_programs_dnat() {
    if !netns::in_private_network("an_untracked_director_service_never_meets_another_programs_dnat") {
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "10.0.0.1/32", "dev", "lo"]);
    // What kube-proxy (nftables or iptables mode) makes for a LoadBalancer IP: a DNAT in a nat
    // prerouting chain, here counted per port in a table of its own.
    run("nft", &["add", "table", "inet", "observe"]);
    run(
        "nft",
        &["add chain inet observe prerouting { type nat hook prerouting priority dstnat; policy accept; }"],
    );
    for (port, comment) in [(53, "director"), (54, "other")] {
        run(
            "nft",
            &[&format!(
                "add rule inet observe prerouting ip daddr 10.0.0.1 udp dport {port} counter dnat ip to 127.0.0.1 comment {comment}"
            )],
        );
    }
    let rules = NftRules {
        untracked: vec![PortMatch {
            address: "10.0.0.1".parse().unwrap(),
            protocol: Protocol::Udp,
            port: 53,
        }],
        ..Default::default()
    };
    nft::apply("nft", &nft::replace_batch(&rules), Operation::Update)
        .await
        .unwrap();

    // Real datagrams.
    loop_back_until_counted(&[53, 54].map(|port| udp_frame([10, 0, 0, 1], port)), "other").await;
    assert_eq!(
        (counted("director"), counted("other")),
        (0, 1),
        "the director service's datagram skips conntrack and so the DNAT; the other port's does not\n{}",
        run("nft", &["list", "ruleset"])
    );
}

/// Sends `frames` out of `lo`, which loops them back through prerouting as if they had arrived,
/// and waits (up to 2 s) until the `observe` rule `comment` counted one.
async fn loop_back_until_counted(frames: &[Vec<u8>], comment: &str) {
    let mut channel = lvs_dataplane::linux::datalink::RawChannel::open(
        "lo",
        Duration::from_millis(50),
        Operation::Probe,
        lvs_dataplane::dataplane::Object::Other("test".into()),
    )
    .unwrap();
    for frame in frames {
        channel.send(frame).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while counted(comment) < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
