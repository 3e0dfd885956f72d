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
/// (NFTablesARP), REDIRECT (IPv4 and IPv6), masquerade for NAT, and firewall marks on a port
/// set, on one port and on every port of a protocol, and one writing only the low byte of the
/// mark.
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
