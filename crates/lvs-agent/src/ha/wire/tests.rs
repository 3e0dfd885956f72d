//! The wire format: round trips, keys (a peer under another key is told apart from a tampered
//! datagram), and rounds split so that no datagram is larger than `MAX_DATAGRAM`.

#![allow(clippy::unwrap_used)]

use super::*;

fn report(address: IpAddr, role: Role) -> VipReport {
    VipReport {
        address,
        role,
        eligible: true,
        wants_vip: false,
        healthy: 2,
        synced_millis: 0,
        restarting: false,
    }
}

fn sample() -> Heartbeat {
    Heartbeat {
        node: "director-1".into(),
        incarnation: 0x0102_0304_0506_0708,
        sequence: 42,
        part: 0,
        parts: 1,
        vips: vec![
            report("10.100.0.100".parse().unwrap(), Role::Active),
            VipReport {
                address: "fd00:100::100".parse().unwrap(),
                role: Role::Standby,
                eligible: false,
                wants_vip: true,
                healthy: 300,
                synced_millis: 1500,
                restarting: true,
            },
        ],
    }
}

fn keys(secret: &[u8]) -> HeartbeatKeys {
    HeartbeatKeys::single(HeartbeatKey::new(secret))
}

#[test]
fn round_trip_with_the_same_key() {
    let keys = keys(b"secret");
    let bytes = encode(&sample(), &keys.current);
    assert_eq!(&bytes[..5], b"LVSH\x02");
    // Header, an IPv4 entry of 6 bytes, an IPv6 entry of 1 + 16 + 2 + 2, the tag.
    assert_eq!(bytes.len(), 5 + 8 + 1 + 10 + 8 + 8 + 2 + 2 + 6 + 21 + 32);
    assert_eq!(decode(&bytes, &keys).unwrap(), (sample(), KeySlot::Current));
}

#[test]
fn the_key_id_is_sent_in_clear_but_not_the_key() {
    let key = HeartbeatKey::new(b"a shared secret!");
    let bytes = encode(&sample(), &key);
    assert_eq!(hex(&bytes[5..13]), key.id());
    assert_eq!(key.id().len(), 16);
    assert!(!bytes.windows(16).any(|window| window == b"a shared secret!"));
}

#[test]
fn another_key_is_told_apart_from_a_flipped_bit() {
    let bytes = encode(&sample(), &HeartbeatKey::new(b"secret"));
    assert_eq!(
        decode(&bytes, &keys(b"other")),
        Err(WireError::OtherKey {
            node: "director-1".into(),
            key_id: HeartbeatKey::new(b"secret").id(),
        })
    );
    let keys = keys(b"secret");
    // A flipped bit after the key id: authentication fails.
    for index in 13..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[index] ^= 0x01;
        assert_eq!(
            decode(&tampered, &keys),
            Err(WireError::Authentication),
            "byte {index}"
        );
    }
}

#[test]
fn both_keys_of_a_rotation_are_accepted_and_told_apart() {
    let keys = HeartbeatKeys {
        current: HeartbeatKey::new(b"new key"),
        previous: Some(HeartbeatKey::new(b"old key")),
    };
    let new = encode(&sample(), &HeartbeatKey::new(b"new key"));
    let old = encode(&sample(), &HeartbeatKey::new(b"old key"));
    assert_eq!(decode(&new, &keys).unwrap().1, KeySlot::Current);
    assert_eq!(decode(&old, &keys).unwrap().1, KeySlot::Previous);
    assert_eq!(
        keys.get(KeySlot::Previous).id(),
        HeartbeatKey::new(b"old key").id()
    );
    let third = encode(&sample(), &HeartbeatKey::new(b"third key"));
    assert_eq!(decode(&third, &keys).unwrap_err().label(), "other_key");
}

#[test]
fn foreign_and_short_datagrams_are_refused() {
    let keys = keys(b"secret");
    assert_eq!(decode(b"", &keys), Err(WireError::Foreign));
    assert_eq!(decode(b"VRRP-ish datagram", &keys), Err(WireError::Foreign));
    assert_eq!(
        decode(b"LVSH\x01rest", &keys),
        Err(WireError::Foreign),
        "version 1"
    );
    assert!(matches!(
        decode(b"LVSH\x02short", &keys),
        Err(WireError::Malformed(_))
    ));
    // Correctly signed but cut inside a VIP entry.
    let mut body = encode(&sample(), &keys.current);
    body.truncate(body.len() - TAG_LENGTH - 3);
    let tag = hmac::sign(&keys.current.key, &body);
    body.extend_from_slice(tag.as_ref());
    assert_eq!(decode(&body, &keys), Err(WireError::Malformed("cut short")));
}

#[test]
fn a_round_of_5000_vips_is_split_into_datagrams_under_the_limit() {
    let key = HeartbeatKey::new(b"secret");
    let keys = HeartbeatKeys::single(HeartbeatKey::new(b"secret"));
    let vips: Vec<VipReport> = (0..5_000u32)
        .map(|index| report(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index)), Role::Active))
        .chain((0..100u128).map(|index| {
            let mut vip = report(IpAddr::V6(Ipv6Addr::from(0xfd00 << 112 | index)), Role::Standby);
            vip.synced_millis = u32::MAX;
            vip.healthy = u16::MAX;
            vip
        }))
        .collect();
    let node = "a-director-with-a-rather-long-node-name.example.com";
    let datagrams = encode_round(node, 7, 100, &vips, &key);
    assert!(datagrams.len() > 1);
    assert!(
        datagrams.len() <= 5_100 * 6 / 1_200 + 3,
        "compact: {} datagrams",
        datagrams.len()
    );
    let mut decoded = Vec::new();
    for (index, datagram) in datagrams.iter().enumerate() {
        assert!(
            datagram.len() <= MAX_DATAGRAM,
            "datagram {index}: {} bytes",
            datagram.len()
        );
        let (heartbeat, _) = decode(datagram, &keys).unwrap();
        assert_eq!(heartbeat.sequence, 100 + index as u64);
        assert_eq!(usize::from(heartbeat.part), index);
        assert_eq!(usize::from(heartbeat.parts), datagrams.len());
        assert_eq!(heartbeat.node, node);
        decoded.extend(heartbeat.vips);
    }
    assert_eq!(decoded, vips, "every VIP once, in order");
    // A round with nothing to say is one datagram.
    assert_eq!(encode_round(node, 7, 1, &[], &key).len(), 1);
}
