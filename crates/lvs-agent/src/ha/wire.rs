//! The heartbeat directors send each other over UDP: who I am (node name, incarnation,
//! sequence) and, per VIP we share, my role, eligibility, healthy real servers and how long I
//! have been a synced backup — authenticated with HMAC-SHA256 under a shared key.
//!
//! Our own protocol rather than VRRPv3: VRRPv3 (RFC 5798) has no authentication, elects per
//! virtual router by priority only (no notion of real-server health or sync state), and speaking
//! it would mean raw IP protocol 112 sockets; keepalived can therefore not be a peer during a
//! migration (run one or the other per VIP).
//!
//! Layout (big-endian): `LVSH`, version 1, name length + name, incarnation u64, sequence u64,
//! VIP count u16, then per VIP: family (4 or 6) + address, role u8, flags u8 (1 eligible,
//! 2 wants the VIP, 4 restarting), healthy real servers u16, synced-backup milliseconds u32; then the 32-byte
//! HMAC of everything before it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ring::hmac;

const MAGIC: &[u8; 4] = b"LVSH";
const VERSION: u8 = 1;
const TAG_LENGTH: usize = 32;
const FLAG_ELIGIBLE: u8 = 1;
const FLAG_WANTS_VIP: u8 = 2;
const FLAG_RESTARTING: u8 = 4;

/// A director's claim on a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not holding the VIP.
    Standby,
    /// Holding the VIP.
    Active,
}

/// What one director says about one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipReport {
    /// The VIP.
    pub address: IpAddr,
    /// Its role for the VIP.
    pub role: Role,
    /// Whether it may hold the VIP (IPVS programmed, uplink up).
    pub eligible: bool,
    /// It asks the active director to hand the VIP over (preemption).
    pub wants_vip: bool,
    /// Real servers it considers healthy.
    pub healthy: u16,
    /// How long it has been receiving connections as a sync backup, in milliseconds (0: not).
    pub synced_millis: u32,
    /// The sender's agent is restarting and leaves the VIP in its kernel: peers keep it as
    /// the holder for their restart hold, unless a probe finds nobody answering for the VIP.
    pub restarting: bool,
}

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender's node name.
    pub node: String,
    /// Random per agent start: a restarted agent's sequence starts over.
    pub incarnation: u64,
    /// Increases with every heartbeat of one incarnation.
    pub sequence: u64,
    /// Its VIPs.
    pub vips: Vec<VipReport>,
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not a heartbeat of this protocol or version.
    #[error("not an lvs-operator heartbeat (version 1)")]
    Foreign,
    /// Cut short or inconsistent.
    #[error("malformed heartbeat: {0}")]
    Malformed(&'static str),
    /// The HMAC does not match: another key, or tampered with.
    #[error("heartbeat authentication failed (a different key, or tampered with)")]
    Authentication,
}

impl WireError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Foreign => "foreign",
            Self::Malformed(_) => "malformed",
            Self::Authentication => "authentication",
        }
    }
}

/// The shared key heartbeats are signed with.
pub struct HeartbeatKey(hmac::Key);

impl HeartbeatKey {
    /// A key from the secret's bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

impl std::fmt::Debug for HeartbeatKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("HeartbeatKey(..)")
    }
}

/// The signed datagram for `heartbeat`.
pub fn encode(heartbeat: &Heartbeat, key: &HeartbeatKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + heartbeat.vips.len() * 26);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let name = heartbeat.node.as_bytes();
    let name = &name[..name.len().min(255)];
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
    out.extend_from_slice(&heartbeat.incarnation.to_be_bytes());
    out.extend_from_slice(&heartbeat.sequence.to_be_bytes());
    let count = heartbeat.vips.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes());
    for vip in heartbeat.vips.iter().take(count) {
        match vip.address {
            IpAddr::V4(address) => {
                out.push(4);
                out.extend_from_slice(&address.octets());
            }
            IpAddr::V6(address) => {
                out.push(6);
                out.extend_from_slice(&address.octets());
            }
        }
        out.push(match vip.role {
            Role::Standby => 0,
            Role::Active => 1,
        });
        let mut flags = 0;
        if vip.eligible {
            flags |= FLAG_ELIGIBLE;
        }
        if vip.wants_vip {
            flags |= FLAG_WANTS_VIP;
        }
        if vip.restarting {
            flags |= FLAG_RESTARTING;
        }
        out.push(flags);
        out.extend_from_slice(&vip.healthy.to_be_bytes());
        out.extend_from_slice(&vip.synced_millis.to_be_bytes());
    }
    let tag = hmac::sign(&key.0, &out);
    out.extend_from_slice(tag.as_ref());
    out
}

