//! The input guard in table `inet lvs-operator`: a filter chain on the input hook (priority 0,
//! before IPVS's LOCAL_IN hooks) that lets traffic to our VIPs through only on their declared
//! services, and failover heartbeats only from the peers, each under a rate. Named sets keep it
//! at one rule per kind of traffic however many services there are:
//!
//! ```text
//! ip daddr . meta l4proto . th dport @service4 accept        # VIP, protocol, port
//! ip daddr . meta l4proto @protocol4 accept                  # port-0 services: every port
//! udp dport 9751 ip saddr @peer4 update @heartbeat4 { ip saddr limit rate over R/second burst R packets } drop
//! udp dport 9751 ip saddr @peer4 accept
//! udp dport 9751 drop
//! ip daddr @vip4 icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept
//! ip daddr @vip4 drop
//! ```
//!
//! (and the IPv6 twins, with packet-too-big and neighbour discovery). No rule uses conntrack
//! (`ct state`): a conntrack match would start connection tracking for every packet of the
//! node's network namespace — kernel state that is not ours — and under IPVS direct routing it
//! held new connections to a VIP back for over a second after the VIP was put back on `lvs0`
//! (lab `agent-drift-fast`: 1.5–1.9 s instead of 0.14 s). Nothing needs it: clients only ever
//! send requests to a VIP (replies leave real servers directly, or pass a NAT director's
//! forward path), and the ICMP errors a client's path needs are admitted by type.
//! The chain's policy is accept: what is not to a VIP or the heartbeat port is not ours to
//! judge, and an accept here never overrides another table's drop.

use std::net::IpAddr;

use super::json::{
    ChainType, Command, Expression, Family, Hook, Limit, Meta, MetaKey, Object, Set, SetType, Statement,
    Update,
};
use super::{TABLE, chain, matches, payload, protocol_name, rule};
use crate::model::{HeartbeatGuard, NftRules, PortMatch};

/// The sets whose elements the packet path adds (per-peer rate state): left out of the
/// fingerprint, which would otherwise change with every heartbeat.
pub const METER_SETS: [&str; 2] = ["heartbeat4", "heartbeat6"];

/// ICMP types a client of a VIP needs (ping, and the errors path MTU discovery and traceroute
/// rely on).
const ICMP_TYPES: [&str; 4] = [
    "echo-request",
    "destination-unreachable",
    "time-exceeded",
    "parameter-problem",
];

/// ICMPv6 types a client needs, with neighbour discovery (unicast solicitations for a VIP are
/// addressed to it).
const ICMPV6_TYPES: [&str; 9] = [
    "echo-request",
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
];

/// One address family's names and types.
struct Version {
    /// `ip` or `ip6`.
    header: &'static str,
    /// `icmp` or `icmpv6`.
    icmp: &'static str,
    icmp_types: &'static [&'static str],
    address_type: &'static str,
    service_type: &'static [&'static str],
    protocol_type: &'static [&'static str],
    vips: &'static str,
    services: &'static str,
    protocols: &'static str,
    peers: &'static str,
    meter: &'static str,
    is_v6: bool,
}

const V4: Version = Version {
    header: "ip",
    icmp: "icmp",
    icmp_types: &ICMP_TYPES,
    address_type: "ipv4_addr",
    service_type: &["ipv4_addr", "inet_proto", "inet_service"],
    protocol_type: &["ipv4_addr", "inet_proto"],
    vips: "vip4",
    services: "service4",
    protocols: "protocol4",
    peers: "peer4",
    meter: "heartbeat4",
    is_v6: false,
};

const V6: Version = Version {
    header: "ip6",
    icmp: "icmpv6",
    icmp_types: &ICMPV6_TYPES,
    address_type: "ipv6_addr",
    service_type: &["ipv6_addr", "inet_proto", "inet_service"],
    protocol_type: &["ipv6_addr", "inet_proto"],
    vips: "vip6",
    services: "service6",
    protocols: "protocol6",
    peers: "peer6",
    meter: "heartbeat6",
    is_v6: true,
};

