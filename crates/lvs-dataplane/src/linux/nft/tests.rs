//! The nft JSON we send: pinned byte for byte, and the pieces the other tests look for.

use super::*;
use crate::model::{ArpGuard, MarkRule};

#[test]
fn the_batch_replaces_only_our_tables_and_holds_every_rule() {
    let rules = NftRules {
        arp_guards: vec![ArpGuard {
            vip: "10.0.0.1".parse().unwrap(),
            real_address: Some("10.0.0.11".parse().unwrap()),
        }],
        redirects: vec![PortMatch {
            address: "10.0.0.2".parse().unwrap(),
            protocol: Protocol::Tcp,
            port: 80,
        }],
        masquerade: vec![PortMatch {
            address: "10.0.1.1".parse().unwrap(),
            protocol: Protocol::Tcp,
            port: 8080,
        }],
        marks: vec![MarkRule {
            address: "10.0.0.3".parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: vec![80, 443],
            mark: 104,
            mask: u32::MAX,
        }],
        ..Default::default()
    };
    let json = serde_json::to_string(&replace_batch(&rules)).unwrap();
    for needle in [
        r#""family":"arp","name":"lvs-operator""#,
        r#""family":"inet","name":"lvs-operator""#,
        r#"{"mangle":{"key":{"payload":{"protocol":"arp","field":"saddr ip"}},"value":"10.0.0.11"}}"#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"daddr ip"}},"right":"10.0.0.1","op":"=="}}"#,
        r#""redirect":null"#,
        r#""masquerade":null"#,
        r#""set":[80,443]"#,
        r#""value":104"#,
    ] {
        assert!(json.contains(needle), "missing {needle} in {json}");
    }
    assert_eq!(
        json.matches(r#""table":{"family":"arp""#).count(),
        3,
        "add, delete, add"
    );
    assert!(
        !json.contains("filter\",\"name\":\"inet"),
        "no foreign table named"
    );
}

#[test]
fn an_empty_part_deletes_its_table() {
    let rules = NftRules {
        redirects: vec![PortMatch {
            address: "10.0.0.2".parse().unwrap(),
            protocol: Protocol::Udp,
            port: 53,
        }],
        ..Default::default()
    };
    let json = serde_json::to_string(&replace_batch(&rules)).unwrap();
    assert_eq!(
        json.matches(r#""table":{"family":"arp""#).count(),
        2,
        "add, delete: no arp table left"
    );
    assert!(
        json.contains(r#"{"payload":{"protocol":"udp","field":"dport"}},"right":53"#),
        "{json}"
    );
}

#[test]
fn handles_do_not_change_the_fingerprint() {
    let first = r#"{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"arp","name":"lvs-operator","handle":7}}]}"#;
    let second = r#"{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"arp","name":"lvs-operator","handle":9}}]}"#;
    assert_eq!(strip_handles(first), strip_handles(second));
}

/// Every kind of rule `replace_batch` writes: ARP guards with and without the outgoing rewrite
/// (NFTablesARP), REDIRECT (IPv4 and IPv6), masquerade for NAT, firewall marks on a port
/// set, on one port and on every port of a protocol, and one writing only the low byte of the
/// mark, and untracked director services (one port; every port of a protocol).
fn every_kind_of_rule() -> NftRules {
    NftRules {
        arp_guards: vec![
            ArpGuard {
                vip: "10.0.0.1".parse().unwrap(),
                real_address: Some("10.0.0.11".parse().unwrap()),
            },
            ArpGuard {
                vip: "10.0.0.5".parse().unwrap(),
                real_address: None,
            },
        ],
        redirects: vec![
            PortMatch {
                address: "10.0.0.2".parse().unwrap(),
                protocol: Protocol::Tcp,
                port: 80,
            },
            PortMatch {
                address: "2001:db8::2".parse().unwrap(),
                protocol: Protocol::Udp,
                port: 53,
            },
        ],
        masquerade: vec![
            PortMatch {
                address: "10.0.1.1".parse().unwrap(),
                protocol: Protocol::Tcp,
                port: 8080,
            },
            PortMatch {
                address: "fd00::1".parse().unwrap(),
                protocol: Protocol::Sctp,
                port: 9000,
            },
        ],
        marks: vec![
            MarkRule {
                address: "10.0.0.3".parse().unwrap(),
                protocol: Protocol::Tcp,
                ports: vec![80, 443],
                mark: 104,
                mask: u32::MAX,
            },
            MarkRule {
                address: "10.0.0.4".parse().unwrap(),
                protocol: Protocol::Udp,
                ports: vec![53],
                mark: 105,
                mask: u32::MAX,
            },
            MarkRule {
                address: "2001:db8::4".parse().unwrap(),
                protocol: Protocol::Sctp,
                ports: vec![],
                mark: 106,
                mask: u32::MAX,
            },
            MarkRule {
                address: "10.0.0.7".parse().unwrap(),
                protocol: Protocol::Tcp,
                ports: vec![8443],
                mark: 0x6b,
                mask: 0xff,
            },
        ],
        untracked: vec![
            PortMatch {
                address: "10.0.0.8".parse().unwrap(),
                protocol: Protocol::Tcp,
                port: 80,
            },
            PortMatch {
                address: "2001:db8::8".parse().unwrap(),
                protocol: Protocol::Udp,
                port: 0,
            },
        ],
        ..Default::default()
    }
}

/// The JSON `nft` receives, byte for byte (one command per line; a rule's statements indented).
/// Produced by the `nftables` crate before our own types replaced it (the masked mark added
/// since, checked against nft 1.0.6 in `tests/nft_host.rs`); nft 1.0.6 accepts it.
#[rustfmt::skip]
const REPLACE_EVERY_KIND: &str = concat!(
    r#"{"nftables":["#,
    r#"{"add":{"table":{"family":"arp","name":"lvs-operator"}}},"#,
    r#"{"delete":{"table":{"family":"arp","name":"lvs-operator"}}},"#,
    r#"{"add":{"table":{"family":"arp","name":"lvs-operator"}}},"#,
    r#"{"add":{"chain":{"family":"arp","table":"lvs-operator","name":"input","type":"filter","hook":"input","prio":0,"policy":"accept"}}},"#,
    r#"{"add":{"chain":{"family":"arp","table":"lvs-operator","name":"output","type":"filter","hook":"output","prio":0,"policy":"accept"}}},"#,
    r#"{"add":{"rule":{"family":"arp","table":"lvs-operator","chain":"input","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"operation"}},"right":"request","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"daddr ip"}},"right":"10.0.0.1","op":"=="}},"#,
        r#"{"drop":null}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"arp","table":"lvs-operator","chain":"output","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"saddr ip"}},"right":"10.0.0.1","op":"=="}},"#,
        r#"{"mangle":{"key":{"payload":{"protocol":"arp","field":"saddr ip"}},"value":"10.0.0.11"}}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"arp","table":"lvs-operator","chain":"input","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"operation"}},"right":"request","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"arp","field":"daddr ip"}},"right":"10.0.0.5","op":"=="}},"#,
        r#"{"drop":null}"#,
    r#"]}}},"#,
    r#"{"add":{"table":{"family":"inet","name":"lvs-operator"}}},"#,
    r#"{"delete":{"table":{"family":"inet","name":"lvs-operator"}}},"#,
    r#"{"add":{"table":{"family":"inet","name":"lvs-operator"}}},"#,
    r#"{"add":{"chain":{"family":"inet","table":"lvs-operator","name":"untracked","type":"filter","hook":"prerouting","prio":-300,"policy":"accept"}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"untracked","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.8","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80,"op":"=="}},"#,
        r#"{"notrack":null}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"untracked","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"2001:db8::8","op":"=="}},"#,
        r#"{"match":{"left":{"meta":{"key":"l4proto"}},"right":"udp","op":"=="}},"#,
        r#"{"notrack":null}"#,
    r#"]}}},"#,
    r#"{"add":{"chain":{"family":"inet","table":"lvs-operator","name":"mark","type":"filter","hook":"prerouting","prio":-150,"policy":"accept"}}},"#,
    r#"{"add":{"chain":{"family":"inet","table":"lvs-operator","name":"redirect","type":"nat","hook":"prerouting","prio":-100,"policy":"accept"}}},"#,
    r#"{"add":{"chain":{"family":"inet","table":"lvs-operator","name":"masquerade","type":"nat","hook":"postrouting","prio":100,"policy":"accept"}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"mark","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.3","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[80,443]},"op":"=="}},"#,
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":104}}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"mark","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.4","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"udp","field":"dport"}},"right":53,"op":"=="}},"#,
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":105}}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"mark","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"2001:db8::4","op":"=="}},"#,
        r#"{"match":{"left":{"meta":{"key":"l4proto"}},"right":"sctp","op":"=="}},"#,
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":106}}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"mark","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.7","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8443,"op":"=="}},"#,
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":{"|":[{"&":[{"meta":{"key":"mark"}},4294967040]},107]}}}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"redirect","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.2","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80,"op":"=="}},"#,
        r#"{"redirect":null}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"redirect","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"2001:db8::2","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"udp","field":"dport"}},"right":53,"op":"=="}},"#,
        r#"{"redirect":null}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"masquerade","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.1.1","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080,"op":"=="}},"#,
        r#"{"masquerade":null}"#,
    r#"]}}},"#,
    r#"{"add":{"rule":{"family":"inet","table":"lvs-operator","chain":"masquerade","expr":["#,
        r#"{"match":{"left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"fd00::1","op":"=="}},"#,
        r#"{"match":{"left":{"payload":{"protocol":"sctp","field":"dport"}},"right":9000,"op":"=="}},"#,
        r#"{"masquerade":null}"#,
    r#"]}}}"#,
    r#"]}"#,
);