/// Verifies and parses a datagram.
pub fn decode(datagram: &[u8], key: &HeartbeatKey) -> Result<Heartbeat, WireError> {
    if datagram.len() < MAGIC.len() + 1 || &datagram[..4] != MAGIC || datagram[4] != VERSION {
        return Err(WireError::Foreign);
    }
    let Some(body_length) = datagram.len().checked_sub(TAG_LENGTH) else {
        return Err(WireError::Malformed("shorter than its authentication tag"));
    };
    let (body, tag) = datagram.split_at(body_length);
    hmac::verify(&key.0, body, tag).map_err(|_| WireError::Authentication)?;
    let mut reader = Reader { bytes: body, at: 5 };
    let name_length = usize::from(reader.u8()?);
    let node = String::from_utf8(reader.take(name_length)?.to_vec())
        .map_err(|_| WireError::Malformed("node name is not UTF-8"))?;
    let incarnation = reader.u64()?;
    let sequence = reader.u64()?;
    let count = reader.u16()?;
    let mut vips = Vec::with_capacity(usize::from(count).min(1024));
    for _ in 0..count {
        let address = match reader.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(reader.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(reader.array::<16>()?)),
            _ => return Err(WireError::Malformed("unknown address family")),
        };
        let role = match reader.u8()? {
            0 => Role::Standby,
            1 => Role::Active,
            _ => return Err(WireError::Malformed("unknown role")),
        };
        let flags = reader.u8()?;
        vips.push(VipReport {
            address,
            role,
            eligible: flags & FLAG_ELIGIBLE != 0,
            wants_vip: flags & FLAG_WANTS_VIP != 0,
            restarting: flags & FLAG_RESTARTING != 0,
            healthy: reader.u16()?,
            synced_millis: reader.u32()?,
        });
    }
    if reader.at != body.len() {
        return Err(WireError::Malformed("trailing bytes"));
    }
    Ok(Heartbeat {
        node,
        incarnation,
        sequence,
        vips,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(WireError::Malformed("cut short"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Heartbeat {
        Heartbeat {
            node: "director-1".into(),
            incarnation: 0x0102_0304_0506_0708,
            sequence: 42,
            vips: vec![
                VipReport {
                    address: "10.100.0.100".parse().unwrap(),
                    role: Role::Active,
                    eligible: true,
                    wants_vip: false,
                    healthy: 2,
                    synced_millis: 0,
                    restarting: false,
                },
                VipReport {
                    address: "fd00:100::100".parse().unwrap(),
                    role: Role::Standby,
                    eligible: false,
                    wants_vip: true,
                    healthy: 0,
                    synced_millis: 1500,
                    restarting: true,
                },
            ],
        }
    }

    #[test]
    fn round_trip_with_the_same_key() {
        let key = HeartbeatKey::new(b"secret");
        let bytes = encode(&sample(), &key);
        assert_eq!(&bytes[..5], b"LVSH\x01");
        assert_eq!(bytes.len(), 5 + 1 + 10 + 16 + 2 + (1 + 4 + 8) + (1 + 16 + 8) + 32);
        assert_eq!(decode(&bytes, &key).unwrap(), sample());
    }

    #[test]
    fn another_key_or_a_flipped_bit_fails_authentication() {
        let bytes = encode(&sample(), &HeartbeatKey::new(b"secret"));
        assert_eq!(
            decode(&bytes, &HeartbeatKey::new(b"other")),
            Err(WireError::Authentication)
        );
        let key = HeartbeatKey::new(b"secret");
        for index in 5..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x01;
            assert_eq!(
                decode(&tampered, &key),
                Err(WireError::Authentication),
                "byte {index}"
            );
        }
    }

    #[test]
    fn foreign_and_short_datagrams_are_refused() {
        let key = HeartbeatKey::new(b"secret");
        assert_eq!(decode(b"", &key), Err(WireError::Foreign));
        assert_eq!(decode(b"VRRP-ish datagram", &key), Err(WireError::Foreign));
        assert_eq!(decode(b"LVSH\x02rest", &key), Err(WireError::Foreign));
        assert!(matches!(
            decode(b"LVSH\x01short", &key),
            Err(WireError::Malformed(_))
        ));
        // Correctly signed but cut inside a VIP entry.
        let mut body = encode(&sample(), &key);
        body.truncate(body.len() - TAG_LENGTH - 3);
        let tag = hmac::sign(&key.0, &body);
        body.extend_from_slice(tag.as_ref());
        assert_eq!(decode(&body, &key), Err(WireError::Malformed("cut short")));
    }
}