/// Adds the guard's sets, chain and rules to `batch` (our inet table exists already); nothing
/// when `rules` has no guard.
pub fn add(batch: &mut Vec<Command>, rules: &NftRules) {
    if !rules.has_input_guard() {
        return;
    }
    for version in [&V4, &V6] {
        sets(batch, rules, version);
    }
    chain(batch, Family::Inet, "input", ChainType::Filter, Hook::Input, 0);
    for version in [&V4, &V6] {
        rule(
            batch,
            Family::Inet,
            "input",
            vec![
                member(
                    Expression::Concat(vec![
                        payload(version.header, "daddr"),
                        l4proto(),
                        payload("th", "dport"),
                    ]),
                    version.services,
                ),
                Statement::Accept,
            ],
        );
        rule(
            batch,
            Family::Inet,
            "input",
            vec![
                member(
                    Expression::Concat(vec![payload(version.header, "daddr"), l4proto()]),
                    version.protocols,
                ),
                Statement::Accept,
            ],
        );
    }
    if let Some(heartbeats) = &rules.heartbeats {
        heartbeat_rules(batch, heartbeats);
    }
    for version in [&V4, &V6] {
        let icmp_types = version
            .icmp_types
            .iter()
            .map(|name| Expression::String((*name).into()))
            .collect();
        rule(
            batch,
            Family::Inet,
            "input",
            vec![
                member(payload(version.header, "daddr"), version.vips),
                matches(payload(version.icmp, "type"), Expression::Set(icmp_types)),
                Statement::Accept,
            ],
        );
        rule(
            batch,
            Family::Inet,
            "input",
            vec![
                member(payload(version.header, "daddr"), version.vips),
                Statement::Drop,
            ],
        );
    }
}

/// The named sets of one address family, filled from `rules`.
fn sets(batch: &mut Vec<Command>, rules: &NftRules, version: &Version) {
    let family_of = |address: &IpAddr| address.is_ipv6() == version.is_v6;
    let address = |address: &IpAddr| Expression::String(address.to_string());
    let vips = rules
        .guarded_vips
        .iter()
        .filter(|vip| family_of(vip))
        .map(address)
        .collect();
    let (every_port, ports): (Vec<&PortMatch>, Vec<&PortMatch>) = rules
        .guarded_services
        .iter()
        .filter(|service| family_of(&service.address))
        .partition(|service| service.port == 0);
    let services = ports
        .iter()
        .map(|service| {
            Expression::Concat(vec![
                address(&service.address),
                Expression::String(protocol_name(service.protocol).into()),
                Expression::Number(u32::from(service.port)),
            ])
        })
        .collect();
    let protocols = every_port
        .iter()
        .map(|service| {
            Expression::Concat(vec![
                address(&service.address),
                Expression::String(protocol_name(service.protocol).into()),
            ])
        })
        .collect();
    let peers: Vec<Expression> = rules
        .heartbeats
        .iter()
        .flat_map(|heartbeats| heartbeats.peers.iter())
        .filter(|peer| family_of(peer))
        .map(address)
        .collect();
    let meter_size = u32::try_from(peers.len()).unwrap_or(u32::MAX).max(1);
    let one = SetType::One(version.address_type);
    for (name, kind, elements, size) in [
        (version.vips, one.clone(), vips, None),
        (
            version.services,
            SetType::Concat(version.service_type),
            services,
            None,
        ),
        (
            version.protocols,
            SetType::Concat(version.protocol_type),
            protocols,
            None,
        ),
        (version.peers, one.clone(), peers, None),
        (version.meter, one, Vec::new(), Some(meter_size)),
    ] {
        batch.push(Command::Add(Object::Set(Set {
            family: Family::Inet,
            table: TABLE,
            name,
            kind,
            size,
            elements,
        })));
    }
}

/// Heartbeats from a peer under its rate pass, over it are dropped; from anyone else dropped.
fn heartbeat_rules(batch: &mut Vec<Command>, heartbeats: &HeartbeatGuard) {
    let port = || {
        matches(
            payload("udp", "dport"),
            Expression::Number(u32::from(heartbeats.port)),
        )
    };
    for version in [&V4, &V6] {
        let source = || payload(version.header, "saddr");
        rule(
            batch,
            Family::Inet,
            "input",
            vec![
                port(),
                member(source(), version.peers),
                Statement::Update(Update {
                    op: "update",
                    element: source(),
                    set: format!("@{}", version.meter),
                    statements: vec![Statement::Limit(Limit {
                        rate: heartbeats.rate_per_second,
                        burst: heartbeats.rate_per_second,
                        per: "second",
                        inv: true,
                    })],
                }),
                Statement::Drop,
            ],
        );
        rule(
            batch,
            Family::Inet,
            "input",
            vec![port(), member(source(), version.peers), Statement::Accept],
        );
    }
    rule(batch, Family::Inet, "input", vec![port(), Statement::Drop]);
}

/// `left @set`: membership in a named set.
fn member(left: Expression, set: &str) -> Statement {
    matches(left, Expression::String(format!("@{set}")))
}

fn l4proto() -> Expression {
    Expression::Meta(Meta {
        key: MetaKey::L4proto,
    })
}