/// Both our tables removed.
#[rustfmt::skip]
const DELETE_BOTH: &str = concat!(
    r#"{"nftables":["#,
    r#"{"add":{"table":{"family":"arp","name":"lvs-operator"}}},"#,
    r#"{"delete":{"table":{"family":"arp","name":"lvs-operator"}}},"#,
    r#"{"add":{"table":{"family":"inet","name":"lvs-operator"}}},"#,
    r#"{"delete":{"table":{"family":"inet","name":"lvs-operator"}}}"#,
    r#"]}"#,
);

#[test]
fn the_json_of_every_kind_of_rule_is_pinned() {
    let json = serde_json::to_string(&replace_batch(&every_kind_of_rule())).unwrap();
    assert_eq!(json, REPLACE_EVERY_KIND);
    assert_eq!(serde_json::to_string(&delete_batch()).unwrap(), DELETE_BOTH);
}

#[test]
fn a_masked_mark_keeps_the_bits_outside_its_mask() {
    let rule = |mask| MarkRule {
        address: "10.0.0.3".parse().unwrap(),
        protocol: Protocol::Udp,
        ports: vec![80],
        mark: 0x68,
        mask,
    };
    let mangle = |mask| {
        let rules = NftRules {
            marks: vec![rule(mask)],
            ..Default::default()
        };
        let json = serde_json::to_value(replace_batch(&rules)).unwrap();
        let rule = json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|command| command["add"].get("rule"))
            .expect("the mark rule")
            .clone();
        rule["expr"][2].to_string()
    };
    assert_eq!(
        mangle(u32::MAX),
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":104}}"#,
        "the whole mark: meta mark set 0x68"
    );
    assert_eq!(
        mangle(0xff),
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":{"|":[{"&":[{"meta":{"key":"mark"}},4294967040]},104]}}}"#,
        "meta mark set meta mark & 0xffffff00 | 0x68"
    );
}

