//! Our nftables tables against the host's real `nft`, in a private network namespace: the JSON
//! we write is accepted, a replace is idempotent, a delete removes both tables, and nft's
//! refusals come back with its exit status and message. Needs root, `unshare` and `nft`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netns;

use lvs_dataplane::dataplane::Operation;
use lvs_dataplane::linux::nft;
use lvs_dataplane::model::{ArpGuard, MarkRule, NftRules, PortMatch, Protocol};

/// One rule of every kind: an ARP guard with its rewrite, a redirect, a masquerade, marks.
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
        marks: vec![
            MarkRule {
                address: "10.0.0.3".parse().unwrap(),
                protocol: Protocol::Tcp,
                ports: vec![80, 443],
                mark: 104,
            },
            MarkRule {
                address: "10.0.0.4".parse().unwrap(),
                protocol: Protocol::Sctp,
                ports: vec![],
                mark: 105,
            },
        ],
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