/// A guard of one IPv4 VIP with two services and one port-0 service, an IPv6 VIP, and
/// heartbeats from one peer of each family.
fn guard() -> NftRules {
    let service = |address: &str, protocol, port| PortMatch {
        address: address.parse().unwrap(),
        protocol,
        port,
    };
    NftRules {
        guarded_vips: vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
        guarded_services: vec![
            service("10.0.0.1", Protocol::Tcp, 80),
            service("10.0.0.1", Protocol::Udp, 53),
            service("10.0.0.1", Protocol::Sctp, 0),
            service("2001:db8::1", Protocol::Tcp, 443),
        ],
        heartbeats: Some(crate::model::HeartbeatGuard {
            port: 9751,
            peers: vec!["10.0.0.3".parse().unwrap(), "fd00::3".parse().unwrap()],
            rate_per_second: 1000,
        }),
        ..Default::default()
    }
}

/// The input chain's rules, each as its JSON statements (in the order sent).
fn input_rules(rules: &NftRules) -> Vec<String> {
    replace_batch(rules)
        .nftables
        .iter()
        .filter_map(|command| match command {
            json::Command::Add(json::Object::Rule(rule))
                if rule.chain == "input" && rule.family == json::Family::Inet =>
            {
                Some(serde_json::to_string(&rule.statements).unwrap())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_guard_fills_typed_sets_and_keeps_one_rule_per_kind_of_traffic() {
    let json = serde_json::to_string(&replace_batch(&guard())).unwrap();
    for needle in [
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"vip4","type":"ipv4_addr","elem":["10.0.0.1"]}}}"#,
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"service4","type":["ipv4_addr","inet_proto","inet_service"],"elem":[{"concat":["10.0.0.1","tcp",80]},{"concat":["10.0.0.1","udp",53]}]}}}"#,
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"protocol4","type":["ipv4_addr","inet_proto"],"elem":[{"concat":["10.0.0.1","sctp"]}]}}}"#,
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"service6","type":["ipv6_addr","inet_proto","inet_service"],"elem":[{"concat":["2001:db8::1","tcp",443]}]}}}"#,
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"peer6","type":"ipv6_addr","elem":["fd00::3"]}}}"#,
        r#"{"add":{"set":{"family":"inet","table":"lvs-operator","name":"heartbeat4","type":"ipv4_addr","size":1}}}"#,
        r#"{"add":{"chain":{"family":"inet","table":"lvs-operator","name":"input","type":"filter","hook":"input","prio":0,"policy":"accept"}}}"#,
    ] {
        assert!(json.contains(needle), "missing {needle} in {json}");
    }
    assert!(
        !json.contains(r#""name":"mark""#),
        "no translation chains without translations"
    );

    // A thousand services more change the sets, not the rules.
    let mut many = guard();
    many.guarded_services.extend((1..=1000).map(|port| PortMatch {
        address: "10.0.0.1".parse().unwrap(),
        protocol: Protocol::Tcp,
        port: 8000 + port,
    }));
    assert_eq!(input_rules(&many), input_rules(&guard()));
}

#[test]
fn heartbeats_meet_the_peer_limit_and_vips_drop_last_without_conntrack() {
    let rules = input_rules(&guard());
    let position = |needle: &str| {
        rules
            .iter()
            .position(|rule| rule.contains(needle))
            .unwrap_or_else(|| panic!("no rule with {needle} in {rules:#?}"))
    };
    let limit = position(
        r#"{"set":{"op":"update","elem":{"payload":{"protocol":"ip","field":"saddr"}},"set":"@heartbeat4","stmt":[{"limit":{"rate":1000,"burst":1000,"per":"second","inv":true}}]}},{"drop":null}"#,
    );
    let stranger = position(
        r#"[{"match":{"left":{"payload":{"protocol":"udp","field":"dport"}},"right":9751,"op":"=="}},{"drop":null}]"#,
    );
    assert!(
        rules.iter().all(|rule| !rule.contains(r#""ct""#)),
        "no rule starts connection tracking: {rules:#?}"
    );
    let icmp = position(r#""destination-unreachable""#);
    let drop4 = position(
        r#"[{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"@vip4","op":"=="}},{"drop":null}]"#,
    );
    let icmpv6 = position(r#""nd-neighbor-solicit""#);
    let drop6 = position(
        r#"[{"match":{"left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"@vip6","op":"=="}},{"drop":null}]"#,
    );
    assert!(limit < stranger && stranger < icmp, "{rules:#?}");
    assert!(icmp < drop4, "{rules:#?}");
    assert!(stranger < icmpv6 && icmpv6 < drop6, "{rules:#?}");
    assert!(
        rules[0].contains(r#""right":"@service4""#),
        "services first: {rules:#?}"
    );

    let without_failover = NftRules {
        heartbeats: None,
        ..guard()
    };
    assert!(
        !input_rules(&without_failover)
            .iter()
            .any(|rule| rule.contains("9751")),
        "no heartbeat rules without failover"
    );
}

#[test]
fn the_rate_state_of_the_meters_is_not_part_of_the_fingerprint() {
    let listed = |meter: &str| {
        format!(
            r#"{{"nftables":[{{"set":{{"family":"inet","name":"heartbeat4","table":"lvs-operator","type":"ipv4_addr","handle":4,"size":2{meter}}}}},{{"set":{{"family":"inet","name":"peer4","table":"lvs-operator","type":"ipv4_addr","handle":5,"elem":["10.0.0.3"]}}}}]}}"#
        )
    };
    let empty = strip_handles(&listed(""));
    let filled = strip_handles(&listed(
        r#","elem":[{"elem":{"val":"10.0.0.3","limit":{"rate":1000,"burst":1000,"per":"second","inv":true}}}]"#,
    ));
    assert_eq!(empty, filled);
    assert!(
        filled.contains(r#""elem":["10.0.0.3"]"#),
        "the peers stay: {filled}"
    );
}
